"""The results store, on a real SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import math
import socket
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

import automl.store.store as store_module
from automl.errors import StoreError
from automl.store import EnsembleRecord, Store, safe_url
from automl.store.schema import SCHEMA_VERSION
from tests.conftest import optional_module
from tests.postgres import db_url, postgres_db, postgres_server  # noqa: F401


@pytest.fixture
def store(db_url: str):  # noqa: ANN201
    opened = Store(db_url)
    yield opened
    opened.close()


def new_experiment(store: Store, name: str = "e", config_hash: str = "") -> int:
    return store.create_experiment(name=name, seed=1, config={"name": name},
                                   objectives=[{"metric": "accuracy", "mode": "max"}],
                                   plugins={"versions": {}}, automl_version="0",
                                   artifacts_dir="/tmp/runs", config_hash=config_hash)


def sql(url: str, statement: str) -> list[tuple]:
    """Run raw SQL beside the store, as another program would."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def ensemble(created_at: datetime, scores: dict | None = None) -> EnsembleRecord:
    return EnsembleRecord(ensembler="greedy", settings={"size": 2}, metric="accuracy",
                          members=[0, 1], weights=[0.5, 0.5], best_single=0,
                          scores=scores or {"ensemble": {"2": 0.9}, "best_single": {"2": 0.8}},
                          note=None, created_at=created_at)


# ---- both backends -------------------------------------------------------------------------

def test_round_trip(db_url):
    store = Store(db_url)
    exp = new_experiment(store)
    store.start_trial(exp, 0, "t0", {"architecture": "mlp"})
    store.start_trial(exp, 1, "t1", {"architecture": "cnn"})
    store.finish_trial(exp, 0, status="completed", metrics={"val/accuracy": 0.9},
                       history=[{"epoch": 1, "val/accuracy": 0.8}], seed=7, node="n",
                       device="cpu", checkpoint="/x", error=None)
    store.finish_trial(exp, 1, status="failed", metrics={}, history=[], seed=None, node=None,
                       device=None, checkpoint=None, error="Traceback ... ValueError")
    store.finish_experiment(exp, "completed")
    store.close()

    reader = Store(db_url, create=False)
    record = reader.experiment("e")
    assert record.status == "completed" and record.finished_at is not None
    assert [(t.number, t.status) for t in record.trials] == [(0, "completed"), (1, "failed")]
    assert record.trials[0].metrics == {"val/accuracy": 0.9}
    assert record.trials[0].history[0]["epoch"] == 1
    assert record.trials[0].duration_s >= 0
    assert "ValueError" in record.trials[1].error
    assert [e.name for e in reader.experiments()] == ["e"]
    reader.close()


def test_json_columns_keep_nested_values_order_unicode_and_non_finite_floats(store):
    config = {"name": "e", "zeta": 1, "alpha": [1, 2.5, None, True, {"deep": "ünïcode ✓"}]}
    exp = store.create_experiment(name="e", seed=2**31 - 1, config=config,
                                  objectives=[{"metric": "loss", "mode": "min"}],
                                  plugins={"versions": {"automl": "0"}}, automl_version="0",
                                  artifacts_dir="/tmp/runs")
    store.start_trial(exp, 0, "t0", {"lr": 1e-3, "architecture": "mlp", "layers": [64, 32]})
    # A diverged run reports NaN and infinities; PostgreSQL's json type refuses those tokens.
    store.finish_trial(exp, 0, status="completed",
                       metrics={"val/loss": float("nan"), "val/accuracy": 0.5,
                                "val/up": float("inf"), "val/down": float("-inf")},
                       history=[{"epoch": 1, "train/loss": float("nan")}], seed=2**31 - 1,
                       node="n", device="cpu", checkpoint=None, error="nul byte \x00 here")
    store.add_ensemble("e", ensemble(datetime(2024, 1, 1),
                                     {"ensemble": {"2": 0.9}, "best_single": {"2": float("nan")}}))

    record = store.experiment("e")
    assert record.config == config and list(record.config) == ["name", "zeta", "alpha"]
    assert record.seed == 2**31 - 1
    trial = record.trials[0]
    assert trial.params == {"lr": 1e-3, "architecture": "mlp", "layers": [64, 32]}
    assert math.isnan(trial.metrics["val/loss"]) and trial.metrics["val/accuracy"] == 0.5
    assert trial.metrics["val/up"] == math.inf and trial.metrics["val/down"] == -math.inf
    assert math.isnan(trial.history[0]["train/loss"])
    assert trial.error.startswith("nul byte") and trial.error.endswith("here")
    assert math.isnan(record.ensemble.scores["best_single"]["2"])


def test_timestamps_are_naive_utc(store):
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    exp = new_experiment(store)
    store.start_trial(exp, 0, "t0", {})
    store.finish_trial(exp, 0, status="completed", metrics={}, history=[], seed=None,
                       node=None, device=None, checkpoint=None, error=None)
    # An aware timestamp is stored as the same instant in UTC, whatever the server's zone.
    noon_in_berlin = datetime(2024, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.add_ensemble("e", ensemble(noon_in_berlin))
    after = datetime.now(timezone.utc).replace(tzinfo=None)

    record = store.experiment("e")
    assert record.created_at.tzinfo is None
    assert before - timedelta(seconds=1) <= record.created_at <= after + timedelta(seconds=1)
    trial = record.trials[0]
    assert trial.started_at <= trial.finished_at
    assert trial.duration_s == pytest.approx((trial.finished_at - trial.started_at)
                                             .total_seconds())
    assert record.ensemble.created_at == datetime(2024, 6, 1, 12, 0)


def test_duplicate_name_refused_and_missing_name_suggested(store):
    new_experiment(store, "digits-run")
    with pytest.raises(StoreError, match="already exists.*--name NEW.*automl rm digits-run"):
        new_experiment(store, "digits-run")
    with pytest.raises(StoreError, match="already exists"):
        store.ensure_new_name("digits-run")
    with pytest.raises(StoreError, match="no experiment named 'digits-rn'.*did you mean "
                                         "'digits-run'"):
        store.experiment("digits-rn")
    store.delete_experiment("digits-run")
    assert store.experiments() == []


def test_delete_removes_trials_and_ensembles(store, db_url):
    for name in ("gone", "kept"):
        exp = new_experiment(store, name)
        for number in range(3):
            store.start_trial(exp, number, f"t{number}", {"n": number})
        store.finish_trial(exp, 0, status="completed", metrics={"val/accuracy": 0.5},
                           history=[], seed=1, node=None, device=None, checkpoint=None,
                           error=None)
        store.add_ensemble(name, ensemble(datetime(2024, 1, 1)))
        store.add_ensemble(name, ensemble(datetime(2024, 1, 2)))

    store.delete_experiment("gone")
    assert [e.name for e in store.experiments()] == ["kept"]
    assert sql(db_url, "select count(*) from automl_trials") == [(3,)]
    assert sql(db_url, "select count(*) from automl_ensembles") == [(2,)]
    # The foreign keys cascade too, for plain SQL on a connection that enforces them (SQLite
    # enforces foreign keys only where a connection asks; the store's connections do).
    with store.engine.begin() as conn:
        conn.execute(text("delete from automl_experiments where name = 'kept'"))
    assert sql(db_url, "select count(*) from automl_trials") == [(0,)]
    assert sql(db_url, "select count(*) from automl_ensembles") == [(0,)]
    with pytest.raises(StoreError, match="no experiment named 'gone'"):
        store.delete_experiment("gone")


def test_reopen_marks_running_trials_interrupted_and_start_trial_restarts_them(store):
    exp = new_experiment(store, "resumable", config_hash="abc123")
    for number in range(4):
        store.start_trial(exp, number, f"t{number}", {"n": number})
    store.finish_trial(exp, 0, status="completed", metrics={"val/accuracy": 0.9},
                       history=[{"epoch": 1}], seed=1, node="n", device="cpu", checkpoint="/c",
                       error=None)
    store.finish_trial(exp, 2, status="failed", metrics={}, history=[], seed=1, node="n",
                       device="cpu", checkpoint=None, error="boom")
    store.finish_experiment(exp, "failed", error="driver killed")  # trials 1 and 3 left running

    assert store.config_hash("resumable") == "abc123"
    assert store.reopen_experiment("resumable") == (exp, [1, 3])
    record = store.experiment("resumable")
    assert (record.status, record.finished_at, record.error) == ("running", None, None)
    assert [t.status for t in record.trials] == ["completed", "interrupted", "failed",
                                                 "interrupted"]
    # A second crash before the interrupted trials ran again: they are still owed.
    assert store.reopen_experiment("resumable") == (exp, [1, 3])

    first_start = record.trials[1].started_at
    store.start_trial(exp, 1, "t1-again", {"n": 1, "retry": True})
    trial = store.experiment("resumable").trials[1]
    assert (trial.status, trial.tune_trial_id, trial.params) == ("running", "t1-again",
                                                                 {"n": 1, "retry": True})
    assert (trial.metrics, trial.history, trial.finished_at, trial.error) == ({}, [], None, None)
    assert trial.started_at >= first_start
    store.finish_trial(exp, 1, status="completed", metrics={"val/accuracy": 0.95}, history=[],
                       seed=1, node="n", device="cpu", checkpoint="/c1", error=None)

    for number, status in [(0, "completed"), (1, "completed"), (2, "failed")]:
        with pytest.raises(StoreError, match=f"trial {number} .* already exists with status "
                                             f"{status}"):
            store.start_trial(exp, number, "dup", {})
    assert store.reopen_experiment("resumable") == (exp, [3])
    with pytest.raises(StoreError, match="no experiment named 'resumabel'.*did you mean"):
        store.reopen_experiment("resumabel")
    with pytest.raises(StoreError, match="no experiment named 'nope'"):
        store.config_hash("nope")
    with pytest.raises(StoreError, match="trial 9 of experiment .* was never started"):
        store.finish_trial(exp, 9, status="completed", metrics={}, history=[], seed=None,
                           node=None, device=None, checkpoint=None, error=None)


@pytest.mark.parametrize("stored, message", [
    ("99", r"schema version 99 .*newer automl.*upgrade automl"),
    ("0", r"schema version 0 .*older automl.*new database \(--db URL\)"),
])
@pytest.mark.parametrize("create", [False, True])
def test_incompatible_schema_version_says_which_and_what_to_do(db_url, stored, message,
                                                                create):
    Store(db_url).close()
    sql(db_url, f"update automl_meta set value = '{stored}' where key = 'schema_version'")
    with pytest.raises(StoreError, match=message) as error:
        Store(db_url, create=create)
    assert f"reads version {SCHEMA_VERSION}" in str(error.value)
    assert sql(db_url, "select value from automl_meta") == [(stored,)]  # left as it was


def test_a_database_from_before_config_hash_gains_the_column(db_url):
    store = Store(db_url)
    new_experiment(store, "old", config_hash="x")
    store.close()
    sql(db_url, "alter table automl_experiments drop column config_hash")  # the old layout
    reader = Store(db_url, create=False)  # `automl show` on it, then a resumed run
    assert [e.name for e in reader.experiments()] == ["old"]
    assert reader.config_hash("old") == ""
    reader.close()
    Store(db_url).close()


def test_not_an_automl_database(db_url):
    sql(db_url, "create table t (x int)")
    with pytest.raises(StoreError, match="is not an automl database"):
        Store(db_url, create=False)
    Store(db_url).close()  # creating the tables beside someone else's is allowed
    assert sql(db_url, "select count(*) from t") == [(0,)]
    Store(db_url, create=False).close()


# ---- PostgreSQL: credentials, reachability -------------------------------------------------

def test_password_comes_from_the_environment(postgres_server, postgres_db, monkeypatch):
    assert ":" not in postgres_db.split("//", 1)[1].split("@", 1)[0]  # no password in the URL
    store = Store(postgres_db)  # PGPASSWORD holds it
    new_experiment(store)
    assert [e.name for e in store.experiments()] == ["e"]
    store.close()

    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(StoreError, match=r"cannot open database .*automl@127\.0\.0\.1.*password"):
        Store(postgres_db)


def test_passwords_never_appear_in_store_errors(postgres_server, postgres_db, monkeypatch):
    wrong = "wr0ng-Pa55word"
    url = postgres_db.replace("automl@", f"automl:{wrong}@")
    started = time.monotonic()
    with pytest.raises(StoreError, match="password authentication failed") as error:
        Store(url)
    assert time.monotonic() - started < 10
    assert wrong not in str(error.value) and "automl:***@" in str(error.value)

    monkeypatch.setenv("PGPASSWORD", wrong)  # a wrong password from the environment
    with pytest.raises(StoreError, match="password authentication failed") as error:
        Store(postgres_db)
    assert wrong not in str(error.value)

    right = postgres_server.password  # every other error names the database, masked
    store = Store(postgres_db.replace("automl@", f"automl:{right}@"))
    messages = []
    for call in (lambda: store.experiment("missing"), lambda: store.delete_experiment("x"),
                 lambda: store.finish_trial(1, 0, status="completed", metrics={}, history=[],
                                            seed=None, node=None, device=None,
                                            checkpoint=None, error=None)):
        with pytest.raises(StoreError) as error:
            call()
        messages.append(str(error.value))
    store.close()
    assert not [m for m in messages if right in m]
    assert all("***" in m for m in messages[:2])


def test_unreachable_server_is_one_clear_error_quickly():
    optional_module("psycopg")
    with socket.socket() as sock:  # a port on loopback that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://automl:s3cret@127.0.0.1:{port}/automl"
    started = time.monotonic()
    with pytest.raises(StoreError) as error:
        Store(url)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message.startswith(f"cannot open database postgresql+psycopg://automl:***@127.0.0.1:"
                              f"{port}/automl: ")
    assert "refused" in message and "s3cret" not in message and "\n" not in message


def test_a_server_that_never_answers_times_out(monkeypatch):
    optional_module("psycopg")
    monkeypatch.setattr(store_module, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as sock:  # accepts the connection, never says a word
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreError, match="cannot open database .*timeout"):
            Store(f"postgresql+psycopg://automl@127.0.0.1:{port}/automl")
        assert time.monotonic() - started < 8


# ---- SQLite and URLs -----------------------------------------------------------------------

def test_sqlite_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    new_experiment(store)
    store.close()
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("url, message", [
    ("notaurl", "not a database URL"),
    ("nosuchdialect://x/y", "cannot use database"),
    ("sqlite:////no/such/dir/x.db", "directory /no/such/dir does not exist"),
    ("postgresql+psycopg://bob:s3cret@db.local:notaport/automl", "not a database URL"),
    ("bob:s3cret@db.local", "not a database URL"),
])
def test_bad_urls_give_one_message(url, message):
    with pytest.raises(StoreError, match=message) as error:
        Store(url)
    assert "s3cret" not in str(error.value)


def test_passwords_are_never_shown():
    assert "s3cret" not in safe_url("postgresql+psycopg://bob:s3cret@db.local:5432/automl")
    assert "bob" in safe_url("postgresql+psycopg://bob:s3cret@db.local:5432/automl")
    assert safe_url("postgresql+psycopg://bob:s3cret@db.local:port/automl") == \
        "postgresql+psycopg://bob:***@db.local:port/automl"
    assert safe_url("postgresql+psycopg://bob:s3:c//ret@db/automl") == \
        "postgresql+psycopg://bob:***@db/automl"


def test_a_version_2_database_gains_the_rows_per_split_and_keeps_its_experiments(tmp_path):
    """2 -> 3 adds ``automl_experiments.data_sizes``: unknown (None) for what was run before,
    recorded for what runs after."""
    import sqlite3

    from automl.store.schema import SCHEMA_VERSION

    path = tmp_path / "v2.db"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        store.create_experiment(name="before", seed=0, config={}, objectives=[], plugins={},
                                automl_version="0", artifacts_dir="runs")
    with sqlite3.connect(path) as conn:  # as a version-2 automl left it
        conn.execute("ALTER TABLE automl_experiments DROP COLUMN data_sizes")
        conn.execute("UPDATE automl_meta SET value = '2' WHERE key = 'schema_version'")
    with Store(url) as store:
        assert store.experiment("before").data_sizes is None
        store.create_experiment(name="after", seed=0, config={}, objectives=[], plugins={},
                                automl_version="0", artifacts_dir="runs",
                                data_sizes={"train": 10, "val": 3, "test": 4})
        assert store.experiment("after").data_sizes == {"train": 10, "val": 3, "test": 4}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM automl_meta").fetchall() == [
            (str(SCHEMA_VERSION),)]


def test_a_version_3_database_gains_trial_kinds_and_keeps_its_trials(tmp_path):
    """3 -> 4 adds ``automl_trials.kind``: ``search`` for every trial run before, as recorded
    for what runs after (the distillation stage's ``distilled`` students)."""
    import sqlite3

    from automl.store.schema import SCHEMA_VERSION

    path = tmp_path / "v3.db"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        eid = store.create_experiment(name="before", seed=0, config={}, objectives=[],
                                      plugins={}, automl_version="0", artifacts_dir="runs")
        store.start_trial(eid, 0, "t0", {"architecture": "mlp"})
    with sqlite3.connect(path) as conn:  # as a version-3 automl left it
        conn.execute("ALTER TABLE automl_trials DROP COLUMN kind")
        conn.execute("UPDATE automl_meta SET value = '3' WHERE key = 'schema_version'")
    with Store(url) as store:
        assert [t.kind for t in store.experiment("before").trials] == ["search"]
        store.start_trial(eid, 1, "t1", {"architecture": "mlp"}, kind="distilled")
        assert [(t.number, t.kind) for t in store.experiment("before").trials] == [
            (0, "search"), (1, "distilled")]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM automl_meta").fetchall() == [
            (str(SCHEMA_VERSION),)]
        assert SCHEMA_VERSION == 4
