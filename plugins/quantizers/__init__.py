"""Built-in quantizers: dynamic and static int8 (torch.ao), half precision (fp16, CUDA)."""
