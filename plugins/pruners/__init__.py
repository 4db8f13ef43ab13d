"""Built-in pruners plugins."""
