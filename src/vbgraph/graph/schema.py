"""JSON Schema of the YAML graph format, for editors (``vbgraph schema``).

Built from the spec models and every registered node type's ``Params``, so a
node entry is checked against its own type: ``{type: gain, db: -6}`` gets
``gain``'s fields, an unknown field is flagged, a wrong type too.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..node import Node
from ..registry import Registry, default_registry
from .spec import NODE_ID_PATTERN, QueueSpec

__all__ = ["graph_json_schema", "node_params_schema", "node_summary"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def node_summary(cls: type[Node]) -> str:
    """The first sentence of a node type's description, for listings and editors.

    Node docstrings open with an "Example launch line::" block (STYLE rule 19);
    that lead-in and indented (literal) blocks are skipped.
    """
    for paragraph in inspect.cleandoc(cls.__doc__ or "").split("\n\n"):
        text = paragraph.strip("\n")
        if not text or text.startswith((" ", "\t")) or text.startswith("Example launch line"):
            continue
        flat = " ".join(line.strip() for line in text.splitlines())
        if flat.endswith("::"):
            flat = flat[:-2] + "."
        end = flat.find(". ")
        return flat if end < 0 else flat[: end + 1]
    return ""


def node_params_schema(type_name: str, registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of one node entry (``type`` plus that type's params)."""
    cls = (registry or default_registry()).get(type_name)
    params = cls.Params.model_json_schema(mode="validation")
    defs = params.pop("$defs", {})
    properties: dict[str, Any] = {"type": {"const": type_name}}
    properties.update(params.get("properties", {}))
    schema: dict[str, Any] = {
        "type": "object",
        "title": type_name,
        "description": node_summary(cls),
        "properties": properties,
        "required": ["type", *params.get("required", [])],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def graph_json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of a whole graph file."""
    reg = registry or default_registry()
    node_variants: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for name in reg.names():
        variant = node_params_schema(name, reg)
        # Sub-models land in one shared "$defs"; two types with a sub-model of the
        # same name would clash (the last wins). None do yet.
        defs.update(variant.pop("$defs", {}))
        node_variants.append(variant)
    queue = QueueSpec.model_json_schema()
    defs.update(queue.pop("$defs", {}))
    endpoint = {
        "type": "string",
        "pattern": r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
    }
    return {
        "$schema": _DIALECT,
        "$id": "https://vbgraph.dev/schema/graph-v1.json",
        "title": "vbgraph graph",
        "type": "object",
        "properties": {
            "version": {"const": 1},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "include": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "nodes": {
                "type": "object",
                "propertyNames": {"pattern": NODE_ID_PATTERN},
                "additionalProperties": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": reg.names()}},
                    "oneOf": node_variants,
                },
            },
            "edges": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {
                            "type": "string",
                            "pattern": r"^\s*[^\s]+(\s*->\s*[^\s]+)+\s*$",
                            "description": "a chain: 'a -> b.in -> c'",
                        },
                        {
                            "type": "object",
                            "required": ["from", "to"],
                            "properties": {"from": endpoint, "to": endpoint, "queue": queue},
                            "additionalProperties": False,
                        },
                    ]
                },
            },
        },
        "required": ["nodes"],
        "additionalProperties": False,
        "$defs": defs,
    }
