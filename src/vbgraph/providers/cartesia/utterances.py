"""Which text goes into which Cartesia context, and when its audio comes out (sans-I/O).

Theory of operation
-------------------
``tts.cartesia`` cuts text into clauses (the ``TextAggregator``) and hands
them to :class:`Utterances` as *ops*: a piece of an utterance, or the end of
one. On a live socket, :meth:`Utterances.send` turns the ops into requests on
a :class:`~.protocol.TtsConnection`: the first piece of an utterance opens a
context (``<node id>-<n>``), later pieces stream into it with ``continue:
true``, the end closes its input. While the socket is down the ops wait.

The server generates contexts concurrently, but speech must come out in text
order: :meth:`Utterances.receive` emits the audio of the oldest unfinished
context at once and holds later contexts' audio until the ones before them are
done. Frames carry the utterance's epoch and ``pts`` counted from the
utterance's first sample.

An interruption (:meth:`Utterances.interrupt`) drops pending ops of older
epochs and cancels their contexts; what the server still sends for them is
stale (counted). A lost socket (:meth:`Utterances.connection_lost`) cuts the
contexts that were already speaking; those that had given no audio yet are
replayed on the next socket, since nothing of them was heard.

*What was heard.* Each :class:`Reply` (the contexts of one bot reply) keeps
the words sent and their end times from ``timestamps`` (seconds from the
context's first sample), placed on the reply's audio timeline when the
context starts to sound. :meth:`Reply.heard` gives the words whose audio had
ended after the first ``played_ns`` of playout. Words are counted on the text
as sent (split at whitespace), assuming Cartesia's word list follows the
transcript's whitespace; a mismatch shifts the cut by a word, never more.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ...formats import AudioFormat, pts_ns
from ...frames import AudioFrame
from .protocol import AudioChunk, ContextDone, ServerError, TtsConnection, TtsEvent, WordTimestamps

__all__ = ["CartesiaStatistics", "Reply", "Utterances"]


@dataclass(frozen=True, slots=True)
class CartesiaStatistics:
    """Counters of one ``tts.cartesia`` node (:meth:`TtsCartesia.statistics`)."""

    connections: int
    contexts: int
    cancelled: int
    """Contexts cancelled by an interruption."""
    lost: int
    """Contexts cut short by a lost connection or refused by the server."""
    stale_messages: int
    """Messages for contexts already given up (generated before the cancel), dropped."""
    unknown_messages: int
    dropped_pieces: int
    """Text pieces never spoken: no connection, or the rest of a refused utterance."""


@dataclass(slots=True)
class _Op:
    """A piece of an utterance, or its end (``text is None``)."""

    epoch: int
    text: str | None
    replay: bool = False  # sent once already, on a socket that was lost


@dataclass(slots=True, eq=False)
class _Context:
    """One context: its text, word end times, audio position and held audio."""

    cid: str
    epoch: int
    reply: Reply
    text: list[str] = field(default_factory=list)
    ends_ns: list[int] = field(default_factory=list)  # word ends, from its first sample
    offset_ns: int = -1  # where its audio starts in the reply's audio
    sent_ns: int = -1
    t0: int = -1  # session time of its first audio
    samples: int = 0
    done: bool = False
    replay: bool = False  # a second attempt: if it is lost too, it is cut, not replayed
    held: list[bytes] = field(default_factory=list)  # audio waiting for earlier contexts


@dataclass(slots=True, eq=False)
class Reply:
    """The contexts of one bot reply (an epoch's speech until it has played out)."""

    epoch: int
    contexts: list[_Context] = field(default_factory=list)
    samples: int = 0
    timed: bool = False
    """True once word timestamps arrived (only then can :meth:`heard` be trusted)."""
    finished: bool = False
    """Played out: the next utterance starts a new reply."""

    def heard(self, played_ns: int) -> str:
        """The words whose audio ended within the first ``played_ns`` of the reply."""
        words: list[str] = []
        for c in self.contexts:
            if c.offset_ns < 0:
                break
            said = " ".join(c.text).split()
            n = min(len(said), sum(1 for end in c.ends_ns if c.offset_ns + end <= played_ns))
            words += said[:n]
            if n < len(said):
                break
        return " ".join(words)


class Utterances:
    """Ops, contexts and output order of one ``tts.cartesia`` node (module docstring).

    ``emit`` receives each audio frame, ``first_audio`` the time to first
    audio (ms) of each context. Not thread-safe.
    """

    def __init__(
        self,
        prefix: str,
        fmt: AudioFormat,
        emit: Callable[[AudioFrame], None],
        first_audio: Callable[[float], None],
    ) -> None:
        self._prefix = prefix
        self._fmt = fmt
        self._emit_frame = emit
        self._first_audio = first_audio
        self._ops: deque[_Op] = deque()
        self._contexts: dict[str, _Context] = {}
        self._order: deque[_Context] = deque()  # contexts expecting output, in text order
        self._live: _Context | None = None  # the context taking text
        self._refused_epoch = -1  # an utterance whose context the server refused: skip it
        self._ids = itertools.count(1)
        self.reply: Reply | None = None
        """The reply being spoken (or last spoken), for what-was-heard."""
        self.opened = self.cancelled = self.lost = self.stale = self.dropped = 0

    @property
    def idle(self) -> bool:
        """No text waiting and no context expecting output."""
        return not self._ops and not self._order

    @property
    def speaking(self) -> bool:
        """Some context still expects output."""
        return bool(self._order)

    @property
    def has_text(self) -> bool:
        """Ops wait to be sent."""
        return bool(self._ops)

    # -- text in ----------------------------------------------------------------------

    def queue(self, texts: list[str], epoch: int, end: bool) -> None:
        """Pieces of the utterance of ``epoch``; ``end`` closes it after them."""
        self._ops.extend(_Op(epoch, text) for text in texts)
        if end:
            self._ops.append(_Op(epoch, None))

    def discard_text(self) -> int:
        """Drop every waiting op (no connection); returns the pieces dropped, counted."""
        dropped = sum(1 for op in self._ops if op.text is not None)
        self._ops.clear()
        self.dropped += dropped
        return dropped

    def send(self, proto: TtsConnection, epoch: int, now_ns: int) -> bool:
        """Turn waiting ops into requests; True if a context got its first text."""
        opened = False
        while self._ops:
            op = self._ops.popleft()
            if op.epoch < epoch:
                continue
            live = self._live
            if op.text is None:
                if live is not None:
                    proto.end_input(live.cid)
                    self._live = None
                self._refused_epoch = -1
                continue
            if op.epoch == self._refused_epoch:
                self.dropped += 1  # the rest of an utterance the server refused
                continue
            if live is None or live.epoch != op.epoch:
                if live is not None:
                    proto.end_input(live.cid)
                live = self._open(op.epoch)
                live.replay = op.replay
            proto.send_text(live.cid, op.text + " ")  # pieces are joined verbatim
            live.text.append(op.text)
            if live.sent_ns < 0:
                live.sent_ns = now_ns
                opened = True
        return opened

    def _open(self, epoch: int) -> _Context:
        reply = self.reply
        if reply is None or reply.epoch != epoch or reply.finished:
            reply = self.reply = Reply(epoch)
        c = _Context(f"{self._prefix}-{next(self._ids)}", epoch, reply)
        reply.contexts.append(c)
        self._contexts[c.cid] = c
        self._order.append(c)
        self._live = c
        self.opened += 1
        return c

    # -- audio out ----------------------------------------------------------------------

    def receive(self, event: TtsEvent, now_ns: int) -> ServerError | None:
        """Handle one protocol event; returns a server error to report, if any."""
        c = self._contexts.get(event.context_id or "")
        if type(event) is ServerError:
            if c is None and event.context_id is not None:
                self.stale += 1  # another answer about a context already given up
                return None
            if c is not None:
                self.lost += 1
                if self._live is c:
                    self._refused_epoch = c.epoch
                self._finish(c, now_ns)
            return event
        if c is None:  # a context given up (lost, then answered late)
            self.stale += 1
        elif type(event) is AudioChunk:
            if c is self._order[0]:
                self._emit(c, event.data, now_ns)
            else:
                c.held.append(event.data)
        elif type(event) is WordTimestamps:
            c.ends_ns.extend(round(end * 1e9) for end in event.end_s)
            c.reply.timed = True
        elif type(event) is ContextDone:
            self._finish(c, now_ns)
        return None

    def _emit(self, c: _Context, data: bytes, now_ns: int) -> None:
        fmt = self._fmt
        if c.t0 < 0:
            c.t0 = now_ns
            c.offset_ns = pts_ns(c.reply.samples, fmt.rate)
            self._first_audio((now_ns - c.sent_ns) / 1e6)
        frame = AudioFrame(data, fmt, pts=pts_ns(c.samples, fmt.rate, c.t0), epoch=c.epoch)
        samples = len(data) // fmt.frame_bytes
        c.samples += samples
        c.reply.samples += samples
        self._emit_frame(frame)

    def _finish(self, c: _Context, now_ns: int) -> None:
        """``c`` has no more output: release the held audio of the contexts after it."""
        c.done = True
        if self._live is c:
            self._live = None
        order = self._order
        while order:
            head = order[0]
            for data in head.held:
                self._emit(head, data, now_ns)
            head.held.clear()
            if not head.done:
                break
            order.popleft()
            del self._contexts[head.cid]

    # -- interruptions and lost sockets --------------------------------------------------

    def interrupt(self, epoch: int, proto: TtsConnection | None) -> None:
        """Drop ops of older epochs and cancel their contexts (on ``proto`` if connected)."""
        self._ops = deque(op for op in self._ops if op.epoch >= epoch)
        for c in [c for c in self._order if c.epoch < epoch]:
            if proto is not None and proto.state(c.cid) is not None:
                proto.cancel(c.cid)
            self.cancelled += 1
            self._order.remove(c)
            del self._contexts[c.cid]
        if self._live is not None and self._live.epoch < epoch:
            self._live = None

    def connection_lost(self) -> int:
        """The socket closed: replay contexts with no audio yet; returns how many were cut.

        A context is replayed once: a service that keeps failing the same text
        (a stall, a crash on it) gets it cut, not resent forever.
        """
        replay: list[_Op] = []
        for c in [c for c in self._order if c.t0 < 0 and not c.replay]:
            replay += [_Op(c.epoch, text, replay=True) for text in c.text]
            if c is not self._live:
                replay.append(_Op(c.epoch, None, replay=True))
            self._order.remove(c)
            c.reply.contexts.remove(c)
        self._ops.extendleft(reversed(replay))
        cut = len(self._order)
        self.lost += cut
        self._order.clear()
        self._contexts.clear()
        self._live = None
        return cut

    def played_out(self) -> Reply | None:
        """The playout ran dry: returns the reply if that ended it (no context of it left)."""
        reply = self.reply
        if reply is None or reply.finished or any(c.reply is reply for c in self._order):
            return None
        reply.finished = True
        return reply
