"""The ``fallback`` slot: several providers for one job, the next taking over when one fails."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from ..events import Event, NodeError, UserSpeechStopped
from ..formats import AudioFormat
from ..frames import Frame, LLMTokenFrame, TextFrame, TranscriptFrame
from ..node import Node, NodeContext, NodeParams, Port
from ..registry import register
from ._fallback_slot import SlotState, member_port
from ._params import typed

__all__ = ["Fallback"]


@register
class Fallback(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts:
            type: fallback
            providers:
              - {type: tts.fake, ttfb: {p50_ms: 100}}
              - {type: tts.fake, ttfb: {p50_ms: 300}, sample_rate: 16000}
            ttfb_timeout_ms: 2000
          out: {type: log}
        edges: [agent -> tts -> out]

    Any provider slot (STT, LLM, TTS, speech-to-speech) may list several
    providers, most preferred first. Input goes to the active one. When it
    fails (its ``start`` fails, it reports an error, or it owes output for
    longer than ``ttfb_timeout_ms``) the next one takes over *for that turn*:
    the input frames of the unanswered turn are sent to it again, so no user
    turn is lost. The failed provider rests (``retry_after_s``, doubling with
    each failure) and is taken back when it is due, at the next turn. Each
    switch is published as ``ProviderSwitched``. Output of a provider that
    was switched away from is dropped and counted.

    Each provider keeps its own formats: the compiler negotiates the route to
    each provider separately (converters are inserted where one needs another
    rate), and the slot's audio output has the first provider's format (the
    others are converted to it).

    Audio-input slots (STT, speech-to-speech) expect output from the end of
    the user's speech (``UserSpeechStopped``); text-input slots (LLM, TTS)
    from each new piece of text.
    """

    type_name: ClassVar[str] = "fallback"
    subscribes: ClassVar[tuple[type[Event], ...] | None] = (NodeError, UserSpeechStopped)

    class Params(NodeParams):
        """Parameters of ``fallback``."""

        providers: list[dict[str, Any]] = Field(
            min_length=1,
            description="Provider nodes, most preferred first: {type: ..., <its params>}.",
        )
        ttfb_timeout_ms: float = Field(
            3000, gt=0, le=120_000, description="Longest wait for owed output before switching."
        )
        retry_after_s: float = Field(
            30, ge=0, le=3600, description="Rest after a failure (doubles each time)."
        )
        replay_max_frames: int = Field(
            3000,
            ge=1,
            description="Input frames of an unanswered turn kept for a replay (60 s of 20 ms "
            "audio); older ones are dropped, counted.",
        )
        _members: list[tuple[str, Mapping[str, Port], Mapping[str, Port]]] = PrivateAttr(
            default_factory=list
        )

    params: Params

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = typed(params, Fallback.Params)
        self._member_ids = [mid for mid, _, _ in p._members]
        self._audio_input = any(
            port.carries_audio for _, ins, _ in p._members for port in ins.values()
        )
        self._member_inputs = [set(ins) for _, ins, _ in p._members]
        self._state: SlotState | None = None

    # -- negotiation ----------------------------------------------------------------------

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """Inputs: every provider's inputs; outputs: one per provider input (``m<i>_<port>``)."""
        p = typed(params, cls.Params)
        inputs: dict[str, Port] = {}
        outputs: dict[str, Port] = {}
        for i, (_, ins, _) in enumerate(p._members):
            for name, port in ins.items():
                inputs.setdefault(name, port)
                outputs[member_port(i, name)] = Port(
                    kinds=port.kinds,
                    caps=port.caps,
                    same_as=name if port.carries_audio else None,
                )
        return inputs, outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """Each provider gets the slot's input format (converted on its own edge if needed)."""
        out: dict[str, AudioFormat] = {}
        for name, port in cls.ports(params)[1].items():
            if port.same_as is not None and port.same_as in inputs:
                out[name] = inputs[port.same_as]
        return out

    @classmethod
    def output_chunk_ms(cls, params: NodeParams) -> dict[str, float]:
        """Chunks pass through unchanged, so no promise of our own."""
        return {}

    # -- running --------------------------------------------------------------------------

    @property
    def state(self) -> SlotState:
        """The slot's shared state (active provider, counters)."""
        return self._ensure_state()

    def start(self) -> None:
        """Make the shared slot state (if a provider's failed start has not already)."""
        self._ensure_state()

    def _ensure_state(self) -> SlotState:
        if self._state is not None:
            return self._state
        p = self._p
        self._state = self.ctx.shared(
            f"fallback:{self.id}",
            lambda: SlotState(
                self.id,
                self._member_ids,
                p.ttfb_timeout_ms / 1000,
                p.retry_after_s,
                p.replay_max_frames,
            ),
        )
        self._state.resend = self._send
        return self._state

    def process(self, port: str, frame: Frame) -> None:
        """Send to the active provider; remember the frame until the turn is answered."""
        state = self.state
        self._restore_preferred()
        state.remember(port, frame)
        self._send(state.active, port, frame)
        if isinstance(frame, (TextFrame, LLMTokenFrame)) or (
            isinstance(frame, TranscriptFrame) and frame.final
        ):
            self._expect()

    def on_event(self, event: Event) -> None:
        """A provider's error switches away from it; the end of speech starts the clock."""
        if isinstance(event, NodeError) and event.node_id in self._member_ids:
            self._ensure_state()  # providers start before the route: this may come first
            index = self._member_ids.index(event.node_id)
            self._failed(index, f"{event.phase} failed: {event.error_type}: {event.message}")
        elif isinstance(event, UserSpeechStopped) and self._audio_input:
            self._expect()

    def on_interrupt(self, epoch: int) -> None:
        """The unanswered turn is stale: nothing to replay or wait for."""
        self.state.reset_turn()

    # -- helpers ----------------------------------------------------------------------------

    def _send(self, index: int, port: str, frame: Frame) -> None:
        if port in self._member_inputs[index]:
            self.emit(member_port(index, port), frame)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _expect(self) -> None:
        self.state.expect(self._now(), self._timed_out)

    def _timed_out(self) -> None:
        state = self.state
        self._failed(state.active, f"no output within {self._p.ttfb_timeout_ms:g} ms")

    def _failed(self, index: int, reason: str) -> None:
        state = self.state
        now = self._now()
        state.fail(index, now)
        if index != state.active:
            return
        to = state.pick(now, exclude=index)
        if to != index:
            state.switch(to, reason, self.ctx.publish)

    def _restore_preferred(self) -> None:
        # Only between turns: never move a turn that is being answered.
        state = self.state
        if state.expecting_since is not None or state.replay:
            return
        best = state.pick(self._now())
        if best < state.active:
            state.switch(best, "recovered", self.ctx.publish)
