"""Built-in callback plugins: experiment tracking."""
