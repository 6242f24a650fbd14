"""Text renderings for the CLI: the inspected plan, DOT, node docs, run summaries."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ..graph.plan import Plan, PlannedNode
from ..node import Node, Port
from ..runtime.session import SessionResult

__all__ = ["node_markdown", "plan_dot", "plan_text", "result_text"]


def _node_fmt(plan: Plan, node: PlannedNode) -> str:
    outs = [f"{e.src_port}: {e.fmt}" for e in plan.edges_from(node.id) if e.fmt is not None]
    return ", ".join(dict.fromkeys(outs))


def plan_text(plan: Plan) -> str:
    """``vbgraph inspect``: nodes in order, inserted converters, each edge's format and queue."""
    lines = [f"graph '{plan.name}'" + (f" ({plan.source})" if plan.source else "")]
    lines.append("nodes:")
    width = max((len(n) for n in plan.nodes), default=4)
    for nid, node in plan.nodes.items():
        kind = "async" if node.cls.is_async() else "sync"
        extra = f"  [inserted for {node.inserted_for}]" if node.inserted_for else ""
        latency = node.cls.latency_ns(node.params, plan.input_formats(nid))
        lat = f"  latency {latency / 1e6:.2f} ms" if latency else ""
        lines.append(f"  {nid:<{width}}  {node.type_name:<22} {kind:<5}{lat}{extra}".rstrip())
    lines.append("edges:")
    for e in plan.edges:
        dst = plan.nodes[e.dst]
        if dst.cls.is_async():
            q = e.queue
            how = f"queue(capacity={q.capacity}, policy={q.policy.value}"
            how += f", max_ms={q.max_ms:g})" if q.max_ms else ")"
        else:
            how = "direct call"
        fmt = str(e.fmt) if e.fmt is not None else "-"
        lines.append(f"  {e.name:<{2 * width + 14}}  {fmt:<24} {how}")
    return "\n".join(lines)


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plan_dot(plan: Plan) -> str:
    """The plan as Graphviz DOT; inserted converters are dashed boxes."""
    out = [f"digraph {_dot_id(plan.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for nid, node in plan.nodes.items():
        style = ', style=dashed, color="gray40"' if node.inserted_for else ""
        label = f"{nid}\\n{node.type_name}"
        out.append(f"  {_dot_id(nid)} [label={_dot_id(label)}{style}];")
    for e in plan.edges:
        label = f"{e.src_port}→{e.dst_port}"
        if e.fmt is not None:
            label += f"\\n{e.fmt}"
        out.append(f"  {_dot_id(e.src)} -> {_dot_id(e.dst)} [label={_dot_id(label)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _type_text(info: Any) -> str:
    ann = info.annotation
    text = getattr(ann, "__name__", None) or str(ann)
    return text.replace("typing.", "").replace("NoneType", "None")


def _port_lines(title: str, ports: dict[str, Port]) -> list[str]:
    if not ports:
        return []
    lines = [f"**{title}:**", ""]
    for name, port in ports.items():
        doc = f" — {port.doc}" if port.doc else ""
        lines.append(f"- `{name}`: {port.describe()}{doc}")
    lines.append("")
    return lines


def node_markdown(cls: type[Node]) -> str:
    """Reference docs of one node type, generated from its class and ``Params`` model."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines = [f"## `{cls.type_name}`", "", doc, ""]
    kind = "async (own task and input queue)" if cls.is_async() else "sync (fused into caller)"
    lines.append(f"*Processing:* {kind}." + (" *Interruptible.*" if cls.interruptible else ""))
    lines.append("")
    fields = cls.Params.model_fields
    if fields:
        lines += ["| param | type | default | description |", "|---|---|---|---|"]
        for name, info in fields.items():
            default = "required" if info.is_required() else f"`{info.get_default()!r}`"
            desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | `{_type_text(info)}` | {default} | {desc} |")
        lines.append("")
    else:
        lines += ["No parameters.", ""]
    try:
        params = cls.Params()
    except Exception:
        params = None
    if params is not None:
        ins, outs = cls.ports(params)
        lines += _port_lines("Inputs", dict(ins)) + _port_lines("Outputs", dict(outs))
    else:
        lines += _port_lines("Inputs", dict(cls.inputs)) + _port_lines("Outputs", dict(cls.outputs))
    return "\n".join(lines)


def result_text(result: SessionResult, written: Sequence[str] = ()) -> str:
    """A short summary of a finished session for the terminal; then the files written."""
    lines = [
        f"session {result.session_id}: {result.state.value} after "
        f"{result.duration_ns / 1e9:.3f} s (session clock)"
    ]
    for nid, ns in result.nodes.items():
        extra = []
        if ns.errors:
            extra.append(f"{ns.errors} errors")
        if ns.unconnected:
            extra.append(f"{ns.unconnected} frames on unconnected ports")
        lines.append(
            f"  {nid:<24} {ns.frames_in:>7} frames in"
            + (f"  ({', '.join(extra)})" if extra else "")
        )
    lost = [(name, e) for name, e in result.edges.items() if e.lost]
    lines.extend(
        f"  edge {name}: {e.drops} dropped, {e.stale} stale, {e.flushed} flushed, {e.failed} failed"
        for name, e in lost
    )
    lines.extend(f"  error: {err}" for err in result.errors)
    lines.extend(f"  abandoned: {nid}" for nid in result.abandoned)
    lines.extend(f"wrote {path}" for path in written)
    return "\n".join(lines)
