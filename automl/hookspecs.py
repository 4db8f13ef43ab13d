"""Hook specifications: the whole contract between automl and its plugins.

Every hook is prefixed ``automl_``. Implement one with a function of the same name, defined in a
plugin module (the :data:`automl.hookimpl` marker is optional and carries pluggy's options). Hooks
only ever gain arguments; an implementation may accept any subset of the arguments listed here,
and default values in implementations are ignored.

Every hook is called through pluggy, so ``tryfirst``/``trylast``, wrappers (``wrapper=True``) and
``firstresult`` specs behave as pluggy documents; the plugin manager only adds the plugin's name
to an implementation's exception and binds each registration hook's registrar to its plugin
(see :mod:`automl.plugin_manager`).

Where hooks run:

* registration hooks run wherever a plugin manager is built: on the driver, and again inside each
  Ray worker process, which rebuilds the manager from the recorded plugin list;
* ``automl_experiment_*`` and ``automl_trial_*`` (``automl_trial_epoch_reported`` too) run on
  the driver only;
* ``automl_epoch_finished`` runs inside the Ray worker that trains the trial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from automl.lifecycle import ExperimentInfo, TrialInfo
    from automl.registry import Registrar
    from automl.store import EvaluationRecord

hookspec = pluggy.HookspecMarker("automl")


# ---------------------------------------------------------------------------------------------
# component registration (driver and workers)
# ---------------------------------------------------------------------------------------------


@hookspec
def automl_register_datasets(registrar: "Registrar") -> None:
    """Register dataset components.

    Args:
        registrar: call ``registrar.add(MyDataset)`` with a :class:`automl.components.Dataset`
            subclass. Names must be unique across all plugins.
    """


@hookspec
def automl_register_architectures(registrar: "Registrar") -> None:
    """Register architecture components (:class:`automl.components.Architecture` subclasses).

    Args:
        registrar: call ``registrar.add(MyArchitecture)``.
    """


@hookspec
def automl_register_augmentations(registrar: "Registrar") -> None:
    """Register augmentation components (:class:`automl.components.Augmentation` subclasses).

    Args:
        registrar: call ``registrar.add(MyAugmentation)``.
    """


@hookspec
def automl_register_pruners(registrar: "Registrar") -> None:
    """Register pruner components (:class:`automl.components.Pruner` subclasses).

    Args:
        registrar: call ``registrar.add(MyPruner)``.
    """


@hookspec
def automl_register_quantizers(registrar: "Registrar") -> None:
    """Register quantizer components (:class:`automl.components.Quantizer` subclasses), applied
    after pruning and fine-tuning.

    Args:
        registrar: call ``registrar.add(MyQuantizer)``.
    """


@hookspec
def automl_register_strategies(registrar: "Registrar") -> None:
    """Register training strategy components (:class:`automl.components.Strategy` subclasses):
    the loop that trains a trial's model (federated averaging, differentially private SGD).

    Args:
        registrar: call ``registrar.add(MyStrategy)``.
    """


@hookspec
def automl_register_ensemblers(registrar: "Registrar") -> None:
    """Register ensembler components (:class:`automl.components.Ensembler` subclasses).

    Args:
        registrar: call ``registrar.add(MyEnsembler)``.
    """


@hookspec
def automl_register_metrics(registrar: "Registrar") -> None:
    """Register metric components (:class:`automl.components.Metric` subclasses).

    Args:
        registrar: call ``registrar.add(MyMetric)``.
    """


@hookspec
def automl_register_tasks(registrar: "Registrar") -> None:
    """Register task components (:class:`automl.components.Task` subclasses): what targets are,
    the model's output size, the loss, predictions, splits and how ensembles combine.

    Args:
        registrar: call ``registrar.add(MyTask)``.
    """


@hookspec
def automl_register_callbacks(registrar: "Registrar") -> None:
    """Register callback components (:class:`automl.components.Callback` subclasses): what an
    experiment switches on under ``callbacks:`` to follow the run on the driver (experiment
    tracking); their options are ``params`` with fixed defaults.

    Args:
        registrar: call ``registrar.add(MyCallback)``.
    """


# ---------------------------------------------------------------------------------------------
# lifecycle (driver)
# ---------------------------------------------------------------------------------------------


@hookspec
def automl_experiment_started(experiment: "ExperimentInfo") -> None:
    """Called on the driver after validation, once the experiment record exists and before the
    first trial starts.

    Args:
        experiment: name, resolved config, database URL and artifact directory.
    """


@hookspec
def automl_experiment_finished(experiment: "ExperimentInfo", status: str,
                               best: "TrialInfo | None",
                               evaluation: "EvaluationRecord | None") -> None:
    """Called on the driver when the run ends (``status`` is ``completed`` or ``failed``): after
    the search, the ensemble stage and the final evaluation.

    Args:
        experiment: as in :func:`automl_experiment_started`.
        status: the final experiment status.
        best: the best trial by the first objective, or None when no trial completed; its
            metrics are validation and model metrics (a trial has no test metric).
        evaluation: the experiment's latest final evaluation (test metrics of the best trial,
            the Pareto front members and the ensemble), or None when none was made (a failed
            run, no completed trial).
    """


@hookspec
def automl_trial_started(experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
    """Called on the driver when Ray Tune starts a trial.

    Args:
        experiment: the running experiment.
        trial: number, params; no metrics yet.
    """


@hookspec
def automl_trial_epoch_reported(experiment: "ExperimentInfo", trial: "TrialInfo", epoch: int,
                                metrics: dict[str, float]) -> None:
    """Called on the driver when Ray Tune receives a trial's epoch result (after the worker's
    :func:`automl_epoch_finished`), in epoch order; not for the trial's final result, which
    :func:`automl_trial_finished` receives.

    Args:
        experiment: the running experiment.
        trial: number, status ``running``, params; no metrics.
        epoch: 1-based epoch number.
        metrics: what the epoch reported: ``train/loss`` and the validation metrics of that
            epoch (``val/<metric>``, and ``model/`` metrics that are objectives).
    """


@hookspec
def automl_trial_finished(experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
    """Called on the driver when a trial ends, whatever its status (``completed``,
    ``early_stopped``, ``failed``).

    Args:
        experiment: the running experiment.
        trial: number, status, params, metrics (validation ``val/``, ``model/`` and, while
            running, ``train/``; never a test metric), error text for failed trials, and the
            checkpoint directory of a completed trial (``trial.checkpoint``, else None).
    """


# ---------------------------------------------------------------------------------------------
# training (Ray worker)
# ---------------------------------------------------------------------------------------------


@hookspec
def automl_epoch_finished(trial_id: str, params: dict[str, Any], epoch: int,
                          metrics: dict[str, float]) -> None:
    """Called inside the Ray worker after each training epoch, before the result is reported.

    Args:
        trial_id: Ray Tune's trial id.
        params: the trial's sampled parameters.
        epoch: 1-based epoch number.
        metrics: validation metrics of this epoch (``val/<metric>``) and the training loss.
    """


# ---------------------------------------------------------------------------------------------
# command line (driver)
# ---------------------------------------------------------------------------------------------


@hookspec
def automl_add_cli_commands(app: "typer.Typer") -> None:
    """Add commands to the ``automl`` command line.

    Args:
        app: the root typer application; use ``@app.command()``.
    """
