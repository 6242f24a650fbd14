"""The audio ledger: stream time to session time, replay after a drop, bounded buffers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.providers.deepgram.ledger import AudioLedger
from vbgraph.providers.deepgram.protocol import CLOSE_STREAM, FINALIZE

MS = 1_000_000
RATE = 16000
CHUNK = 320  # 20 ms of 16 kHz linear16 samples


def ledger(max_pending_ns: int = 60_000 * MS, max_replay_ns: int = 60_000 * MS) -> AudioLedger:
    return AudioLedger(RATE, 2, max_pending_ns=max_pending_ns, max_replay_ns=max_replay_ns)


def pcm(index: int, samples: int = CHUNK) -> bytes:
    """A chunk whose samples all hold ``index`` (so chunks are told apart)."""
    return index.to_bytes(2, "little") * samples


def drain(book: AudioLedger, now: int = 0) -> list[bytes | str]:
    out: list[bytes | str] = []
    while (item := book.take(now)) is not None:
        out.append(item)
    return out


class TestTimeMapping:
    """Stream seconds on a connection to session ns, following gaps in the input."""

    def test_contiguous_audio_maps_by_sample_count(self) -> None:
        """With no gaps, stream time plus the first pts is session time."""
        book = ledger()
        for i in range(5):
            book.push_audio(pcm(i), 500 * MS + i * 20 * MS)
        drain(book)
        assert book.session_ns(0.0) == 500 * MS
        assert book.session_ns(0.05) == 550 * MS
        assert book.session_ns(0.1) == 600 * MS  # the end of the audio

    def test_a_gap_in_the_input_shifts_later_stream_times(self) -> None:
        """Speech-only input: the server hears 40 ms of audio, the session spans a second."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        book.push_audio(pcm(2), 1000 * MS)
        drain(book)
        assert book.session_ns(0.010) == 10 * MS
        assert book.session_ns(0.025) == 1005 * MS

    def test_times_outside_the_held_audio_are_extrapolated(self) -> None:
        """After a confirm forgot the chunks, times extrapolate from the last one known."""
        book = ledger()
        book.push_audio(pcm(1), 2000 * MS)
        book.push_audio(pcm(2), 2020 * MS)
        drain(book)
        book.confirm(0.04)
        assert book.session_ns(0.03) == 2030 * MS

    def test_sent_ns_is_when_the_audio_just_before_a_time_was_sent(self) -> None:
        """The chunk holding the last sample before end_s, as stamped by take()."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        book.push_audio(pcm(2), 20 * MS)
        assert book.take(100 * MS) == pcm(1)
        assert book.take(130 * MS) == pcm(2)
        assert book.sent_ns(0.02) == 100 * MS
        assert book.sent_ns(0.03) == 130 * MS
        book.confirm(0.04)
        assert book.sent_ns(0.04) is None


class TestReplay:
    """A dropped connection: the audio no final covers goes out again, in order."""

    def test_unconfirmed_audio_is_queued_again_from_the_confirmed_sample(self) -> None:
        """The chunk straddling the final's end is cut there; its pts moves with the cut."""
        book = ledger()
        for i in range(4):
            book.push_audio(pcm(i), i * 20 * MS)
        drain(book)
        book.confirm(0.03)  # half-way through chunk 1
        book.restart()
        assert drain(book) == [pcm(1, 160), pcm(2), pcm(3)]
        assert book.replayed_ns == 50 * MS
        assert book.session_ns(0.0) == 30 * MS  # the new connection starts at the cut

    def test_replayed_audio_goes_before_audio_that_waited_meanwhile(self) -> None:
        """Audio queued while reconnecting follows the replay."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        drain(book)
        book.push_audio(pcm(2), 20 * MS)
        book.restart()
        assert drain(book) == [pcm(1), pcm(2)]

    def test_an_unanswered_finalize_is_sent_again_after_its_audio(self) -> None:
        """Finalize keeps its place; CloseStream is always sent again."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        book.push_control(FINALIZE)
        book.push_audio(pcm(2), 20 * MS)
        book.push_control(CLOSE_STREAM)
        drain(book)
        book.restart()
        assert drain(book) == [pcm(1), FINALIZE, pcm(2), CLOSE_STREAM]

    def test_an_answered_finalize_is_not_repeated(self) -> None:
        """A final covering the Finalize's audio answers it."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        book.push_control(FINALIZE)
        book.push_audio(pcm(2), 20 * MS)
        drain(book)
        book.confirm(0.02)
        book.restart()
        assert drain(book) == [pcm(2)]

    def test_nothing_is_replayed_when_every_final_arrived(self) -> None:
        """A confirmed stream restarts empty."""
        book = ledger()
        book.push_audio(pcm(1), 0)
        drain(book)
        book.confirm(0.02)
        book.restart()
        assert drain(book) == [] and book.replayed_ns == 0

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.integers(1, 400), min_size=1, max_size=20),
        st.floats(0, 1),
    )
    def test_any_chunking_replays_exactly_the_unconfirmed_bytes(
        self, sizes: list[int], fraction: float
    ) -> None:
        """Whatever the chunk sizes and the final's end, replay == audio after the end."""
        book = ledger()
        audio = b"".join(pcm(i, n) for i, n in enumerate(sizes))
        pts = 0
        for i, n in enumerate(sizes):
            book.push_audio(pcm(i, n), pts)
            pts += n * 1_000_000_000 // RATE
        drain(book)
        total = sum(sizes)
        confirmed = round(total * fraction)
        book.confirm(confirmed / RATE)
        book.restart()
        replay = drain(book)
        assert all(isinstance(x, bytes) for x in replay)
        assert b"".join(x for x in replay if isinstance(x, bytes)) == audio[confirmed * 2 :]


class TestBuffers:
    """What is copied and what is not (STYLE rule 9)."""

    def test_bytes_payloads_go_out_as_the_same_object(self) -> None:
        """A frame's bytes are queued and sent without a copy."""
        book = ledger()
        data = pcm(1)
        book.push_audio(data, 0)
        assert book.take(0) is data

    def test_other_buffers_are_copied_once_when_queued(self) -> None:
        """A memoryview over a buffer changed later still sends what was queued."""
        book = ledger()
        buffer = bytearray(pcm(1))
        book.push_audio(memoryview(buffer), 0)
        buffer[:] = bytes(len(buffer))
        assert book.take(0) == pcm(1)


class TestBounds:
    """Memory is bounded and every drop is counted."""

    def test_pending_audio_beyond_the_bound_drops_the_oldest_and_counts(self) -> None:
        """A 50 ms bound keeps the newest two 20 ms chunks; controls stay."""
        book = ledger(max_pending_ns=50 * MS)
        book.push_audio(pcm(1), 0)
        book.push_control(FINALIZE)
        for i in (2, 3):
            book.push_audio(pcm(i), i * 20 * MS)
        assert (book.overflow, book.overflow_ns) == (1, 20 * MS)
        assert drain(book) == [FINALIZE, pcm(2), pcm(3)]
        assert book.pending_ns == 0 and not book.has_pending

    def test_unconfirmed_audio_beyond_the_replay_bound_is_forgotten_and_counted(self) -> None:
        """With no final for a long time, only the last max_replay_ns can be replayed."""
        book = ledger(max_replay_ns=40 * MS)
        for i in range(5):
            book.push_audio(pcm(i), i * 20 * MS)
        drain(book)
        assert book.trimmed_ns == 60 * MS
        book.restart()
        assert drain(book) == [pcm(3), pcm(4)]

    def test_partial_sample_frames_are_refused(self) -> None:
        """Chunks must hold whole samples: an odd byte count is a caller bug."""
        with pytest.raises(ValueError, match="whole number"):
            ledger().push_audio(b"\x00\x01\x02", 0)
