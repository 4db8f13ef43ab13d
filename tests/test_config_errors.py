"""Bad input never gives a traceback.

Every kind of bad experiment file, plugin and command-line value ends with one message that names
what is wrong and where (file, line, field path; plugin and hook), exit status 2, and nothing
half-written: no experiment row in the database, no artifacts directory. It fails before Ray starts.

Most cases run the CLI entry point (:func:`automl.cli.app.main`) in-process, which is fast; a
representative subset runs the installed ``automl`` command in a subprocess, as a user would. A
seeded sweep of ~100 mutations of ``experiments/quickstart.yaml`` checks that
:func:`automl.runner.prepare` raises nothing but :class:`automl.errors.AutomlError`.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from automl.cli.app import main
from automl.errors import AutomlError, ConfigError
from automl.runner import prepare
from tests.conftest import REPO

QUICKSTART = REPO / "experiments" / "quickstart.yaml"
BASE = "name: bad\ndataset: digits\narchitecture: mlp\n"  # lines 1-3; cases append from line 4
TINY = textwrap.dedent("""\
    name: tiny
    dataset: digits
    architecture: {mlp: {depth: 1, width: 16}}
    training: {epochs: 1, fine_tune_epochs: 0}
    search: {num_trials: 1, early_stopping: none}
    """)


# ---- helpers ---------------------------------------------------------------------------------

def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the console-script entry point in-process; return (exit status, stdout + stderr)."""
    monkeypatch.setattr(sys, "argv", ["automl", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out + captured.err


def run_cli(automl_cmd: list[str], args: list[str], cwd: Path,
            timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*automl_cmd, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def experiment_names(db: Path) -> list[str]:
    """Experiments recorded in a SQLite results file ([] when it has no table yet)."""
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        if "automl_experiments" not in tables:
            return []
        return [r[0] for r in conn.execute("select name from automl_experiments")]


def assert_clean_failure(status: int, output: str, *expected: str, code: int = 2) -> None:
    assert status == code, output
    assert "Traceback" not in output, output
    assert output.count("error:") == 1, output  # one message
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output}"


def assert_nothing_written(tmp: Path) -> None:
    db = tmp / "x.db"
    assert not db.exists() or experiment_names(db) == [], "an experiment row was written"
    assert not (tmp / "runs").exists(), "an artifacts directory was created"
    assert not (tmp / "automl.db").exists()


# ---- the experiment file: one case per kind of mistake -----------------------------------------

# (id, YAML, substrings the message must hold: field path, line as "file:LINE:", hints)
CASES = [
    ("yaml-syntax", "name: x\ndataset: [digits\narchitecture: mlp\n",
     ["exp.yaml:3:", "YAML syntax error, column 13"]),
    ("yaml-tab", "name: x\n\tdataset: digits\n", ["exp.yaml:2:", "YAML syntax error", "'\\t'"]),
    ("yaml-python-tag", BASE + "seed: !!python/object/apply:os.system [echo hi]\n",
     ["exp.yaml:4:", "could not determine a constructor"]),
    ("empty-file", "", ["exp.yaml: the experiment file is empty"]),
    ("comments-only", "# nothing here\n", ["exp.yaml: the experiment file is empty"]),
    ("top-level-list", "- name: x\n- dataset: digits\n",
     ["exp.yaml:1:", "must be a mapping of fields, got a list"]),
    ("top-level-scalar", "quickstart\n", ["exp.yaml:1:", "got a str"]),
    ("unknown-top-level-key", BASE + "trainng:\n  epochs: 3\n",
     ["exp.yaml:4: trainng: unknown field", "did you mean 'training'", "valid fields here: name,"]),
    ("unknown-nested-key", BASE + "training:\n  lrr: 0.01\n",
     ["exp.yaml:5: training.lrr: unknown field", "did you mean 'lr'", "fine_tune_epochs"]),
    ("missing-required-field", "dataset: digits\narchitecture: mlp\n",
     ["name: required field is missing"]),
    ("wrong-type", BASE + "training:\n  epochs: ten\n",
     ["exp.yaml:5: training.epochs:", "valid integer", "'ten'"]),
    ("out-of-range", BASE + "training:\n  epochs: 0\n",
     ["exp.yaml:5: training.epochs:", "greater than or equal to 1", "got 0"]),
    ("split-too-large", "name: x\ndataset:\n  name: digits\n  split: {val: 0.5, test: 0.45}\n"
     "architecture: mlp\n", ["exp.yaml:4: dataset.split:", "val + test = 0.95"]),
    ("bad-name", "name: 'two words'\ndataset: digits\narchitecture: mlp\n",
     ["exp.yaml:1: name:", "'two words'"]),
    ("low-above-high", BASE + "training:\n  lr: {low: 0.1, high: 0.01}\n",
     ["exp.yaml:5: training.lr:", "low (0.1) is greater than high (0.01)"]),
    ("log-range-from-zero", BASE + "training:\n  lr: {low: 0, high: 0.01, log: true}\n",
     ["exp.yaml:5: training.lr:", "log range needs low > 0"]),
    ("not-finite", BASE + "training:\n  lr: .nan\n",
     ["exp.yaml:5: training.lr:", "finite"]),
    ("range-typo", BASE + "training:\n  lr: {low: 0.001, hihg: 0.1}\n",
     ["exp.yaml:5: training.lr:", "unknown key(s) ['hihg']"]),
    ("empty-choice", BASE + "training:\n  batch_size: []\n",
     ["exp.yaml:5: training.batch_size:", "at least one option"]),
    ("unknown-architecture", "name: x\ndataset: digits\narchitecture:\n  mlpp: {}\n",
     ["exp.yaml:4: architecture.mlpp: unknown architecture 'mlpp'", "did you mean 'mlp'",
      "registered: ", "cnn", "mlp"]),
    ("unknown-architecture-shorthand", "name: x\ndataset: digits\narchitecture: mlpp\n",
     ["exp.yaml:3: architecture.mlpp:", "did you mean 'mlp'", "registered: "]),
    ("unknown-augmentation", BASE + "augmentations: [shift, nosie]\n",
     ["exp.yaml:4: augmentations.nosie: unknown augmentation 'nosie'", "did you mean 'noise'",
      "registered: ", "shift"]),
    ("unknown-pruner", BASE + "pruning:\n  magnitud: {ratio: 0.5}\n",
     ["exp.yaml:5: pruning.magnitud: unknown pruner", "did you mean 'magnitude'",
      "registered: magnitude"]),
    ("unknown-metric", BASE + "objectives:\n  - metric: acuracy\n",
     ["exp.yaml:5: objectives[0].metric: unknown metric 'acuracy'", "did you mean 'accuracy'",
      "registered: ", "params"]),
    ("unknown-dataset", "name: x\ndataset: digitz\narchitecture: mlp\n",
     ["exp.yaml:2: dataset.name: unknown dataset 'digitz'", "did you mean 'digits'",
      "registered: ", "wine"]),
    ("unknown-dataset-param", "name: x\ndataset:\n  name: digits\n  params: {sise: 3}\n"
     "architecture: mlp\n", ["exp.yaml:4: dataset.params.sise: unknown parameter 'sise'"]),
    ("unknown-component-param", "name: x\ndataset: digits\narchitecture:\n  mlp:\n    widht: 64\n",
     ["exp.yaml:5: architecture.mlp.widht: unknown parameter 'widht'", "did you mean 'width'",
      "valid parameters: ", "depth"]),
    ("param-float-for-int", "name: x\ndataset: digits\narchitecture:\n  mlp:\n    depth: 1.5\n",
     ["exp.yaml:5: architecture.mlp.depth: expected int, got 1.5"]),
    ("param-str-for-int", "name: x\ndataset: digits\narchitecture:\n  mlp:\n    depth: deep\n",
     ["exp.yaml:5: architecture.mlp.depth: expected int, got 'deep'"]),
    ("params-not-a-mapping", "name: x\ndataset: digits\narchitecture:\n  mlp: 3\n",
     ["exp.yaml:4: architecture.mlp:", "valid dictionary"]),
    ("augmentation-for-wrong-data", "name: x\ndataset: wine\narchitecture: mlp\n"
     "augmentations: [noise, shift]\n",
     ["exp.yaml:4: augmentations.shift: augmentation 'shift' works on ['image'] data",
      "'wine' is tabular data"]),
    ("architecture-for-wrong-data", "name: x\ndataset: wine\narchitecture: [mlp, cnn]\n",
     ["exp.yaml:3: architecture.cnn:", "'wine' is tabular data"]),
    ("bad-optimizer", BASE + "training:\n  optimizer: [adam, adamm]\n",
     ["exp.yaml:5: training.optimizer: unknown optimizer 'adamm'", "did you mean 'adam'",
      "valid: adam, adamw, sgd"]),
    ("duplicated-objectives", BASE + "objectives: [accuracy, params, accuracy]\n",
     ["exp.yaml:4: objectives:", "repeat a metric"]),
    ("bad-objective-mode", BASE + "objectives:\n  - {metric: accuracy, mode: maximize}\n",
     ["exp.yaml:5: objectives.0.mode:", "'max' or 'min'"]),
    ("bad-sampler", BASE + "search:\n  sampler: tpee\n",
     ["exp.yaml:5: search.sampler:", "did you mean 'tpe'", "'random'"]),
    ("bad-early-stopping", BASE + "search:\n  early_stopping: ashaa\n",
     ["exp.yaml:5: search.early_stopping:", "did you mean 'asha'"]),
    ("fractional-gpus-above-one", BASE + "resources: {gpu: 1.5}\n",
     ["exp.yaml:4: resources.gpu:", "whole number"]),
    ("duplicate-key", BASE + "training: {epochs: 3}\ntraining: {epochs: 5}\n",
     ["exp.yaml:5:", "duplicate key 'training' (first at line 4)"]),
    ("recursive-alias", BASE + "description: &loop [*loop]\n",
     ["exp.yaml:4:", "refers to a structure that contains it"]),
    ("deep-nesting", BASE + "description: " + "[" * 2000 + "]" * 2000 + "\n",
     ["exp.yaml:", "nested more than"]),
    ("billion-laughs", BASE + "x0: &a [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\n"
     + "".join(f"x{i}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
               for i, (p, c) in enumerate(zip("abcdefgh", "bcdefghi"), start=1)),
     ["exp.yaml:", "expand this to more than"]),
    ("plugins-not-a-list", BASE + "plugins: my_plugin.py\n",
     ["exp.yaml:4: plugins:", "valid list"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_reports_bad_experiment(tmp_path, monkeypatch, capsys, text, expected):
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text(text, encoding="utf-8")
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


def test_several_mistakes_are_reported_together(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text(BASE + "training:\n  lrr: 0.01\n  epochs: ten\n")
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert status == 2 and "Traceback" not in output
    assert "exp.yaml:5: training.lrr: unknown field" in output
    assert "exp.yaml:6: training.epochs:" in output


@pytest.mark.parametrize("kind, expected", [
    ("binary", ["bin.yaml: is a binary file, not YAML"]),
    ("latin-1", ["latin.yaml:2: is not UTF-8 text (byte 0xe9 at column 17)"]),
    ("missing", ["missing.yaml: no such file"]),
    ("directory", ["adir: is a directory, not an experiment file"]),
    ("too-large", ["big.yaml: file is over 1000000 bytes"]),
    ("endless-device", ["/dev/zero: file is over 1000000 bytes"]),
])
def test_validate_reports_unreadable_file(tmp_path, monkeypatch, capsys, kind, expected):
    monkeypatch.chdir(tmp_path)
    Path("bin.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    Path("latin.yaml").write_bytes(b"name: x\ndescription: caf\xe9 au lait\n")
    Path("adir").mkdir()
    Path("big.yaml").write_text("# padding\n" * 200_000)
    target = {"binary": "bin.yaml", "latin-1": "latin.yaml", "missing": "missing.yaml",
              "directory": "adir", "too-large": "big.yaml", "endless-device": "/dev/zero"}[kind]
    if not Path(target).exists() and kind == "endless-device":
        pytest.skip("no /dev/zero here")
    status, output = run_main(["validate", target], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


def test_message_with_markup_characters_is_printed_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text("name: x\ndataset: digits\narchitecture: '[/red]mlp'\n")
    status, output = run_main(["validate", "exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, "architecture.[/red]mlp")


# ---- plugins ------------------------------------------------------------------------------

PLUGIN_FILES = {
    "raises_on_import.py": "raise RuntimeError('boom at import')\n",
    "syntax_error.py": "def automl_register_architectures(registrar:\n",
    "hook_raises.py": """\
        def automl_register_architectures(registrar):
            raise ValueError('nope from the hook')
        """,
    "duplicate_name.py": """\
        from automl.components import Architecture

        class AnotherMlp(Architecture):
            name = "mlp"

            def build(self, params, spec):
                raise NotImplementedError

        def automl_register_architectures(registrar):
            registrar.add(AnotherMlp)
        """,
    "not_a_component.py": """\
        def automl_register_metrics(registrar):
            registrar.add(42)
        """,
    "wrong_kind.py": """\
        from automl_plugins.architectures.mlp import MLP

        def automl_register_metrics(registrar):
            registrar.add(MLP)
        """,
    "hook_typo.py": "def automl_register_architecture(registrar):\n    pass\n",
    "datasets.py": """\
        from automl.components import Dataset, ParamDef
        from automl.errors import ConfigError
        from automl.params import Fixed

        class NeedsFile(Dataset):
            name = "needs_file"
            params = {"path": ParamDef(Fixed(None), str, "the data file", required=True)}

            def load(self, params):
                raise ConfigError(f"no such file: {params['path']}", path="dataset.params.path")

        class Exploding(Dataset):
            name = "exploding"

            def load(self, params):
                raise OSError("disk on fire")

        def automl_register_datasets(registrar):
            registrar.add(NeedsFile)
            registrar.add(Exploding)
        """,
}

PLUGIN_CASES = [
    ("missing-module", "no_such_automl_plugin_module",
     ["plugin 'no_such_automl_plugin_module'", "ModuleNotFoundError"]),
    ("missing-file", "plugins/nowhere.py",
     ["plugins[0]: cannot read plugin file 'plugins/nowhere.py'", "No such file"]),
    ("raises-on-import", "plugins/raises_on_import.py",
     ["Error importing plugin 'raises_on_import'", "raises_on_import.py",
      "RuntimeError: boom at import"]),
    ("syntax-error", "plugins/syntax_error.py",
     ["Error importing plugin 'syntax_error'", "SyntaxError"]),
    ("hook-raises", "plugins/hook_raises.py",
     ["plugin 'hook_raises', hook automl_register_architectures: ValueError: nope from the hook"]),
    ("duplicate-name", "plugins/duplicate_name.py",
     ["plugin 'duplicate_name', hook automl_register_architectures",
      "architecture 'mlp' is already registered by plugin 'automl_plugins.architectures.mlp'"]),
    ("not-a-component", "plugins/not_a_component.py",
     ["plugin 'not_a_component', hook automl_register_metrics: registered 42",
      "not a subclass of automl.components.Metric"]),
    ("component-of-wrong-kind", "plugins/wrong_kind.py",
     ["plugin 'wrong_kind', hook automl_register_metrics", "not a subclass"]),
    ("unknown-hook", "plugins/hook_typo.py",
     ["plugin 'hook_typo': unknown hook 'automl_register_architecture'",
      "did you mean 'automl_register_architectures'"]),
]


def write_plugin_experiment(tmp_path: Path, entry: str) -> Path:
    """An experiment in ``tmp_path/exp`` that lists ``entry`` (relative to the experiment)."""
    folder = tmp_path / "exp"
    (folder / "plugins").mkdir(parents=True, exist_ok=True)
    for name, source in PLUGIN_FILES.items():
        (folder / "plugins" / name).write_text(textwrap.dedent(source))
    path = folder / "exp.yaml"
    path.write_text(BASE + f"plugins:\n  - {entry}\n")
    return path


@pytest.mark.parametrize("entry, expected", [c[1:] for c in PLUGIN_CASES],
                         ids=[c[0] for c in PLUGIN_CASES])
def test_validate_reports_broken_plugin(tmp_path, monkeypatch, capsys, entry, expected):
    monkeypatch.chdir(tmp_path)  # the plugin path resolves against the experiment, not the cwd
    write_plugin_experiment(tmp_path, entry)
    status, output = run_main(["validate", "exp/exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)


def test_required_dataset_parameter_is_checked_by_validate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_plugin_experiment(tmp_path, "plugins/datasets.py")
    path.write_text("name: x\ndataset:\n  name: needs_file\n  params: {}\narchitecture: mlp\n"
                    "plugins: [plugins/datasets.py]\n")
    status, output = run_main(["validate", "exp/exp.yaml"], monkeypatch, capsys)
    assert_clean_failure(status, output, "exp/exp.yaml:4: dataset.params.path: required parameter "
                                         "'path' is not set (the data file)")


@pytest.mark.parametrize("dataset, expected", [
    ("{name: needs_file, params: {path: nowhere.csv}}",
     ["exp/exp.yaml:2: dataset.params.path: no such file: nowhere.csv"]),
    ("exploding",
     ["plugin 'datasets', dataset 'exploding': failed to load: OSError: disk on fire"]),
])
def test_dataset_that_fails_to_load_stops_run_before_any_record(tmp_path, monkeypatch, capsys,
                                                               dataset, expected):
    monkeypatch.chdir(tmp_path)
    path = write_plugin_experiment(tmp_path, "plugins/datasets.py")
    path.write_text(f"name: x\ndataset: {dataset}\narchitecture: mlp\n"
                    "plugins: [plugins/datasets.py]\n")
    status, output = run_main(["run", "exp/exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db",
                               "--artifacts", f"{tmp_path}/runs"], monkeypatch, capsys)
    assert_clean_failure(status, output, *expected)
    assert_nothing_written(tmp_path)


def test_bad_value_from_the_command_line_is_not_blamed_on_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("exp.yaml").write_text(TINY)
    status, output = run_main(["run", "exp.yaml", "--name", "two words", "--db",
                               f"sqlite:///{tmp_path}/x.db", "--artifacts", f"{tmp_path}/runs"],
                              monkeypatch, capsys)
    assert_clean_failure(status, output, "exp.yaml: name:", "'two words'",
                         "(set on the command line)")
    assert_nothing_written(tmp_path)


# ---- the real command in a subprocess: no traceback, nothing written -------------------------

RUN_CASES = [
    ("yaml-syntax", "name: x\ndataset: [digits\narchitecture: mlp\n",
     ["exp.yaml:3:", "YAML syntax error, column 13"]),
    ("unknown-nested-key", BASE + "training:\n  lrr: 0.01\n",
     ["exp.yaml:5: training.lrr", "did you mean 'lr'"]),
    ("unknown-architecture", "name: x\ndataset: digits\narchitecture: mlpp\n",
     ["exp.yaml:3: architecture.mlpp", "did you mean 'mlp'"]),
    ("augmentation-for-wrong-data", "name: x\ndataset: wine\narchitecture: mlp\n"
     "augmentations: [shift]\n", ["exp.yaml:4: augmentations.shift", "tabular"]),
    ("hook-raises", BASE + "plugins: [plugins/hook_raises.py]\n",
     ["plugin 'hook_raises', hook automl_register_architectures"]),
    ("binary-file", None, ["exp.yaml: is a binary file"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in RUN_CASES],
                         ids=[c[0] for c in RUN_CASES])
def test_run_fails_before_writing_anything(tmp_path, automl_cmd, text, expected):
    write_plugin_experiment(tmp_path, "plugins/hook_raises.py")
    exp = tmp_path / "exp" / "exp.yaml"
    if text is None:
        exp.write_bytes(b"\x00\x01\x02 not yaml")
    else:
        exp.write_text(text)
    run = run_cli(automl_cmd, ["run", "exp/exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db",
                               "--artifacts", f"{tmp_path}/runs"], tmp_path)
    assert_clean_failure(run.returncode, run.stdout + run.stderr, *expected)
    assert_nothing_written(tmp_path)


def test_validate_subprocess_prints_one_line(tmp_path, automl_cmd):
    (tmp_path / "exp.yaml").write_text("name: x\ndataset: digits\narchitecture:\n  mlp:\n"
                                       "    widht: 64\n")
    run = run_cli(automl_cmd, ["validate", "exp.yaml"], tmp_path)
    assert_clean_failure(run.returncode, run.stdout + run.stderr,
                         "error: exp.yaml:5: architecture.mlp.widht: unknown parameter 'widht' "
                         "(did you mean 'width'?)")
    assert run.stdout == ""


@pytest.mark.slow  # the whole `automl run` start in a subprocess, data loaded
@pytest.mark.parametrize("db, expected", [
    ("notaurl", ["not a database URL: 'notaurl'"]),
    ("sqlite:////nonexistent/dir/x.db", ["cannot open database", "/nonexistent/dir"]),
])
def test_run_with_bad_database_url(tmp_path, automl_cmd, db, expected):
    (tmp_path / "exp.yaml").write_text(TINY)
    run = run_cli(automl_cmd, ["run", "exp.yaml", "--db", db, "--artifacts",
                               f"{tmp_path}/runs"], tmp_path)
    assert_clean_failure(run.returncode, run.stdout + run.stderr, *expected)
    assert_nothing_written(tmp_path)


@pytest.mark.slow
def test_same_experiment_name_twice_is_refused(tmp_path, automl_cmd):
    (tmp_path / "exp.yaml").write_text(TINY)
    args = ["run", "exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db", "--artifacts",
            f"{tmp_path}/runs"]
    first = run_cli(automl_cmd, args, tmp_path, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert experiment_names(tmp_path / "x.db") == ["tiny"]
    trial_dirs = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir())

    again = run_cli(automl_cmd, args, tmp_path)
    assert_clean_failure(again.returncode, again.stdout + again.stderr,
                         "experiment 'tiny' already exists", "--name", "automl rm tiny")
    assert experiment_names(tmp_path / "x.db") == ["tiny"]
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir()) == trial_dirs


def test_local_resource_check_needs_no_ray():
    import os

    from automl.ray_session import ClusterError, check_local_resources

    check_local_resources(1, 0)
    with pytest.raises(ClusterError, match=r"resources: a trial asks for cpu=\d+, gpu=0, but this "
                                           r"machine has \d+ CPUs"):
        check_local_resources((os.cpu_count() or 1) + 1, 0)
    with pytest.raises(ClusterError, match="gpu=64"):
        check_local_resources(1, 64)


@pytest.mark.slow
def test_more_gpus_than_available_is_refused_before_any_record(tmp_path, automl_cmd):
    import torch

    gpus = torch.cuda.device_count() + 1 if torch.cuda.is_available() else 1
    (tmp_path / "exp.yaml").write_text(TINY + f"resources: {{cpu: 1, gpu: {gpus}}}\n")
    run = run_cli(automl_cmd, ["run", "exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db",
                               "--artifacts", f"{tmp_path}/runs"], tmp_path, timeout=300)
    assert_clean_failure(run.returncode, run.stdout + run.stderr, "resources:", f"gpu={gpus}")
    assert_nothing_written(tmp_path)


@pytest.mark.slow
def test_artifacts_path_that_is_a_file_is_refused(tmp_path, automl_cmd):
    (tmp_path / "exp.yaml").write_text(TINY)
    (tmp_path / "runs").write_text("not a directory")
    run = run_cli(automl_cmd, ["run", "exp.yaml", "--db", f"sqlite:///{tmp_path}/x.db",
                               "--artifacts", f"{tmp_path}/runs"], tmp_path, timeout=300)
    assert_clean_failure(run.returncode, run.stdout + run.stderr, "runs")
    db = tmp_path / "x.db"
    assert not db.exists() or experiment_names(db) == []


# ---- a seeded sweep of malformed variants of the quickstart --------------------------------

WRONG_VALUES = ["ten", -1, 0, 1.5, None, [], {}, [[1]], {"low": 5, "high": 1},
                {"low": 0, "high": 1, "log": True}, True, "x" * 300, float("nan"), [1, 1],
                {"choice": 3}, {"value": [1, 2]}, "mlpp", {"nope": {}}, ["a", {"b": 1}]]
GARBAGE = ["{", "}", "[", "]", ":", "- ", "&a ", "*a", "!!python/none ", "\t", "'", '"', "%",
           "@", "`", "|", ">", "? ", "\x85", "\u2028", "---\n", "...\n", "#", ",", "\\"]


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, prefix + (index,))
    return out


def _replace(tree: dict, path: tuple, value: object, delete: bool = False) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def mutations(text: str, count: int, seed: int = 1234) -> list[tuple[str, bytes]]:
    """``count`` (description, file bytes) variants of ``text``, the same for a given seed."""
    rng = random.Random(seed)
    tree = yaml.safe_load(text)
    paths = _paths(tree)
    lines = text.splitlines(keepends=True)
    out: list[tuple[str, bytes]] = []
    while len(out) < count:
        kind = rng.choice(["delete", "retype", "rename", "garbage", "truncate", "dup-line",
                           "drop-line", "indent", "byte"])
        if kind in ("delete", "retype", "rename"):
            mutated = yaml.safe_load(text)
            path = rng.choice(paths)
            if kind == "delete":
                _replace(mutated, path, None, delete=True)
            elif kind == "retype":
                _replace(mutated, path, rng.choice(WRONG_VALUES))
            else:
                parent = mutated
                for key in path[:-1]:
                    parent = parent[key]
                if not isinstance(parent, dict):
                    continue
                parent[f"{path[-1]}x"] = parent.pop(path[-1])
            data = yaml.safe_dump(mutated, allow_unicode=True).encode()
            out.append((f"{kind} {'.'.join(map(str, path))}", data))
        elif kind == "garbage":
            at = rng.randrange(len(text) + 1)
            junk = rng.choice(GARBAGE)
            out.append((f"insert {junk!r} at {at}", (text[:at] + junk + text[at:]).encode()))
        elif kind == "truncate":
            at = rng.randrange(len(text))
            out.append((f"truncate at {at}", text[:at].encode()))
        elif kind in ("dup-line", "drop-line", "indent"):
            index = rng.randrange(len(lines))
            changed = list(lines)
            if kind == "dup-line":
                changed.insert(index, lines[index])
            elif kind == "drop-line":
                del changed[index]
            else:
                changed[index] = " " * rng.choice([1, 2, 3, 5]) + lines[index]
            out.append((f"{kind} {index + 1}", "".join(changed).encode()))
        else:
            raw = bytearray(text.encode())
            at = rng.randrange(len(raw))
            raw[at] = rng.choice([0x00, 0x80, 0xFF, 0xC3, 0x0B, 0x1B])
            out.append((f"byte {raw[at]:#x} at {at}", bytes(raw)))
    return out


def test_sweep_of_malformed_quickstarts_raises_only_automl_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variants = mutations(QUICKSTART.read_text(encoding="utf-8"), 100)
    outcomes: dict[str, int] = {"ok": 0, "ConfigError": 0, "other AutomlError": 0}
    for number, (description, data) in enumerate(variants):
        path = tmp_path / f"variant_{number:03d}.yaml"
        path.write_bytes(data)
        try:
            prepare(path)
        except ConfigError as exc:
            outcomes["ConfigError"] += 1
            assert str(path) in str(exc), f"{description}: no file in {exc}"
            assert "Traceback" not in str(exc)
        except AutomlError:
            outcomes["other AutomlError"] += 1
        except Exception as exc:  # noqa: BLE001 - exactly what the test is after
            pytest.fail(f"{description}: {type(exc).__name__}: {exc}\n"
                        f"{data.decode(errors='replace')}")
        else:
            outcomes["ok"] += 1
    assert outcomes["ConfigError"] >= 50, outcomes  # the sweep really exercises the errors
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "runs").exists()
