"""Test kit for plugin authors.

* :mod:`automl.testing.conformance` — base classes per component kind. Subclass one, supply the
  ``component`` fixture, and pytest collects checks that the component registers, builds, trains a
  step, respects its declared parameters, pickles for Ray workers and reports errors clearly.
* :mod:`automl.testing.pytest_plugin` — the ``automl_project`` fixture (a pytest plugin, loaded
  automatically through the ``pytest11`` entry point): writes an experiment and local plugin files
  into a temp directory and runs them in-process with plugin autoloading off.
"""

from automl.testing.conformance import (
    ArchitectureConformance, AugmentationConformance, DatasetConformance,
    EnsemblerConformance, MetricConformance, PrunerConformance, QuantizerConformance,
    RawAugmentationConformance, StrategyConformance, TaskConformance, example_spec,
    example_task_case, sample_params,
)

__all__ = [
    "ArchitectureConformance", "AugmentationConformance", "DatasetConformance",
    "EnsemblerConformance",
    "MetricConformance", "PrunerConformance", "QuantizerConformance",
    "RawAugmentationConformance", "StrategyConformance", "TaskConformance",
    "example_spec",
    "example_task_case", "sample_params",
]
