"""The experiment file: typed models and the loader that validates them."""

from automl.config.loader import LoadedExperiment, load_experiment, parse_experiment
from automl.config.models import Experiment, Objective

__all__ = ["Experiment", "LoadedExperiment", "Objective", "load_experiment", "parse_experiment"]
