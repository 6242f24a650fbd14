"""The registry of node types, by the name graphs use in ``type:``.

Built-in nodes register when :mod:`vbgraph.nodes` is imported. Third-party
packages declare their node classes in the entry-point group ``vbgraph.nodes``::

    [project.entry-points."vbgraph.nodes"]
    "acme.denoise" = "acme_vbgraph.denoise:Denoise"

Entry points are loaded lazily, the first time a type name is looked up that
is not built in (so ``import vbgraph`` stays fast), and a broken entry point is
reported with its name instead of breaking every graph.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TypeVar

from .errors import ConfigError, UnknownNodeTypeError
from .node import Node, check_node_class

__all__ = ["ENTRY_POINT_GROUP", "Registry", "default_registry", "register"]

ENTRY_POINT_GROUP = "vbgraph.nodes"

N = TypeVar("N", bound=type[Node])


class Registry:
    """Node classes by type name."""

    def __init__(self, *, load_entry_points: bool = True, parent: Registry | None = None) -> None:
        """A registry; with ``parent``, names not found here are looked up there."""
        self._parent = parent
        self._types: dict[str, type[Node]] = {}
        self._entry_points_loaded = not load_entry_points
        self.entry_point_errors: dict[str, str] = {}

    def add(self, cls: type[Node], *, replace: bool = False) -> None:
        """Register ``cls`` under its ``type_name``."""
        check_node_class(cls)
        name = cls.type_name
        existing = self._types.get(name)
        if existing is not None and existing is not cls and not replace:
            raise ConfigError(
                f"node type '{name}' is registered twice: {existing.__module__}."
                f"{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}"
            )
        self._types[name] = cls

    def get(self, name: str) -> type[Node]:
        """The class registered as ``name``; raises :class:`UnknownNodeTypeError`."""
        cls = self._types.get(name)
        if cls is None:
            self._ensure_builtins()
            cls = self._types.get(name)
        if cls is None:
            self.load_entry_points()
            cls = self._types.get(name)
        if cls is None and self._parent is not None:
            try:
                return self._parent.get(name)
            except UnknownNodeTypeError:
                pass
        if cls is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            broken = self.entry_point_errors.get(name)
            if broken:
                hint = f" (its entry point failed to load: {broken})"
            raise UnknownNodeTypeError(f"unknown node type '{name}'{hint}", field="type")
        return cls

    def names(self) -> list[str]:
        """All registered type names, sorted (built-ins and entry points)."""
        self._ensure_builtins()
        self.load_entry_points()
        names = set(self._types)
        if self._parent is not None:
            names.update(self._parent.names())
        return sorted(names)

    def __iter__(self) -> Iterator[type[Node]]:
        return iter([self.get(n) for n in self.names()])

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except UnknownNodeTypeError:
            return False
        return True

    def _ensure_builtins(self) -> None:
        if self is _DEFAULT:
            from . import nodes  # noqa: F401  (registers the built-in nodes)

    def load_entry_points(self) -> None:
        """Load third-party node classes from the ``vbgraph.nodes`` entry points once."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib import metadata  # lazy: costs ~25 ms, needed only here

        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = ep.load()
                if not (isinstance(cls, type) and issubclass(cls, Node)):
                    raise TypeError(f"{ep.value} is not a Node subclass")
                if cls.type_name != ep.name:
                    raise TypeError(
                        f"entry point name '{ep.name}' differs from type_name '{cls.type_name}'"
                    )
                self.add(cls)
            except Exception as exc:  # a broken plug-in must not break other graphs
                self.entry_point_errors[ep.name] = f"{type(exc).__name__}: {exc}"


_DEFAULT = Registry()


def default_registry() -> Registry:
    """The process-wide registry that graphs use unless given another."""
    return _DEFAULT


def register(cls: N) -> N:
    """Class decorator: add a node class to the default registry."""
    _DEFAULT.add(cls)
    return cls
