"""Exotel AgentStream (the Voicebot applet: bidirectional), sans-I/O.

Twilio's protocol in snake case, carrying linear PCM instead of μ-law::

    {"event": "connected"}
    {"event": "start", "sequence_number": "1", "stream_sid": "MZ..", "start": {
        "stream_sid": "MZ..", "call_sid": "CA..", "account_sid": "AC..",
        "from": "+9198..", "to": "+9180..", "custom_parameters": {"k": "v"},
        "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}}
    {"event": "media", "sequence_number": "3", "stream_sid": "MZ..", "media": {
        "chunk": "2", "timestamp": "200", "payload": "<base64 PCM16 LE>"}}
    {"event": "dtmf", "stream_sid": "MZ..", "dtmf": {"digit": "5", "duration": "100"}}
    {"event": "mark", "stream_sid": "MZ..", "mark": {"name": "audio@1600"}}
    {"event": "stop", "stream_sid": "MZ..", "stop": {"call_sid": "CA..", "reason": "callended"}}

Audio is raw PCM16 little-endian mono ("slin") at 8000 Hz, or 16000/24000
when the applet URL asks (``?sample-rate=16000``); frames arrive every
~100 ms. We send ``media`` (``{"event", "stream_sid", "media": {"payload"}}``),
``mark`` and ``clear`` with ``stream_sid``. Exotel asks outgoing chunks to
be multiples of 320 bytes, at least 3.2 kB and at most 100 kB: the bot's
20 ms chunks are gathered into such messages (the tail of an utterance is
padded with silence to 320 bytes before its mark).

The start's ``from``, ``to`` and ``custom_parameters`` become parameters.
Exotel authenticates with an IP allow-list or Basic credentials in the URL
(sent as an ``Authorization`` header): the server's guard, not this module.
"""

from __future__ import annotations

from ...formats import AudioFormat
from ._common import (
    TWILIO_STYLE_EVENTS,
    CallStarted,
    Dialect,
    DtmfReceived,
    Framing,
    MarkEchoed,
    MediaReceived,
    Message,
    StreamConnected,
    StreamStopped,
    WireEvent,
    check_stream_id,
    decode_audio,
    twilio_style_encoders,
)

__all__ = ["EXOTEL", "RATES", "exotel_framing"]

RATES = (8000, 16000, 24000)
"""Sample rates an Exotel stream can carry."""


def exotel_framing(fmt: AudioFormat) -> Framing:
    """Outgoing chunks: multiples of 320 bytes, 3200 bytes to 100 kB (Exotel's limits)."""
    return Framing(unit=320, minimum=3200, maximum=100_000 - 100_000 % 320)


def _decode(msg: Message, call: CallStarted | None) -> WireEvent:
    check_stream_id(msg, "stream_sid", call)
    event = msg.event
    if event == "media":
        return MediaReceived(
            decode_audio(msg, "media.payload", call),
            chunk=msg.number("media.chunk", -1),
            timestamp_ms=msg.number("media.timestamp", -1),
        )
    if event == "mark":
        return MarkEchoed(msg.text("mark.name"))
    if event == "start":
        return _start(msg)
    if event == "connected":
        return StreamConnected()
    if event == "dtmf":
        return DtmfReceived(msg.text("dtmf.digit"), msg.number("dtmf.duration", -1))
    if event == "stop":
        return StreamStopped(msg.text("stop.reason", "stop"))
    raise msg.error("is not an event of this dialect")  # not in the dialect's events


def _start(msg: Message) -> CallStarted:
    encoding = msg.text("start.media_format.encoding", "audio/x-raw")
    rate = msg.number("start.media_format.sample_rate", 8000)
    if rate not in RATES:
        raise msg.error(
            f"is {rate}; Exotel streams 8000, 16000 or 24000 Hz", "start.media_format.sample_rate"
        )
    if encoding != "audio/x-raw":
        raise msg.error(
            f"is {encoding!r}; expected audio/x-raw (PCM16)", "start.media_format.encoding"
        )
    bits = msg.number("start.media_format.bit_rate", 16)
    if bits != 16:
        raise msg.error(f"is {bits}; raw audio here is 16-bit", "start.media_format.bit_rate")
    fmt = AudioFormat(rate)
    sid_path = "start.stream_sid" if msg.has("start.stream_sid") else "stream_sid"
    parameters = msg.params("start.custom_parameters")
    for key in ("from", "to"):
        if msg.has(f"start.{key}"):
            parameters.setdefault(key, msg.text(f"start.{key}"))
    return CallStarted(
        stream_id=msg.text(sid_path),
        call_id=msg.text("start.call_sid"),
        caller_format=fmt,
        bot_format=fmt,
        account_id=msg.text("start.account_sid", ""),
        parameters=parameters,
    )


_media, _mark, _clear = twilio_style_encoders("stream_sid")


EXOTEL = Dialect(
    name="exotel",
    path="/exotel",
    events=TWILIO_STYLE_EVENTS,
    decode=_decode,
    encode_media=_media,
    encode_mark=_mark,
    encode_clear=_clear,
    framing=exotel_framing,
)
"""The Exotel AgentStream dialect."""
