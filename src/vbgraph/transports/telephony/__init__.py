"""Telephony media streams: Twilio, Telnyx, Plivo, Exotel and Vonage callers.

Each provider opens a WebSocket to ``vbgraph serve`` per call and streams the
caller's audio as JSON (Vonage: binary) messages. The wire of each is a
sans-I/O dialect module (:mod:`.twilio`, :mod:`.telnyx`, :mod:`.plivo`,
:mod:`.exotel`, :mod:`.vonage`) driven by one state machine,
:class:`~.stream.MediaStream`; :mod:`.signature` validates Twilio's request
signatures. The aiohttp shell (:mod:`.shell`, the handlers ``vbgraph serve``
mounts) is not imported here, so this package imports no asyncio or network
library of its own.
"""

from ._common import (
    CallStarted,
    Dialect,
    DtmfReceived,
    MediaReceived,
    PlaybackCleared,
    RemoteError,
    StreamConnected,
    StreamProtocolError,
    StreamStopped,
)
from .exotel import EXOTEL
from .plivo import PLIVO
from .signature import compute_signature, validate_signature
from .stream import MarkCleared, MarkPlayed, MediaStream, State, StreamEvent, StreamStatistics
from .telnyx import TELNYX
from .twilio import TWILIO, connect_twiml
from .vonage import VONAGE

__all__ = [
    "EXOTEL",
    "PLIVO",
    "TELNYX",
    "TWILIO",
    "VONAGE",
    "CallStarted",
    "Dialect",
    "DtmfReceived",
    "MarkCleared",
    "MarkPlayed",
    "MediaReceived",
    "MediaStream",
    "PlaybackCleared",
    "RemoteError",
    "State",
    "StreamConnected",
    "StreamEvent",
    "StreamProtocolError",
    "StreamStatistics",
    "StreamStopped",
    "compute_signature",
    "connect_twiml",
    "validate_signature",
]
