"""Load YAML files into pydantic models with errors that name the file and field.

Every YAML the harness reads (suites, policy files, ``--policy-arg`` values, scene files)
goes through :func:`safe_load`. YAML aliases let a few hundred bytes stand for a tree of
billions of nodes ("billion laughs"): PyYAML builds it as shared objects in microseconds,
and the blow-up happens later, in whatever walks it as a tree (validation, canonical JSON,
error messages), with no output and deaf to Ctrl-C. So the composed node graph is measured
before anything is constructed: its size with every alias expanded must stay under
:data:`MAX_EXPANDED_NODES`, and an anchor that contains itself (``&r {self: *r}``) is refused,
since no JSON record or pydantic model can hold a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from vla_eval.errors import ConfigError

M = TypeVar("M", bound=pydantic.BaseModel)

MAX_EXPANDED_NODES = 100_000
"""Largest document, counted in nodes with every alias expanded. The biggest shipped suite is a
few thousand; a document without aliases never comes near it (it would be megabytes of text)."""


class YamlExpansionError(ConfigError):
    """A YAML document whose aliases expand past the bound, or refer to themselves.

    Not a ``yaml.YAMLError``: callers that fall back to the raw text on a syntax error
    (``--policy-arg``) must still refuse a bomb."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses recursive anchors and alias expansion past a bound."""

    def compose_document(self) -> Node | None:
        self.get_event()  # DocumentStart; the rest mirrors yaml.composer.Composer, which forgets anchors
        node = self.compose_node(None, None)
        self.get_event()
        names = {id(n): name for name, n in self.anchors.items()}
        self.anchors = {}
        if node is not None and names:
            _check_expansion(node, names)
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: Node, anchors: dict[int, str]) -> None:
    """Expanded size of ``root`` with shared nodes counted once per reference, in time linear in
    the distinct nodes (iterative post-order, memoised), stopping at the first cycle."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_EXPANDED_NODES:
                what = f"anchor &{anchors[key]}" if key in anchors else "the value"
                raise YamlExpansionError(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes ({what} at line "
                    f"{node.start_mark.line + 1}); refused before use, as an alias bomb would exhaust memory"
                )
            continue
        if key in size:
            continue
        if key in on_path:
            name = anchors.get(key, "?")
            raise YamlExpansionError(
                f"YAML anchor &{name} (line {node.start_mark.line + 1}) contains an alias to itself (*{name}); "
                "recursive structures are not allowed"
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with aliases bounded (:class:`YamlExpansionError`); syntax errors stay ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_text(text: str, source: str) -> Any:
    """Parse YAML ``text`` read from ``source``; every failure is a one-line :class:`ConfigError` naming it."""
    try:
        return safe_load(text)
    except YamlExpansionError as exc:
        raise YamlExpansionError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file: {exc.reason} at byte {exc.start}") from exc
    data = load_text(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def format_validation_error(source: str, exc: pydantic.ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} invalid field(s):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        got_txt = "" if err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  - field '{loc}': {err['msg']}{got_txt}")
    return "\n".join(lines)


def validate_model(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from exc


def load_model(model: type[M], path: Path) -> M:
    return validate_model(model, read_yaml_mapping(path), str(path))
