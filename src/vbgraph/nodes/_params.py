"""Parameter helpers shared by the built-in nodes (not public API).

Negotiation hooks (``ports``, ``output_formats``) receive params typed as the
base :class:`~vbgraph.node.NodeParams`; :func:`typed` narrows them with a real
check, so a wrong model is an error that names both types rather than an
``AttributeError`` three calls later.
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import UsageError
from ..node import NodeParams

__all__ = ["check_port_names", "typed"]

P = TypeVar("P", bound=NodeParams)


def typed(params: NodeParams, model: type[P]) -> P:
    """``params`` as an instance of ``model``; raises :class:`UsageError` if it is not one."""
    if not isinstance(params, model):
        raise UsageError(
            f"expected params of type {model.__qualname__}, got {type(params).__qualname__}"
        )
    return params


def check_port_names(names: list[str]) -> list[str]:
    """Validate a list of dynamic port names: at least one, identifiers, no repeats.

    Used as a pydantic ``AfterValidator``; a ``ValueError`` becomes a
    :class:`~vbgraph.errors.ConfigError` naming the field and its YAML line.
    """
    if not names:
        raise ValueError("needs at least one port name")
    seen: set[str] = set()
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"port name {name!r} is not an identifier (letters, digits, _)")
        if name in seen:
            raise ValueError(f"port name {name!r} appears twice")
        seen.add(name)
    return names
