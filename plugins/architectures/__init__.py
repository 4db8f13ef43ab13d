"""Built-in architectures plugins."""
