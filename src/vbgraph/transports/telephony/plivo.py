"""Plivo audio streams (``<Stream bidirectional="true" keepCallAlive="true">``), sans-I/O.

Plivo sends no ``connected``; its first message is the start::

    {"event": "start", "sequenceNumber": 1, "start": {
        "callId": "<uuid>", "streamId": "<uuid>", "accountId": "MA..", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}},
     "extra_headers": "userId=12345;sessionId=abc"}
    {"event": "media", "sequenceNumber": 42, "streamId": "<uuid>", "media": {
        "track": "inbound", "timestamp": "1705312200000", "chunk": 41, "payload": "<base64>"}}
    {"event": "dtmf", "streamId": "<uuid>", "dtmf": {"digit": "5"}}
    {"event": "playedStream", "streamId": "<uuid>", "name": "audio@1600"}
    {"event": "clearedAudio", "streamId": "<uuid>"}

The stream's ``contentType`` decides the audio both ways:
``audio/x-l16;rate=8000`` (Plivo's default), ``audio/x-l16;rate=16000``
(linear PCM16, little-endian) or ``audio/x-mulaw;rate=8000``. We send
``playAudio`` in the same format (Plivo cannot switch codecs mid-stream),
``checkpoint`` (answered by ``playedStream``, or ``played`` in older docs,
once the audio before it played) and ``clearAudio`` (answered by
``clearedAudio``; checkpoints whose audio was cleared are never answered).

``extra_headers`` (``k=v`` pairs separated by ``;`` or ``,``) become
parameters. The stream's end comes as an HTTP status callback, not on the
socket: the socket closes. (A ``stop`` message, should one come, ends it too.)
Plivo's ``dtmf`` is read as ``dtmf.digit`` like Twilio's (not verified
against a live stream). Hang-up over REST (``DELETE
/v1/Account/{auth_id}/Call/{call_id}/``) is left to a hang-up hook.
"""

from __future__ import annotations

from ...formats import MULAW, AudioFormat
from ._common import (
    CallStarted,
    Dialect,
    DtmfReceived,
    MarkEchoed,
    MediaReceived,
    Message,
    PlaybackCleared,
    StreamStopped,
    WireEvent,
    b64,
    check_stream_id,
    decode_audio,
    to_json,
)

__all__ = ["FORMATS", "PLIVO", "parse_extra_headers"]

FORMATS: dict[tuple[str, int], AudioFormat] = {
    ("audio/x-mulaw", 8000): AudioFormat(8000, 1, MULAW),
    ("audio/x-l16", 8000): AudioFormat(8000),
    ("audio/x-l16", 16000): AudioFormat(16000),
}
"""``(encoding, sampleRate)`` of the start message → the stream's audio format."""


def parse_extra_headers(text: str) -> dict[str, str]:
    """``"a=1;b=2"`` (or ``"a=1,b=2"``) → ``{"a": "1", "b": "2"}``.

    A piece without ``=`` becomes a key with an empty value.
    """
    pairs = (p for p in text.replace(",", ";").split(";") if p.strip())
    out: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = value.strip()
    return out


def _decode(msg: Message, call: CallStarted | None) -> WireEvent:
    check_stream_id(msg, "streamId", call)
    event = msg.event
    if event == "media":
        return MediaReceived(
            decode_audio(msg, "media.payload", call),
            track=msg.text("media.track", "inbound"),
            chunk=msg.number("media.chunk", -1),
            timestamp_ms=msg.number("media.timestamp", -1),
        )
    if event in ("playedStream", "played"):
        return MarkEchoed(msg.text("name"))
    if event == "start":
        return _start(msg)
    if event == "clearedAudio":
        return PlaybackCleared()
    if event == "dtmf":
        return DtmfReceived(msg.text("dtmf.digit"))
    if event == "stop":
        return StreamStopped("stop")
    raise msg.error("is not an event of this dialect")  # not in the dialect's events


def _start(msg: Message) -> CallStarted:
    encoding = msg.text("start.mediaFormat.encoding")
    rate = msg.number("start.mediaFormat.sampleRate", 8000)
    fmt = FORMATS.get((encoding, rate))
    if fmt is None:
        known = ", ".join(f"{e};rate={r}" for e, r in FORMATS)
        raise msg.error(
            f"{encoding};rate={rate} is not a Plivo stream format ({known})", "start.mediaFormat"
        )
    tracks = msg.get("start.tracks") or ["inbound"]
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise msg.error("is not a list of strings", "start.tracks")
    return CallStarted(
        stream_id=msg.text("start.streamId"),
        call_id=msg.text("start.callId"),
        caller_format=fmt,
        bot_format=fmt,
        account_id=msg.text("start.accountId", ""),
        tracks=tuple(tracks),
        parameters=parse_extra_headers(msg.text("extra_headers", "")),
    )


def _media(call: CallStarted, payload: bytes) -> str:
    fmt = call.bot_format
    content_type = "audio/x-mulaw" if fmt.encoding is MULAW else "audio/x-l16"
    media = {"contentType": content_type, "sampleRate": fmt.rate, "payload": b64(payload)}
    return to_json({"event": "playAudio", "streamId": call.stream_id, "media": media})


def _mark(call: CallStarted, name: str) -> str:
    return to_json({"event": "checkpoint", "streamId": call.stream_id, "name": name})


def _clear(call: CallStarted) -> str:
    return to_json({"event": "clearAudio", "streamId": call.stream_id})


PLIVO = Dialect(
    name="plivo",
    path="/plivo",
    events={
        "start": CallStarted,
        "media": MediaReceived,
        "dtmf": DtmfReceived,
        "playedStream": MarkEchoed,
        "played": MarkEchoed,
        "clearedAudio": PlaybackCleared,
        "stop": StreamStopped,
    },
    decode=_decode,
    encode_media=_media,
    encode_mark=_mark,
    encode_clear=_clear,
)
"""The Plivo audio-stream dialect."""
