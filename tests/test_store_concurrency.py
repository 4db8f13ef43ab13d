"""``automl show`` beside a running experiment: a reader process polls the store while a writer
process records trials as fast as it can, on SQLite and on PostgreSQL. Neither may fail (SQLite:
no "database is locked"), and every row is there at the end."""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any

import pytest

from automl.store import Store
from tests.postgres import db_url, postgres_db, postgres_server  # noqa: F401

TRIALS = 200
LIMIT_S = 60  # no loop or wait below runs longer


def _write(url: str, reading: Any, done: Any, results: Any) -> None:
    """The driver: start and finish TRIALS trials, each its own transaction, without pause."""
    try:
        store = Store(url)
        try:
            exp = store.create_experiment(name="busy", seed=0, config={"name": "busy"},
                                          objectives=[{"metric": "accuracy", "mode": "max"}],
                                          plugins={}, automl_version="0", artifacts_dir="/tmp")
            if not reading.wait(LIMIT_S):
                raise TimeoutError("the reader never started")
            started = time.monotonic()
            for number in range(TRIALS):
                store.start_trial(exp, number, f"t{number}", {"n": number, "lr": 0.1})
                store.finish_trial(exp, number, status="completed",
                                   metrics={"val/accuracy": number / TRIALS},
                                   history=[{"epoch": 1, "val/accuracy": number / TRIALS}],
                                   seed=number, node="n", device="cpu", checkpoint=None,
                                   error=None)
            store.finish_experiment(exp, "completed")
            results.put(("writer", None, time.monotonic() - started))
        finally:
            store.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the test, whatever it is
        results.put(("writer", f"{type(exc).__name__}: {exc}", None))
    finally:
        done.set()


def _read(url: str, reading: Any, done: Any, results: Any) -> None:
    """``automl show``: open the store, read every experiment with its trials, close; again."""
    counts: list[int] = []
    try:
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:
            last = done.is_set()  # one more full read after the writer has finished
            store = Store(url, create=False)
            try:
                experiments = store.experiments()
            finally:
                store.close()
            counts.append(len(experiments[0].trials) if experiments else 0)
            reading.set()
            if last:
                break
        else:
            raise TimeoutError(f"the writer did not finish within {LIMIT_S} s")
        results.put(("reader", None, counts))
    except BaseException as exc:  # noqa: BLE001
        results.put(("reader", f"{type(exc).__name__}: {exc}", counts))


@pytest.mark.timeout(3 * LIMIT_S)
def test_reader_polls_while_writer_records_trials(db_url):
    Store(db_url).close()  # the schema exists before either starts, as after `automl run` begins
    context = multiprocessing.get_context("spawn")
    reading, done, results = context.Event(), context.Event(), context.Queue()
    processes = [context.Process(target=target, args=(db_url, reading, done, results),
                                 name=f"store-{role}")
                 for role, target in (("writer", _write), ("reader", _read))]
    for process in processes:
        process.start()
    try:
        reports = {}
        for _ in processes:
            role, error, value = results.get(timeout=2 * LIMIT_S)
            reports[role] = (error, value)
        for process in processes:
            process.join(timeout=LIMIT_S)
    except queue.Empty:
        pytest.fail(f"no report within {2 * LIMIT_S} s; got {reports}")
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)

    assert reports["writer"][0] is None, f"the writer failed: {reports['writer'][0]}"
    assert reports["reader"][0] is None, f"the reader failed: {reports['reader'][0]}"
    counts = reports["reader"][1]
    assert counts == sorted(counts)  # trials only ever appear
    assert counts[-1] == TRIALS
    assert any(0 < count < TRIALS for count in counts), counts  # it read while rows arrived
    assert [p.exitcode for p in processes] == [0, 0]

    store = Store(db_url, create=False)
    record = store.experiment("busy")
    store.close()
    assert record.status == "completed"
    assert [t.number for t in record.trials] == list(range(TRIALS))
    assert {t.status for t in record.trials} == {"completed"}
    assert record.trials[-1].metrics == {"val/accuracy": (TRIALS - 1) / TRIALS}
