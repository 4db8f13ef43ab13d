"""Exporting a trained model out of an experiment, and loading it back without the database.

An export is one directory that predicts on raw inputs in a fresh process: it needs the automl
package (and the installed plugin packages it names) and nothing else: no experiment file, no
results database, no artifacts directory, no plugin source path::

    model.json               what to rebuild and how to prepare inputs (see below)
    model.pt                 format native, one trial: its final state_dict (pruned: smaller shapes)
    members/<n>/model.pt     format native, an ensemble: the state_dict of trial <n>
    model.torchscript.pt     format torchscript: the model, probabilities out (torch.jit)
    model.onnx               format onnx: the model, probabilities out (onnxruntime)
    preprocessing.npz        arrays fitted on the training split (standardisation mean/std)
    preprocessing/           files the dataset bundles (a text model's tokenizer)
    experiment.yaml          the experiment's config as recorded (resolved, defaults filled in)
    plugins/<file>.py        copies of the plugin files the experiment listed (sha256 in model.json)

``model.json`` holds ``format`` (``automl-model``), ``format_version``, ``type`` (``trial`` or
``ensemble``), ``output`` (``logits``: the model's raw outputs, or ``probabilities``: the task's
predictions), ``runtime`` (the model file's ``format`` and ``file``), the DataSpec (``spec``:
kind, input_shape, num_classes, class_names, extra, task, target_names, output_size; a
regression's target scaling is in ``extra``), ``task`` and ``class_names``, ``dataset`` (name
and plugin), ``preprocessing`` (see :mod:`automl.preprocessing`), ``check`` (the exported model
against the eager one on the test split: rows, max abs prediction difference, and the task's
first metric), ``evaluation`` (the final evaluation's test metrics of what is exported), the
experiment's name and seed, the plugin modules to import and plugin files to run
(``{"path": "plugins/x.py", "sha256": ...}``), the automl and torch versions, and per model the
trial number, architecture name and parameters, sampled parameters, derived seed and recorded
metrics; an ensemble adds its members' ``weights``. A trial validated by k-fold that kept its
fold models (``validation: {kfold: {final: folds}}``) adds ``folds`` (their number): its
``model.pt`` holds them all, rebuilt as their average (``output: probabilities``).

Loading runs plugin code, so :func:`load_model` runs only plugin files inside the export directory
whose content has the sha256 that ``model.json`` records; a path outside the directory (absolute,
``..``, or a symlink leading out) is refused before anything runs. The plugin files written into
an export are the ones checked against the digests recorded with the experiment. Plugins
installed as packages (the built-ins, ``automl_plugins``) are named by module and must be
installed where the export is loaded.

:func:`load_model` rebuilds the architecture through the plugin registry and loads the weights with
``torch.load(weights_only=True)`` via :func:`automl.model_io.load_state_dict_resizing`, so
structurally pruned models load into a freshly built architecture at their reduced size. To
predict on raw inputs use :func:`automl.load_model` (:mod:`automl.predictor`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import automl
from automl.components import DataSpec
from automl.errors import AutomlError, ConfigError, PluginError, StoreError
from automl.multitask import task_for
from automl.recorded import recorded_config, recorded_plugins
from automl.results import best_of, best_student_of, objectives_of
from automl.space import TrialPlan
from automl.store import EnsembleRecord, ExperimentRecord, TrialRecord
from automl.trial.artifacts import MODEL_FILE, QUANTIZED_FILE, TRIAL_FILE

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from automl.plugin_manager import Plugins, PluginSource
    from automl.registry import Registry

MANIFEST_FILE = "model.json"
CONFIG_FILE = "experiment.yaml"
FORMAT = "automl-model"
#: test rows an export of a model trained on a streamed dataset is checked on
STREAMED_CHECK_ROWS = 2048
FORMAT_VERSION = 3  # 2: plugin files carry their sha256; 3: preprocessing, runtime, check
READABLE_VERSIONS = (1, 2, 3)
FORMATS = {"native": None, "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
#: the largest max abs probability difference an exported format may show against eager
CHECK_TOLERANCE = 1e-4

__all__ = ["export_model", "load_model", "predict_proba", "read_manifest"]


# ---- choosing what to export ----------------------------------------------------------------


def select_trial(exp: ExperimentRecord, which: str | int) -> TrialRecord:
    """The trial ``which`` names (``"best"``, ``"distilled"``: the best student of the
    distillation stage, or a number), refusing one without a final model."""
    if which == "best":
        trial = best_of(exp)
        if trial is None:
            raise StoreError(f"experiment '{exp.name}' has no completed trial")
        return trial
    if which == "distilled":
        trial = best_student_of(exp)
        if trial is None:
            raise StoreError(f"experiment '{exp.name}' has no completed student that meets the "
                             "constraints (distillation: in its experiment file)")
        return trial
    number = _trial_number(which)
    trial = next((t for t in exp.trials if t.number == number), None)
    if trial is None:
        numbers = sorted(t.number for t in exp.trials)
        have = f"trials {numbers[0]}..{numbers[-1]}" if numbers else "no trials"
        raise StoreError(f"experiment '{exp.name}' has no trial {number} ({have})")
    if trial.status != "completed":
        raise StoreError(f"trial {number} of experiment '{exp.name}' is {trial.status}; only a "
                         "completed trial has a final model and metrics")
    return trial


def _trial_number(which: str | int) -> int:
    try:
        return int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"--trial must be 'best', 'distilled' or a trial number, got "
                          f"'{which}'") from None


def checkpoint_dir(exp: ExperimentRecord, trial: TrialRecord) -> Path:
    """The trial's checkpoint directory, checked to hold its weights and record."""
    if not trial.checkpoint:
        raise StoreError(f"trial {trial.number} of experiment '{exp.name}' has no checkpoint")
    directory = Path(trial.checkpoint)
    for name in (MODEL_FILE, TRIAL_FILE):
        if not (directory / name).is_file():
            raise StoreError(f"trial {trial.number} of experiment '{exp.name}': {directory / name} "
                             "is missing (were the artifacts moved or deleted?)")
    return directory


def trial_record(directory: Path) -> dict[str, Any]:
    """A checkpoint's ``trial.json``."""
    path = directory / TRIAL_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None


def trial_spec(exp: ExperimentRecord, directory: Path, registry: "Registry") -> DataSpec:
    """The DataSpec the trial was built for: from ``trial.json``, or (checkpoints written before
    it recorded one) by loading the dataset from the experiment's recorded config."""
    recorded = trial_record(directory).get("spec")
    if recorded is not None:
        return spec_from_dict(recorded)
    from automl.data import prepare_data

    return prepare_data(recorded_config(exp), registry).spec


def spec_from_dict(value: dict[str, Any]) -> DataSpec:
    """A recorded DataSpec; one recorded before tasks existed is a classification spec."""
    optional = {k: value[k] for k in ("task", "output_size") if k in value}
    return DataSpec(kind=value["kind"], input_shape=tuple(value["input_shape"]),
                    num_classes=int(value["num_classes"]),
                    class_names=tuple(value.get("class_names") or ()),
                    extra=dict(value.get("extra") or {}),
                    target_names=tuple(value.get("target_names") or ()), **optional)


def spec_to_dict(spec: DataSpec) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(spec), default=str))


# ---- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One model of an export or ensemble: the trial, its checkpoint directory, its weight
    (normalised to sum to 1 over the members)."""

    trial: TrialRecord
    directory: Path
    weight: float


def export_model(exp: ExperimentRecord, out: str | Path, *, trial: str | int = "best",
                 ensemble: bool = False, members: Sequence[int] | None = None,
                 weights: Sequence[float] | None = None, format: str = "native") -> Path:
    """Write a reloadable model directory for one trial or the experiment's ensemble.

    Args:
        exp: the experiment, as :meth:`automl.store.Store.experiment` returns it.
        out: the directory to create; it must not exist or be empty.
        trial: ``"best"`` (the best completed trial on validation), ``"distilled"`` (the best
            student of the distillation stage) or a trial number.
        ensemble: export the latest ensemble instead (every member and its weight).
        members: with ``ensemble``, export these trials instead of the stored ensemble's members
            (with ``weights``; mainly for tests and hand-picked blends).
        weights: the members' weights (normalised to sum to 1).
        format: ``native`` (state dicts rebuilt through the architecture plugins),
            ``torchscript`` or ``onnx`` (a traced model that outputs probabilities; ``onnx``
            needs the ``onnx`` extra).

    Returns:
        ``out``, complete: the directory appears only after it was loaded back and its
        probabilities on the test split compared with the eager model's (``check`` in
        ``model.json``; a difference over :data:`CHECK_TOLERANCE` is refused).

    Raises:
        StoreError: the trial is missing, not completed, or its checkpoint is gone; the
            experiment has no ensemble.
        ConfigError: ``out`` exists and is not an empty directory; an unknown format.
    """
    from automl.data import prepare_data
    from automl.space import dataset_params
    from automl.stream_splits import StreamedSplits

    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{format}'")
    target = Path(out).expanduser().absolute()
    _check_out(target)
    if ensemble:
        chosen, record = ensemble_members(exp, members, weights)
    else:
        picked = select_trial(exp, trial)
        chosen, record = [Member(picked, checkpoint_dir(exp, picked), 1.0)], None
    plugins = recorded_plugins(exp)
    config = recorded_config(exp)
    data = prepare_data(config, plugins.registry)
    if isinstance(data, StreamedSplits):  # checked on the first test rows, read into memory
        data = data.test_sample(STREAMED_CHECK_ROWS)
    spec = data.spec
    dataset = plugins.registry.get("dataset", config.dataset.name)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()  # beside the target, so the final rename stays on one file system
    try:
        manifest = _manifest(exp, spec, plugins, _copy_plugin_files(plugins, staging))
        manifest["dataset"] = {"name": dataset.name, "plugin": dataset.plugin}
        manifest["preprocessing"] = _save_preprocessing(
            dataset, dataset_params(config, plugins.registry), data, staging)
        if not ensemble:
            member = chosen[0]
            shutil.copyfile(member.directory / MODEL_FILE, staging / MODEL_FILE)
            _copy_quantized(member.directory, staging)
            entry = model_entry(member, plugins.registry, MODEL_FILE)
            # a fold ensemble's module returns the combined predictions of its fold models
            manifest.update(type="trial", output="probabilities" if entry.get("folds")
                            else "logits", **entry)
        else:
            entries = []
            for member in chosen:
                relative = f"members/{member.trial.number}/{MODEL_FILE}"
                (staging / relative).parent.mkdir(parents=True)
                shutil.copyfile(member.directory / MODEL_FILE, staging / relative)
                _copy_quantized(member.directory, (staging / relative).parent)
                entries.append({"weight": member.weight,
                                **model_entry(member, plugins.registry, relative)})
            manifest.update(type="ensemble", output="probabilities",
                            weights=[m.weight for m in chosen], members=entries,
                            ensemble=_ensemble_entry(record))
        manifest["evaluation"] = (
            _final_evaluation(exp, "ensemble", record.id if record is not None else None)
            if ensemble else _final_evaluation(exp, "trial", chosen[0].trial.number))
        manifest["runtime"] = {"format": "native", "file": None}
        _write_manifest(manifest, staging)
        _write_config(exp, staging / CONFIG_FILE)
        eager = load_model(staging)
        task = task_for(spec, plugins.registry)
        if format != "native":
            manifest["runtime"] = _convert(eager, manifest, task, spec, format, data.x_test,
                                           staging)
            _write_manifest(manifest, staging)
        manifest["check"] = _check_against_eager(eager, manifest, task, exp, plugins.registry,
                                                 data, staging)
        _write_manifest(manifest, staging)
        _check_out(target)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_manifest(manifest: dict[str, Any], directory: Path) -> None:
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n",
                                           encoding="utf-8")


def _save_preprocessing(dataset: Any, params: dict[str, Any], data: Any,
                        staging: Path) -> dict[str, Any] | None:
    """The dataset's raw-input recipe plus what automl fitted on the training split, saved."""
    from automl import preprocessing

    where = f"plugin '{dataset.plugin}', dataset '{dataset.name}'"
    try:
        prep = dataset.create().preprocessing(params, data.spec)
    except AutomlError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"{where}: preprocessing() raised {type(exc).__name__}: {exc}") from exc
    if prep is None:
        return None
    if not isinstance(prep, preprocessing.Preprocessing):
        raise PluginError(f"{where}: preprocessing() returned {type(prep).__name__}; expected "
                          "automl.preprocessing.Preprocessing or None")
    return preprocessing.save(prep.with_arrays(**data.fitted), staging)


def _predictions(module: "nn.Module", manifest: dict[str, Any], task: Any, spec: DataSpec
                 ) -> "nn.Module":
    """``module`` followed by the task's prediction transform (softmax, sigmoid, target
    un-scaling) when it returns raw outputs."""
    import torch
    from torch import nn

    if manifest["output"] == "probabilities":
        return module

    class Predictions(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return task.predict(self.model(x).float(), spec).float()

    return Predictions().eval()


def _convert(eager: "nn.Module", manifest: dict[str, Any], task: Any, spec: DataSpec, format: str,
             x_test: "np.ndarray", staging: Path) -> dict[str, Any]:
    """Write the model in ``format`` (the task's predictions out) and drop the native state
    dicts."""
    import torch

    quantized = [e["quantizer"] for e in [manifest, *manifest.get("members", [])]
                 if e.get("quantizer")]
    if format == "onnx" and quantized:
        raise ConfigError(f"--format onnx cannot hold a torch.ao quantized model (quantizer "
                          f"'{quantized[0]}'): export it as native or torchscript")
    module = _predictions(eager, manifest, task, spec)
    example = torch.as_tensor(x_test[:2])
    file = FORMATS[format]
    with torch.no_grad():
        if format == "torchscript":
            traced = torch.jit.trace(module, example, check_trace=False)
            torch.jit.save(traced, str(staging / file))
        else:
            _export_onnx(module, example, staging / file)
    shutil.rmtree(staging / "members", ignore_errors=True)
    (staging / MODEL_FILE).unlink(missing_ok=True)
    (staging / QUANTIZED_FILE).unlink(missing_ok=True)
    for entry in [manifest, *manifest.get("members", [])]:
        entry.pop("state_dict", None)
        entry.pop("quantized_state_dict", None)
    return {"format": format, "file": file}


def _export_onnx(module: "nn.Module", example: Any, path: Path) -> None:
    import torch

    try:
        import onnx  # noqa: F401 - torch.onnx needs it
    except ImportError:
        raise ConfigError("--format onnx needs the onnx extra: pip install 'automl[onnx]'") from None
    torch.onnx.export(module, (example,), str(path), input_names=["input"],
                      output_names=["probabilities"], dynamic_axes={"input": {0: "batch"},
                                                                    "probabilities": {0: "batch"}},
                      dynamo=False)


def _check_against_eager(eager: "nn.Module", manifest: dict[str, Any], task: Any,
                         exp: ExperimentRecord, registry: "Registry", data: Any,
                         staging: Path) -> dict[str, Any]:
    """Load the written export as a user would and compare its predictions on the test split
    with the eager model's; score both with the experiment's objective metrics."""
    import numpy as np
    import torch

    from automl.multitask import create_metric
    from automl.predictor import load as load_predictor
    from automl.trial.evaluation import score

    spec = data.spec
    with torch.no_grad():
        reference = _predictions(eager, manifest, task, spec)(
            torch.as_tensor(data.x_test)).float().numpy()
    got = load_predictor(staging).predict_prepared(data.x_test)
    difference = float(np.abs(got - reference).max()) if len(got) else 0.0
    if not difference <= CHECK_TOLERANCE:
        raise ConfigError(f"the {manifest['runtime']['format']} export differs from the eager "
                          f"model by up to {difference:.3g} in its predictions on the test split "
                          f"(tolerance {CHECK_TOLERANCE:g}); not exported")
    metrics = [(o.metric, create_metric(registry, o.metric, spec),
                registry.get("metric", o.metric.rsplit("/", 1)[-1]).plugin)
               for o in objectives_of(exp) if o.scope == "val"]
    return {"inputs": "test split", "rows": int(len(got)), "max_abs_proba_diff": difference,
            "metrics": score(metrics, data.y_test, got, None, spec, "test"),
            "eager_metrics": score(metrics, data.y_test, reference, None, spec, "test")}


def _check_out(target: Path) -> None:
    if target.is_dir():
        if any(target.iterdir()):
            raise ConfigError(f"output directory {target} exists and is not empty; choose a new "
                              "directory or empty it first")
    elif target.exists():
        raise ConfigError(f"output directory {target} exists and is not a directory")


def ensemble_members(exp: ExperimentRecord, members: Sequence[int] | None,
                      weights: Sequence[float] | None
                      ) -> tuple[list[Member], EnsembleRecord | None]:
    """The members of an ensemble: ``members``/``weights`` as given (checked), or the
    experiment's recorded ensemble (returned too) when ``members`` is None."""
    record = exp.ensemble
    if members is None:
        if record is None:
            raise StoreError(f"experiment '{exp.name}' has no ensemble (run: automl ensemble "
                             f"{exp.name})")
        members, weights = record.members, record.weights
    else:
        record = None
    weights = list(weights or [])
    if not members or len(set(members)) != len(members) or len(weights) != len(members) \
            or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"an ensemble needs distinct members with one non-negative weight "
                          f"each (not all zero), got members "
                          f"{list(members)} and weights {weights}")
    total = float(sum(weights))
    chosen = []
    for number, weight in zip(members, weights):
        trial = select_trial(exp, number)
        chosen.append(Member(trial, checkpoint_dir(exp, trial), float(weight) / total))
    return chosen, record


def trained_model(exp: ExperimentRecord, trial: TrialRecord, registry: "Registry",
                  spec: DataSpec) -> tuple["nn.Module", bool]:
    """A trial's final model rebuilt from its checkpoint (pruned, quantized or a k-fold trial's
    fold models as the export rebuilds them), in eval mode on the CPU, and whether it returns
    the task's predictions (a fold ensemble) rather than raw outputs."""
    directory = checkpoint_dir(exp, trial)
    entry = model_entry(Member(trial, directory, 1.0), registry, str(directory / MODEL_FILE))
    return (build_model(registry, entry, spec, directory / MODEL_FILE).eval(),
            bool(entry.get("folds")))


def _copy_quantized(checkpoint: Path, directory: Path) -> None:
    """A quantized trial's int8 ``state_dict``, beside its float weights."""
    if (checkpoint / QUANTIZED_FILE).is_file():
        shutil.copyfile(checkpoint / QUANTIZED_FILE, directory / QUANTIZED_FILE)


def model_entry(member: Member, registry: "Registry", state_dict: str) -> dict[str, Any]:
    """What :func:`build_model` needs to rebuild ``member``'s final model (and a manifest
    records): architecture, pruning, quantization and k-fold facts, weights at ``state_dict``."""
    trial = member.trial
    plan = TrialPlan.from_flat(trial.params)
    try:
        plugin = registry.get("architecture", plan.architecture).plugin
    except ConfigError:
        raise PluginError(f"trial {trial.number} used architecture '{plan.architecture}', which "
                          "none of the experiment's plugins registers now") from None
    return {"trial": trial.number, "architecture": plan.architecture,
            "architecture_params": plan.architecture_params, "architecture_plugin": plugin,
            "pruner": plan.pruner, "pruner_params": plan.pruner_params,
            "params": trial.params, "seed": trial.seed, "metrics": trial.metrics,
            "state_dict": state_dict,
            # quantized: the saved int8 state beside the float weights it was made from
            **({"quantizer": plan.quantizer, "quantizer_params": plan.quantizer_params,
                "quantized_state_dict": str(Path(state_dict).with_name(QUANTIZED_FILE))}
               if (member.directory / QUANTIZED_FILE).is_file() else {}),
            **({"folds": folds} if (folds := trial_record(member.directory).get("folds"))
               else {})}


def _final_evaluation(exp: ExperimentRecord, kind: str, which: int | None
                      ) -> dict[str, Any] | None:
    """The latest final evaluation's test metrics of the exported trial (``which``: its number)
    or stored ensemble (its id); None when it was never scored on the test split (a hand-picked
    blend, a trial off the front): then its test numbers do not exist."""
    for evaluation in reversed(exp.evaluations):
        for subject in evaluation.subjects:
            number = subject.trial if kind == "trial" else subject.ensemble_id
            if which is not None and subject.subject == kind and number == which:
                return {"number": evaluation.number, "created_at": evaluation.created_at,
                        "roles": list(subject.roles), "metrics": dict(subject.metrics)}
    return None


def _ensemble_entry(record: EnsembleRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"ensembler": record.ensembler, "metric": record.metric, "scores": record.scores,
            "best_single": record.best_single, "note": record.note,
            "settings": record.settings, "created_at": record.created_at}


def _manifest(exp: ExperimentRecord, spec: DataSpec, plugins: "Plugins",
              files: list[dict[str, str]]) -> dict[str, Any]:
    import torch

    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "automl_version": automl.__version__, "torch_version": torch.__version__,
            "task": spec.task, "class_names": list(spec.class_names),
            "target_names": list(spec.target_names),
            "experiment": {"name": exp.name, "seed": exp.seed,
                           "automl_version": exp.automl_version,
                           "objectives": exp.objectives},
            "spec": spec_to_dict(spec),
            "plugins": {"modules": list(plugins.source.modules), "files": files,
                        "original_files": [f.path for f in plugins.source.files],
                        "blocked": list(plugins.source.blocked),
                        "versions": plugins.versions()}}


def _copy_plugin_files(plugins: "Plugins", staging: Path) -> list[dict[str, str]]:
    """Write the plugin files that were checked and loaded into ``plugins/`` (the checked text,
    not the path read again); returns their relative paths and digests."""
    copied: list[dict[str, str]] = []
    for local in plugins.source.files:
        relative = f"plugins/{Path(local.path).name}"
        if relative in [c["path"] for c in copied]:
            raise PluginError(f"two plugin files named {Path(local.path).name}; rename one to "
                              "export")
        (staging / "plugins").mkdir(exist_ok=True)
        (staging / relative).write_bytes(local.source.encode("utf-8"))
        copied.append({"path": relative, "sha256": local.sha256})
    return copied


def _write_config(exp: ExperimentRecord, path: Path) -> None:
    import yaml

    header = (f"# Experiment '{exp.name}' as recorded (resolved: defaults filled in, paths\n"
              "# made absolute against the experiment file's directory; records older than\n"
              "# that kept relative paths, relative to that directory).\n")
    path.write_text(header + yaml.safe_dump(exp.config, sort_keys=False), encoding="utf-8")


# ---- loading --------------------------------------------------------------------------------


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """An export's ``model.json``, checked to be one this automl reads."""
    path = Path(directory) / MANIFEST_FILE
    if Path(directory).is_file():
        raise ConfigError(f"{Path(directory)} is a file, not an automl model export (a directory "
                          f"written by automl export, holding {MANIFEST_FILE})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{Path(directory)} is not an automl model export (no "
                          f"{MANIFEST_FILE})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an automl model manifest")
    version = manifest.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ConfigError(f"{path} was written by a newer automl "
                          f"({manifest.get('automl_version', '?')}, format version {version}); "
                          f"this automl ({automl.__version__}) reads format versions up to "
                          f"{FORMAT_VERSION}: upgrade automl to load it")
    if version not in READABLE_VERSIONS:
        raise ConfigError(f"{path} has format version {version}; this "
                          f"automl reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    return manifest


def load_model(directory: str | Path) -> "nn.Module":
    """Rebuild an exported model, in eval mode on the CPU.

    A single trial's model maps a batch of inputs to its raw outputs (``output: logits``: class
    logits for classification, standardised values for regression), as the architecture built
    it; an ensemble maps inputs to the task's predictions (``output: probabilities``: class
    probabilities, or values in the targets' units for regression), the task's combination
    (a weighted mean) of its members' predictions. :func:`predict_proba` gives predictions for
    both.

    The plugins the export names are loaded first (installed modules by name, files from the
    export's ``plugins/`` folder, each checked against its sha256 in ``model.json``), then
    installed entry-point plugins as usual.

    Raises:
        ConfigError: not an export; a plugin file outside the export directory, without a
            recorded digest or with another content (nothing of it has run); weights that are
            not plain tensors (a pickled object in ``model.pt``).
    """
    from automl.plugin_manager import build_plugins

    root = Path(directory)
    manifest = read_manifest(root)
    return native_module(root, manifest, build_plugins(export_plugin_source(root, manifest)))


def native_module(root: Path, manifest: dict[str, Any], loaded: "Plugins") -> "nn.Module":
    """The eager module of a native export, built with the already loaded ``plugins``."""
    if (manifest.get("runtime") or {}).get("format", "native") != "native":
        raise ConfigError(f"{root} is a {manifest['runtime']['format']} export; it holds no "
                          "native weights (load it with automl.load_model)")
    from automl.weighted_models import weighted_models

    spec = spec_from_dict(manifest["spec"])
    kind = manifest.get("type")
    if kind == "trial":
        return build_model(loaded.registry, manifest, spec, root / manifest["state_dict"]).eval()
    if kind == "ensemble":
        members = [build_model(loaded.registry, m, spec, root / m["state_dict"])
                   for m in manifest["members"]]
        task = task_for(spec, loaded.registry)
        return weighted_models(members, manifest["weights"], task, spec,  # type: ignore[arg-type]
                               [bool(m.get("folds")) for m in manifest["members"]]).eval()
    raise ConfigError(f"{root / MANIFEST_FILE}: unknown model type '{kind}'")


def export_plugin_source(root: Path, manifest: dict[str, Any]) -> "PluginSource":
    """The plugins an export names, its plugin files checked before any of them runs."""
    from automl.plugin_manager import (
        PluginSource, autoload_enabled, blocked_by_env, read_plugin_file,
    )

    where = root / MANIFEST_FILE
    plugins = manifest.get("plugins") or {}
    modules = plugins.get("modules") or []
    if not all(isinstance(m, str) and _MODULE_NAME.match(m) for m in modules):
        raise ConfigError(f"{where}: plugins.modules must be a list of module names, got "
                          f"{modules!r}")
    inside = root.resolve()
    files = []
    for entry in plugins.get("files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                or not isinstance(entry.get("sha256"), str):
            raise ConfigError(f"{where} names plugin file {entry!r} without a sha256 (an export "
                              "written by an older automl?); automl runs only plugin files "
                              "whose digest the export records: export the model again")
        path = (root / entry["path"]).resolve()
        if Path(entry["path"]).is_absolute() or not path.is_relative_to(inside):
            raise ConfigError(f"{where} names plugin file {entry['path']}, which is outside the "
                              f"export directory {inside}; automl runs only plugin files inside "
                              "it")
        try:
            local = read_plugin_file(path, str(where))
        except PluginError as exc:
            raise ConfigError(str(exc)) from None
        if local.sha256 != entry["sha256"]:
            raise ConfigError(f"{where}: plugin file {path} does not match its recorded digest "
                              f"(sha256 {local.sha256} now, {entry['sha256']} recorded); "
                              "automl does not run it")
        files.append(local)
    blocked = dict.fromkeys([*(plugins.get("blocked") or []), *blocked_by_env()])
    return PluginSource(tuple(modules), tuple(files), autoload_enabled(), tuple(blocked))


_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def build_model(registry: "Registry", entry: dict[str, Any], spec: DataSpec,
                state_dict: Path) -> "nn.Module":
    """Build ``entry['architecture']`` with its parameters and load the saved weights into it.

    A trial validated by k-fold that kept its fold models (``entry['folds']``: their number) is
    rebuilt as their equally weighted combination (:func:`automl.weighted_models.weighted_models`),
    which returns the task's predictions, not raw outputs."""
    from automl.model_io import load_state_dict_resizing, load_weights
    from automl.weighted_models import weighted_models

    name = entry["architecture"]
    arch = registry.get("architecture", name)
    where = f"plugin '{arch.plugin}', architecture '{name}'"
    task = task_for(spec, registry)
    sampled = entry.get("params") or {}
    task_params = {k[len("multitask."):]: v for k, v in sampled.items()
                   if k.startswith("multitask.")}

    declared = arch.cls.params
    params = {k: None if k in declared and declared[k].init_only else v  # saved weights replace it
              for k, v in entry["architecture_params"].items()}

    def build() -> "nn.Module":
        try:
            body = arch.create().build(dict(params), task.body_spec(spec))  # type: ignore[attr-defined]
        except AutomlError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{where}: build() raised {type(exc).__name__}: {exc}") from exc
        return task.wrap(body, spec, task_params)

    folds = int(entry.get("folds") or 0)
    model = weighted_models([build() for _ in range(folds)], [1.0 / folds] * folds, task, spec) \
        if folds else build()
    state = load_weights(state_dict)
    try:
        load_state_dict_resizing(model, state)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise PluginError(f"{where}: the built model does not fit the saved weights in "
                          f"{state_dict} ({first}); has the plugin changed since "
                          "training?") from None
    if entry.get("quantizer"):
        model = _quantized(registry, entry, model, task, spec, state_dict)
    return model


def _quantized(registry: "Registry", entry: dict[str, Any], model: "nn.Module", task: Any,
               spec: DataSpec, state_dict: Path) -> "nn.Module":
    """The float ``model`` rebuilt as its quantizer made it, with the saved int8 state. A fold
    ensemble's fold models were quantized one by one (each calibrated on its fold's rows): each
    is rebuilt so, then combined again."""
    from automl.model_io import load_weights
    from automl.trial.quantization import example_input, quiet_torch_ao, rebuild_quantized
    from automl.weighted_models import weighted_models

    def rebuild(float_model: "nn.Module") -> "nn.Module":
        return rebuild_quantized(registry, entry["quantizer"],
                                 entry.get("quantizer_params") or {}, float_model,
                                 example_input(spec))

    if entry.get("folds"):
        members = [rebuild(m) for m in model.members]  # type: ignore[union-attr]
        quantized = weighted_models(members, model.weights.tolist(), task, spec)  # type: ignore[union-attr,operator]
    else:
        quantized = rebuild(model)
    path = state_dict.with_name(QUANTIZED_FILE)
    try:
        with quiet_torch_ao():
            quantized.load_state_dict(load_weights(path), strict=True)
    except (ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise PluginError(f"quantizer '{entry['quantizer']}': the rebuilt quantized model does "
                          f"not fit the saved weights in {path} ({first})") from None
    return quantized.eval()


def predict_proba(model_dir: str | Path, x: Any, batch_size: int = 1024) -> "np.ndarray":
    """Predictions (float32) of an exported model for inputs ``x``: class probabilities
    (N x num_classes) for classification, values in the targets' units for regression.

    ``x`` is an array of examples prepared like the experiment's data (see the module docs):
    float inputs are cast to float32, integer token ids kept as int64. The model is loaded on
    every call; to predict repeatedly, keep :func:`load_model`'s module and apply the task's
    ``predict`` to a single trial's raw outputs.
    """
    import numpy as np
    import torch

    from automl.plugin_manager import build_plugins

    manifest = read_manifest(model_dir)
    model = load_model(model_dir)
    spec = spec_from_dict(manifest["spec"])
    task = task_for(spec, build_plugins(export_plugin_source(Path(model_dir), manifest)).registry)
    inputs = torch.as_tensor(np.asarray(x))
    if inputs.is_floating_point():
        inputs = inputs.float()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            y = model(inputs[start:start + batch_size]).float()
            out.append(y if manifest["output"] == "probabilities" else
                       task.predict(y, spec).float())  # type: ignore[attr-defined]
    if not out:
        return np.empty((0, spec.output_size), dtype=np.float32)
    return torch.cat(out).numpy()
