"""The ``automl`` command line (thin: parse arguments, call the library, print)."""
