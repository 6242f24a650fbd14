"""Vonage Voice API WebSocket endpoints (NCCO ``connect`` to ``websocket``), sans-I/O.

Unlike the others, audio travels in *binary* frames: raw PCM16
little-endian mono at 16000 or 8000 Hz, 20 ms per frame (640 or 320 bytes).
Text frames carry JSON events. The first is::

    {"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "k": "v", ...}

where the extra keys are the NCCO endpoint's ``headers``. Later::

    {"event": "websocket:dtmf", "digit": "5", "duration": 260}
    {"event": "websocket:notify", "payload": {"mark": "audio@3200"}}
    {"event": "websocket:cleared"}

We send binary audio frames of exactly 20 ms (Vonage buffers about 20 s;
chunks of other sizes are cut and the tail of an utterance padded with
silence), ``{"action": "notify", "payload": {"mark": name}}`` (answered by
``websocket:notify`` with the same payload once the audio queued before it
has played) and ``{"action": "clear"}`` (answered by ``websocket:cleared``;
notifies whose audio was cleared are never answered).

There is no stop message: the call ends when the socket closes. The start
carries no call id (the server uses its own); the endpoint's headers become
parameters (nested values as JSON text). A binary frame before
``websocket:connected`` is refused like media before a start.
"""

from __future__ import annotations

from ...formats import AudioFormat
from ._common import (
    CallStarted,
    Dialect,
    DtmfReceived,
    Framing,
    MarkEchoed,
    MediaReceived,
    Message,
    PlaybackCleared,
    StreamProtocolError,
    WireEvent,
    to_json,
)

__all__ = ["RATES", "VONAGE", "parse_content_type", "vonage_framing"]

RATES = (8000, 16000)
"""Sample rates of Vonage ``audio/l16`` streams."""


def parse_content_type(value: str) -> AudioFormat:
    """``"audio/l16;rate=16000"`` → PCM16 mono at 16 kHz; ``ValueError`` for anything else."""
    kind, *params = (part.strip() for part in value.split(";"))
    if kind.lower() != "audio/l16":
        raise ValueError(f"{kind!r} is not audio/l16")
    rate = 0
    for param in params:
        key, _, number = param.partition("=")
        if key.strip().lower() == "rate":
            rate = int(number) if number.strip().isdigit() else 0
    if rate not in RATES:
        raise ValueError(f"rate {rate or '(none)'} is not 8000 or 16000")
    return AudioFormat(rate)


def vonage_framing(fmt: AudioFormat) -> Framing:
    """One message per 20 ms frame, exactly (Vonage's rule)."""
    frame = fmt.bytes_for_ms(20)
    return Framing(unit=frame, minimum=frame, maximum=frame)


def _decode(msg: Message, call: CallStarted | None) -> WireEvent:
    event = msg.event
    if event == "websocket:notify":
        return MarkEchoed(msg.text("payload.mark"))
    if event == "websocket:connected":
        return _start(msg)
    if event == "websocket:cleared":
        return PlaybackCleared()
    if event == "websocket:dtmf":
        return DtmfReceived(msg.text("digit"), msg.number("duration", -1))
    raise msg.error("is not an event of this dialect")  # not in the dialect's events


def _start(msg: Message) -> CallStarted:
    try:
        fmt = parse_content_type(msg.text("content-type"))
    except ValueError as exc:
        raise msg.error(f"{exc}; expected audio/l16;rate=16000 or 8000", "content-type") from None
    headers = {k: v for k, v in msg.params("").items() if k not in ("event", "content-type")}
    return CallStarted(
        stream_id="",
        call_id=headers.get("uuid", ""),
        caller_format=fmt,
        bot_format=fmt,
        parameters=headers,
    )


def _decode_binary(data: bytes, call: CallStarted | None) -> WireEvent:
    if call is not None and len(data) % call.caller_format.frame_bytes:
        raise StreamProtocolError(
            "vonage", f"binary audio of {len(data)} bytes is not whole PCM16 samples", event="media"
        )
    return MediaReceived(bytes(data))


def _media(call: CallStarted, payload: bytes) -> bytes:
    return payload


def _mark(call: CallStarted, name: str) -> str:
    return to_json({"action": "notify", "payload": {"mark": name}})


def _clear(call: CallStarted) -> str:
    return to_json({"action": "clear"})


VONAGE = Dialect(
    name="vonage",
    path="/vonage",
    events={
        "websocket:connected": CallStarted,
        "websocket:dtmf": DtmfReceived,
        "websocket:notify": MarkEchoed,
        "websocket:cleared": PlaybackCleared,
    },
    decode=_decode,
    encode_media=_media,
    encode_mark=_mark,
    encode_clear=_clear,
    decode_binary=_decode_binary,
    framing=vonage_framing,
)
"""The Vonage WebSocket dialect."""
