"""Code never runs from data: exports and database records name plugin files, and automl runs one
only when it is inside the export and matches its recorded sha256; pickles in model.pt are
refused. Every crafted plugin here writes a marker file when it runs: the marker must not appear.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from automl.cli.app import main
from automl.errors import ConfigError, PluginError
from automl.export import MANIFEST_FILE, load_model, recorded_plugins
from automl.store import Store
from tests.test_plugin_manager import ARCH_PLUGIN, write

SPEC = {"kind": "tabular", "input_shape": [6], "num_classes": 3, "class_names": [], "extra": {}}


def evil(marker: Path) -> str:
    return f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_dir(root: Path, files: list, state: object | None = None, version: int = 2,
               architecture: str = "tiny", params: dict | None = None) -> Path:
    """A hand-made export naming ``files``; by default of the ``tiny`` architecture (see
    ARCH_PLUGIN). Version 1 is what exports held before plugin files carried a digest."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    if state is None:
        from torch import nn

        state = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(),
                              nn.Linear(5, 3)).state_dict()
    torch.save(state, root / "model.pt")
    manifest = {"format": "automl-model", "format_version": version, "type": "trial",
                "output": "logits", "spec": SPEC,
                "plugins": {"modules": [], "files": files, "versions": {}},
                "architecture": architecture,
                "architecture_params": params if params is not None else {"width": 5},
                "state_dict": "model.pt"}
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    return root


def bundled(root: Path, name: str = "tiny_arch.py", source: str = ARCH_PLUGIN) -> dict:
    (root / "plugins").mkdir(parents=True, exist_ok=True)
    path = write(root / "plugins", name, source)
    return {"path": f"plugins/{name}", "sha256": sha256(path)}


def test_an_export_with_a_bundled_plugin_file_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    root = tmp_path / "export"
    model = load_model(export_dir(root, [bundled(root)]))
    assert model(__import__("torch").zeros(2, 6)).shape == (2, 3)


@pytest.mark.parametrize("entry", ["absolute-v1", "absolute", "dotdot", "symlink"])
def test_plugin_files_outside_the_export_never_run(tmp_path, monkeypatch, entry):
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    marker = tmp_path / "marker"
    outside = write(tmp_path, "evil.py", evil(marker))
    root = tmp_path / "export"
    (root / "plugins").mkdir(parents=True)
    if entry == "symlink":
        (root / "plugins" / "evil.py").symlink_to(outside)
    files = {"absolute-v1": [str(outside)],  # what exports before digests held: a bare path
             "absolute": [{"path": str(outside), "sha256": sha256(outside)}],
             "dotdot": [{"path": "plugins/../../evil.py", "sha256": sha256(outside)}],
             "symlink": [{"path": "plugins/evil.py", "sha256": sha256(outside)}]}[entry]
    export_dir(root, files, version=1 if entry == "absolute-v1" else 2)
    with pytest.raises(ConfigError) as info:
        load_model(root)
    message = str(info.value)
    assert "\n" not in message and str(root / MANIFEST_FILE) in message
    assert ("without a sha256" if entry == "absolute-v1" else "outside the export") in message
    assert not marker.exists()


def test_a_bundled_plugin_file_changed_after_export_never_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    marker = tmp_path / "marker"
    root = tmp_path / "export"
    entry = bundled(root)
    export_dir(root, [entry])
    (root / "plugins" / "tiny_arch.py").write_text(ARCH_PLUGIN + evil(marker))
    with pytest.raises(ConfigError, match=f"plugin file .*tiny_arch.py does not match its "
                                          f"recorded digest \\(sha256 [0-9a-f]{{64}} now, "
                                          f"{entry['sha256']} recorded\\)"):
        load_model(root)
    assert not marker.exists()


def test_a_pickled_object_in_model_pt_is_an_automl_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    root = tmp_path / "export"
    export_dir(root, [], state={"weight": Path("/etc/passwd")}, version=1,  # any object
               architecture="mlp",
               params={"depth": 1, "width": 8, "dropout": 0.0, "activation": "relu"})
    with pytest.raises(ConfigError) as info:
        load_model(root)
    message = str(info.value)
    assert message.startswith(f"cannot load weights {root / 'model.pt'}: it holds pickled "
                              "Python objects")
    assert "\n" not in message


# ---- plugin files named by the results database ----------------------------------------------


def record_experiment(tmp_path: Path, plugin: Path, digests: dict | None) -> str:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    store = Store(url)
    try:
        plugins = {"versions": {}, "modules": [], "files": [str(plugin)]}
        if digests is not None:
            plugins["digests"] = digests
        store.create_experiment(name="recorded", seed=0, config={}, objectives=[],
                                plugins=plugins, automl_version="0", artifacts_dir=str(tmp_path))
    finally:
        store.close()
    return url


def recorded(url: str):
    store = Store(url, create=False)
    try:
        return store.experiment("recorded")
    finally:
        store.close()


def test_a_plugin_file_changed_since_the_run_never_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    marker = tmp_path / "marker"
    plugin = write(tmp_path, "tiny_arch.py", ARCH_PLUGIN)
    before = sha256(plugin)
    url = record_experiment(tmp_path, plugin, {str(plugin): before})
    assert recorded_plugins(recorded(url)).registry.get("architecture", "tiny").plugin == \
        "tiny_arch"

    plugin.write_text(ARCH_PLUGIN + evil(marker))  # someone edits the file after the run
    after = sha256(plugin)
    with pytest.raises(PluginError, match=f"plugin file {plugin} has changed since the run "
                                          f"\\(sha256 {after} now, {before} recorded\\)"):
        recorded_plugins(recorded(url))
    monkeypatch.setattr(sys, "argv", ["automl", "ensemble", "recorded", "--db", url])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and err.count("error:") == 1, err
    assert str(plugin) in err and before in err and after in err
    assert not marker.exists()


def test_a_database_path_without_a_digest_never_runs(tmp_path, monkeypatch):
    """Write access to the database is not code execution: a row pointing at any file."""
    monkeypatch.setenv("AUTOML_DISABLE_PLUGIN_AUTOLOAD", "1")
    marker = tmp_path / "marker"
    payload = write(tmp_path, "evil.py", evil(marker))
    url = record_experiment(tmp_path, payload, None)
    with pytest.raises(PluginError, match=f"names plugin file {payload} without a recorded "
                                          "sha256"):
        recorded_plugins(recorded(url))
    assert not marker.exists()


def test_the_recorded_config_does_not_depend_on_the_current_directory(tmp_path, monkeypatch):
    from automl.config import load_experiment
    from automl.recorded import recorded_config, resolved_config
    from automl.runner import prepare

    project = tmp_path / "project"
    project.mkdir()
    write(project, "my_arch.py", ARCH_PLUGIN)
    write(project, "data.csv", "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n"
                                                       for i in range(40)))
    path = write(project, "exp.yaml", """
        name: resolved
        plugins: [my_arch.py]
        dataset: {name: csv, params: {path: data.csv, label_column: label}}
        architecture: tiny
        ensemble: false
    """)
    monkeypatch.chdir(tmp_path)
    prepared = prepare(path, db=f"sqlite:///{tmp_path / 'a.db'}")
    document = resolved_config(prepared.loaded.config, prepared.plugins.registry,
                               prepared.loaded.base_dir)
    assert document["plugins"] == [str(project / "my_arch.py")]
    assert document["dataset"]["params"]["path"] == str(project / "data.csv")
    assert load_experiment(path).config.dataset.params["path"] == "data.csv"  # file unchanged
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        store.create_experiment(name="resolved", seed=0, config=document, objectives=[],
                                plugins={}, automl_version="0", artifacts_dir=str(tmp_path))
        exp = store.experiment("resolved")
    finally:
        store.close()
    monkeypatch.chdir(project / "..")
    assert recorded_config(exp).plugins.load == [str(project / "my_arch.py")]
