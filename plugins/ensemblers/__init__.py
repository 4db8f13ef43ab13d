"""Built-in ensemblers plugins."""
