"""`automl rm`: asks first (or --yes), refuses without a terminal, removes <artifacts>/NAME only.

The command runs through the console-script entry point on real store rows in a SQLite file and
a real artifacts directory; a pseudo-terminal plays the user at the prompt.
"""

from __future__ import annotations

import io
import os
import pty
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from automl.cli.app import main
from automl.store import Store


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Experiments 'a' and 'b' recorded with artifacts root runs/, each with checkpoints."""
    runs = tmp_path / "runs"
    store = Store(f"sqlite:///{tmp_path / 'automl.db'}")
    try:
        for name in ("a", "b"):
            exp = store.create_experiment(
                name=name, seed=0, config={"name": name},
                objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
                automl_version="test", artifacts_dir=str(runs))
            store.start_trial(exp, 0, "t0", {"architecture": "mlp"})
            checkpoint = runs / name / "trial_t0" / "checkpoint_000000"
            checkpoint.mkdir(parents=True)
            (checkpoint / "model.pt").write_bytes(b"\0" * 300_000)
    finally:
        store.close()
    (runs / "notes.txt").write_text("the user's own file beside the experiments")
    return tmp_path


def names(workdir: Path) -> list[str]:
    store = Store(f"sqlite:///{workdir / 'automl.db'}", create=False)
    try:
        return [e.name for e in store.experiments()]
    finally:
        store.close()


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def rm(capsys: pytest.CaptureFixture[str], workdir: Path, *args: str,
       answer: str | None = None) -> Done:
    """``automl rm ARGS`` in ``workdir`` through the console-script entry point, in this process;
    stdin is empty (no terminal), or with ``answer`` a pseudo-terminal that types it."""
    monkeypatch = pytest.MonkeyPatch()
    primary = secondary = None
    try:
        monkeypatch.chdir(workdir)
        monkeypatch.setattr(sys, "argv", ["automl", "rm", *args])
        if answer is None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        else:
            primary, secondary = pty.openpty()
            os.write(primary, answer.encode() + b"\n")
            monkeypatch.setattr(sys, "stdin", os.fdopen(secondary, "r", closefd=False))
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        return Done(int(info.value.code or 0), out, err)
    finally:
        monkeypatch.undo()
        for fd in (primary, secondary):
            if fd is not None:
                os.close(fd)


def test_yes_deletes_the_records_and_only_that_experiments_artifacts(capsys, workdir):
    done = rm(capsys, workdir, "a", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"deleted experiment 'a' (1 trials) and its artifacts {workdir / 'runs' / 'a'} " \
           "(0.3 MB)" in done.stdout
    assert names(workdir) == ["b"]
    assert not (workdir / "runs" / "a").exists()
    assert (workdir / "runs" / "b" / "trial_t0" / "checkpoint_000000" / "model.pt").is_file()
    assert (workdir / "runs" / "notes.txt").is_file()


def test_without_a_terminal_and_without_yes_nothing_is_deleted(capsys, workdir):
    done = rm(capsys, workdir, "a")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("error:") == 1
    assert "no terminal to ask on; pass --yes" in done.stderr
    assert names(workdir) == ["a", "b"]
    assert (workdir / "runs" / "a" / "trial_t0").is_dir()


def test_the_prompt_names_what_goes_and_no_keeps_everything(capsys, workdir):
    done = rm(capsys, workdir, "a", answer="n")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"delete experiment 'a' (1 trials) and its artifacts {workdir / 'runs' / 'a'} " \
           "(0.3 MB)? [y/N]" in done.stdout
    assert "nothing deleted" in done.stdout
    assert names(workdir) == ["a", "b"] and (workdir / "runs" / "a").is_dir()


def test_yes_at_the_prompt_deletes(capsys, workdir):
    done = rm(capsys, workdir, "a", answer="y")
    assert done.returncode == 0, done.stdout + done.stderr
    assert names(workdir) == ["b"] and not (workdir / "runs" / "a").exists()


def test_keep_artifacts_deletes_the_records_only(capsys, workdir):
    done = rm(capsys, workdir, "a", "--yes", "--keep-artifacts")
    assert done.returncode == 0, done.stdout + done.stderr
    assert names(workdir) == ["b"]
    assert (workdir / "runs" / "a" / "trial_t0" / "checkpoint_000000" / "model.pt").is_file()
    assert f"artifacts kept in {workdir / 'runs' / 'a'}" in done.stdout


def test_a_linked_artifacts_directory_is_not_followed(capsys, workdir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "precious").write_text("not automl's")
    target = workdir / "runs" / "a"
    shutil.rmtree(target)
    target.symlink_to(elsewhere, target_is_directory=True)
    done = rm(capsys, workdir, "a", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert names(workdir) == ["b"]
    assert (elsewhere / "precious").is_file() and target.is_symlink()
    assert "not removed" in done.stdout
