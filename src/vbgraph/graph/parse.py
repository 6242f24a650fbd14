"""From plain graph data (as the YAML loader returns it) to a :class:`GraphSpec`.

Expands chain strings into edges, applies ``--set`` overrides, validates with
pydantic and turns every validation error into a :class:`ConfigError` that
names ``file:line:column``, the node id and the field. The resulting
:class:`SpecLocations` lets the compiler place its own errors the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError, SourceLocation
from .spec import GraphSpec, QueueSpec, node_id_problem, parse_chain
from .yaml_loader import SourceMap

__all__ = [
    "SpecLocations",
    "apply_overrides",
    "config_error_from_validation",
    "format_field",
    "override_paths",
    "spec_from_data",
]

Path = tuple[str | int, ...]

_MODEL_INSTANCE = re.compile(r" or instance of \w+")


@dataclass
class SpecLocations:
    """Where each part of a spec was written (all ``None`` for builder graphs)."""

    source_map: SourceMap | None = None
    edge_paths: list[Path] = field(default_factory=list)
    """For each expanded edge, its path in the original document."""
    overrides: dict[Path, str] = field(default_factory=dict)
    """Paths set by ``--set`` (``("nodes", "gain", "db")``), with the override as written."""

    def at(self, path: Path, *, key: bool = False) -> SourceLocation | None:
        """The location of ``path`` (of its key with ``key=True``), or the nearest parent's."""
        if self.source_map is None:
            return None
        if key:
            found = self.source_map.locate_key(path)
            if found is not None:
                return found
        return self.source_map.locate(path)

    def node(self, node_id: str, param: str | None = None) -> SourceLocation | None:
        """Where node ``node_id`` (or one of its params) was written."""
        path: Path = ("nodes", node_id) if param is None else ("nodes", node_id, param)
        return self.at(path)

    def edge(self, index: int, end: str | None = None) -> SourceLocation | None:
        """Where the expanded edge ``index`` was written (its chain string or mapping).

        With ``end`` (``"from"`` or ``"to"``), where that endpoint of a
        ``{from, to}`` mapping was written; a chain string has no finer place.
        """
        if 0 <= index < len(self.edge_paths):
            path = self.edge_paths[index]
            return self.at(path if end is None else (*path, end))
        return None

    def override_for(self, path: Path) -> str | None:
        """The ``--set`` text that wrote ``path`` or one of its parents, if any."""
        for i in range(len(path), 2, -1):
            found = self.overrides.get(path[:i])
            if found is not None:
                return found
        return None


def override_paths(overrides: Iterable[str]) -> dict[Path, str]:
    """The document paths that ``node.param=value`` overrides write (malformed ones skipped)."""
    out: dict[Path, str] = {}
    for item in overrides:
        target, sep, _ = item.partition("=")
        parts = target.strip().split(".")
        if sep and len(parts) >= 2 and all(parts):
            out[("nodes", *parts)] = item
    return out


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``node.param=value`` overrides (value read as a YAML scalar) to graph data.

    ``gain.db=-3`` sets param ``db`` of node ``gain``; ``a.b.c=1`` sets nested
    ``c`` inside param ``b``. Raises :class:`ConfigError` naming the override.
    """
    nodes = data.get("nodes")
    for item in overrides:
        target, sep, raw = item.partition("=")
        parts = target.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        if not isinstance(nodes, dict) or parts[0] not in nodes:
            known = ", ".join(sorted(nodes)) if isinstance(nodes, dict) else "none"
            raise ConfigError(
                f"--set {item!r}: no node '{parts[0]}' in the graph (nodes: {known})",
                node_id=parts[0],
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from None
        if parts[1] == "type":
            raise ConfigError(f"--set {item!r}: a node's type cannot be overridden")
        where = nodes[parts[0]]
        if not isinstance(where, dict):
            raise ConfigError(
                f"--set {item!r}: node '{parts[0]}' is not a mapping", node_id=parts[0]
            )
        if isinstance(where.get("params"), dict):
            where = where["params"]  # the nested form {type: x, params: {...}}
        for key in parts[1:-1]:
            nxt = where.get(key)
            if not isinstance(nxt, dict):
                nxt = {}
                where[key] = nxt
            where = nxt
        where[parts[-1]] = value
    return data


def spec_from_data(
    data: Mapping[str, Any],
    source_map: SourceMap | None = None,
    *,
    overrides: Iterable[str] = (),
) -> tuple[GraphSpec, SpecLocations]:
    """Validate graph data into a spec; errors carry file:line:col, node id, field.

    ``overrides`` are the ``--set`` strings already applied to ``data`` (by
    :func:`apply_overrides`): an error in a value they wrote says so.
    """
    locations = SpecLocations(source_map, overrides=override_paths(overrides))
    raw = dict(data)
    raw.pop("include", None)
    nodes = raw.get("nodes")
    if isinstance(nodes, dict):
        for node_id in nodes:
            problem = node_id_problem(node_id)
            if problem is not None:
                raise ConfigError(
                    problem, location=locations.at(("nodes", node_id), key=True), node_id=node_id
                )
    edges_in = raw.get("edges", [])
    if edges_in is None:
        edges_in = []
    if not isinstance(edges_in, list):
        raise ConfigError(
            "'edges' must be a list of chains ('a -> b') or {from, to} mappings",
            location=locations.at(("edges",)),
            field="edges",
        )
    expanded: list[Any] = []
    for i, item in enumerate(edges_in):
        if isinstance(item, str):
            try:
                pairs = parse_chain(item)
            except ValueError as exc:
                raise ConfigError(
                    str(exc), location=locations.at(("edges", i)), field=f"edges[{i}]"
                ) from None
            for src, dst in pairs:
                expanded.append({"from": str(src), "to": str(dst)})
                locations.edge_paths.append(("edges", i))
        else:
            expanded.append(item)
            locations.edge_paths.append(("edges", i))
    raw["edges"] = expanded
    try:
        spec = GraphSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error_from_validation(exc, locations, prefix=()) from None
    return spec, locations


def config_error_from_validation(
    exc: ValidationError,
    locations: SpecLocations,
    prefix: Path,
    node_id: str | None = None,
    allowed: Sequence[str] = (),
) -> ConfigError:
    """The first pydantic error as a :class:`ConfigError` placed in the source.

    ``prefix`` is where the validated data sits in the document (``()`` for a
    whole graph, ``("nodes", id)`` for one node's params). An unknown field is
    placed at its key and lists ``allowed`` (or the fields of the spec model
    it was found in); any other error is placed at the value.
    """
    errors = exc.errors()
    first = errors[0]
    loc: Path = tuple(first["loc"])
    path: Path = prefix + loc
    # The nested node form {type, params: {...}} and the flat form {type, ...}
    # are one thing to the user: drop "params" after a node id.
    if path[:1] == ("nodes",) and len(path) > 2 and path[2] == "params" and not prefix:
        path = path[:2] + path[3:]
    # Map expanded edge indexes back to the document.
    if path[:1] == ("edges",) and len(path) > 1 and isinstance(path[1], int):
        index = path[1]
        if index < len(locations.edge_paths):
            path = locations.edge_paths[index] + _edge_field_path(path[2:])
    field_path: Path = path
    if path[:1] == ("nodes",) and len(path) > 1:
        node_id = node_id or str(path[1])
        field_path = path[2:]
    is_extra = first["type"] == "extra_forbidden"
    override = locations.override_for(path)
    # A value set by --set is not where the file's value is: point at the key.
    location = locations.at(path, key=is_extra or override is not None)
    # "Value error, x" is our own validators' text; "instance of EdgeSpec" means
    # nothing to someone writing YAML.
    message = first["msg"].removeprefix("Value error, ")
    message = _MODEL_INSTANCE.sub("", message)
    if is_extra:
        message = "unknown field"
        allowed = allowed or (_spec_fields(loc) if not prefix else ())
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        elif prefix[:1] == ("nodes",):
            message += " (this node type takes no params)"
    elif first["type"] not in ("missing", "value_error") and "input" in first:
        message += f" (got {_short_repr(first['input'])})"
    more = len(errors) - 1
    if more:
        message += f"; and {more} more error{'s' if more > 1 else ''}"
    if override is not None:
        message += f" (from --set {override!r})"
    return ConfigError(
        message, location=location, node_id=node_id, field=format_field(field_path) or None
    )


def format_field(path: Path) -> str:
    """``("queue", "policy")`` → ``"queue.policy"``, ``("edges", 2)`` → ``"edges[2]"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _spec_fields(loc: Path) -> list[str]:
    """The fields allowed where pydantic found an unknown one (``loc`` as it reported it)."""
    if len(loc) == 1:
        return ["version", "name", "description", "include", "nodes", "edges"]
    if loc[0] == "edges" and len(loc) == 3:
        return ["from", "to", "queue"]
    if loc[0] == "edges" and len(loc) == 4 and loc[2] == "queue":
        return list(QueueSpec.model_fields)
    if loc[0] == "nodes" and len(loc) == 3:
        return ["type", "params"]
    return []


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _edge_field_path(rest: tuple[str | int, ...]) -> Path:
    # pydantic names the aliases we validate by: src→from, dst→to
    mapping = {"src": "from", "dst": "to"}
    return tuple(mapping.get(p, p) if isinstance(p, str) else p for p in rest)
