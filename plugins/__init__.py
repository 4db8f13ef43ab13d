"""Built-in plugins, importable as ``automl_plugins``. They use the same hooks as a user's own."""

from automl_plugins import torchvision_compat

torchvision_compat.install()  # before anything imports torchvision (backbone, transformers)
