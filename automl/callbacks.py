"""The callbacks an experiment switches on under ``callbacks:``, and how they follow a run.

:func:`resolve_callbacks` checks the section against the registry before anything runs (unknown
callback or option with the nearest valid name, option types, required options, a missing
package with the command that installs it) and fills in declared defaults. During the run,
:class:`RunCallbacks` is registered on the driver's plugin manager as one more plugin: it
implements the driver's lifecycle hooks and hands each to every enabled callback.

Failure policy: tracking never costs a trial. The first exception a callback raises is reported
once, as a :class:`~automl.events.RunWarning` naming the callback, its plugin, the moment and the
error; from then on that callback receives nothing in this run (a dead tracking server is not
retried at every epoch). The trial, the search and the other callbacks go on. Experiments that
list no callback register nothing: they pay nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import ConfigError, did_you_mean, short_repr
from automl.events import Listener, RunWarning
from automl.params import Fixed, check_kind

if TYPE_CHECKING:
    from automl.components import Callback
    from automl.lifecycle import ExperimentInfo, TrialInfo
    from automl.registry import Registry
    from automl.store import EvaluationRecord

#: the name :class:`RunCallbacks` is registered under on the plugin manager
PLUGIN_NAME = "automl.callbacks"


@dataclass(frozen=True)
class EnabledCallback:
    """A callback the experiment lists, with its checked options (defaults filled in)."""

    name: str
    plugin: str
    options: dict[str, Any]


def resolve_callbacks(section: Mapping[str, Any], registry: "Registry",
                      base_dir: Path) -> list[EnabledCallback]:
    """Check the ``callbacks:`` section (name -> options) against the registry.

    Raises:
        ConfigError: an unknown callback or option (with the nearest valid name), a value of the
            wrong type, a required option not set, or a module the callback requires that is not
            installed (with the requirement to install).
    """
    from automl.space import resolve_path

    enabled = []
    for name, given in section.items():
        path = f"callbacks.{name}"
        entry = registry.get("callback", name, path=path)
        if not isinstance(given, Mapping):
            raise ConfigError(f"expected a mapping of options, got {short_repr(given)}",
                              path=path)
        declared = entry.cls.params
        for key in given:
            if key not in declared:
                raise ConfigError(f"unknown option '{key}'{did_you_mean(key, declared)}; valid "
                                  f"options: {', '.join(declared) or '(none)'}",
                                  path=f"{path}.{key}")
        options: dict[str, Any] = {}
        for key, spec in declared.items():
            value = given.get(key, spec.default.value)  # type: ignore[attr-defined]
            if value is None:
                if spec.required:
                    raise ConfigError(f"required option '{key}' is not set"
                                      + (f" ({spec.help})" if spec.help else ""),
                                      path=f"{path}.{key}")
            else:
                check_kind(Fixed(value), spec.type, f"{path}.{key}")
                if spec.is_path and "://" not in str(value):
                    value = resolve_path(value, base_dir, f"{path}.{key}")
            options[key] = value
        for module, requirement in entry.cls.requires.items():  # type: ignore[attr-defined]
            if importlib.util.find_spec(module.split(".")[0]) is None:
                raise ConfigError(f"callback '{name}' needs the Python package '{module}', which "
                                  f"is not installed: pip install '{requirement}'", path=path)
        enabled.append(EnabledCallback(name, entry.plugin, options))
    return enabled


class RunCallbacks:
    """The enabled callbacks of one run, as a plugin of the driver's manager (see module doc)."""

    def __init__(self, enabled: list[EnabledCallback], registry: "Registry",
                 emit: Listener) -> None:
        self._emit = emit
        self._active: list[tuple[EnabledCallback, "Callback"]] = []
        for item in enabled:
            cls = registry.get("callback", item.name).cls
            try:
                self._active.append((item, cls(item.options)))  # type: ignore[call-arg]
            except Exception as exc:  # noqa: BLE001 - see _each
                self._report(item, "when created", exc)

    @property
    def active(self) -> list[str]:
        """Names of the callbacks still receiving the run."""
        return [item.name for item, _ in self._active]

    def _each(self, method: str, moment: str, **kwargs: Any) -> None:
        for item, callback in list(self._active):
            try:
                getattr(callback, method)(**kwargs)
            except Exception as exc:  # noqa: BLE001 - any tracking failure: report, switch off
                self._active = [(i, c) for i, c in self._active if c is not callback]
                self._report(item, moment, exc)
                if method != "close":
                    try:
                        callback.close()
                    except Exception:  # noqa: BLE001 - already reported; closing is best effort
                        pass

    def _report(self, item: EnabledCallback, moment: str, exc: Exception) -> None:
        self._emit(RunWarning(
            f"callback '{item.name}' (plugin '{item.plugin}') failed {moment}: "
            f"{type(exc).__name__}: {str(exc).strip()[:500]}; it is off for the rest of this "
            "run (trials and the search go on)"))

    def automl_experiment_started(self, experiment: "ExperimentInfo") -> None:
        self._each("experiment_started", "when the experiment started", experiment=experiment)

    def automl_trial_started(self, experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
        self._each("trial_started", f"when trial {trial.number} started",
                   experiment=experiment, trial=trial)

    def automl_trial_epoch_reported(self, experiment: "ExperimentInfo", trial: "TrialInfo",
                                    epoch: int, metrics: dict[str, float]) -> None:
        self._each("trial_epoch_reported", f"at epoch {epoch} of trial {trial.number}",
                   experiment=experiment, trial=trial, epoch=epoch, metrics=metrics)

    def automl_trial_finished(self, experiment: "ExperimentInfo", trial: "TrialInfo") -> None:
        self._each("trial_finished", f"when trial {trial.number} finished",
                   experiment=experiment, trial=trial)

    def automl_experiment_finished(self, experiment: "ExperimentInfo", status: str,
                                   best: "TrialInfo | None",
                                   evaluation: "EvaluationRecord | None") -> None:
        self._each("experiment_finished", "when the experiment finished",
                   experiment=experiment, status=status, best=best, evaluation=evaluation)

    def close(self) -> None:
        """Close every callback still active (the run is over, however it ended)."""
        self._each("close", "when closing")
        self._active = []
