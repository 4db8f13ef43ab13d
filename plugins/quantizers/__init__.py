"""Built-in quantizers (torch.ao): dynamic and static int8."""
