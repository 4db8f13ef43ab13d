"""pytest plugin (entry point ``pytest11``): the ``automl_project`` fixture.

Example::

    def test_my_architecture_is_searched(automl_project):
        automl_project.write_plugin("my_arch.py", SOURCE)
        automl_project.write_experiment('''
            name: t
            plugins: [my_arch.py]
            dataset: digits
            architecture: my_arch
            training: {epochs: 1, fine_tune_epochs: 0}
            search: {num_trials: 2, early_stopping: none}
        ''')
        result = automl_project.run()
        assert result.status == "completed"
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest


class AutomlProject:
    """A temp directory holding an experiment and local plugin files, run in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.experiment: Path | None = None

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'automl.db'}"

    def write_plugin(self, name: str, source: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def write_experiment(self, text: str, name: str = "experiment.yaml") -> Path:
        self.experiment = self.root / name
        self.experiment.write_text(textwrap.dedent(text))
        return self.experiment

    def validate(self) -> Any:
        from automl.runner import prepare

        return prepare(self._path(), db=self.db_url, artifacts=str(self.root / "runs"))

    def run(self, **options: Any) -> Any:
        import automl

        options.setdefault("db", self.db_url)
        options.setdefault("artifacts", str(self.root / "runs"))
        return automl.run(str(self._path()), **options)

    def _path(self) -> Path:
        if self.experiment is None:
            raise RuntimeError("call write_experiment() first")
        return self.experiment


@pytest.fixture
def automl_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AutomlProject:
    """An isolated project: temp working directory, plugin autoloading off."""
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.chdir(tmp_path)
    return AutomlProject(tmp_path)
