"""Base classes for every component kind a plugin can provide."""

from automl.components.architecture import Architecture
from automl.components.augmentation import Augmentation, RawAugmentation
from automl.components.base import DATA_KINDS, Component, ParamDef
from automl.components.callback import Callback
from automl.components.dataset import DataSpec, DataSplits, Dataset, Encoder, Examples, RawInputs
from automl.components.ensembler import Ensembler
from automl.components.metric import EvalContext, Metric
from automl.components.pruner import Pruner
from automl.components.stream import ExampleReader, Streamed
from automl.components.quantizer import NotQuantizable, Quantizer
from automl.components.strategy import NotTrainable, Strategy, TrainingLoop, TrainingRun
from automl.components.task import Task

__all__ = [
    "DATA_KINDS", "Architecture", "Augmentation", "Callback", "Component", "DataSpec", "DataSplits",
    "Dataset", "Encoder", "Ensembler", "EvalContext", "ExampleReader", "Examples", "Metric",
    "NotQuantizable", "NotTrainable", "ParamDef", "Pruner", "Quantizer", "RawAugmentation",
    "RawInputs", "Strategy", "Streamed", "Task", "TrainingLoop", "TrainingRun",
]
