"""What every media-stream dialect shares: typed events, the error, field readers, framing.

The five dialects (Twilio, Telnyx, Plivo, Exotel, Vonage) differ in field
names and audio formats, not in shape: a provider opens a WebSocket to us,
announces the call (a ``start`` message), streams the caller's audio, echoes
the marks we place in the bot's audio, and stops. Each dialect module turns
its JSON into the typed events below and builds its outgoing messages; the
dialect-independent state machine is :class:`~.stream.MediaStream`.

Nothing here does I/O or imports asyncio: these are values and pure functions.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import ProviderProtocolError
from ...formats import AudioFormat, Encoding

__all__ = [
    "TWILIO_STYLE_EVENTS",
    "CallStarted",
    "Dialect",
    "DtmfReceived",
    "Framer",
    "Framing",
    "MarkEchoed",
    "MediaReceived",
    "Message",
    "PlaybackCleared",
    "RemoteError",
    "StreamConnected",
    "StreamProtocolError",
    "StreamStopped",
    "WireEvent",
    "WireMessage",
    "b64",
    "check_stream_id",
    "decode_audio",
    "load_json",
    "no_framing",
    "to_json",
    "twilio_style_encoders",
]

WireMessage = str | bytes
"""One WebSocket message to send: ``str`` goes as a text frame, ``bytes`` as binary."""


class StreamProtocolError(ProviderProtocolError):
    """A telephony provider's message broke its documented protocol.

    ``dialect`` names the provider (``"twilio"``), ``event`` the message's
    event (``"start"``; empty when the message could not be read at all) and
    ``field`` the offending field (``"start.mediaFormat.encoding"``) when one
    is to blame. The connection cannot go on: close it (only it).
    """

    def __init__(self, dialect: str, message: str, *, event: str = "", field: str = "") -> None:
        self.dialect = dialect
        self.event = event
        self.field = field
        where = f"{dialect} media stream"
        if event:
            where += f" '{event}' message"
        if field:
            where += f" field '{field}'"
        super().__init__(f"{where}: {message}")


# -- events: what a provider told us ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """The socket is up (Twilio, Telnyx, Exotel ``connected``); the call is announced next."""

    protocol: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The call is announced: who it is and which audio format the wire carries.

    ``caller_format`` is what :class:`MediaReceived` payloads hold and
    ``bot_format`` what the bot's audio must be sent as (the same on every
    dialect: the providers play back what they stream). ``parameters`` are the
    call's custom parameters (Twilio ``<Parameter>``, Exotel query parameters,
    Plivo ``extra_headers``, Vonage ``headers``) as strings.
    """

    stream_id: str
    call_id: str
    caller_format: AudioFormat
    bot_format: AudioFormat
    account_id: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaReceived:
    """Audio from the call, in the call's ``caller_format`` (whole sample frames).

    ``chunk`` and ``timestamp_ms`` are the provider's counters (-1 when the
    dialect has none). ``track`` is ``"inbound"`` for the caller; a stream
    configured for both tracks also delivers ``"outbound"`` (what the caller
    hears), which the shell does not feed to the graph.
    """

    payload: bytes
    track: str = "inbound"
    chunk: int = -1
    timestamp_ms: int = -1

    @property
    def inbound(self) -> bool:
        """True for the caller's own audio."""
        return not self.track.startswith("outbound")


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """The caller pressed a key (``0``-``9``, ``*``, ``#``, ``A``-``D``)."""

    digit: str
    duration_ms: int = -1


@dataclass(frozen=True, slots=True)
class MarkEchoed:
    """The provider echoed a mark we sent (decoder output; see ``MediaStream``)."""

    name: str


@dataclass(frozen=True, slots=True)
class PlaybackCleared:
    """The provider confirms a clear (Plivo ``clearedAudio``, Vonage ``websocket:cleared``)."""


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """The provider ended the stream (the call ended or the stream was stopped)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class RemoteError:
    """The provider reports an error about something we sent (Telnyx ``error``)."""

    code: str
    message: str


WireEvent = (
    StreamConnected
    | CallStarted
    | MediaReceived
    | DtmfReceived
    | MarkEchoed
    | PlaybackCleared
    | StreamStopped
    | RemoteError
)


# -- reading JSON messages -------------------------------------------------------------


def load_json(dialect: str, text: str | bytes) -> Message:
    """Parse one text frame into a :class:`Message`; a protocol error if it is not an object."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamProtocolError(dialect, f"message is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise StreamProtocolError(dialect, f"message is a JSON {type(value).__name__}, not object")
    event = value.get("event")
    if not isinstance(event, str) or not event:
        raise StreamProtocolError(dialect, "message has no 'event' string", field="event")
    return Message(dialect, event, value)


class Message:
    """One JSON message, with field readers whose errors name dialect, event and field.

    Paths are dotted (``"start.mediaFormat.encoding"``). Providers are
    inconsistent about numbers (Twilio's ``sequenceNumber`` is a string,
    Plivo's a number), so the number readers take either.
    """

    __slots__ = ("body", "dialect", "event")

    def __init__(self, dialect: str, event: str, body: dict[str, Any]) -> None:
        self.dialect = dialect
        self.event = event
        self.body = body

    def error(self, message: str, path: str = "") -> StreamProtocolError:
        """A protocol error about this message (and field ``path``)."""
        return StreamProtocolError(self.dialect, message, event=self.event, field=path)

    def get(self, path: str) -> Any:
        """The value at ``path`` (``""``: the whole message), ``None`` when any step is missing."""
        value: Any = self.body
        if not path:
            return value
        for key in path.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def has(self, path: str) -> bool:
        """True when ``path`` is present (and not null)."""
        return self.get(path) is not None

    def obj(self, path: str) -> dict[str, Any]:
        """A required JSON object."""
        value = self.get(path)
        if not isinstance(value, dict):
            raise self.error(_problem(value, "an object"), path)
        return value

    def text(self, path: str, default: str | None = None) -> str:
        """A string (numbers are accepted and converted); required unless ``default``."""
        value = self.get(path)
        if value is None and default is not None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self.error(_problem(value, "a string"), path)

    def number(self, path: str, default: int | None = None) -> int:
        """An integer given as a number or a decimal string; required unless ``default``."""
        value = self.get(path)
        if value is None and default is not None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise self.error(_problem(value, "an integer"), path)

    def params(self, path: str) -> dict[str, str]:
        """An optional object of parameters, every value as a string (absent: empty)."""
        value = self.get(path)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(_problem(value, "an object"), path)
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}

    def payload(self, path: str) -> bytes:
        """A required base64 field, decoded (strictly: a corrupt payload is an error)."""
        encoded = self.text(path)
        try:
            return binascii.a2b_base64(encoded, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise self.error(f"is not valid base64 ({exc})", path) from None


def _problem(value: Any, wanted: str) -> str:
    if value is None:
        return "is missing"
    return f"is a {type(value).__name__} ({_short(value)}), expected {wanted}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def decode_audio(msg: Message, path: str, call: CallStarted | None) -> bytes:
    """The base64 audio at ``path``, checked to be whole sample frames of the call's format.

    Before the start (``call`` is ``None``) the bytes are returned unchecked:
    the state machine refuses media before start anyway, with a better message.
    """
    data = msg.payload(path)
    if call is not None and len(data) % call.caller_format.frame_bytes:
        raise msg.error(
            f"holds {len(data)} bytes, not whole sample frames of {call.caller_format}", path
        )
    return data


def check_stream_id(msg: Message, path: str, call: CallStarted | None) -> None:
    """A message that names a stream must name the started one (when it names any)."""
    if call is not None and msg.has(path) and msg.text(path) != call.stream_id:
        raise msg.error(f"names stream {msg.text(path)!r}, not {call.stream_id!r}", path)


def to_json(body: dict[str, Any]) -> str:
    """An outgoing message as compact JSON text."""
    return json.dumps(body, separators=(",", ":"))


def b64(payload: bytes) -> str:
    """Audio as base64 text for a JSON message."""
    return binascii.b2a_base64(payload, newline=False).decode("ascii")


# -- outgoing audio framing ------------------------------------------------------------

_SILENCE = {Encoding.MULAW: b"\xff", Encoding.ALAW: b"\xd5"}
"""One sample of silence per G.711 law; linear PCM silence is zero bytes."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How a dialect wants outgoing audio cut into messages, in bytes.

    ``unit``: every message holds a whole number of units (Exotel: multiples
    of 320 bytes; Vonage: exactly one 20 ms frame). ``minimum``: audio is held
    back until this much is buffered (Exotel asks for at least 3.2 kB).
    ``maximum``: longer audio is split (Vonage: one 20 ms frame per message).
    Zero means no constraint; the default sends every chunk as it comes.
    """

    unit: int = 0
    minimum: int = 0
    maximum: int = 0


def no_framing(fmt: AudioFormat) -> Framing:
    """Send every chunk as it comes (Twilio, Telnyx, Plivo)."""
    return Framing()


class Framer:
    """Cuts outgoing audio into messages as a :class:`Framing` asks (holds the rest).

    :meth:`push` returns the messages ready now, :meth:`flush` pads what is
    held to a whole unit with silence and returns it (before a mark, so the
    mark follows all audio before it), :meth:`reset` drops it (a clear).
    """

    __slots__ = ("_held", "_max", "_min", "_silence", "_unit", "fmt", "framing")

    def __init__(self, framing: Framing, fmt: AudioFormat) -> None:
        self.framing = framing
        self.fmt = fmt
        frame = fmt.frame_bytes
        if framing.unit % frame or framing.maximum % max(framing.unit, frame):
            raise ValueError(f"{framing} does not fit whole sample frames of {fmt}")
        self._unit = framing.unit or frame
        self._min = framing.minimum
        self._max = framing.maximum
        self._silence = _SILENCE.get(fmt.encoding, b"\x00")
        self._held = bytearray()

    @property
    def held_samples(self) -> int:
        """Sample frames held back, not yet in a message."""
        return len(self._held) // self.fmt.frame_bytes

    def push(self, payload: bytes) -> list[bytes]:
        """Add audio; the messages ready to send (possibly none)."""
        if not self._held and self._unit == self.fmt.frame_bytes and not self._min:
            return self._split(payload) if payload else []
        self._held += payload
        if len(self._held) < max(self._min, self._unit):
            return []
        ready = len(self._held) - len(self._held) % self._unit
        out = bytes(self._held[:ready])
        del self._held[:ready]
        return self._split(out)

    def flush(self) -> list[bytes]:
        """Pad what is held to a whole unit with silence and return it."""
        if not self._held:
            return []
        short = -len(self._held) % self._unit
        out = bytes(self._held) + self._silence * short
        self._held.clear()
        return self._split(out)

    def reset(self) -> int:
        """Drop what is held (the bot was interrupted); returns the bytes dropped."""
        dropped = len(self._held)
        self._held.clear()
        return dropped

    def _split(self, data: bytes) -> list[bytes]:
        size = self._max
        if not size or len(data) <= size:
            return [data]
        return [data[i : i + size] for i in range(0, len(data), size)]


# -- a dialect: the wire's vocabulary --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dialect:
    """One provider's wire vocabulary, as data and functions (held, not subclassed).

    ``events`` maps each event name the dialect uses to the kind of
    :class:`WireEvent` it becomes; the state machine checks that kind is
    allowed *before* ``decode`` reads the message's fields, so an out-of-order
    message gets an out-of-order error. Names not listed are ignored (and
    counted). ``decode`` gets the call's :class:`CallStarted` (``None``
    before the start) to check audio. ``decode_binary`` reads a binary frame
    (Vonage audio; ``None``: binary frames are a protocol error). The
    ``encode_*`` functions build outgoing messages for the started call.
    """

    name: str
    path: str
    events: Mapping[str, type[WireEvent]]
    decode: Callable[[Message, CallStarted | None], WireEvent]
    encode_media: Callable[[CallStarted, bytes], WireMessage]
    encode_mark: Callable[[CallStarted, str], WireMessage]
    encode_clear: Callable[[CallStarted], WireMessage]
    decode_binary: Callable[[bytes, CallStarted | None], WireEvent] | None = None
    framing: Callable[[AudioFormat], Framing] = no_framing
    """The framing for the call's ``bot_format``."""


TWILIO_STYLE_EVENTS: Mapping[str, type[WireEvent]] = {
    "connected": StreamConnected,
    "start": CallStarted,
    "media": MediaReceived,
    "dtmf": DtmfReceived,
    "mark": MarkEchoed,
    "stop": StreamStopped,
}
"""The events of Twilio's protocol, which Telnyx and Exotel copied."""


def twilio_style_encoders(
    sid_key: str | None,
) -> tuple[
    Callable[[CallStarted, bytes], WireMessage],
    Callable[[CallStarted, str], WireMessage],
    Callable[[CallStarted], WireMessage],
]:
    """The ``media``/``mark``/``clear`` messages of Twilio-style dialects.

    They differ only in the name of the stream id field (``streamSid``,
    ``stream_sid``; ``None`` for a dialect that sends none).
    """

    def head(call: CallStarted, event: str) -> dict[str, object]:
        msg: dict[str, object] = {"event": event}
        if sid_key is not None:
            msg[sid_key] = call.stream_id
        return msg

    def media(call: CallStarted, payload: bytes) -> WireMessage:
        return to_json({**head(call, "media"), "media": {"payload": b64(payload)}})

    def mark(call: CallStarted, name: str) -> WireMessage:
        return to_json({**head(call, "mark"), "mark": {"name": name}})

    def clear(call: CallStarted) -> WireMessage:
        return to_json(head(call, "clear"))

    return media, mark, clear
