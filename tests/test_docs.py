"""Docs that cannot drift: every hook, config field and CLI command is documented."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from automl import hookspecs
from automl.cli.app import create_app
from automl.config import models
from tests.conftest import REPO

DOCS = REPO / "docs"


def test_every_hook_has_a_section_with_its_signature():
    text = (DOCS / "plugins.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("#")]
    hooks = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("automl_")]
    assert hooks
    for hook in hooks:
        args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
        assert any(f"`{hook}({args})`" in h for h in headings), f"docs/plugins.md: no section {hook}"


@pytest.mark.parametrize("model", [m for _, m in inspect.getmembers(models, inspect.isclass)
                                   if issubclass(m, BaseModel) and m.__module__ == models.__name__
                                   and m is not models.Strict])
def test_every_config_field_is_documented(model):
    text = (DOCS / "experiment-yaml.md").read_text()
    for field in model.model_fields:
        assert f"`{field}`" in text, f"docs/experiment-yaml.md does not mention {model.__name__}.{field}"


def test_every_command_has_a_section():
    text = (DOCS / "cli.md").read_text()
    app = create_app(load_plugin_commands=False)
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"run", "validate", "plugins", "ls", "show", "ensemble", "rm"} <= set(names)
    for name in names:
        assert f"\n## {name}\n" in text, f"docs/cli.md has no section for `automl {name}`"


def test_readme_links_resolve():
    import re

    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (REPO / target).exists(), f"README links to missing {target}"
