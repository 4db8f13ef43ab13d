"""Reading an experiment file: safe YAML, typed validation, errors with field path and line."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from automl.config.models import Experiment
from automl.config.yaml_positions import (
    MAX_DEPTH, key_lines, nearest_line, structure_problem,
)
from automl.errors import ConfigError, did_you_mean, short_repr

MAX_FILE_BYTES = 1_000_000


@dataclass
class LoadedExperiment:
    """A validated experiment and where it came from."""

    config: Experiment
    path: Path
    text: str

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedExperiment:
    """Read and validate an experiment file.

    Args:
        path: the YAML file.
        overrides: dotted field paths to replace before validation, e.g.
            ``{"search.num_trials": 5}`` (what CLI flags like ``--max-trials`` do).

    Raises:
        ConfigError: for anything wrong with the file, naming the field path and line.
    """
    file = Path(path)
    source = str(path)
    try:
        if file.is_dir():
            raise ConfigError("is a directory, not an experiment file", source=source)
        with file.open("rb") as stream:  # not read_bytes(): a device or pipe may never end
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(f"file is over {MAX_FILE_BYTES} bytes; an experiment file is at "
                              f"most {MAX_FILE_BYTES}", source=source)
    except FileNotFoundError:
        raise ConfigError("no such file", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from None
    if b"\x00" in data:
        raise ConfigError("is a binary file, not YAML", source=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
                          "save the file as UTF-8", source=source, line=line) from None
    return LoadedExperiment(parse_experiment(text, source, overrides), file, text)


def parse_experiment(text: str, source: str = "<experiment>",
                     overrides: dict[str, Any] | None = None) -> Experiment:
    try:
        raw = _load_yaml(text, source)
    except RecursionError:
        raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", source=source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error{column}: {problem}", source=source,
                          line=line) from None
    except yaml.reader.ReaderError as exc:  # a control character: position, no mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(f"YAML syntax error, column {column}: character "
                          f"U+{exc.character:04X} is not allowed in YAML", source=source,
                          line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", source=source) from None
    if raw is None:
        raise ConfigError("the experiment file is empty", source=source)
    if not isinstance(raw, dict):
        raise ConfigError(f"the experiment must be a mapping of fields, got a "
                          f"{type(raw).__name__}", source=source, line=1)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    try:
        experiment = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, text, source, tuple(overrides or ())) from None
    experiment._source = source
    experiment._key_lines = key_lines(text)
    return experiment


def _load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load``, refusing duplicate keys, recursive aliases and absurd nesting."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = structure_problem(node)
        if problem is not None:
            message, line = problem
            raise ConfigError(message, source=source, line=line)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def locate(error: ConfigError, config: Experiment) -> ConfigError:
    """Add the experiment file and the line of ``error.path`` to an error raised after loading.

    Checks against the plugin registry (:func:`automl.space.build_space`) know the field path,
    e.g. ``architecture.mlp.widht`` or ``objectives[0].metric``, but not the file.
    """
    if error.source is not None or config._source is None:
        return error
    line = nearest_line(config._key_lines, _path_tuple(error.path)) if error.path else None
    return error.located(config._source, line)


def _path_tuple(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            parts.append(int(part[1:-1]))
        elif part:
            parts.append(part)
    return tuple(parts)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {} if child is None else child
            if not isinstance(child, dict):
                return  # the file's own value is invalid; validation will say so
            node[key] = child
        node = child
    node[last] = value


def _config_error(exc: ValidationError, text: str, source: str,
                  overridden: Collection[str] = ()) -> ConfigError:
    lines = key_lines(text)
    messages = []
    first: ConfigError | None = None
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = _model_at(Experiment, loc[:-1])
            valid = list(parent.model_fields) if parent else []
            message = f"unknown field{did_you_mean(str(loc[-1]), valid)}"
            if valid:
                message += f"; valid fields here: {', '.join(valid)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        else:
            message = error["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            shown = short_repr(error.get("input"), 60)
            if "input" in error and not isinstance(error["input"], dict) and shown not in message:
                message += f" (got {shown})"
            if error["type"] == "literal_error" and isinstance(error.get("input"), str):
                expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
                message += did_you_mean(error["input"], expected)
        line = nearest_line(lines, loc)
        if path in overridden:  # the value came from the command line, not from the file
            message += " (set on the command line)"
            line = None
        err = ConfigError(message, path=path, source=source, line=line)
        first = first or err
        messages.append(str(err))
    assert first is not None
    if len(messages) > 1:
        first.args = ("\n".join(messages),)  # one message, one error per line
    return first


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that validates the value at ``loc``, if any."""
    current: Any = model
    for key in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(key))
            if field is None:
                return None
            current = field.annotation
            continue
        current = _unwrap(current, key)
        if current is None:
            return None
    current = _unwrap_optional(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation)
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else annotation
    return annotation


def _unwrap(annotation: Any, key: Any) -> Any:
    annotation = _unwrap_optional(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None
