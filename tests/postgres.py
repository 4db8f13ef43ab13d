"""A real PostgreSQL server for the store tests, on loopback, in a temp dir of its own.

Import the fixtures a test module uses together with those they build on (pytest looks fixtures
up by name in the module)::

    from tests.postgres import db_url, postgres_db, postgres_server  # noqa: F401

* ``postgres_server``: the running server (session scope). One server serves the whole test
  session however many modules import the fixture.
* ``postgres_url``: a database shared by the session.
* ``postgres_db``: a fresh, empty database for one test.
* ``db_url``: parametrized over both backends: an SQLite file, or a fresh PostgreSQL database.

The URLs carry no password: the role's password is in ``PGPASSWORD`` for the session, as a user
would supply it. The server listens on 127.0.0.1 only, on a free port, with its unix socket in
the temp dir; it runs as an unprivileged user when the tests run as root (PostgreSQL refuses
root), and is stopped with ``pg_ctl stop -m fast`` at the end of the session. Its time zone is
not UTC (Asia/Kolkata, +05:30), so a timestamp that depends on the server's zone shows up.
Where no PostgreSQL server binaries are installed, tests that need them are skipped, saying so.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import optional_module, unavailable

PG_VERSION = "15"
ROLE = "automl"
ADMIN = "automl_admin"
RUN_AS = "nobody"  # the unprivileged user the server runs as when the tests run as root
BIN_ENV = "AUTOML_TEST_PG_BIN"
INSTALL_HINT = "apt-get install -y postgresql"


@dataclass
class PostgresServer:
    """A running server: connect as ``ROLE`` with ``password`` (``PGPASSWORD`` holds it)."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    admin_password: str
    run_as: list[str]
    host: str = "127.0.0.1"
    _databases: int = 0
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str, *, password: str | None = None) -> str:
        """A SQLAlchemy URL for ``database``; without a password unless one is given."""
        auth = ROLE if password is None else f"{ROLE}:{password}"
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def admin(self):  # noqa: ANN201 - psycopg.Connection, imported lazily
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=ADMIN,
                               password=self.admin_password, dbname="postgres", autocommit=True,
                               connect_timeout=10)

    def new_database(self, prefix: str = "automl") -> str:
        """Create an empty database owned by ``ROLE``; returns its URL (no password)."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with self.admin() as conn:
            # FILE_COPY (PostgreSQL 15+) copies the template's files, quicker than WAL-logging
            # them page by page with fsync off.
            strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{ROLE}"{strategy}')
        return self.url(name)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            _run(self.run_as + [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                                "-m", "fast", "-w", "-t", "30", "stop"], self.root)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: $AUTOML_TEST_PG_BIN, Debian's
    PostgreSQL 15, any other Debian-installed version, then ``PATH``."""
    candidates = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    candidates.append(Path(f"/usr/lib/postgresql/{PG_VERSION}/bin"))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # Nothing from the caller's PG* settings may steer the server tools elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix that drops root, and the uid/gid to own the temp dir."""
    if os.geteuid() != 0:
        return [], None, None
    import pwd

    runuser = shutil.which("runuser")
    try:
        user = pwd.getpwnam(RUN_AS)
    except KeyError:
        unavailable(f"PostgreSQL refuses to run as root and there is no '{RUN_AS}' user")
    if runuser is None:
        unavailable("PostgreSQL refuses to run as root and `runuser` is not installed")
    return [runuser, "-u", RUN_AS, "--"], user.pw_uid, user.pw_gid


def start_server() -> PostgresServer:
    """initdb in a fresh temp dir and start the server; skips when PostgreSQL is missing."""
    optional_module("psycopg", "psycopg is not installed (pip install -e '.[dev]')")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found in "
                    f"/usr/lib/postgresql/*/bin or on PATH; install them ({INSTALL_HINT}) or "
                    f"set {BIN_ENV}")
    run_as, uid, gid = _runner()
    # Short path: the unix socket lives under it and socket paths are limited to 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="automl-pg-", dir="/tmp"))
    try:
        return _start(bin_dir, root, run_as, uid, gid)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start(bin_dir: Path, root: Path, run_as: list[str], uid: int | None,
           gid: int | None) -> PostgresServer:
    (root / "sock").mkdir()
    pwfile = root / "admin.pw"
    admin_password, password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    pwfile.write_text(admin_password + "\n")
    pwfile.chmod(0o600)
    if uid is not None:
        for path in (root, root / "sock", pwfile):
            os.chown(path, uid, gid)
    done = _run(run_as + [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", ADMIN,
                          "--pwfile", str(pwfile), "--auth-host=scram-sha-256",
                          "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C",
                          "--no-sync"], root)
    pwfile.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = _free_port()
        options = (f"-k {root / 'sock'} -p {port} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=60 -c timezone=Asia/Kolkata")
        done = _run(run_as + [str(bin_dir / "pg_ctl"), "-D", str(root / "data"),
                              "-l", str(root / "server.log"), "-w", "-t", "60",
                              "-o", options, "start"], root)
        if done.returncode == 0:
            break
    else:
        log = (root / "server.log").read_text(errors="replace")[-3000:] \
            if (root / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{log}")

    server = PostgresServer(bin_dir=bin_dir, root=root, port=port, password=password,
                            admin_password=admin_password, run_as=run_as)
    atexit.register(server.stop)  # should the session die before its teardown
    try:
        with server.admin() as conn:
            conn.execute(f"CREATE ROLE \"{ROLE}\" LOGIN PASSWORD '{password}'")
    except BaseException:
        server.stop()
        raise
    return server


_shared: PostgresServer | None = None
_skip_reason: str | None = None


def shared_server() -> PostgresServer:
    """The session's one server, started on first use (or the first skip, repeated)."""
    global _shared, _skip_reason
    if _skip_reason is not None:
        pytest.skip(_skip_reason)
    if _shared is None:
        try:
            _shared = start_server()
        except pytest.skip.Exception as skip:
            _skip_reason = str(skip)
            raise
    return _shared


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server; ``PGPASSWORD`` holds its role's password meanwhile."""
    server = shared_server()
    saved = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = server.password
    try:
        yield server
    finally:
        if saved is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = saved
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://automl@127.0.0.1:PORT/automl_N``, shared by the session."""
    return postgres_server.new_database("automl_session")


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database for one test."""
    return postgres_server.new_database("automl_test")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend; the PostgreSQL case is skipped without a server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_db")
