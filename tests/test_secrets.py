"""A database password reaches no file, table or output: a real run against a real PostgreSQL.

The password is given the two ways a user might (in ``--db`` and in the experiment file's
``storage.db``), the first run is resumed with the URL given again, and then every file the runs
wrote (artifacts, Ray Tune's pickled state, Ray's session directories), a dump of the whole
database (automl's tables and Optuna's) and everything the commands printed are searched for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest
from sqlalchemy.engine import make_url

from tests.postgres import ROLE, postgres_server  # noqa: F401

pytestmark = pytest.mark.slow

EXPERIMENT = """
name: {name}
dataset: digits
architecture: {{mlp: {{depth: 1, width: 16}}}}
training: {{epochs: 1, fine_tune_epochs: 0}}
search: {{num_trials: 2, max_concurrent: 2, sampler: tpe, early_stopping: none}}
{storage}
"""


def _files_holding(root: Path, secret: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if secret in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    return found


def test_a_database_password_reaches_no_file_table_or_output(
        tmp_path: Path, postgres_server, automl_cmd) -> None:  # noqa: F811
    password = postgres_server.password
    database = make_url(postgres_server.new_database("secrets")).database
    url = postgres_server.url(database, password=password)  # the password in the URL
    runs = tmp_path / "runs"
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: Ray's socket paths
    # Only the URL carries the password; Ray keeps its sessions where this test can read them.
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "RAY_ADDRESS")}
    env.update(RAY_TMPDIR=str(ray_tmp), PGPASSFILE=str(tmp_path / "no-pgpass"))
    (tmp_path / "cli.yaml").write_text(EXPERIMENT.format(name="by-cli", storage=""))
    (tmp_path / "file.yaml").write_text(EXPERIMENT.format(
        name="by-file", storage=f"storage: {{db: '{url}', artifacts: '{runs}'}}"))
    outputs: dict[str, str] = {}  # what each command printed, by a label without the URL

    def automl(label: str, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*automl_cmd, *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300)
        outputs[label] = done.stdout + done.stderr
        assert done.returncode == 0, (label, outputs[label][-3000:])
        return done

    try:
        automl("run --db", "run", "cli.yaml", "--db", url, "--artifacts", str(runs))
        automl("run storage.db", "run", "file.yaml")
        automl("run --resume", "run", "cli.yaml", "--db", url, "--artifacts", str(runs),
               "--resume", "--max-trials", "3")
        trials = {}
        for name in ("by-cli", "by-file"):
            shown = automl(f"show {name}", "show", name, "--db", url, "--json")
            trials[name] = [t["status"] for t in json.loads(shown.stdout)["trials"]]
        assert trials == {"by-cli": ["completed"] * 3, "by-file": ["completed"] * 2}
        for name, count in (("by-cli", 3), ("by-file", 2)):  # the study got them too
            study = optuna.load_study(study_name=f"automl:{name}", storage=url)
            assert [t.state.name for t in study.trials] == ["COMPLETE"] * count

        dump = subprocess.run(
            [str(postgres_server.bin_dir / "pg_dump"), "--host", postgres_server.host,
             "--port", str(postgres_server.port), "--username", ROLE, "--dbname", database],
            capture_output=True, text=True, timeout=120,
            env={**env, "PGPASSWORD": password}, check=True).stdout
        assert "automl:by-cli" in dump and "trial_params" in dump  # Optuna's tables are in it

        sessions = list((ray_tmp / "ray").glob("session_2*"))
        assert len(sessions) == 3, sessions  # one embedded Ray per run
        assert list(runs.rglob("*.pkl")), "Ray Tune wrote no pickled state to search"
        secret = password.encode()
        leaks = _files_holding(runs, secret) + _files_holding(ray_tmp, secret)
        leaks += [f"database dump line: {line}" for line in dump.splitlines()
                  if password in line]
        leaks += [f"output of automl {label}" for label, text in outputs.items()
                  if password in text]
        assert leaks == [], "\n".join(leaks)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://automl:s3cret-pw@db.internal:5432/automl",
    "postgresql+psycopg://automl@db.internal/automl?password=s3cret-pw&sslmode=require",
    "postgresql+psycopg://automl:s3cret-pw@db.internal:port/automl",  # does not parse
])
def test_the_recorded_config_and_masked_url_hold_no_password(tmp_path: Path, url: str) -> None:
    from automl.recorded import resolved_config
    from automl.runner import prepare
    from automl.store import safe_url

    (tmp_path / "x.yaml").write_text(EXPERIMENT.format(
        name="x", storage=f"storage: {{db: '{url}'}}"))
    prepared = prepare(tmp_path / "x.yaml")
    config = prepared.loaded.config
    assert config.storage.db == url  # the driver keeps the live URL in memory
    recorded = resolved_config(config, prepared.plugins.registry, prepared.loaded.base_dir)
    assert "s3cret-pw" not in json.dumps(recorded)
    assert "***" in recorded["storage"]["db"] and "db.internal" in recorded["storage"]["db"]
    assert "s3cret-pw" not in safe_url(url)
