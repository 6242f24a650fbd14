"""Twilio Media Streams (bidirectional, ``<Connect><Stream>``): the wire, sans-I/O.

The call's webhook answers TwiML that tells Twilio to open a WebSocket to us
(:func:`connect_twiml`); Twilio then sends, as JSON text frames::

    {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    {"event": "start", "sequenceNumber": "1", "streamSid": "MZ..", "start": {
        "accountSid": "AC..", "streamSid": "MZ..", "callSid": "CA..",
        "tracks": ["inbound"], "customParameters": {"k": "v"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    {"event": "media", "sequenceNumber": "3", "streamSid": "MZ..", "media": {
        "track": "inbound", "chunk": "2", "timestamp": "5", "payload": "<base64 μ-law>"}}
    {"event": "dtmf", "streamSid": "MZ..", "dtmf": {"track": "inbound_track", "digit": "1"}}
    {"event": "mark", "streamSid": "MZ..", "mark": {"name": "audio@1600"}}
    {"event": "stop", "streamSid": "MZ..", "stop": {"accountSid": "AC..", "callSid": "CA.."}}

and we send ``media`` (``{"event": "media", "streamSid", "media": {"payload"}}``,
μ-law 8 kHz, any length: Twilio buffers), ``mark`` (echoed once the audio
before it has played, or at once when a ``clear`` dropped it) and ``clear``.

Decoding rules (errors are :class:`~._common.StreamProtocolError`): the start
must announce ``audio/x-mulaw`` at 8000 Hz mono, and name ``streamSid`` and
``callSid``; a message naming another ``streamSid`` than the start's is an
error; media must be valid base64; unknown events are ignored. The REST
hang-up is built here too (:func:`hangup_request`) and sent by the shell.
"""

from __future__ import annotations

import base64
import html
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ...formats import MULAW, AudioFormat
from ._common import (
    TWILIO_STYLE_EVENTS,
    CallStarted,
    Dialect,
    DtmfReceived,
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

__all__ = [
    "MULAW_8K",
    "TWILIO",
    "HangupRequest",
    "connect_twiml",
    "hangup_request",
    "stream_url",
]

MULAW_8K = AudioFormat(8000, 1, MULAW)
"""The only format of Twilio media streams, both ways."""

API_BASE = "https://api.twilio.com"


def _decode(msg: Message, call: CallStarted | None) -> WireEvent:
    check_stream_id(msg, "streamSid", call)
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
        return StreamConnected(msg.text("protocol", ""), msg.text("version", ""))
    if event == "dtmf":
        return DtmfReceived(msg.text("dtmf.digit"))
    if event == "stop":
        return StreamStopped("stop")
    raise msg.error("is not an event of this dialect")  # not in the dialect's events


def _start(msg: Message) -> CallStarted:
    encoding = msg.text("start.mediaFormat.encoding")
    if encoding != "audio/x-mulaw":
        raise msg.error(
            f"is {encoding!r}; Twilio streams audio/x-mulaw", "start.mediaFormat.encoding"
        )
    rate = msg.number("start.mediaFormat.sampleRate")
    if rate != 8000:
        raise msg.error(f"is {rate}; μ-law streams are 8000 Hz", "start.mediaFormat.sampleRate")
    channels = msg.number("start.mediaFormat.channels", 1)
    if channels != 1:
        raise msg.error(f"is {channels}; only mono is supported", "start.mediaFormat.channels")
    tracks = msg.get("start.tracks")
    if tracks is None:
        tracks = ["inbound"]
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise msg.error("is not a list of strings", "start.tracks")
    sid_path = "start.streamSid" if msg.has("start.streamSid") else "streamSid"
    return CallStarted(
        stream_id=msg.text(sid_path),
        call_id=msg.text("start.callSid"),
        caller_format=MULAW_8K,
        bot_format=MULAW_8K,
        account_id=msg.text("start.accountSid", ""),
        tracks=tuple(tracks),
        parameters=msg.params("start.customParameters"),
    )


_media, _mark, _clear = twilio_style_encoders("streamSid")


TWILIO = Dialect(
    name="twilio",
    path="/twilio",
    events=TWILIO_STYLE_EVENTS,
    decode=_decode,
    encode_media=_media,
    encode_mark=_mark,
    encode_clear=_clear,
)
"""The Twilio Media Streams dialect."""


# -- set-up and tear-down over HTTP -------------------------------------------------------


def stream_url(base: str, path: str = "/twilio") -> str:
    """The ``wss://`` URL of our stream endpoint, from a public base URL.

    ``https://voice.example.com`` (or ``wss://...``, or a bare host) gives
    ``wss://voice.example.com/twilio``; a path in the base is kept as a prefix.
    Twilio connects over ``wss`` only.
    """
    if "://" not in base:
        base = "https://" + base
    parts = urllib.parse.urlsplit(base)
    prefix = parts.path.rstrip("/")
    return urllib.parse.urlunsplit(("wss", parts.netloc, prefix + path, "", ""))


def connect_twiml(url: str, parameters: Mapping[str, str] | None = None) -> str:
    """TwiML that connects the call to a bidirectional stream at ``url``.

    ``parameters`` come back in the start message's ``customParameters``
    (Twilio does not pass a query string on the stream URL).
    """
    params = "".join(
        f'<Parameter name="{_attr(k)}" value="{_attr(v)}"/>' for k, v in (parameters or {}).items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Response><Connect><Stream url="{_attr(url)}">{params}</Stream></Connect></Response>'
    )


def _attr(value: str) -> str:
    # A double-quoted XML attribute value: & < > " and ' escaped.
    return html.escape(value, quote=True)


@dataclass(frozen=True, slots=True)
class HangupRequest:
    """An HTTP request to send (the shell sends it; this module does no I/O)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


def hangup_request(
    account_sid: str, call_sid: str, auth_token: str, *, api_base: str = API_BASE
) -> HangupRequest:
    """The REST request that ends a live call: ``Status=completed`` with Basic auth.

    Twilio answers 200 with the call, or 404 (``code`` 20404) when the call
    has already ended; both mean the call is over. ``api_base`` selects a
    region (``https://api.dublin.ie1.twilio.com``).
    """
    quote = urllib.parse.quote
    url = (
        f"{api_base.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}"
        f"/Calls/{quote(call_sid, safe='')}.json"
    )
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
    return HangupRequest(
        method="POST",
        url=url,
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=b"Status=completed",
    )
