"""Read a YAML graph file into plain Python data plus a map back to the source.

Theory of operation
-------------------
PyYAML's ``safe_load`` throws away where things were written, silently keeps
the last of two equal keys, and types keys like values (``1:`` becomes the int
``1``, ``yes:`` the bool ``True``).  A graph file needs better than that: every
later error ("unknown field", "no such port") should name ``file:line:column``.
So this module only lets PyYAML *compose* the document (parse it into a tree of
nodes that carry their marks, with the safe resolver) and builds the Python
data itself, walking the tree once:

* Each value is recorded in a :class:`SourceMap` under its path from the
  document root: ``("nodes", "gain", "db")``, ``("edges", 2)``,
  ``("edges", 2, "queue", "capacity")`` -- ``str`` for mapping keys, ``int``
  for sequence indexes, ``()`` for the root.  Mapping entries are recorded
  twice: where the value starts (:meth:`SourceMap.locate`) and where the key
  is (:meth:`SourceMap.locate_key`).  Lines and columns are 1-based.
* The value of a block collection starts at its first entry (the first key,
  or the first ``-``); of a flow collection at its ``{`` or ``[``.  Aliases
  (``*name``) build a fresh copy of the anchored value and are located where
  the anchor's value was written.

Rules
-----
Values
    Scalars are typed as ``yaml.SafeLoader`` types them (YAML 1.1: ``16000``
    is an int, ``yes`` a bool, ``~`` None, ``2024-01-01`` a date).  Only the
    standard safe scalar tags are accepted (``!!str``, ``!!int``, ``!!float``,
    ``!!bool``, ``!!null``, ``!!binary``, ``!!timestamp``); any other tag, and
    ``!!set``/``!!omap``/``!!pairs``, is a :class:`ConfigError`.  Merge keys
    (``<<: *defaults``) work as in YAML 1.1: earlier merged mappings win over
    later ones, the mapping's own keys win over all of them.
Keys
    Every mapping key is a string: the key's text as written (after unquoting),
    never typed.  ``1:``, ``yes:`` and ``null:`` give the keys ``"1"``,
    ``"yes"`` and ``"null"``, so node ids and field names are always ``str``.
    Keys are not subject to ``${...}`` substitution.  A key that is a mapping
    or a sequence, and a key written twice in the same mapping, are errors
    located at the offending key.
Substitution
    Inside every scalar value (not key), ``${NAME}`` is replaced by the
    environment variable ``NAME`` and ``${NAME:-default}`` by ``NAME`` or, when
    it is unset *or empty* (as in the shell), by ``default``.  ``NAME`` matches
    ``[A-Za-z_][A-Za-z0-9_]*``; the default is literal text up to the first
    ``}`` (so it cannot contain ``}`` and is not itself substituted).  A string
    may hold several references anywhere.  ``$${`` is an escape for a literal
    ``${``; a ``$`` not followed by ``{`` is left alone.  An unset variable
    without a default, an unterminated ``${`` and a malformed reference are
    errors located at the ``${`` (or at the scalar when the scalar's text
    cannot be mapped back character by character, e.g. a folded scalar).  If
    the whole scalar is exactly one reference and is written plain
    (unquoted, untagged), the result is re-typed as a plain scalar would be,
    so ``rate: ${RATE:-16000}`` gives the int ``16000`` and ``${X:-}`` gives
    None; it is never parsed as a collection.  Quoted or tagged scalars keep
    their string (or tagged) type.  Note that ``{``, ``}`` and ``,`` end a plain
    scalar inside a flow mapping, so write ``{path: "${INPUT}"}`` there.
Includes
    The top-level key ``include`` of a file is a path or a list of paths, each
    relative to the directory of the including file (``base_dir`` for
    :func:`load_graph_text`, the working directory when it is None); absolute
    paths are used as they are.  Included files are loaded by the same rules
    (and may include further files); their source-map entries keep their own
    file name, shown as the normalised joined path.  An included file may only
    contain ``version``, ``name``, ``include``, ``nodes`` (a mapping) and
    ``edges`` (a list): its ``name`` is ignored, its ``version``, when both
    it and the loaded (root) document state one, must equal the root's.  The
    merged document is the including file's top-level mapping without
    ``include``, whose ``nodes`` are the nodes of each included file in
    ``include`` order followed by its own, and whose ``edges`` are the edges
    of each included file in order followed by its own, renumbered, each
    still located in the file it came from.  A node id defined twice (in any
    two files, or twice in one mapping) is an error naming both places.  An
    include cycle is an error naming the chain (``a.yaml -> b.yaml ->
    a.yaml``); so is one file included twice anywhere in the same load, since
    its nodes would be defined twice.
Errors
    YAML syntax errors become :class:`ConfigError` located at the parser's
    mark, with its problem text.  An empty file, or a top level that is not a
    mapping, is a :class:`ConfigError` at ``1:1`` saying a mapping was
    expected.  Errors inside ``nodes.<id>`` carry ``node_id`` (and ``field``).
"""

from __future__ import annotations

import binascii
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vbgraph.errors import ConfigError, SourceLocation

__all__ = [
    "LoadedDocument",
    "SourceMap",
    "SourcePath",
    "load_graph_document",
    "load_graph_text",
]

SourcePath = tuple[str | int, ...]
"""A path from the document root: ``str`` for mapping keys, ``int`` for list indexes."""

_TAG = "tag:yaml.org,2002:"
_STR_TAG = _TAG + "str"
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"
_VALUE_TAG = _TAG + "value"
_SCALAR_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "binary", "timestamp")
)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INCLUDED_KEYS = ("version", "name", "include", "nodes", "edges")


class SourceMap:
    """Where each part of a loaded document was written.

    Paths are tuples from the document root (see :data:`SourcePath`).  Two
    tables are kept: value positions (every mapping value, list item and the
    root) and key positions (mapping entries only).
    """

    __slots__ = ("_keys", "_values")

    def __init__(self) -> None:
        self._values: dict[SourcePath, SourceLocation] = {}
        self._keys: dict[SourcePath, SourceLocation] = {}

    def record(self, path: SourcePath, location: SourceLocation) -> None:
        """Record where the value at ``path`` starts."""
        self._values[tuple(path)] = location

    def record_key(self, path: SourcePath, location: SourceLocation) -> None:
        """Record where the key of the mapping entry at ``path`` is."""
        self._keys[tuple(path)] = location

    def locate(self, path: SourcePath) -> SourceLocation | None:
        """Where the value at ``path`` starts, else where its nearest recorded ancestor does."""
        path = tuple(path)
        while True:
            found = self._values.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def locate_key(self, path: SourcePath) -> SourceLocation | None:
        """Where the key of the entry at ``path`` is; falls back to :meth:`locate`.

        The fallback covers list indexes (which have no key) and paths that are
        not in the document, such as a missing field (then the nearest
        recorded ancestor's value is named).
        """
        found = self._keys.get(tuple(path))
        return found if found is not None else self.locate(path)

    def items(self) -> Iterator[tuple[SourcePath, SourceLocation]]:
        """Every recorded value position, in recording order."""
        return iter(self._values.items())

    def key_items(self) -> Iterator[tuple[SourcePath, SourceLocation]]:
        """Every recorded key position, in recording order."""
        return iter(self._keys.items())

    def __contains__(self, path: object) -> bool:
        return path in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<SourceMap {len(self._values)} values, {len(self._keys)} keys>"

    def _copy_from(
        self,
        other: SourceMap,
        prefix: SourcePath,
        keep: frozenset[str | int] | None = None,
        renumber: int = 0,
    ) -> None:
        """Copy ``other``'s entries strictly below ``prefix``.

        Only the children named in ``keep`` (all when None) are copied; int
        children are shifted by ``renumber``.
        """
        depth = len(prefix)
        for source, target in ((other._values, self._values), (other._keys, self._keys)):
            for path, location in source.items():
                if len(path) <= depth or path[:depth] != prefix:
                    continue
                child = path[depth]
                if keep is not None and child not in keep:
                    continue
                if renumber and isinstance(child, int):
                    path = (*prefix, child + renumber, *path[depth + 1 :])
                target[path] = location


@dataclass(frozen=True)
class LoadedDocument:
    """A graph file as plain data (includes merged) and where each part of it came from."""

    data: dict[str, Any]
    source_map: SourceMap
    path: str


def load_graph_document(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> LoadedDocument:
    """Load the graph file at ``path``; ``env`` (default ``os.environ``) feeds ``${...}``."""
    name = os.fspath(path)
    text = _read_text(name, included=False)
    state = _LoadState(env=os.environ if env is None else env)
    real = os.path.realpath(name)
    state.seen[real] = None
    data, source_map = _load_unit(text, name, os.path.dirname(name), ((real, name),), state)
    return LoadedDocument(data=data, source_map=source_map, path=name)


def load_graph_text(
    text: str,
    name: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> LoadedDocument:
    """Load a graph from ``text``, reported as ``name``; includes resolve against ``base_dir``."""
    state = _LoadState(env=os.environ if env is None else env)
    directory = "" if base_dir is None else os.fspath(base_dir)
    data, source_map = _load_unit(text, name, directory, ((None, name),), state)
    return LoadedDocument(data=data, source_map=source_map, path=name)


# --------------------------------------------------------------------------- loading


@dataclass
class _LoadState:
    """What one top-level load shares between the files it reads."""

    env: Mapping[str, str]
    # real path of every file read so far -> where it was included (None for the root)
    seen: dict[str, SourceLocation | None] = field(default_factory=dict)
    # the root document's ``version`` and where it is, once known
    version: tuple[Any, SourceLocation | None] | None = None


_Chain = tuple[tuple[str | None, str], ...]  # (real path or None, shown name) per open file


def _read_text(name: str, included: bool, where: SourceLocation | None = None) -> str:
    what = "included file" if included else "graph file"
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read {what} '{name}': {reason}", location=where) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start].decode("utf-8-sig")
        line = head.count("\n") + 1
        column = len(head) - (head.rfind("\n") + 1) + 1
        raise ConfigError(
            f"{what} is not valid UTF-8 ({exc.reason})",
            location=SourceLocation(name, line, column),
        ) from exc


def _load_unit(
    text: str, name: str, directory: str, chain: _Chain, state: _LoadState
) -> tuple[dict[str, Any], SourceMap]:
    """Load one file (and, recursively, what it includes) into merged data and a source map."""
    root, explicit = _compose(text, name)
    start = SourceLocation(name, 1, 1)
    if root is None:
        raise ConfigError(
            "empty graph file: expected a mapping with 'nodes' and 'edges'", location=start
        )
    if not isinstance(root, MappingNode):
        kind = "a sequence" if isinstance(root, SequenceNode) else "a single value"
        raise ConfigError(
            f"expected a mapping at the top level (version, name, nodes, edges), found {kind}",
            location=start,
        )
    source_map = SourceMap()
    data = _Builder(name, text, explicit, state.env).build(root, (), source_map)
    assert isinstance(data, dict)
    if len(chain) == 1 and "version" in data:
        state.version = (data["version"], source_map.locate(("version",)))
    if "include" not in data:
        return data, source_map
    return _merge_includes(data, source_map, directory, chain, state)


def _merge_includes(
    data: dict[str, Any],
    source_map: SourceMap,
    directory: str,
    chain: _Chain,
    state: _LoadState,
) -> tuple[dict[str, Any], SourceMap]:
    merged_nodes: dict[str, Any] = {}
    merged_edges: list[Any] = []
    node_places: dict[str, SourceLocation | None] = {}
    merged_map = SourceMap()
    first_nodes: SourceMap | None = None
    first_edges: SourceMap | None = None

    def take(part: dict[str, Any], part_map: SourceMap) -> None:
        nonlocal first_nodes, first_edges
        nodes = part.get("nodes", {})
        edges = part.get("edges", [])
        if not isinstance(nodes, dict):
            raise _error(
                "'nodes' must be a mapping of node id to settings when files are included",
                part_map.locate(("nodes",)),
                (),
            )
        if not isinstance(edges, list):
            raise _error(
                "'edges' must be a list when files are included", part_map.locate(("edges",)), ()
            )
        if ("nodes",) in part_map and first_nodes is None:
            first_nodes = part_map
        if ("edges",) in part_map and first_edges is None:
            first_edges = part_map
        for node_id, settings in nodes.items():
            place = part_map.locate_key(("nodes", node_id))
            if node_id in merged_nodes:
                first = node_places[node_id]
                raise ConfigError(
                    f"defined twice: {first} and {place}", location=place, node_id=node_id
                )
            merged_nodes[node_id] = settings
            node_places[node_id] = place
        merged_map._copy_from(part_map, ("nodes",), keep=frozenset(nodes))
        merged_map._copy_from(part_map, ("edges",), renumber=len(merged_edges))
        merged_edges.extend(edges)

    for entry, entry_path in _include_entries(data["include"], source_map):
        where = source_map.locate(entry_path)
        included, included_map = _load_included(entry, where, directory, chain, state)
        take(included, included_map)
    take(data, source_map)

    result: dict[str, Any] = {}
    for key, value in data.items():
        if key == "include":
            continue
        if key == "nodes":
            result[key] = merged_nodes
        elif key == "edges":
            result[key] = merged_edges
        else:
            result[key] = value
            merged_map._copy_from(source_map, (), keep=frozenset((key,)))
    result.setdefault("nodes", merged_nodes)
    result.setdefault("edges", merged_edges)

    root = source_map.locate(())
    assert root is not None
    merged_map.record((), root)
    for key, first in (("nodes", first_nodes), ("edges", first_edges)):
        origin = source_map if (key,) in source_map else first
        if origin is not None:
            value_at = origin.locate((key,))
            key_at = origin.locate_key((key,))
            assert value_at is not None and key_at is not None
            merged_map.record((key,), value_at)
            merged_map.record_key((key,), key_at)
    # the include list itself stays locatable, though it is gone from the data
    merged_map._copy_from(source_map, (), keep=frozenset(("include",)))
    return result, merged_map


def _include_entries(value: Any, source_map: SourceMap) -> list[tuple[str, SourcePath]]:
    if isinstance(value, str):
        entries: list[tuple[Any, SourcePath]] = [(value, ("include",))]
    elif isinstance(value, list):
        entries = [(item, ("include", index)) for index, item in enumerate(value)]
    else:
        raise _error(
            "'include' must be a path or a list of paths", source_map.locate(("include",)), ()
        )
    for item, path in entries:
        if not isinstance(item, str) or not item:
            raise _error(
                f"an include entry must be a non-empty path, not {item!r}",
                source_map.locate(path),
                (),
            )
    return entries


def _load_included(
    entry: str,
    where: SourceLocation | None,
    directory: str,
    chain: _Chain,
    state: _LoadState,
) -> tuple[dict[str, Any], SourceMap]:
    target = os.path.join(directory, entry)
    shown = os.path.normpath(target)
    real = os.path.realpath(target)
    if any(real == open_real for open_real, _ in chain):
        names = " -> ".join([*(open_name for _, open_name in chain), shown])
        raise ConfigError(f"include cycle: {names}", location=where)
    if real in state.seen:
        first = state.seen[real]
        how = f"first included at {first}" if first is not None else "it is the file being loaded"
        raise ConfigError(f"'{shown}' is included more than once ({how})", location=where)
    state.seen[real] = where
    text = _read_text(target, included=True, where=where)
    data, source_map = _load_unit(
        text, shown, os.path.dirname(target), (*chain, (real, shown)), state
    )
    for key in data:
        if key not in _INCLUDED_KEYS:
            allowed = ", ".join(_INCLUDED_KEYS)
            raise _error(
                f"key '{key}' is not allowed in an included file (only {allowed})",
                source_map.locate_key((key,)),
                (),
            )
    if "version" in data and state.version is not None:
        root_version, root_at = state.version
        if data["version"] != root_version:
            raise _error(
                f"version {data['version']!r} differs from version {root_version!r} "
                f"of the including document at {root_at}",
                source_map.locate(("version",)),
                (),
            )
    return data, source_map


def _compose(text: str, name: str) -> tuple[Node | None, frozenset[int]]:
    """Parse ``text`` into a node tree; also return the ids of explicitly tagged scalars."""
    loader: _MarkingLoader | None = None
    try:
        loader = _MarkingLoader(text)
        return loader.get_single_node(), frozenset(loader.explicit)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, name) from None
    except yaml.reader.ReaderError as exc:
        head = text[: int(exc.position)]
        line = head.count("\n") + 1
        column = len(head) - (head.rfind("\n") + 1) + 1
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        raise ConfigError(
            f"unacceptable character #x{code:04x}: {exc.reason}",
            location=SourceLocation(name, line, column),
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


class _MarkingLoader(yaml.SafeLoader):
    """A safe loader that notes which scalars carry an explicit tag (``!!str``, ``!``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.explicit: set[int] = set()

    def compose_scalar_node(self, anchor: dict[Any, Node]) -> ScalarNode:
        tagged = self.peek_event().tag is not None  # type: ignore[no-untyped-call]
        node = super().compose_scalar_node(anchor)
        if tagged:
            self.explicit.add(id(node))
        return node


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    location = _location(name, mark) if mark is not None else SourceLocation(name, 1, 1)
    parts = []
    if exc.context:
        context = exc.context
        if exc.context_mark is not None and exc.problem_mark is not None:
            context += f" at {_location(name, exc.context_mark)}"
        parts.append(context)
    if exc.problem:
        parts.append(exc.problem)
    return ConfigError(": ".join(parts) or "invalid YAML", location=location)


def _location(name: str, mark: yaml.Mark) -> SourceLocation:
    return SourceLocation(name, mark.line + 1, mark.column + 1)


def _error(message: str, location: SourceLocation | None, path: SourcePath) -> ConfigError:
    """A ConfigError that names the node and field when ``path`` is inside ``nodes``."""
    node_id: str | None = None
    field_name: str | None = None
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], str):
        node_id = path[1]
        if len(path) > 2:
            field_name = _format_field(path[2:])
    return ConfigError(message, location=location, node_id=node_id, field=field_name)


def _format_field(path: SourcePath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


# --------------------------------------------------------------------------- building


class _Builder:
    """Turns one file's node tree into Python data, recording marks as it goes."""

    def __init__(
        self, name: str, text: str, explicit: frozenset[int], env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.text = text
        self.explicit = explicit
        self.env = env
        self.active: set[int] = set()
        self.constructor = SafeConstructor()
        self.resolver = yaml.resolver.Resolver()

    def at(self, node: Node) -> SourceLocation:
        return _location(self.name, node.start_mark)

    def build(self, node: Node, path: SourcePath, source_map: SourceMap) -> Any:
        source_map.record(path, self.at(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        return self.collection(node, path, source_map)

    def collection(self, node: Node, path: SourcePath, source_map: SourceMap) -> Any:
        if id(node) in self.active:
            raise _error("an alias refers to a collection that contains it", self.at(node), path)
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path, source_map)
            assert isinstance(node, SequenceNode)
            return self.sequence(node, path, source_map)
        finally:
            self.active.discard(id(node))

    def sequence(self, node: SequenceNode, path: SourcePath, source_map: SourceMap) -> list[Any]:
        if node.tag != _SEQ_TAG:
            raise _error(f"unsupported YAML tag '{_short_tag(node.tag)}'", self.at(node), path)
        return [
            self.build(item, (*path, index), source_map) for index, item in enumerate(node.value)
        ]

    def mapping(self, node: MappingNode, path: SourcePath, source_map: SourceMap) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise _error(f"unsupported YAML tag '{_short_tag(node.tag)}'", self.at(node), path)
        own: dict[str, tuple[SourceLocation, Node]] = {}
        merges: list[MappingNode] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
                merges.extend(self.merge_sources(value_node, path))
                continue
            key_at = self.at(key_node)
            if not isinstance(key_node, ScalarNode):
                raise _error("a mapping key must be a plain value, not a collection", key_at, path)
            key = str(key_node.value)
            if key in own:
                first = own[key][0]
                if path == ("nodes",):
                    raise ConfigError(
                        f"defined twice: {first} and {key_at}", location=key_at, node_id=key
                    )
                raise _error(f"duplicate key '{key}' (first at {first})", key_at, path)
            own[key] = (key_at, value_node)

        result: dict[str, Any] = {}
        for source in merges:
            scratch = SourceMap()
            merged = self.collection(source, path, scratch)
            fresh = {k: v for k, v in merged.items() if k not in own and k not in result}
            result.update(fresh)
            source_map._copy_from(scratch, path, keep=frozenset(fresh))
        for key, (key_at, value_node) in own.items():
            source_map.record_key((*path, key), key_at)
            result[key] = self.build(value_node, (*path, key), source_map)
        return result

    def merge_sources(self, value: Node, path: SourcePath) -> list[MappingNode]:
        if isinstance(value, MappingNode):
            return [value]
        if isinstance(value, SequenceNode) and all(
            isinstance(item, MappingNode) for item in value.value
        ):
            return list(value.value)
        raise _error("a merge key '<<' needs a mapping or a list of mappings", self.at(value), path)

    def scalar(self, node: ScalarNode, path: SourcePath) -> Any:
        value = str(node.value)
        tag = node.tag
        if "$" in value:
            value, whole = self.substitute(node, path)
            if whole and node.style is None and id(node) not in self.explicit:
                tag = self.plain_tag(value)
        if tag in (_STR_TAG, _MERGE_TAG, _VALUE_TAG):
            return value
        if tag not in _SCALAR_TAGS:
            raise _error(f"unsupported YAML tag '{_short_tag(tag)}'", self.at(node), path)
        typed = ScalarNode(tag, value, node.start_mark, node.end_mark, style=node.style)
        try:
            return self.constructor.construct_object(typed, deep=True)
        except (yaml.YAMLError, ValueError, KeyError, AttributeError, binascii.Error) as exc:
            raise _error(
                f"cannot read {value!r} as {_short_tag(tag)} ({type(exc).__name__})",
                self.at(node),
                path,
            ) from None

    def plain_tag(self, value: str) -> str:
        """The tag YAML gives ``value`` written as a plain scalar (int, bool, null, ...)."""
        resolve: Any = self.resolver.resolve
        tag: str = resolve(ScalarNode, value, (True, False))
        return tag

    def substitute(self, node: ScalarNode, path: SourcePath) -> tuple[str, bool]:
        """Replace ``${...}`` references; also say whether the scalar was exactly one."""
        text = str(node.value)
        out: list[str] = []
        position = 0
        references = 0
        while True:
            dollar = text.find("$", position)
            if dollar < 0:
                out.append(text[position:])
                break
            if text.startswith("$${", dollar):
                out.append(text[position:dollar] + "${")
                position = dollar + 3
                continue
            if not text.startswith("${", dollar):
                out.append(text[position : dollar + 1])
                position = dollar + 1
                continue
            out.append(text[position:dollar])
            close = text.find("}", dollar + 2)
            if close < 0:
                raise _error(
                    "unterminated '${' (write '$${' for a literal '${')",
                    self.offset_at(node, dollar),
                    path,
                )
            out.append(self.resolve_reference(text[dollar + 2 : close], node, dollar, path))
            references += 1
            position = close + 1
        whole = references == 1 and text.startswith("${") and text.find("}") == len(text) - 1
        return "".join(out), whole

    def resolve_reference(self, body: str, node: ScalarNode, offset: int, path: SourcePath) -> str:
        name, sep, default = body.partition(":-")
        if not _NAME_RE.fullmatch(name) or "${" in default:
            raise _error(
                f"malformed reference '${{{body}}}': expected ${{NAME}} or ${{NAME:-default}}",
                self.offset_at(node, offset),
                path,
            )
        found = self.env.get(name)
        if sep:
            return found if found else default
        if found is None:
            raise _error(
                f"environment variable '{name}' is not set "
                f"(use ${{{name}:-default}} for a default)",
                self.offset_at(node, offset),
                path,
            )
        return found

    def offset_at(self, node: ScalarNode, offset: int) -> SourceLocation:
        """Where character ``offset`` of the scalar's value is, when the text allows telling."""
        start, end = node.start_mark, node.end_mark
        raw = self.text[start.index : end.index]
        value = str(node.value)
        if "\n" not in raw:
            if node.style is None and raw == value:
                return SourceLocation(self.name, start.line + 1, start.column + 1 + offset)
            if node.style in ("'", '"') and raw[1:-1] == value:
                return SourceLocation(self.name, start.line + 1, start.column + 2 + offset)
        return self.at(node)
