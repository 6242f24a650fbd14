"""Spans: one per session, one per turn with a child per stage, provider calls as client spans.

Theory of operation
-------------------
The session span is started when the session starts and ended when it
finishes; it is the current span in every task of the session (the runtime
runs them in the context :meth:`SessionWatch.task_context` gives), so a log
record written by a node carries its trace id (:class:`TraceContextFilter`).

A turn's spans are made when the turn is finished, from the event times the
:class:`~vbgraph.observability.turns.TurnTracker` collected: each span gets an
explicit start and end, session time mapped to wall time (``wall(t)``, the
wall clock at session time 0 plus ``t``). On a virtual clock the spans
therefore show the modelled times, laid out from the real start.

Stage spans (children of the turn span), each present when both ends are known:

======================  =========================================  ====================
span                    from                                       to
======================  =========================================  ====================
``user_speech``         ``UserSpeechStarted``                      ``UserSpeechStopped``
``stt``                 ``UserSpeechStopped`` (VAD stop)           ``TranscriptReceived``
``end_of_turn``         ``UserSpeechStopped``                      ``TurnEnded``
``llm``                 ``TurnEnded``                              first LLM token (else
                                                                   ``AgentReplied``)
``tts``                 first LLM token (else ``AgentReplied``)    ``BotSpeechStarted``
``bot_speech``          ``BotSpeechStarted`` (first audio out)     ``BotSpeechStopped``
======================  =========================================  ====================

Provider requests are ``CLIENT`` spans under the turn: ``chat {model}`` with
the ``gen_ai.*`` attributes for an LLM (request to the end of the reply),
``transcribe`` and ``synthesize`` for STT and TTS (request to the first
result: the latency the provider reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Tracer

from .turns import ProviderCall, Turn

__all__ = ["STAGES", "TraceContextFilter", "client_span_name", "turn_spans"]

Attributes = Mapping[str, Any]
Wall = Callable[[int], int]

STAGES: tuple[tuple[str, str, str], ...] = (
    ("user_speech", "user_start", "user_stop"),
    ("stt", "user_stop", "transcript"),
    ("end_of_turn", "user_stop", "turn_end"),
    ("llm", "turn_end", "first_reply"),
    ("tts", "first_reply", "bot_start"),
    ("bot_speech", "bot_start", "bot_stop"),
)
"""Stage span name, and the :class:`Turn` fields it runs from and to."""

_CLIENT_NAMES = {"stt": "transcribe", "tts": "synthesize"}


def _times(turn: Turn) -> list[int]:
    times = [
        t
        for t in (
            turn.user_start,
            turn.user_stop,
            turn.transcript,
            turn.turn_end,
            turn.agent,
            turn.bot_start,
            turn.bot_stop,
        )
        if t is not None
    ]
    for call in (turn.stt, turn.llm, turn.tts):
        if call is not None:
            times += [call.start, call.first] + ([call.end] if call.end is not None else [])
    return times


def turn_spans(
    tracer: Tracer,
    parent: Context,
    turn: Turn,
    wall: Wall,
    *,
    attributes: Attributes,
    call_attributes: Callable[[ProviderCall], tuple[str, Attributes]],
    record_text: bool = False,
) -> None:
    """Make the spans of one finished turn (see the module docstring)."""
    times = _times(turn)
    if not times:
        return
    attrs: dict[str, Any] = {
        **attributes,
        "vbgraph.turn.number": turn.number,
        "vbgraph.turn.interrupted": turn.interrupted,
    }
    if turn.intent:
        attrs["vbgraph.turn.intent"] = turn.intent
    for key, value in (
        ("vbgraph.turn.voice_to_voice", turn.voice_to_voice_ns),
        ("vbgraph.turn.end_of_turn_delay", turn.end_of_turn_delay_ns),
    ):
        if value is not None:
            attrs[key] = value / 1e9
    if record_text:
        attrs["vbgraph.turn.user_text"] = turn.text
        if turn.reply is not None:
            attrs["vbgraph.turn.bot_text"] = turn.reply
    span = tracer.start_span("turn", context=parent, attributes=attrs, start_time=wall(min(times)))
    ctx = trace.set_span_in_context(span, parent)
    for name, a, b in STAGES:
        start, end = getattr(turn, a), getattr(turn, b)
        if start is None or end is None or end < start:
            continue
        stage = tracer.start_span(
            name, context=ctx, attributes={"vbgraph.stage": name}, start_time=wall(start)
        )
        stage.end(end_time=wall(end))
    for call in (turn.stt, turn.llm, turn.tts):
        if call is None:
            continue
        name, call_attrs = call_attributes(call)
        client = tracer.start_span(
            name,
            context=ctx,
            kind=SpanKind.CLIENT,
            attributes=call_attrs,
            start_time=wall(call.start),
        )
        client.add_event("first_result", timestamp=wall(call.first))
        client.end(end_time=wall(call.end if call.end is not None else call.first))
    span.end(end_time=wall(max(times)))


def client_span_name(call: ProviderCall, model: str | None) -> str:
    """``chat {model}`` for an LLM (the GenAI convention), ``transcribe``/``synthesize`` else."""
    if call.stage == "llm":
        return f"chat {model}" if model else "chat"
    return _CLIENT_NAMES.get(call.stage, call.stage)


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex; empty outside a span) to each log record.

    Inside a session's tasks the current span is the session span, so a
    node's log lines can be joined with its trace. Use the fields in a format::

        handler.addFilter(TraceContextFilter())
        handler.setFormatter(logging.Formatter("%(message)s trace_id=%(trace_id)s"))

    or call :meth:`install` once logging is configured.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record; never drops it."""
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        else:
            record.trace_id = record.span_id = ""
        return True

    @classmethod
    def install(
        cls, logger: logging.Logger | None = None, fmt: str | None = None
    ) -> TraceContextFilter:
        """Add one filter to every handler of ``logger`` (the root logger by default).

        With ``fmt``, those handlers also get that format (it may use
        ``%(trace_id)s`` and ``%(span_id)s``). Handlers added later are not
        covered: add the filter to them yourself.
        """
        target = logger if logger is not None else logging.getLogger()
        flt = cls()
        for handler in target.handlers:
            if not any(isinstance(f, cls) for f in handler.filters):
                handler.addFilter(flt)
            if fmt is not None:
                handler.setFormatter(logging.Formatter(fmt))
        return flt
