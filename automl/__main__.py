"""``python -m automl`` is the same as the ``automl`` command."""

from automl.cli.app import main

main()
