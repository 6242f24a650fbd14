"""Golden provider messages (``data/``) and helpers to feed them to a :class:`MediaStream`.

``data/<dialect>.jsonl`` is a call as the provider sends it, one message per
line (``{"$binary": "<base64>"}`` stands for a binary frame);
``<dialect>_invalid.json`` lists broken messages with the error they must
raise (``event``, ``field``; ``after_start``: fed after the golden start);
``<dialect>_truncated.txt`` holds golden lines cut short.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from vbgraph.transports.telephony import EXOTEL, PLIVO, TELNYX, TWILIO, VONAGE
from vbgraph.transports.telephony._common import Dialect
from vbgraph.transports.telephony.stream import MediaStream, StreamEvent

DATA = Path(__file__).parent / "data"
DIALECTS: dict[str, Dialect] = {
    "twilio": TWILIO,
    "telnyx": TELNYX,
    "plivo": PLIVO,
    "exotel": EXOTEL,
    "vonage": VONAGE,
}


def golden(name: str) -> list[dict[str, Any]]:
    """The golden call of dialect ``name``, as parsed messages."""
    text = (DATA / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def invalid_cases(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DATA / f"{name}_invalid.json").read_text(encoding="utf-8")))


def truncated_lines(name: str) -> list[str]:
    return (DATA / f"{name}_truncated.txt").read_text(encoding="utf-8").splitlines()


def feed(stream: MediaStream, message: dict[str, Any] | str) -> list[StreamEvent]:
    """Feed one message (a dict, a ``$binary`` stand-in, or raw text); the events."""
    if isinstance(message, str):
        stream.receive_text(message)
    elif "$binary" in message:
        stream.receive_binary(base64.b64decode(message["$binary"]))
    else:
        stream.receive_text(json.dumps(message))
    return stream.events_received()


def opening(name: str) -> list[dict[str, Any]]:
    """The golden messages up to and including the start."""
    messages = golden(name)
    starts = ("start", "websocket:connected")
    end = next(i for i, m in enumerate(messages) if m.get("event") in starts)
    return messages[: end + 1]


def started(name: str, **options: Any) -> MediaStream:
    """A stream of dialect ``name`` fed the golden opening."""
    stream = MediaStream(DIALECTS[name], **options)
    for message in opening(name):
        feed(stream, message)
    return stream
