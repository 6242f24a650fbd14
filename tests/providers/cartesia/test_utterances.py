"""Which text goes into which context and when its audio comes out (sans-I/O)."""

from __future__ import annotations

import base64
import json
from typing import Any

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame
from vbgraph.providers.cartesia.protocol import ContextState, TtsConnection, TtsSettings
from vbgraph.providers.cartesia.utterances import Utterances

FMT = AudioFormat(24000)
SETTINGS = TtsSettings("sonic-3", "f786b574-daa5-4673-aa0c-cbe3e8534c02")


class Rig:
    """An Utterances on a TtsConnection, with the frames and first-audio times it gave."""

    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []
        self.ttfb: list[float] = []
        self.u = Utterances("tts", FMT, self.frames.append, self.ttfb.append)
        self.proto = TtsConnection(SETTINGS)
        self.now = 0

    def send(self, epoch: int = 0) -> list[dict[str, Any]]:
        self.u.send(self.proto, epoch, self.now)
        return [json.loads(m) for m in self.proto.data_to_send()]

    def server(self, kind: str, cid: str, **fields: Any) -> Any:
        self.proto.receive_message(json.dumps({"type": kind, "context_id": cid, **fields}))
        results = [self.u.receive(e, self.now) for e in self.proto.events_received()]
        return results[0] if results else None

    def chunk(self, cid: str, samples: int, value: int = 1) -> None:
        data = base64.b64encode(value.to_bytes(2, "little") * samples).decode()
        self.server("chunk", cid, data=data)


class TestContexts:
    """One context per utterance (protocol notes: continue semantics)."""

    def test_an_utterance_streams_into_one_context_and_its_end_closes_it(self) -> None:
        """Pieces get their trailing space; the end is '' with continue: false."""
        r = Rig()
        r.u.queue(["Hello there.", "How are you?"], 0, end=True)
        sent = r.send()
        assert [(m["context_id"], m["transcript"], m["continue"]) for m in sent] == [
            ("tts-1", "Hello there. ", True),
            ("tts-1", "How are you? ", True),
            ("tts-1", "", False),
        ]
        r.u.queue(["Next."], 0, end=False)
        assert r.send()[0]["context_id"] == "tts-2"
        assert r.u.opened == 2

    def test_ops_of_an_older_epoch_are_never_sent(self) -> None:
        """Text queued before an interruption does not reach the socket."""
        r = Rig()
        r.u.queue(["Old."], 0, end=True)
        assert r.send(epoch=1) == []
        assert r.u.idle


class TestOrder:
    """Audio comes out in text order though contexts are generated concurrently."""

    def test_a_later_contexts_audio_waits_for_the_earlier_one(self) -> None:
        """tts-2's chunk is held until tts-1 is done, then emitted with its own pts."""
        r = Rig()
        r.u.queue(["One."], 0, end=True)
        r.u.queue(["Two."], 0, end=True)
        r.send()
        r.chunk("tts-2", 240, value=2)
        assert r.frames == []
        r.now = 5_000_000
        r.chunk("tts-1", 480, value=1)
        r.now = 9_000_000
        r.server("done", "tts-1")
        r.server("done", "tts-2")
        assert [f.data[:2] for f in r.frames] == [b"\x01\x00", b"\x02\x00"]
        assert [(f.pts, f.epoch) for f in r.frames] == [(5_000_000, 0), (9_000_000, 0)]
        assert r.ttfb == [5.0, 9.0]
        assert r.u.idle

    def test_pts_count_samples_from_the_utterances_first_audio(self) -> None:
        """Integer sample counts, not arrival times."""
        r = Rig()
        r.u.queue(["Hi."], 0, end=True)
        r.send()
        r.now = 1_000_000
        r.chunk("tts-1", 2400)
        r.now = 2_000_000
        r.chunk("tts-1", 2400)
        assert [f.pts for f in r.frames] == [1_000_000, 101_000_000]


class TestInterruption:
    """Interrupt: cancel on the wire, drop ops, count what arrives late."""

    def test_older_contexts_are_cancelled_and_their_late_audio_is_stale(self) -> None:
        """The cancel message goes out; chunks after it emit nothing."""
        r = Rig()
        r.u.queue(["Long answer."], 0, end=False)
        r.send()
        r.u.queue(["More."], 0, end=False)
        r.u.interrupt(1, r.proto)
        assert r.proto.data_to_send() == ['{"context_id":"tts-1","cancel":true}']
        assert r.proto.state("tts-1") is ContextState.CANCELLED
        r.chunk("tts-1", 100)
        assert r.frames == [] and r.proto.stale_messages == 1
        assert r.u.cancelled == 1 and r.u.idle


class TestLostConnection:
    """A lost socket: replay what was unheard, count what was cut."""

    def test_contexts_without_audio_are_replayed_and_speaking_ones_are_cut(self) -> None:
        """tts-1 was speaking (cut); tts-2 had no audio: its text is sent again, new id."""
        r = Rig()
        r.u.queue(["First."], 0, end=True)
        r.u.queue(["Second part,", "and more."], 0, end=False)
        r.send()
        r.chunk("tts-1", 100)
        assert r.u.connection_lost() == 1
        r.proto = TtsConnection(SETTINGS)
        sent = r.send()
        assert [(m["context_id"], m["transcript"]) for m in sent] == [
            ("tts-3", "Second part, "),
            ("tts-3", "and more. "),
        ]
        assert r.u.lost == 1

    def test_an_utterance_is_replayed_once_then_cut(self) -> None:
        """A service that loses the same text twice does not get it a third time."""
        r = Rig()
        r.u.queue(["Stuck."], 0, end=True)
        r.send()
        assert r.u.connection_lost() == 0
        r.proto = TtsConnection(SETTINGS)
        assert [m["transcript"] for m in r.send()] == ["Stuck. ", ""]
        assert r.u.connection_lost() == 1
        r.proto = TtsConnection(SETTINGS)
        assert r.send() == [] and r.u.idle


class TestServerErrors:
    """A refused context is reported once; the rest of its utterance is skipped."""

    def test_a_refused_live_context_drops_the_rest_of_its_utterance(self) -> None:
        """The error is returned to report; later pieces until the end are counted, not sent."""
        r = Rig()
        r.u.queue(["Hello,"], 0, end=False)
        r.send()
        error = r.server("error", "tts-1", status_code=400, message="bad voice")
        assert error is not None and error.context_id == "tts-1"
        r.u.queue(["world."], 0, end=True)
        assert r.send() == []
        assert r.u.dropped == 1 and r.u.lost == 1
        r.u.queue(["Fresh start."], 0, end=True)
        assert r.send()[0]["context_id"] == "tts-2"


class TestHeard:
    """Word timestamps to the text heard (Reply.heard)."""

    def test_words_are_heard_across_contexts_by_their_end_times(self) -> None:
        """A second context's words count from where its audio starts in the reply."""
        r = Rig()
        r.u.queue(["Hello there,"], 0, end=True)
        r.u.queue(["my friend."], 0, end=True)
        r.send()
        words = {"words": ["Hello", "there,"], "start": [0.0, 0.3], "end": [0.25, 0.6]}
        r.server("timestamps", "tts-1", word_timestamps=words)
        r.chunk("tts-1", 24000)  # 1 s of audio
        r.server("done", "tts-1")
        words = {"words": ["my", "friend."], "start": [0.0, 0.2], "end": [0.15, 0.5]}
        r.server("timestamps", "tts-2", word_timestamps=words)
        r.chunk("tts-2", 24000)
        reply = r.u.reply
        assert reply is not None and reply.timed
        assert reply.heard(200_000_000) == ""
        assert reply.heard(600_000_000) == "Hello there,"
        assert reply.heard(1_150_000_000) == "Hello there, my"
        assert reply.heard(10_000_000_000) == "Hello there, my friend."
