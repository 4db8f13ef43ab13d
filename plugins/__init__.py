"""Built-in plugins, importable as ``automl_plugins``. They use the same hooks as a user's own."""
