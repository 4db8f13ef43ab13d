"""A database location the store cannot write: a read-only file system, a read-only file. The
faults are real (a tmpfs remounted read-only, ``chattr +i``), since chmod does not stop root."""

from __future__ import annotations

import pytest

from automl.errors import StoreError
from automl.store import Store
from tests.mounts import immutable, remount_read_only, tmpfs


def make_db(path) -> str:
    url = f"sqlite:///{path}"
    with Store(url) as store:
        store.create_experiment(name="e", seed=0, config={}, objectives=[], plugins={},
                                automl_version="0", artifacts_dir="runs")
    return url


def test_a_database_in_a_read_only_directory_says_why_reading_needs_write_access(tmp_path):
    with tmpfs(tmp_path / "ro") as root:
        url = make_db(root / "results.db")
        remount_read_only(root)
        for create in (True, False):
            with pytest.raises(StoreError) as info:
                Store(url, create=create)
            message = str(info.value)
            assert "unable to open database file" not in message
            assert f"{root / 'results.db'} is in a read-only directory ({root})" in message
            assert "WAL mode" in message and "results.db-wal" in message
            assert "results.db-shm" in message


def test_a_new_database_in_a_read_only_directory_names_the_directory(tmp_path):
    with tmpfs(tmp_path / "ro") as root:
        remount_read_only(root)
        with pytest.raises(StoreError, match=f"cannot create {root / 'new.db'}: the directory "
                                             f"{root} is read-only"):
            Store(f"sqlite:///{root / 'new.db'}")


def test_a_read_only_database_file_says_read_only_when_written(tmp_path):
    url = make_db(tmp_path / "results.db")
    with immutable(tmp_path / "results.db"):
        with Store(url) as store:
            assert [e.name for e in store.experiments()] == ["e"]  # reading works
            with pytest.raises(StoreError, match=f"{tmp_path / 'results.db'} is read-only; "
                                                 "automl records into its database"):
                store.delete_experiment("e")
