"""A simulated caller: drive a served graph's ``transport.in``/``transport.out`` with no network.

.. code-block:: python

    from vbgraph.testing import VirtualClock, simulate_call

    plan = vb.load("graphs/phone_assistant.yaml").compile()
    call = VirtualClock().run(simulate_call(plan, ulaw_audio, caller_format=MULAW_8K))
    assert call.result.ok and call.bot_audio

It plays the part of a transport shell: it pushes the caller's audio into a
:class:`~vbgraph.transports.link.CallLink` in ``chunk_ms`` packets at real time
(instant on a :class:`~vbgraph.testing.VirtualClock`), collects everything the
graph sends back, hangs up ``tail_ms`` after its audio ends, and returns the
session's result with what was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ..events import Event
from ..formats import AudioFormat
from ..graph.plan import Plan
from ..runtime.session import Session, SessionResult
from ..transports.link import CallLink, Outbound, OutboundAudio, OutboundClear, OutboundMark

__all__ = ["CallRecording", "simulate_call"]


@dataclass
class CallRecording:
    """What a simulated call saw."""

    result: SessionResult
    link: CallLink
    outbound: list[tuple[int, Outbound]] = field(default_factory=list)
    """Everything the graph sent, with the session time (ns) it was sent at."""

    @property
    def bot_audio(self) -> bytes:
        """All bot audio received, in the link's ``bot_format``."""
        return b"".join(o.payload for _, o in self.outbound if isinstance(o, OutboundAudio))

    @property
    def clears(self) -> int:
        """How many times the graph told the caller to drop buffered audio."""
        return sum(isinstance(o, OutboundClear) for _, o in self.outbound)

    @property
    def marks(self) -> list[str]:
        """Names of the marks the graph sent, in order."""
        return [o.name for _, o in self.outbound if isinstance(o, OutboundMark)]


async def simulate_call(
    plan: Plan,
    audio: bytes,
    *,
    caller_format: AudioFormat,
    bot_format: AudioFormat | None = None,
    chunk_ms: float = 20.0,
    tail_ms: float = 2000.0,
    transport: str = "simulated",
    on_event: Callable[[Event], None] | None = None,
) -> CallRecording:
    """Run one call of ``plan`` with ``audio`` as the caller; see the module docstring.

    ``on_event`` is called with every bus event of the call.
    """
    link = CallLink(transport, caller_format, bot_format or caller_format, call_id="simulated")
    session = Session(plan, attachments=[link])
    if on_event is not None:
        session.bus.subscribe(Event, "simulate_call", on_event)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outbound: list[tuple[int, Outbound]] = []

    async def receive() -> None:
        while (item := await link.next_outbound()) is not None:
            outbound.append((int((loop.time() - t0) * 1e9), item))

    async def speak() -> None:
        step = caller_format.bytes_for_ms(chunk_ms)
        for i, start in enumerate(range(0, len(audio), step)):
            link.push_audio(audio[start : start + step])
            await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_ms / 1000 - loop.time()))
        await asyncio.sleep(tail_ms / 1000)
        link.end_input("hangup")

    receiver = asyncio.create_task(receive())
    await session.start()
    speaker = asyncio.create_task(speak())
    try:
        result = await session.wait()
    finally:
        speaker.cancel()
        link.close_output()
        await asyncio.gather(speaker, receiver, return_exceptions=True)
    return CallRecording(result, link, outbound)
