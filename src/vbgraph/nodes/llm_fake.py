"""The ``llm.fake`` node: a modelled LLM with the time to first token and speed you choose."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from ..events import AgentReplied, Metric
from ..frames import Frame, LLMTokenFrame, TextFrame, TranscriptFrame
from ..node import Node, NodeContext, NodeParams, Port, frame_port, text_port
from ..registry import register
from ._modelled import Faults, Latency, LatencySampler
from ._params import typed

__all__ = ["LlmFake"]

_TOKEN = re.compile(r"\S+\s*")


@register
class LlmFake(Node):
    """Example launch line::

        nodes:
          llm: {type: llm.fake, replies: ["We open at nine."], ttft: {p50_ms: 300, p95_ms: 700}}
          out: {type: log}
        edges: [llm -> out]

    Stands in for an LLM in latency experiments and tests, at no cost: the
    same ports and events as ``llm.openai``. Each final user turn on ``in``
    gets the next reply of ``replies`` (cycled; ``{text}`` in a reply is
    replaced by what the user said). The first token leaves ``ttft`` after
    the turn (drawn from the latency model), the rest at ``tokens_per_s``
    (a token is a word here). The whole reply then goes out on ``text`` and
    is published as ``AgentReplied``; ``Metric("llm.fake.ttft_ms")`` reports
    the draw. Interruptible: a barge-in stops the reply where it is
    (``AgentReplied(interrupted=True)`` with what was generated).
    """

    type_name: ClassVar[str] = "llm.fake"
    interruptible: ClassVar[bool] = True

    class Params(NodeParams):
        """Parameters of ``llm.fake``."""

        replies: list[str] = Field(
            default_factory=lambda: ["You said: {text}"],
            min_length=1,
            description="Replies in turn (cycled); {text} is the user's words.",
        )
        ttft: Latency = Field(
            default_factory=lambda: Latency(p50_ms=350, p95_ms=800),
            description="Time to first token after the user's turn.",
        )
        tokens_per_s: float = Field(
            60.0, gt=0, le=10_000, description="Streaming speed after the first token."
        )
        faults: Faults = Field(
            default_factory=Faults, description="Failures to inject (testing fallbacks)."
        )
        seed: int = Field(0, description="Seed of the latency draws (with the session id).")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(TextFrame, TranscriptFrame, doc="The user's turn (final text).")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(LLMTokenFrame, doc="The reply as it streams."),
        "text": text_port(doc="The whole reply, once it is complete (optional)."),
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._p = typed(params, LlmFake.Params)
        self._sampler: LatencySampler | None = None
        self._turns = 0

    def start(self) -> None:
        """Seed the latency draws for this session."""
        self._p.faults.check_start(self.id)
        self._sampler = LatencySampler(self._p.ttft, self._p.seed, self.ctx.session_id)

    async def process(self, port: str, frame: Frame) -> None:
        """Answer one user turn, streaming the reply token by token."""
        if isinstance(frame, TranscriptFrame) and not frame.final:
            return
        if not isinstance(frame, (TextFrame, TranscriptFrame)) or not frame.text.strip():
            return
        assert self._sampler is not None
        reply = self._p.replies[self._turns % len(self._p.replies)].replace("{text}", frame.text)
        self._turns += 1
        if not self._p.faults.check_request(self.id, self._turns - 1):
            return
        epoch = self.ctx.epoch
        ttft = self._sampler.draw_s()
        said = ""
        try:
            await asyncio.sleep(ttft)
            self.ctx.publish(Metric(metric="llm.fake.ttft_ms", value=ttft * 1e3, unit="ms"))
            for i, token in enumerate(_TOKEN.findall(reply)):
                if i:
                    await asyncio.sleep(1 / self._p.tokens_per_s)
                said += token
                self.emit("out", LLMTokenFrame(token, pts=self.ctx.now_ns(), epoch=epoch))
        except asyncio.CancelledError:
            # An interruption, not an error: report what was generated, then stop.
            self.ctx.publish(AgentReplied(text=said.strip(), epoch=epoch, interrupted=True))
            raise
        self.emit("text", TextFrame(reply, pts=self.ctx.now_ns(), epoch=epoch))
        self.ctx.publish(AgentReplied(text=reply, epoch=epoch))
