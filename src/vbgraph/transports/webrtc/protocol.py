"""WebRTC signalling and the page's ``events`` data channel, sans I/O.

Theory of operation
-------------------
A browser (or any WebRTC peer) starts a call with one HTTP request, ``POST
/offer``, whose JSON body holds its SDP offer (``docs/protocols/webrtc.md``)::

    {"sdp": "v=0\\r\\n...", "type": "offer", "metadata": {"user": "ann"}}

:func:`parse_offer` validates it and returns an :class:`Offer`, or raises
:class:`SignallingError` with the HTTP status, a stable error ``code`` and a
message for the peer (:func:`error_body` makes the JSON). The shell answers
with :func:`answer_body` (``{"sdp", "type": "answer", "session_id"}``). There
is no trickle ICE: the answer carries every candidate, so one round trip is
the whole handshake.

Once connected, the page and the server talk JSON text messages over a data
channel labelled ``events`` that the *page* creates before its offer (so the
offer always negotiates SCTP). :class:`EventsChannel` is both ends of that
conversation for the server:

* ``send_event(bus_event)``, ``send_session(id)``, ``send_error(code, msg)``,
  ``send_session_ended(reason)`` queue server → page messages; the caller
  then sends every string from ``data_to_send()`` on the channel.
* ``receive_message(data)`` parses one page → server message; the caller then
  acts on each command from ``events_received()`` (:class:`InterruptCommand`,
  :class:`EndCommand`). A message that breaks the protocol raises
  :class:`ChannelError` (the caller reports it to the page and ends the call).

Per-turn latency (user stopped speaking → first bot audio) is measured here
from bus events by :class:`TurnLatency`, so it is tested without a network.
This module imports no asyncio, aiohttp or aiortc.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderProtocolError
from ...events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    NodeError,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)

__all__ = [
    "CHANNEL_LABEL",
    "MAX_MESSAGE_BYTES",
    "MAX_OFFER_BYTES",
    "ChannelError",
    "Command",
    "EndCommand",
    "EventsChannel",
    "InterruptCommand",
    "LatencyReport",
    "Offer",
    "SignallingError",
    "TurnLatency",
    "answer_body",
    "error_body",
    "parse_offer",
    "refusal_body",
]

CHANNEL_LABEL = "events"
"""Label of the data channel the page opens for JSON events."""
MAX_OFFER_BYTES = 256 * 1024
"""A larger ``POST /offer`` body is refused (a browser's offer is 2-10 KB)."""
MAX_MESSAGE_BYTES = 16 * 1024
"""A larger page → server message is a protocol error (commands are a few bytes)."""
_MAX_METADATA_KEYS = 64
_MAX_METADATA_VALUE = 1024
_NS_PER_MS = 1_000_000


class SignallingError(ProviderProtocolError):
    """A ``POST /offer`` the server cannot take: HTTP ``status``, error ``code``, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON error body for the peer."""
        return error_body(self.code, str(self))


class ChannelError(ProviderProtocolError):
    """A page → server data-channel message broke the protocol."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A valid offer: the SDP to hand to the WebRTC stack, and the caller's metadata."""

    sdp: str
    metadata: Mapping[str, str]
    audio_codecs: tuple[str, ...]
    """Codec names offered on the audio m-line, lower case, in the peer's order."""
    data_channel: bool
    """True when the offer negotiates a data channel (an ``m=application`` line)."""


def error_body(code: str, message: str) -> dict[str, Any]:
    """``{"error": {"code": ..., "message": ...}}``, every error answer's body."""
    return {"error": {"code": code, "message": message}}


def refusal_body(reason: str, message: str) -> tuple[int, dict[str, Any]]:
    """Status and body refusing a call (``CallRefused.reason``: ``full``, ``draining``)."""
    code = "server_full" if reason == "full" else f"server_{reason}"
    return 503, error_body(code, message)


def answer_body(sdp: str, session_id: str) -> dict[str, str]:
    """The JSON answer to a good offer."""
    return {"sdp": sdp, "type": "answer", "session_id": session_id}


def parse_offer(body: bytes | str) -> Offer:
    """Validate a ``POST /offer`` body; raises :class:`SignallingError` (400/413)."""
    if len(body) > MAX_OFFER_BYTES:
        raise SignallingError(
            413, "offer_too_large", f"offer body is {len(body)} bytes; at most {MAX_OFFER_BYTES}"
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignallingError(400, "bad_offer", f"offer body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SignallingError(400, "bad_offer", "offer body must be a JSON object")
    kind = data.get("type")
    if kind != "offer":
        raise SignallingError(
            400, "bad_offer", f'field "type" must be "offer", got {json.dumps(kind)}'
        )
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SignallingError(400, "bad_offer", 'field "sdp" is missing or not a string')
    codecs, has_data = _check_sdp(sdp)
    return Offer(sdp, _metadata(data.get("metadata")), codecs, has_data)


def _check_sdp(sdp: str) -> tuple[tuple[str, ...], bool]:
    # Only what the WebRTC stack would report obscurely (or not at all) is
    # checked here: the stack parses the rest and the shell reports its error.
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != "v=0":
        raise SignallingError(400, "bad_sdp", 'SDP must start with "v=0"')
    audio: list[str] | None = None
    has_data = False
    section: list[str] | None = None
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise SignallingError(400, "bad_sdp", f"malformed m-line: {line.strip()!r}")
            section = None
            if parts[0] == "audio" and audio is None and parts[1] != "0":
                section = audio = []
            elif parts[0] == "application":
                has_data = True
        elif section is not None and line.startswith("a=rtpmap:"):
            _, _, encoding = line.partition(" ")
            section.append(encoding.split("/")[0].strip().lower())
    if audio is None:
        raise SignallingError(
            400, "no_audio", "SDP offers no audio (no enabled m=audio line): nothing to talk over"
        )
    return tuple(audio), has_data


def _metadata(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SignallingError(400, "bad_offer", 'field "metadata" must be an object of strings')
    if len(raw) > _MAX_METADATA_KEYS:
        raise SignallingError(
            400, "bad_offer", f'field "metadata" has {len(raw)} keys; at most {_MAX_METADATA_KEYS}'
        )
    for key, value in raw.items():
        if not isinstance(value, str) or len(value) > _MAX_METADATA_VALUE:
            raise SignallingError(
                400,
                "bad_offer",
                f'field "metadata.{key}" must be a string of at most {_MAX_METADATA_VALUE} chars',
            )
    return dict(raw)


# -- per-turn latency ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """One turn's latency: the user stopped speaking → the bot's first audio went out."""

    turn: int
    """1 for the first measured turn, then 2, 3 ..."""
    latency_ns: int
    measured_from: str
    """``"user_speech_stopped"`` (a VAD) or ``"turn_ended"`` (no VAD event this turn)."""
    turn_detection_ns: int | None
    """User stopped → turn ended, when both were seen (part of ``latency_ns``)."""


class TurnLatency:
    """Measures each turn's latency from bus events (session time ``pts``).

    A turn starts when the user stops speaking (``UserSpeechStopped``; the
    latest one wins, and ``UserSpeechStarted`` discards it because the user
    went on) or, in a graph without a VAD, when the turn detector ends it
    (``TurnEnded``). The next ``BotSpeechStarted`` closes it with a report.
    Bot speech with no turn pending (a greeting, a resumed reply) is not a turn.
    """

    def __init__(self) -> None:
        self._stopped_ns: int | None = None
        self._ended_ns: int | None = None
        self.turns = 0

    def receive_event(self, event: Event) -> LatencyReport | None:
        """Feed one bus event; returns a report when it completes a turn."""
        kind = type(event)
        if kind is UserSpeechStopped:
            self._stopped_ns = event.pts
        elif kind is UserSpeechStarted:
            self._stopped_ns = self._ended_ns = None
        elif kind is TurnEnded:
            self._ended_ns = event.pts
        elif kind is BotSpeechStarted:
            return self._close(event.pts)
        return None

    def _close(self, now_ns: int) -> LatencyReport | None:
        stopped, ended = self._stopped_ns, self._ended_ns
        self._stopped_ns = self._ended_ns = None
        start = stopped if stopped is not None else ended
        if start is None:
            return None
        self.turns += 1
        detection = None if stopped is None or ended is None else max(ended - stopped, 0)
        source = "user_speech_stopped" if stopped is not None else "turn_ended"
        return LatencyReport(self.turns, max(now_ns - start, 0), source, detection)


# -- the data channel ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterruptCommand:
    """The page asks the bot to stop talking (``{"type": "interrupt"}``)."""


@dataclass(frozen=True, slots=True)
class EndCommand:
    """The page hangs up (``{"type": "end"}``): the caller's input ends, the session drains."""


Command = InterruptCommand | EndCommand

_COMMANDS: dict[str, Command] = {"interrupt": InterruptCommand(), "end": EndCommand()}


def _ms(ns: int) -> float:
    return round(ns / _NS_PER_MS, 1)


def _transcript(e: TranscriptReceived) -> dict[str, Any]:
    return {"role": "user", "text": e.text, "final": e.final}


def _agent_reply(e: AgentReplied) -> dict[str, Any]:
    return {"role": "bot", "text": e.text, "interrupted": e.interrupted}


def _bot_stopped(e: BotSpeechStopped) -> dict[str, Any]:
    return {"interrupted": e.interrupted}


def _turn_ended(e: TurnEnded) -> dict[str, Any]:
    return {"text": e.text}


def _interrupt(e: Interrupt) -> dict[str, Any]:
    return {"epoch": e.epoch, "reason": e.reason}


def _node_error(e: NodeError) -> dict[str, Any]:
    return {"code": "node_error", "message": str(e)}


def _nothing(e: object) -> dict[str, Any]:
    return {}


# Bus event type → (message type, fields). A table, not an isinstance chain; events
# not listed (metrics, barge-in, state changes) stay on the server.
_MESSAGES: dict[type[Event], tuple[str, Callable[[Any], dict[str, Any]]]] = {
    TranscriptReceived: ("transcript", _transcript),
    AgentReplied: ("agent_reply", _agent_reply),
    BotSpeechStarted: ("bot_speech_started", _nothing),
    BotSpeechStopped: ("bot_speech_stopped", _bot_stopped),
    UserSpeechStarted: ("user_speech_started", _nothing),
    UserSpeechStopped: ("user_speech_stopped", _nothing),
    TurnEnded: ("turn_ended", _turn_ended),
    Interrupt: ("interrupted", _interrupt),
    NodeError: ("error", _node_error),
}


class EventsChannel:
    """The server's end of the ``events`` data channel; see the module docstring."""

    def __init__(self) -> None:
        self._out: list[str] = []
        self._commands: list[Command] = []
        self.latency = TurnLatency()
        self.received = 0
        """Page messages parsed (good ones)."""

    # -- server → page -------------------------------------------------------------

    def send_event(self, event: Event) -> None:
        """Queue the message(s) for one bus event (none for events the page does not get)."""
        entry = _MESSAGES.get(type(event))
        if entry is not None:
            kind, fields = entry
            self._queue(kind, {"t_ms": _ms(max(event.pts, 0)), **fields(event)})
        report = self.latency.receive_event(event)
        if report is not None:
            self._queue("latency", _latency_fields(report))

    def send_session(self, session_id: str) -> None:
        """Queue ``{"type": "session", "session_id"}`` (sent when the channel opens)."""
        self._queue("session", {"session_id": session_id})

    def send_error(self, code: str, message: str) -> None:
        """Queue an ``error`` message."""
        self._queue("error", {"code": code, "message": message})

    def send_session_ended(self, reason: str) -> None:
        """Queue ``session_ended``: the last message; the connection closes after it."""
        self._queue("session_ended", {"reason": reason})

    def data_to_send(self) -> list[str]:
        """The JSON texts to send, in order; the queue is emptied."""
        out, self._out = self._out, []
        return out

    def _queue(self, kind: str, fields: Mapping[str, Any]) -> None:
        self._out.append(json.dumps({"type": kind, **fields}, separators=(",", ":")))

    # -- page → server -------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Parse one page message; raises :class:`ChannelError` if it breaks the protocol."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise ChannelError(f"message of {len(data)} bytes; at most {MAX_MESSAGE_BYTES}")
        try:
            msg = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ChannelError(f"message is not JSON: {exc}") from None
        kind = msg.get("type") if isinstance(msg, dict) else None
        if not isinstance(kind, str):
            raise ChannelError('message must be a JSON object with a string "type"')
        command = _COMMANDS.get(kind)
        if command is None:
            known = ", ".join(sorted(_COMMANDS))
            raise ChannelError(f"unknown message type {kind!r} (known: {known})")
        self.received += 1
        self._commands.append(command)

    def events_received(self) -> list[Command]:
        """The commands parsed since the last call, in order."""
        out, self._commands = self._commands, []
        return out


def _latency_fields(r: LatencyReport) -> dict[str, Any]:
    return {
        "turn": r.turn,
        "ms": _ms(r.latency_ns),
        "from": r.measured_from,
        "turn_detection_ms": None if r.turn_detection_ns is None else _ms(r.turn_detection_ns),
    }
