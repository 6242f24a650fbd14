"""Load a graph file: YAML → data (+ source map) → overrides → spec → builder graph."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .builder import Graph
from .parse import apply_overrides, spec_from_data
from .yaml_loader import load_graph_document, load_graph_text

__all__ = ["load", "loads"]


def load(
    path: str | os.PathLike[str],
    *,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> Graph:
    """Read a YAML graph file into a :class:`Graph` (raises :class:`ConfigError`).

    ``overrides`` are ``node.param=value`` strings, as ``vbgraph run --set`` takes.
    """
    doc = load_graph_document(path, env=env)
    overrides = tuple(overrides)
    data = apply_overrides(doc.data, overrides)
    spec, locations = spec_from_data(data, doc.source_map, overrides=overrides)
    return Graph.from_spec(spec, locations, source=str(path))


def loads(
    text: str,
    *,
    name: str = "<string>",
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Graph:
    """Like :func:`load`, from YAML text."""
    doc = load_graph_text(text, name=name, env=env, base_dir=base_dir)
    overrides = tuple(overrides)
    data = apply_overrides(doc.data, overrides)
    spec, locations = spec_from_data(data, doc.source_map, overrides=overrides)
    graph = Graph.from_spec(spec, locations, source=name)
    graph.base_dir = None if base_dir is None else os.fspath(base_dir)
    return graph
