"""Fake telephony providers: WebSocket *clients* that call our server as each provider would.

Written from ``../shared/protocols/twilio-media-streams.md``, not from our
dialect modules: each :class:`Wire` builds the provider's messages and checks
what the server sends back (field names, stream ids, audio format and
framing). :class:`FakeCall` drives one call: it streams audio in the
provider's frame size, models the provider's playout buffer on the loop's
clock (audio plays at real time; a mark is echoed when the audio queued
before it has played; a clear drops the buffer, then Twilio, Telnyx and
Exotel return the pending marks while Plivo and Vonage acknowledge the clear
and forget them), and records everything for the tests' assertions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Message = str | bytes


@dataclass
class Wire:
    """One provider's side of the protocol (what it sends, what it accepts)."""

    name: str
    encoding: str  # our AudioFormat encoding of the wire audio
    rate: int
    frame_ms: int = 20
    binary_audio: bool = False
    echo_pending_on_clear: bool = True
    stream_id: str = "MZ0123456789abcdef0123456789abcdef"
    call_id: str = "CA0123456789abcdef0123456789abcdef"

    @property
    def sample_bytes(self) -> int:
        return 2 if self.encoding == "pcm_s16le" else 1

    @property
    def frame_bytes(self) -> int:
        return self.rate * self.frame_ms // 1000 * self.sample_bytes

    def opening(self, parameters: Mapping[str, str]) -> list[Message]:
        """The messages that open the call (connected, start)."""
        sid, call = self.stream_id, self.call_id
        n = self.name
        if n == "twilio":
            return [
                _j(event="connected", protocol="Call", version="1.0.0"),
                _j(
                    event="start",
                    sequenceNumber="1",
                    streamSid=sid,
                    start={
                        "accountSid": "AC0123",
                        "streamSid": sid,
                        "callSid": call,
                        "tracks": ["inbound"],
                        "customParameters": dict(parameters),
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                ),
            ]
        if n == "telnyx":
            codec = "PCMA" if self.encoding == "alaw" else "PCMU"
            return [
                _j(event="connected", version="1.0.0"),
                _j(
                    event="start",
                    sequence_number="1",
                    stream_id=sid,
                    start={
                        "call_control_id": call,
                        "from": "+15550001111",
                        "to": "+15550002222",
                        "media_format": {"encoding": codec, "sample_rate": 8000, "channels": 1},
                    },
                ),
            ]
        if n == "plivo":
            kind = "audio/x-mulaw" if self.encoding == "mulaw" else "audio/x-l16"
            return [
                _j(
                    event="start",
                    sequenceNumber=1,
                    start={
                        "callId": call,
                        "streamId": sid,
                        "accountId": "MA0123",
                        "tracks": ["inbound"],
                        "mediaFormat": {"encoding": kind, "sampleRate": self.rate},
                    },
                    extra_headers=";".join(f"{k}={v}" for k, v in parameters.items()),
                )
            ]
        if n == "exotel":
            return [
                _j(event="connected"),
                _j(
                    event="start",
                    sequence_number="1",
                    stream_sid=sid,
                    start={
                        "stream_sid": sid,
                        "call_sid": call,
                        "account_sid": "AC0123",
                        "from": "+919800000000",
                        "to": "+918000000000",
                        "custom_parameters": dict(parameters),
                        "media_format": {
                            "encoding": "audio/x-raw",
                            "sample_rate": str(self.rate),
                            "bit_rate": "16",
                        },
                    },
                ),
            ]
        assert n == "vonage"
        return [
            _j(
                **{"event": "websocket:connected", "content-type": f"audio/l16;rate={self.rate}"},
                **parameters,
            )
        ]

    def media(self, payload: bytes, seq: int, chunk: int, ms: int) -> Message:
        if self.binary_audio:
            return payload
        data = base64.b64encode(payload).decode()
        if self.name == "twilio":
            media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(ms), "payload": data}
            return _j(event="media", sequenceNumber=str(seq), streamSid=self.stream_id, media=media)
        if self.name == "telnyx":
            media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(ms), "payload": data}
            return _j(
                event="media", sequence_number=str(seq), stream_id=self.stream_id, media=media
            )
        if self.name == "plivo":
            numbered: dict[str, Any] = {"track": "inbound", "chunk": chunk}
            numbered |= {"timestamp": str(ms), "payload": data}
            return _j(event="media", sequenceNumber=seq, streamId=self.stream_id, media=numbered)
        media = {"chunk": str(chunk), "timestamp": str(ms), "payload": data}
        return _j(event="media", sequence_number=str(seq), stream_sid=self.stream_id, media=media)

    def stop(self, seq: int) -> Message | None:
        if self.name == "twilio":
            stop = {"accountSid": "AC0123", "callSid": self.call_id}
            return _j(event="stop", sequenceNumber=str(seq), streamSid=self.stream_id, stop=stop)
        if self.name == "telnyx":
            return _j(event="stop", sequence_number=str(seq), stream_id=self.stream_id, stop={})
        if self.name == "exotel":
            stop = {"call_sid": self.call_id, "reason": "callended"}
            return _j(event="stop", sequence_number=str(seq), stream_sid=self.stream_id, stop=stop)
        return None  # Plivo and Vonage just close

    def echo(self, name: str, seq: int) -> Message:
        if self.name == "twilio":
            return _j(
                event="mark", sequenceNumber=str(seq), streamSid=self.stream_id, mark={"name": name}
            )
        if self.name == "telnyx":
            return _j(
                event="mark",
                sequence_number=str(seq),
                stream_id=self.stream_id,
                mark={"name": name},
            )
        if self.name == "exotel":
            return _j(
                event="mark",
                sequence_number=str(seq),
                stream_sid=self.stream_id,
                mark={"name": name},
            )
        if self.name == "plivo":
            return _j(event="playedStream", streamId=self.stream_id, name=name)
        return _j(event="websocket:notify", payload={"mark": name})

    def cleared(self) -> Message | None:
        if self.name == "plivo":
            return _j(event="clearedAudio", streamId=self.stream_id)
        if self.name == "vonage":
            return _j(event="websocket:cleared")
        return None

    def parse(self, message: Message, violations: list[str]) -> tuple[str, Any]:
        """What the server sent: ``("media", bytes)``, ``("mark", name)`` or ``("clear", None)``."""
        if isinstance(message, bytes):
            if not self.binary_audio:
                violations.append(f"{self.name}: unexpected binary message")
            elif len(message) != self.frame_bytes:
                violations.append(f"vonage: audio frame of {len(message)} bytes, not 20 ms")
            return "media", message
        msg = json.loads(message)
        if self.name == "vonage":
            action = msg.get("action")
            if action == "notify":
                return "mark", msg["payload"]["mark"]
            if action == "clear":
                return "clear", None
            violations.append(f"vonage: unknown message {msg}")
            return "unknown", msg
        event = msg.get("event")
        sid_key = {"twilio": "streamSid", "plivo": "streamId", "exotel": "stream_sid"}.get(
            self.name
        )
        if sid_key is not None and msg.get(sid_key) != self.stream_id:
            violations.append(f"{self.name}: {event} names stream {msg.get(sid_key)!r}")
        if self.name == "plivo":
            if event == "playAudio":
                media = msg["media"]
                kind = "audio/x-mulaw" if self.encoding == "mulaw" else "audio/x-l16"
                if media.get("contentType") != kind or media.get("sampleRate") != self.rate:
                    violations.append(f"plivo: playAudio format {media}")
                return "media", _b64(media["payload"], violations)
            if event == "checkpoint":
                return "mark", msg["name"]
            if event == "clearAudio":
                return "clear", None
        else:
            if event == "media":
                return "media", _b64(msg["media"]["payload"], violations)
            if event == "mark":
                return "mark", msg["mark"]["name"]
            if event == "clear":
                return "clear", None
        violations.append(f"{self.name}: unknown message {msg}")
        return "unknown", msg


def _j(**body: Any) -> str:
    return json.dumps(body)


def _b64(text: str, violations: list[str]) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        violations.append(f"invalid base64 payload {text[:20]!r}")
        return b""


WIRES: dict[str, Callable[[], Wire]] = {
    "twilio": lambda: Wire("twilio", "mulaw", 8000),
    "telnyx": lambda: Wire("telnyx", "alaw", 8000),
    "plivo": lambda: Wire("plivo", "pcm_s16le", 16000, echo_pending_on_clear=False),
    "exotel": lambda: Wire("exotel", "pcm_s16le", 8000, frame_ms=100),
    "vonage": lambda: Wire(
        "vonage", "pcm_s16le", 16000, binary_audio=True, echo_pending_on_clear=False
    ),
}


@dataclass
class FakeCall:
    """One call from a fake provider to ``url``; use ``async with``."""

    wire: Wire
    url: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    send_opening: bool = True
    latency_s: float = 0.0
    """Extra delay before audio plays (the provider's jitter buffer and the network)."""
    bot_audio: bytearray = field(default_factory=bytearray)
    order: list[tuple[str, Any]] = field(default_factory=list)
    echoed: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    ws: ClientConnection | None = None
    _seq: int = 1
    _chunk: int = 0
    _play_end: float = 0.0
    _pending: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None
    _writer: asyncio.Task[None] | None = None
    _outq: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)

    async def __aenter__(self) -> FakeCall:
        self.ws = await connect(self.url, additional_headers=dict(self.headers), proxy=None)
        if self.send_opening:
            for message in self.wire.opening(self.parameters):
                await self.send(message)
        self._reader = asyncio.create_task(self._read())
        self._writer = asyncio.create_task(self._write())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None and self._reader is not None and self._writer is not None
        await self.ws.close()
        await self._reader
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        for handle in self._pending.values():
            handle.cancel()

    async def _write(self) -> None:
        # Echoes and acks go out in the order the playout model produced them.
        while True:
            await self.send(await self._outq.get())

    async def send(self, message: Message) -> None:
        assert self.ws is not None
        self._seq += 1
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(message)

    async def send_audio(self, audio: bytes, *, realtime: bool = False) -> None:
        """Stream ``audio`` in the provider's frame size (paced at real time if asked)."""
        loop = asyncio.get_running_loop()
        size, t0 = self.wire.frame_bytes, loop.time()
        for n, offset in enumerate(range(0, len(audio), size)):
            if realtime:  # the provider's own clock: one frame per frame_ms
                await asyncio.sleep(max(0.0, t0 + n * self.wire.frame_ms / 1000 - loop.time()))
            self._chunk += 1
            ms = self._chunk * self.wire.frame_ms
            await self.send(
                self.wire.media(audio[offset : offset + size], self._seq, self._chunk, ms)
            )

    async def stop(self) -> None:
        """End the call as the provider does (a stop message where it has one, then close)."""
        message = self.wire.stop(self._seq)
        if message is not None:
            await self.send(message)
        assert self.ws is not None
        await self.ws.close()

    async def until(self, condition: Callable[[FakeCall], bool], give_up_s: float = 30.0) -> None:
        """Wait until ``condition(self)`` holds (checked at every change), or the close.

        ``give_up_s`` only turns a hung test into a failure; nothing waits for it.
        """

        async def wait() -> None:
            while not (condition(self) or self.closed):
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), give_up_s)
        except TimeoutError:
            raise AssertionError(
                f"{self.wire.name} call: condition not met; got {self.summary()}"
            ) from None

    def summary(self) -> str:
        kinds = [k for k, _ in self.order]
        return (
            f"{kinds.count('media')} media, marks {self.kinds('mark')[-3:]}, "
            f"{kinds.count('clear')} clears, echoed {self.echoed[-3:]}, close {self.close_code}"
        )

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def kinds(self, kind: str) -> list[Any]:
        return [value for k, value in self.order if k == kind]

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                self._note(message)
                self._notify()
        except ConnectionClosed:
            pass
        self.close_code = self.ws.close_code if self.ws.close_code is not None else 1006
        self.close_reason = self.ws.close_reason or ""
        self._notify()

    def _note(self, message: Message) -> None:
        kind, value = self.wire.parse(message, self.violations)
        if self.wire.name == "exotel" and self.order and self.order[-1][0] == "media":
            last = self.order[-1][1]
            if len(last) < 3200 and kind == "media":
                self.violations.append(f"exotel: {len(last)}-byte chunk followed by more audio")
        exotel_media = kind == "media" and self.wire.name == "exotel"
        if exotel_media and (len(value) % 320 or len(value) > 100_000):
            self.violations.append(f"exotel: chunk of {len(value)} bytes")
        self.order.append((kind, value))
        loop = asyncio.get_running_loop()
        now = loop.time()
        if kind == "media":
            self.bot_audio += value
            rate_bytes = self.wire.rate * self.wire.sample_bytes
            self._play_end = max(self._play_end, now) + len(value) / rate_bytes
        elif kind == "mark":
            when = max(self._play_end, now) + self.latency_s
            self._pending[value] = loop.call_at(when, self._played, value)
        elif kind == "clear":
            self._play_end = now
            pending, self._pending = self._pending, {}
            for name, handle in pending.items():
                handle.cancel()
                if self.wire.echo_pending_on_clear:
                    self._echo(name)
            ack = self.wire.cleared()
            if ack is not None:
                self._outq.put_nowait(ack)

    def _played(self, name: str) -> None:
        self._pending.pop(name, None)
        self._echo(name)

    def _echo(self, name: str) -> None:
        self.echoed.append(name)
        self._outq.put_nowait(self.wire.echo(name, self._seq))
        self._notify()
