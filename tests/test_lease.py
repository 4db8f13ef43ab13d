"""One live run per experiment: the lease in the results database (real SQLite, real processes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from automl.store import LeaseHeld, Store
from automl.store.lease import holder

HOLD = """
import sys, time
from automl.store import Store
with Store(sys.argv[1]) as store, store.lease("e", timeout_s=float(sys.argv[2])):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold_in_another_process(url: str, timeout_s: float, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url, str(timeout_s), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_lease_is_refused_with_its_host_pid_and_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    proc = hold_in_another_process(url, 30, 60)
    try:
        with Store(url) as store:
            row = holder(store, "e")
            with pytest.raises(LeaseHeld) as info:
                with store.lease("e", timeout_s=30):
                    pass
            message = str(info.value)
            assert f"host {socket.gethostname()}, pid {proc.pid}, started " in message
            assert f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC" in message
            assert holder(store, "e").token == row.token  # the refusal changed nothing
            with store.lease("other", timeout_s=30):  # another experiment is free
                pass
    finally:
        proc.kill()
        proc.wait()


def test_the_heartbeat_keeps_a_lease_and_release_frees_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Store(url) as store:
        with store.lease("e", timeout_s=0.4) as lease:
            first = holder(store, "e").heartbeat_at
            time.sleep(1.0)
            assert holder(store, "e").heartbeat_at > first  # refreshed while held
            assert holder(store, "e").token == lease.token and not lease.lost
        assert holder(store, "e") is None


def test_a_stale_lease_is_taken_over(tmp_path):
    """The holder lives on but its heartbeat stopped (a hung or partitioned run): after the
    timeout its lease is taken over, and the old holder finds it lost."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Store(url) as store:
        proc = hold_in_another_process(url, 1.0, 60)
        try:
            os.kill(proc.pid, 19)  # SIGSTOP: alive, silent
            with pytest.raises(LeaseHeld):
                with store.lease("e", timeout_s=1.0):
                    pass
            time.sleep(1.2)
            with store.lease("e", timeout_s=1.0) as lease:
                row = holder(store, "e")
                assert row.token == lease.token and row.pid == os.getpid()
        finally:
            proc.kill()
            proc.wait()


def test_the_lease_of_a_killed_run_on_this_host_is_taken_over_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    proc = hold_in_another_process(url, 600, 60)
    proc.kill()
    proc.wait()
    with Store(url) as store:
        with store.lease("e", timeout_s=600):
            assert holder(store, "e").pid == os.getpid()


def test_a_database_from_before_leases_opens_and_gains_the_table(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with Store(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("drop table automl_leases")
    with Store(f"sqlite:///{path}") as store, store.lease("e"):
        assert holder(store, "e") is not None
