"""Line numbers of YAML keys, so a validation error can say where in the file it is."""

from __future__ import annotations

import yaml

#: deeper than any experiment needs (the deepest field is about 5 levels); deeper input is refused
#: instead of running into Python's recursion limit.
MAX_DEPTH = 32
#: more values than any experiment needs; aliases (*name) could otherwise expand a small file into
#: billions of values ("billion laughs") that validation would walk.
MAX_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each path (tuple of keys and list indexes) to its 1-based line in ``text``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return {}
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if len(path) >= MAX_DEPTH:
            return  # also ends the walk of a recursive alias
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = path + (key.value,)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, path + (index,))

    if root is not None:
        walk(root, ())
    return lines


def nearest_line(lines: dict[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int | None:
    """The line of ``path`` or of its closest ancestor that is in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def structure_problem(root: yaml.Node) -> tuple[str, int] | None:
    """What makes a composed document unusable as an experiment, and its 1-based line.

    Finds a key repeated in one mapping (YAML forbids it; PyYAML would keep the last silently), an
    alias that contains itself, nesting deeper than :data:`MAX_DEPTH` and aliases that expand to
    more than :data:`MAX_VALUES` values. Each node is visited once, so this check stays cheap.
    """
    height: dict[int, int] = {}
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            on_path.discard(id(node))
            height[id(node)] = 1 + max((height[id(c)] for c in children), default=0)
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if height[id(node)] > MAX_DEPTH:
                return (f"nested more than {MAX_DEPTH} levels deep",
                        node.start_mark.line + 1)
            if size[id(node)] > MAX_VALUES:
                return (f"aliases (*name) expand this to more than {MAX_VALUES} values",
                        node.start_mark.line + 1)
            continue
        if id(node) in height:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                if key.value in seen:
                    return (f"duplicate key '{key.value}' (first at line {seen[key.value]})",
                            line)
                seen[key.value] = line
        for child in children:
            if id(child) in on_path:
                return ("an alias (*name) refers to a structure that contains it",
                        node.start_mark.line + 1)
            if id(child) not in height:
                stack.append((child, False))
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
