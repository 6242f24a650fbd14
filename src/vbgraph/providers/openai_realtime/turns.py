"""The client's side of turn-taking on a Realtime session (sans-I/O).

:class:`Turns` keeps what the node must remember between server events about
the caller's turns: whether a committed turn still awaits its response,
whether a ``response.create`` must wait for a cancelled response to end, where
a local VAD said the caller stopped (the commit waits for that audio), how
many tool rounds the turn has used, and when the turn was committed (for the
time to first audio). It acts on a :class:`~.protocol.RealtimeProtocol`
(queueing client events); the caller sends ``data_to_send()`` afterwards.

*Manual turns* (``turn_detection: none``): events overtake frames (a VAD's
``UserSpeechStopped`` arrives at once, the audio it ends may still be queued
in front of the node), so :meth:`Turns.local_stop` commits only once the audio
up to the stop's ``pts`` has been appended (:meth:`Turns.audio_sent`).
"""

from __future__ import annotations

from .protocol import RealtimeProtocol

__all__ = ["Turns"]

_MS = 1_000_000


class Turns:
    """Turn bookkeeping for one connection (see the module docstring)."""

    def __init__(self, manual: bool, max_tool_rounds: int) -> None:
        self.manual = manual
        self.max_tool_rounds = max_tool_rounds
        self.awaiting = False
        """A turn was committed (or a response asked for) and no response began yet."""
        self.create_after_done = False
        """A response.create waits for the response being cancelled to end."""
        self.user_speaking = False
        self.tool_rounds = 0
        """Tool rounds in the current turn."""
        self.commit_at: int | None = None
        """Manual turns: commit once the audio appended reaches this pts."""
        self.audio_end = 0
        """pts just after the last audio appended."""
        self.turn_end: int | None = None
        """When the last turn was committed, until its reply's first audio."""

    # -- the caller ---------------------------------------------------------------------------

    def speech(self, started: bool) -> None:
        """Server VAD heard speech start or stop."""
        self.user_speaking = started

    def committed(self, now: int, server_answers: bool) -> None:
        """The server committed a turn; it answers by itself when ``server_answers``."""
        self.turn_end = now
        self.tool_rounds = 0
        if server_answers:
            self.awaiting = True

    def local_start(self) -> None:
        """A local VAD heard speech start (manual turns): a pending commit is off."""
        self.user_speaking = True
        self.commit_at = None

    def local_stop(self, pts: int, protocol: RealtimeProtocol, now: int) -> None:
        """A local VAD heard speech stop at ``pts``: commit, now or once that audio is sent."""
        self.user_speaking = False
        self.commit_at = pts
        if self.audio_end >= pts:
            self.commit(protocol, now)

    def audio_sent(self, end_pts: int, protocol: RealtimeProtocol, now: int) -> None:
        """Audio up to ``end_pts`` was appended; a waiting commit may go now."""
        self.audio_end = end_pts
        if self.commit_at is not None and end_pts >= self.commit_at:
            self.commit(protocol, now)

    def commit(self, protocol: RealtimeProtocol, now: int) -> bool:
        """Commit the input buffer and ask for the answer (False: under 100 ms, skipped)."""
        self.commit_at = None
        if not protocol.send_commit():
            return False
        self.turn_end = now
        self.tool_rounds = 0
        self.ask(protocol)
        return True

    # -- responses ----------------------------------------------------------------------------

    def ask(self, protocol: RealtimeProtocol, no_tools: bool = False) -> None:
        """``response.create``, or after the response being cancelled has ended."""
        if not protocol.can_create_response:
            self.create_after_done = True
        else:
            protocol.send_response_create(tool_choice="none" if no_tools else None)
        self.awaiting = True

    def response_created(self) -> None:
        """A response began: the turn's wait is over."""
        self.awaiting = False

    def response_done(self, protocol: RealtimeProtocol) -> None:
        """A response ended: send the response.create that waited for it."""
        if self.create_after_done:
            self.create_after_done = False
            self.ask(protocol)

    def tools_answered(self, protocol: RealtimeProtocol) -> None:
        """Function outputs were sent: ask for the answer (without tools past the limit)."""
        self.tool_rounds += 1
        self.ask(protocol, no_tools=self.tool_rounds >= self.max_tool_rounds)

    def first_audio(self, now: int) -> float | None:
        """The reply's first audio came at ``now``: ms since the turn was committed, once."""
        if self.turn_end is None:
            return None
        ms, self.turn_end = (now - self.turn_end) / _MS, None
        return ms

    def lost(self) -> None:
        """The connection ended: nothing is awaited on it any more."""
        self.awaiting = self.create_after_done = self.user_speaking = False
        self.commit_at = self.turn_end = None

    def quiet(self, protocol: RealtimeProtocol | None) -> bool:
        """Nothing awaited: no turn without its response, no response running.

        With server VAD, speech in progress counts too (its turn is still to
        come); a local VAD's speech does not (the VAD ends it at end of input).
        """
        return not (
            self.awaiting
            or self.create_after_done
            or (self.user_speaking and not self.manual)
            or (protocol is not None and not protocol.can_create_response)
        )
