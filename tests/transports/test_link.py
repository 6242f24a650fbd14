"""CallLink: the meeting point of a transport shell and a session, driven from both ends."""

from __future__ import annotations

import asyncio

import pytest

from vbgraph.errors import UsageError
from vbgraph.events import DtmfPressed
from vbgraph.formats import AudioFormat
from vbgraph.testing import run_virtual
from vbgraph.transports.link import CallLink, OutboundAudio, OutboundClear, OutboundMark

ULAW = AudioFormat(8000, 1, "mulaw")


def make_link(**kw: object) -> CallLink:
    return CallLink("test", ULAW, ULAW, call_id="CA1", **kw)  # type: ignore[arg-type]


class TestInbound:
    def test_audio_is_received_in_order_then_none_after_the_hangup(self) -> None:
        """receive() gives each pushed payload once, in order, and None once input ended."""
        link = make_link()

        async def main() -> list[bytes | None]:
            link.push_audio(b"\x01" * 160)
            link.push_audio(b"\x02" * 160)
            link.end_input("hangup")
            return [await link.receive(), await link.receive(), await link.receive()]

        assert run_virtual(main()) == [b"\x01" * 160, b"\x02" * 160, None]
        assert link.end_reason == "hangup" and link.input_ended

    def test_a_waiting_receiver_wakes_when_audio_arrives(self) -> None:
        """The graph side waits without polling and wakes on push."""
        link = make_link()

        async def main() -> bytes | None:
            task = asyncio.create_task(link.receive())
            await asyncio.sleep(0)
            assert not task.done()
            link.push_audio(b"\x05" * 8)
            return await task

        assert run_virtual(main()) == b"\x05" * 8

    def test_a_graph_that_falls_behind_loses_the_oldest_audio_counted(self) -> None:
        """The inbound buffer is bounded by max_inbound_ms; drops are counted, never silent."""
        link = make_link(max_inbound_ms=100)  # 800 bytes of μ-law
        for i in range(10):
            link.push_audio(bytes([i]) * 160)
        stats = link.statistics()
        assert stats.inbound_bytes == 1600
        assert stats.inbound_dropped_bytes == 1600 - 800

        async def first() -> bytes | None:
            return await link.receive()

        assert run_virtual(first()) == bytes([5]) * 160

    def test_partial_sample_frames_and_audio_after_the_end_are_usage_errors(self) -> None:
        """A shell bug is reported at the call, naming the link."""
        link = CallLink("test", AudioFormat(16000), AudioFormat(16000), call_id="CA9")
        with pytest.raises(UsageError, match=r"CA9.*whole sample"):
            link.push_audio(b"\x00\x01\x02")
        link.end_input()
        with pytest.raises(UsageError, match="after end_input"):
            link.push_audio(b"\x00\x00")


class TestOutbound:
    def test_clear_drops_unsent_audio_and_queues_a_clear(self) -> None:
        """An interruption leaves marks, drops queued audio (counted apart) and adds Clear."""
        link = make_link()
        link.send_audio(b"\xff" * 160, 160, epoch=0)
        link.mark("utterance-1")
        link.send_audio(b"\xff" * 160, 160, epoch=0)
        link.clear(epoch=1)
        link.close_output()

        async def drain() -> list[object]:
            items = []
            while (item := await link.next_outbound()) is not None:
                items.append(item)
            return items

        assert run_virtual(drain()) == [OutboundMark("utterance-1"), OutboundClear(1)]
        stats = link.statistics()
        assert stats.cleared_chunks == 2 and stats.sent_samples == 0
        assert stats.outbound_dropped_chunks == 0

    def test_audio_after_the_connection_closed_is_dropped_and_counted(self) -> None:
        """Nothing is silently lost: late audio shows in outbound_dropped_chunks."""
        link = make_link()
        link.close_output()
        link.send_audio(b"\xff" * 160, 160, epoch=0)
        assert link.statistics().outbound_dropped_chunks == 1
        assert link.poll_outbound() is None

    def test_a_stalled_shell_loses_audio_beyond_max_outbound_ms_counted(self) -> None:
        """The outbound queue is bounded too."""
        link = make_link(max_outbound_ms=100)  # 5 chunks of 20 ms
        for _ in range(8):
            link.send_audio(b"\xff" * 160, 160, epoch=0)
        assert link.statistics().outbound_dropped_chunks == 3
        item = link.poll_outbound()
        assert isinstance(item, OutboundAudio) and item.end_sample == 160

    def test_played_position_comes_from_the_far_end_when_it_reports_one(self) -> None:
        """With marks, played_samples is what was confirmed (never more than was sent)."""
        link = make_link(reports_playback=True)
        for _ in range(5):
            link.send_audio(b"\xff" * 160, 160, epoch=0)
        assert link.played_samples == 0
        link.confirm_played(480)
        assert link.played_samples == 480
        link.confirm_played(10_000)
        assert link.played_samples == 800
        plain = make_link()
        plain.send_audio(b"\xff" * 160, 160, epoch=0)
        assert plain.played_samples == 160


class TestCallerEvents:
    def test_events_come_in_order_with_the_audio_and_survive_an_overflow(self) -> None:
        """A DTMF key between two payloads is received between them, even when audio drops."""
        link = make_link(max_inbound_ms=40)  # 320 bytes of μ-law
        link.push_audio(b"\x01" * 160)
        link.push_event(DtmfPressed(digit="5"))
        link.push_audio(b"\x02" * 160)
        link.push_audio(b"\x03" * 160)  # over the bound: the oldest audio goes
        link.end_input()

        async def drain() -> list[object]:
            items = []
            while (item := await link.receive()) is not None:
                items.append(item)
            return items

        assert run_virtual(drain()) == [DtmfPressed(digit="5"), b"\x02" * 160, b"\x03" * 160]
        assert link.statistics().inbound_dropped_bytes == 160
