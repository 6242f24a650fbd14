"""Format negotiation: fix every audio edge's format and insert converters.

Theory of operation (GStreamer's caps negotiation, simplified to one pass)
-------------------------------------------------------------------------
Nodes are visited in topological order. For each node, every incoming audio
edge already carries its producer's fixed format. If the consumer's port caps
accept it, the edge keeps it. Otherwise the caps are *fixated* near the
producer's format (same value where allowed, else the nearest: see
:meth:`AudioCaps.fixate`) and the cheapest chain of converter nodes is
inserted on that edge:

1. G.711 decode (μ-law/A-law → int16) first,
2. channel down-mix (less data for the next steps),
3. resample,
4. channel up-mix,
5. sample-format conversion (int16 ↔ float32),
6. G.711 encode,
7. rechunk last, when the consumer's port needs frames of exactly ``chunk_ms``
   and the producer does not promise that size (``Node.output_chunk_ms``).

A step with nothing to do is left out, so a matching edge gets no converter
(passthrough). Several edges into the same port must agree: later edges are
converted to the first edge's format. Then the node's ``output_formats`` gives
the formats of its outputs, and the walk goes on. When no converter can join
two formats (a compressed encoding, say) the error names the edge, both
formats and where the edge was written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import (
    AudioFormatError,
    ConfigError,
    FormatNegotiationError,
    SourceLocation,
    UnknownNodeTypeError,
)
from ..formats import AudioCaps, AudioFormat, Encoding
from ..node import Node, NodeParams, Port
from .plan import PlannedEdge, PlannedNode

__all__ = ["ConversionStep", "conversion_steps", "negotiate"]

RESAMPLE = "convert.resample"
CHANNELS = "convert.channels"
SAMPLE_FORMAT = "convert.sample_format"
G711 = "convert.g711"
RECHUNK = "convert.rechunk"
_G711 = (Encoding.MULAW, Encoding.ALAW)


@dataclass(frozen=True, slots=True)
class ConversionStep:
    """One converter to insert: its node type, params and output format."""

    type_name: str
    params: dict[str, Any]
    out: AudioFormat
    label: str


def conversion_steps(src: AudioFormat, caps: AudioCaps) -> list[ConversionStep]:
    """The converters that turn ``src`` into a format ``caps`` accepts (maybe none).

    Raises ``ValueError`` saying why when there is no such chain.
    """
    if caps.accepts(src):
        return []
    target = caps.fixate(src)
    for enc in (src.encoding, target.encoding):
        if not enc.is_pcm and enc not in _G711:
            raise ValueError(f"no converter handles {enc.value} (packet codecs stay at transports)")
    steps: list[ConversionStep] = []
    cur = src
    if cur.encoding in _G711:
        cur = cur.replace(encoding=Encoding.PCM_S16LE)
        steps.append(ConversionStep(G711, {"encoding": cur.encoding.value}, cur, "decode"))
    pcm_target = Encoding.PCM_S16LE if target.encoding in _G711 else target.encoding
    if target.channels < cur.channels:
        cur = cur.replace(channels=target.channels)
        steps.append(ConversionStep(CHANNELS, {"channels": target.channels}, cur, "channels"))
    if target.rate != cur.rate:
        cur = cur.replace(rate=target.rate)
        steps.append(ConversionStep(RESAMPLE, {"rate": target.rate}, cur, "resample"))
    if target.channels > cur.channels:
        cur = cur.replace(channels=target.channels)
        steps.append(ConversionStep(CHANNELS, {"channels": target.channels}, cur, "channels"))
    if pcm_target != cur.encoding:
        cur = cur.replace(encoding=pcm_target)
        steps.append(ConversionStep(SAMPLE_FORMAT, {"encoding": pcm_target.value}, cur, "format"))
    if target.encoding in _G711:
        cur = cur.replace(encoding=target.encoding)
        steps.append(ConversionStep(G711, {"encoding": cur.encoding.value}, cur, "encode"))
    return steps


def _carries_audio(port: Port) -> bool:
    return port.carries_audio


def negotiate(
    nodes: Mapping[str, PlannedNode],
    edges: list[PlannedEdge],
    order: list[str],
    resolve_type: Callable[[str], type[Node]],
) -> tuple[dict[str, PlannedNode], list[PlannedEdge]]:
    """Fix formats along ``edges`` (in topological ``order``) and insert converters.

    ``resolve_type(name) -> type[Node]`` finds converter classes. Returns the
    nodes (converters placed right after their producer) and the new edges.
    """
    out_formats: dict[tuple[str, str], AudioFormat] = {}
    out_chunks: dict[tuple[str, str], float] = {}
    new_edges: list[PlannedEdge] = []
    inserted: dict[str, list[PlannedNode]] = {}
    used: set[str] = set(nodes)
    into: dict[str, list[PlannedEdge]] = {}
    for e in edges:
        into.setdefault(e.dst, []).append(e)
    for nid in order:
        planned = nodes[nid]
        input_formats: dict[str, AudioFormat] = {}
        for edge in into.get(nid, ()):
            src_fmt = out_formats.get((edge.src, edge.src_port))
            dst_port = planned.inputs[edge.dst_port]
            if src_fmt is None or not _carries_audio(dst_port):
                new_edges.append(edge)
                continue
            caps = dst_port.caps or AudioCaps()
            agreed = input_formats.get(edge.dst_port)
            if agreed is not None:
                caps = AudioCaps.exactly(agreed)
            try:
                steps = conversion_steps(src_fmt, caps)
                want = dst_port.chunk_ms
                promised = out_chunks.get((edge.src, edge.src_port))
                if any(step.type_name == RESAMPLE for step in steps):
                    promised = None  # resampled chunks vary by a sample
                if want is not None and promised != want:
                    fixed = steps[-1].out if steps else src_fmt
                    if fixed.samples_for_ms(want) < 1:
                        raise ValueError(f"{want} ms is less than one sample at {fixed.rate} Hz")
                    steps.append(ConversionStep(RECHUNK, {"chunk_ms": want}, fixed, "rechunk"))
            except ValueError as exc:
                raise FormatNegotiationError(
                    f"edge {edge.name}: {src_fmt} does not fit what '{nid}.{edge.dst_port}' "
                    f"accepts ({caps}): {exc}",
                    location=edge.location,
                    node_id=nid,
                    field="to",
                ) from None
            prev_id, prev_port = edge.src, edge.src_port
            fmt = src_fmt
            for k, step in enumerate(steps):
                conv_id = _converter_id(edge, k, len(steps), step.label, used)
                used.add(conv_id)
                try:
                    cls: type[Node] = resolve_type(step.type_name)
                except UnknownNodeTypeError:
                    raise FormatNegotiationError(
                        f"edge {edge.name}: {src_fmt} → {step.out} needs the converter "
                        f"'{step.type_name}', which is not registered",
                        location=edge.location,
                        node_id=nid,
                        field="to",
                    ) from None
                params: NodeParams = cls.Params.model_validate(step.params)
                ins, outs = cls.ports(params)
                conv = PlannedNode(
                    id=conv_id,
                    cls=cls,
                    params=params,
                    inputs=ins,
                    outputs=outs,
                    location=edge.location,
                    inserted_for=edge.name,
                )
                inserted.setdefault(edge.src, []).append(conv)
                in_port, out_port = next(iter(ins)), next(iter(outs))
                new_edges.append(
                    PlannedEdge(
                        prev_id, prev_port, conv_id, in_port, edge.queue, fmt, edge.location
                    )
                )
                prev_id, prev_port, fmt = conv_id, out_port, step.out
            new_edges.append(replace(edge, src=prev_id, src_port=prev_port, fmt=fmt))
            input_formats.setdefault(edge.dst_port, fmt)
        try:
            produced = planned.cls.output_formats(planned.params, input_formats)
        except ConfigError as exc:
            raise _placed(exc, planned.location, nid) from None
        except (AudioFormatError, ValueError) as exc:
            # A node refusing its negotiated input (e.g. a rate pair it cannot do).
            raise ConfigError(str(exc), location=planned.location, node_id=nid) from None
        for port, fmt in produced.items():
            out_formats[(nid, port)] = fmt
        for port, ms in planned.cls.output_chunk_ms(planned.params).items():
            out_chunks[(nid, port)] = ms
    ordered: dict[str, PlannedNode] = {}
    for nid in order:
        ordered[nid] = nodes[nid]
        for conv in inserted.get(nid, []):
            ordered[conv.id] = conv
    return ordered, new_edges


def _converter_id(edge: PlannedEdge, k: int, count: int, label: str, used: set[str]) -> str:
    """``src~dst.resample`` (``src~dst.0.channels`` ... for several), unique in the plan.

    ``~`` cannot appear in a written node id, so these never clash with the
    user's; a second converted edge between the same two nodes gets ``-2``.
    """
    base = f"{edge.src}~{edge.dst}." + (f"{k}.{label}" if count > 1 else label)
    conv_id, n = base, 1
    while conv_id in used:
        n += 1
        conv_id = f"{base}-{n}"
    return conv_id


def _placed(exc: ConfigError, location: SourceLocation | None, node_id: str) -> ConfigError:
    if exc.location is not None and exc.node_id is not None:
        return exc
    return type(exc)(
        exc.message,
        location=exc.location or location,
        node_id=exc.node_id or node_id,
        field=exc.field,
    )
