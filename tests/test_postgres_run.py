"""A whole experiment against a real PostgreSQL server: store rows and the Optuna study."""

from __future__ import annotations

import json
import subprocess

import optuna
import pytest

import automl
from automl.store import Store
from tests.postgres import postgres_db, postgres_server  # noqa: F401

pytestmark = pytest.mark.slow


def test_run_resume_and_show_on_postgresql(in_tmp, postgres_db, automl_cmd):  # noqa: F811
    (in_tmp / "pg.yaml").write_text("""
name: on-postgres
dataset: digits
architecture: {mlp: {depth: 1, width: 32}}
training: {epochs: 2, fine_tune_epochs: 0}
search: {num_trials: 4, sampler: tpe, early_stopping: none}
""")
    assert ":" not in postgres_db.split("@")[0].split("//")[1]  # no password in the URL
    result = automl.run(str(in_tmp / "pg.yaml"), db=postgres_db)
    assert result.status == "completed" and len(result.trials) == 4

    record = Store(postgres_db, create=False).experiment("on-postgres")
    assert {t.status for t in record.trials} == {"completed"}
    assert record.ensemble is not None
    study = optuna.load_study(study_name="automl:on-postgres", storage=postgres_db)
    assert [t.state.name for t in study.trials].count("COMPLETE") == 4

    shown = subprocess.run([*automl_cmd, "show", "on-postgres", "--db", postgres_db, "--json"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["trials"]) == 4

    more = automl.run(str(in_tmp / "pg.yaml"), db=postgres_db, resume=True, max_trials=6)
    assert more.status == "completed" and len(more.trials) == 6
