"""Telnyx media streaming (Call Control ``streaming_start`` / TeXML ``<Stream>``), sans-I/O.

Twilio's protocol in snake case. Telnyx opens the WebSocket and sends::

    {"event": "connected", "version": "1.0.0"}
    {"event": "start", "sequence_number": "1", "stream_id": "32DE..", "start": {
        "call_control_id": "v3:..", "client_state": "..", "from": "+1..", "to": "+1..",
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}
    {"event": "media", "sequence_number": "4", "stream_id": "32DE..", "media": {
        "track": "inbound", "chunk": "2", "timestamp": "5", "payload": "<base64 RTP payload>"}}
    {"event": "dtmf", "stream_id": "32DE..", "dtmf": {"digit": "1"}}
    {"event": "mark", "stream_id": "32DE..", "mark": {"name": "audio@1600"}}
    {"event": "error", "payload": {"code": 100002, "title": "..", "detail": ".."}}
    {"event": "stop", "stream_id": "32DE..", "stop": {"call_control_id": "v3:.."}}

We send ``{"event": "media", "media": {"payload"}}``, ``{"event": "mark",
"mark": {"name"}}`` and ``{"event": "clear"}``. Bidirectional streaming needs
``stream_bidirectional_mode: rtp`` and a codec of ``PCMU`` (the default) or
``PCMA`` at 8000 Hz (``stream_bidirectional_codec``); we answer in the codec
the start announced. Other codecs (G722, OPUS, AMR-WB, L16) are refused at
the start with an error that names the field. Telnyx does not guarantee the
order of media frames: out-of-order chunks are counted, not reordered.

The call's ``from``, ``to`` and ``client_state`` become parameters. Hang-up
over REST (``POST /v2/calls/{call_control_id}/actions/hangup``, Bearer API
key) is left to a hang-up hook: closing the socket ends only the stream.
"""

from __future__ import annotations

from ...formats import ALAW, MULAW, AudioFormat
from ._common import (
    TWILIO_STYLE_EVENTS,
    CallStarted,
    Dialect,
    DtmfReceived,
    MarkEchoed,
    MediaReceived,
    Message,
    RemoteError,
    StreamConnected,
    StreamStopped,
    WireEvent,
    check_stream_id,
    decode_audio,
    twilio_style_encoders,
)

__all__ = ["CODECS", "TELNYX"]

CODECS: dict[str, AudioFormat] = {
    "PCMU": AudioFormat(8000, 1, MULAW),
    "PCMA": AudioFormat(8000, 1, ALAW),
}
"""The ``media_format.encoding`` values we stream, and their audio format."""


def _decode(msg: Message, call: CallStarted | None) -> WireEvent:
    check_stream_id(msg, "stream_id", call)
    event = msg.event
    if event == "media":
        return MediaReceived(
            decode_audio(msg, "media.payload", call),
            track=msg.text("media.track", "inbound"),
            chunk=msg.number("media.chunk", -1),
            timestamp_ms=msg.number("media.timestamp", -1),
        )
    if event == "mark":
        return MarkEchoed(msg.text("mark.name"))
    if event == "start":
        return _start(msg)
    if event == "connected":
        return StreamConnected("", msg.text("version", ""))
    if event == "dtmf":
        return DtmfReceived(msg.text("dtmf.digit"))
    if event == "error":
        where = "payload." if msg.has("payload") else ""
        return RemoteError(
            msg.text(f"{where}code", ""),
            msg.text(f"{where}detail", msg.text(f"{where}title", "(no detail)")),
        )
    if event == "stop":
        return StreamStopped("stop")
    raise msg.error("is not an event of this dialect")  # not in the dialect's events


def _start(msg: Message) -> CallStarted:
    encoding = msg.text("start.media_format.encoding")
    fmt = CODECS.get(encoding.upper())
    if fmt is None:
        raise msg.error(
            f"is {encoding!r}; bidirectional streams here need PCMU or PCMA "
            "(set stream_bidirectional_codec)",
            "start.media_format.encoding",
        )
    rate = msg.number("start.media_format.sample_rate", 8000)
    if rate != 8000:
        raise msg.error(f"is {rate}; {encoding} is 8000 Hz", "start.media_format.sample_rate")
    channels = msg.number("start.media_format.channels", 1)
    if channels != 1:
        raise msg.error(f"is {channels}; only mono is supported", "start.media_format.channels")
    parameters = {
        key: msg.text(f"start.{key}")
        for key in ("from", "to", "client_state")
        if msg.has(f"start.{key}")
    }
    return CallStarted(
        stream_id=msg.text("stream_id"),
        call_id=msg.text("start.call_control_id"),
        caller_format=fmt,
        bot_format=fmt,
        parameters=parameters,
    )


_media, _mark, _clear = twilio_style_encoders(None)


TELNYX = Dialect(
    name="telnyx",
    path="/telnyx",
    events={**TWILIO_STYLE_EVENTS, "error": RemoteError},
    decode=_decode,
    encode_media=_media,
    encode_mark=_mark,
    encode_clear=_clear,
)
"""The Telnyx media-streaming dialect."""
