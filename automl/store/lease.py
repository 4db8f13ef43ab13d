"""One live run per experiment: a lease row in the results database, kept fresh by a heartbeat
thread while the run goes on, released when it ends.

A run that finds a fresh lease of another process is refused, naming that run's host, process and
start time. A lease whose heartbeat is older than the timeout (the holder was killed, or its
machine is gone) is taken over, and so is one whose holder ran on this host and has died. The
timeout is ``AUTOML_LEASE_TIMEOUT_S`` seconds (default 60); the holder refreshes its heartbeat
four times per timeout.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from automl.errors import StoreError
from automl.store.schema import LeaseRow

if TYPE_CHECKING:
    from automl.store.store import Store

TIMEOUT_ENV = "AUTOML_LEASE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 60.0


class LeaseHeld(StoreError):
    """Another live process runs this experiment."""


def lease_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        timeout = float(value)
    except ValueError:
        timeout = 0.0
    if timeout <= 0:
        raise StoreError(f"{TIMEOUT_ENV} must be a number of seconds > 0 (got '{value}')")
    return timeout


@dataclass
class Lease:
    """The lease this process holds on one experiment; a context manager that keeps it fresh."""

    store: "Store"
    name: str
    timeout_s: float
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> "Lease":
        acquire(self.store, self.name, self.token, self.timeout_s)
        self._thread = threading.Thread(target=self._beat, name=f"automl-lease-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        release(self.store, self.name, self.token)

    def _beat(self) -> None:
        while not self._stop.wait(self.timeout_s / 4):
            try:
                if not renew(self.store, self.name, self.token):
                    self.lost = True  # another run took it over: our heartbeat had stopped
                    return
            except StoreError:
                pass  # the database is unreachable for now; the run itself will say so


def _now() -> datetime:
    from automl.store.store import now

    return now()


def acquire(store: "Store", name: str, token: str, timeout_s: float) -> None:
    """Take the lease of ``name`` or raise :class:`LeaseHeld`; a stale one is taken over."""
    now = _now()
    mine = dict(token=token, host=socket.gethostname(), pid=os.getpid(), started_at=now,
                heartbeat_at=now)
    try:
        with store._write() as session:
            row = session.get(LeaseRow, name)
            if row is None:
                session.add(LeaseRow(name=name, **mine))
                return
            age = (now - row.heartbeat_at).total_seconds()
            if age < timeout_s and not _dead_here(row):
                raise LeaseHeld(
                    f"experiment '{name}' is being run by another process (host {row.host}, pid "
                    f"{row.pid}, started {row.started_at:%Y-%m-%d %H:%M:%S} UTC, last heartbeat "
                    f"{max(age, 0):.0f} s ago); one run per experiment: wait for it to end or "
                    f"stop it (a run silent for {timeout_s:g} s is taken over)")
            taken = session.execute(update(LeaseRow).where(
                LeaseRow.name == name, LeaseRow.token == row.token).values(**mine))
            if taken.rowcount != 1:
                raise LeaseHeld(f"experiment '{name}' was just taken over by another process")
    except StoreError as exc:
        if isinstance(exc.__context__, IntegrityError):  # a concurrent insert won
            raise LeaseHeld(f"experiment '{name}' was just started by another process") from None
        raise


def _dead_here(row: LeaseRow) -> bool:
    """The holder ran on this host and its process is gone (killed): no need to wait."""
    if row.host != socket.gethostname():
        return False
    try:
        os.kill(row.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def renew(store: "Store", name: str, token: str) -> bool:
    """Refresh the heartbeat; False when the lease is no longer ours."""
    with store._write() as session:
        done = session.execute(update(LeaseRow).where(
            LeaseRow.name == name, LeaseRow.token == token).values(heartbeat_at=_now()))
        return done.rowcount == 1


def release(store: "Store", name: str, token: str) -> None:
    with store._write() as session:
        session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.token == token))


def holder(store: "Store", name: str) -> LeaseRow | None:
    """The lease row of ``name``, if any (for tests and ``automl show``)."""
    with store._read() as session:
        return session.scalar(select(LeaseRow).where(LeaseRow.name == name))


def is_live(store: "Store", name: str, timeout_s: float | None = None) -> bool:
    """Whether a live process runs ``name`` now: its lease is there, its heartbeat fresher than
    the timeout, and (on this host) its process alive. An experiment recorded as running
    without a live lease was cut short (its driver killed): nothing will change it until
    ``automl run --resume``."""
    row = holder(store, name)
    if row is None or _dead_here(row):
        return False
    timeout = lease_timeout() if timeout_s is None else timeout_s
    return (_now() - row.heartbeat_at).total_seconds() < timeout
