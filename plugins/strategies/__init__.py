"""Built-in training strategies: the standard loop, federated averaging, DP-SGD."""
