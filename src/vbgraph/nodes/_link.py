"""Finding the session's :class:`CallLink`, with the error a user needs when there is none."""

from __future__ import annotations

from ..errors import ConfigError
from ..node import NodeContext
from ..transports.link import CallLink

__all__ = ["require_link"]


def require_link(ctx: NodeContext, type_name: str) -> CallLink:
    """The link the server attached to this session; a clear error when run standalone."""
    link = ctx.attachment(CallLink)
    if link is None:
        raise ConfigError(
            f"{type_name} has no caller: this graph talks to a network caller, so run it "
            "with `vbgraph serve GRAPH.yaml` (or attach a CallLink to the Session in tests)",
            node_id=ctx.node_id,
        )
    return link
