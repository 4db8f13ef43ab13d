"""What an explanation explains: one trial's model or the experiment's ensemble, loaded as an
export loads it (:mod:`automl.export`: the architecture plugin rebuilt, the saved weights loaded
with ``torch.load(weights_only=True)``), as one module from model inputs to the task's
predictions, with the experiment's data (only its validation split is ever used).

A quantized trial is explained through its float model (``model.pt``, the weights it was
quantized from): attributions need gradients, which int8 kernels do not have. The subject says so
in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automl.components import DataSpec, DataSplits
from automl.errors import ConfigError
from automl.export import (
    ensemble_members, Member, model_entry, build_model, checkpoint_dir, select_trial,
)
from automl.multitask import MULTITASK, task_for
from automl.recorded import recorded_config, recorded_plugins
from automl.results import ObjectiveSpec, objectives_of
from automl.store import ExperimentRecord
from automl.trial.artifacts import MODEL_FILE

if TYPE_CHECKING:
    from torch import nn

    from automl.preprocessing import Preprocessing
    from automl.registry import Registry

#: the keys of a model entry that make :func:`automl.export.build_model` rebuild the int8 model
_QUANTIZED_KEYS = ("quantizer", "quantizer_params", "quantized_state_dict")


@dataclass
class Subject:
    """A loaded model to explain, and what explaining it needs."""

    label: str  # "trial 3" or "ensemble"
    kind: str  # "trial" or "ensemble"
    trial: int | None
    members: list[int]
    weights: list[float]
    module: "nn.Module"  # model inputs -> the task's predictions (N x columns), eval mode, CPU
    spec: DataSpec
    data: DataSplits
    registry: "Registry"
    objective: ObjectiveSpec  # the metric explanations are scored with (a validation one)
    preprocessing: "Preprocessing | None"
    notes: list[str] = field(default_factory=list)

    def score(self, y: Any, predictions: Any) -> float:
        """The objective metric of ``predictions`` (the task's) against the targets ``y``."""
        from automl.multitask import create_metric
        from automl.trial.evaluation import score

        name = self.objective.metric
        plugin = self.registry.get("metric", name.rsplit("/", 1)[-1]).plugin
        metric = create_metric(self.registry, name, self.spec)
        return score([(name, metric, plugin)], y, predictions, None, self.spec, "val")[
            f"val/{name}"]

    @property
    def columns(self) -> list[str]:
        """The names of the prediction columns (classes, targets)."""
        return list(task_for(self.spec, self.registry).prediction_columns(self.spec))


def load_subject(exp: ExperimentRecord, trial: str | int | None = None,
                 ensemble: bool = False) -> Subject:
    """The model ``trial`` names (``None`` or ``"best"``: the best trial on validation, or a
    number), or the stored ensemble; refused with one message when it has no model to load or
    its experiment is one explanations do not cover (several targets)."""
    if ensemble and trial is not None:
        raise ConfigError("--trial and --ensemble exclude each other: the ensemble is explained "
                          "through its members' weighted predictions")
    if ensemble:
        chosen, _ = ensemble_members(exp, None, None)
    else:
        picked = select_trial(exp, "best" if trial is None else trial)
        chosen = [Member(picked, checkpoint_dir(exp, picked), 1.0)]
    config = recorded_config(exp)
    plugins = recorded_plugins(exp)
    from automl.data import prepare_data

    data = prepare_data(config, plugins.registry)
    spec = data.spec
    if spec.task == MULTITASK:
        raise ConfigError(f"experiment '{exp.name}' learns several targets at once (multi-task); "
                          "automl explain covers single-target experiments only")
    objective = next((o for o in objectives_of(exp) if o.scope == "val"), None)
    if objective is None:
        raise ConfigError(f"experiment '{exp.name}' has no objective scored on the validation "
                          "split, which explanations are scored with")
    notes: list[str] = []
    members = []
    for member in chosen:
        entry = model_entry(member, plugins.registry, str(member.directory / MODEL_FILE))
        if entry.get("quantizer"):
            notes.append(f"trial {member.trial.number} is quantized ({entry['quantizer']}); its "
                         "float model (the weights it was quantized from) is explained, since "
                         "attributions need gradients")
            entry = {k: v for k, v in entry.items() if k not in _QUANTIZED_KEYS}
        members.append((build_model(plugins.registry, entry, spec,
                                    member.directory / MODEL_FILE), bool(entry.get("folds"))))
    task = task_for(spec, plugins.registry)
    from automl.weighted_models import weighted_models

    # one trial too goes through the weighted combination (weight 1): predictions out either way
    module = weighted_models([m for m, _ in members], [m.weight for m in chosen], task, spec,
                             [folds for _, folds in members]).eval()
    numbers = [m.trial.number for m in chosen]
    return Subject(label="ensemble" if ensemble else f"trial {numbers[0]}",
                   kind="ensemble" if ensemble else "trial",
                   trial=None if ensemble else numbers[0], members=numbers,
                   weights=[m.weight for m in chosen], module=module, spec=spec, data=data,
                   registry=plugins.registry, objective=objective,
                   preprocessing=_preprocessing(config, plugins.registry, data), notes=notes)


def _preprocessing(config: Any, registry: "Registry", data: DataSplits
                   ) -> "Preprocessing | None":
    """The dataset's raw-input recipe with what automl fitted on the training split (as an
    export saves it); None when the dataset declares none."""
    from automl.errors import AutomlError, PluginError
    from automl.preprocessing import Preprocessing
    from automl.space import dataset_params

    dataset = registry.get("dataset", config.dataset.name)
    try:
        prep = dataset.create().preprocessing(dataset_params(config, registry), data.spec)  # type: ignore[attr-defined]
    except AutomlError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{dataset.plugin}', dataset '{dataset.name}': preprocessing() "
                          f"raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(prep, Preprocessing):
        return None
    return prep.with_arrays(**data.fitted)
