"""The ``stt.deepgram`` node against the fake Deepgram on 127.0.0.1, on virtual time.

The source plays real read speech (librivox clips, 16 kHz PCM16) paced on the
session clock; the fake hears it with its own energy detector, so what comes
back depends on the audio the node really sent.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from vbgraph.errors import ConfigError
from vbgraph.events import TranscriptReceived, UserSpeechStopped
from vbgraph.graph.load import loads
from vbgraph.nodes.stt_whisper import SttWhisper
from vbgraph.providers.deepgram.node import SttDeepgram
from vbgraph.runtime.session import Session
from vbgraph.testing.fakes.deepgram import FakeDeepgram

from .support import S, clip, registry, run, text


class TestTranscripts:
    """Audio in, interim and final TranscriptFrames out (protocol doc: Results)."""

    def test_a_real_clip_gives_growing_interims_then_its_final(self) -> None:
        """Interims are prefixes of the final; one final with the scripted words; ok session."""
        r = run([880])
        assert r.result.ok, r.errors
        assert r.finals == [text(880)]
        interims = [f.text for f in r.frames if not f.final]
        assert len(interims) >= 3
        assert all(text(880).startswith(t) for t in interims)
        assert [len(t) for t in interims] == sorted(len(t) for t in interims)
        assert r.frames[-1].final and r.stt.interims == len(interims)

    def test_several_clips_give_their_finals_in_order_once_each(self) -> None:
        """Three utterances: three finals, in order, no duplicates, nothing unscripted."""
        r = run([880, 930, 890])
        assert r.result.ok, r.errors
        assert r.finals == [text(880), text(930), text(890)]
        assert r.fake.unscripted == 0 and r.fake.script == type(r.fake.script)()
        assert [e.text for e in r.of(TranscriptReceived)] == r.finals

    def test_words_are_timed_on_the_session_clock_inside_their_clip(self) -> None:
        """Word times map from stream seconds to session ns: inside the clip's span."""
        r = run([880, 930])
        spans = [(1.0, 3.99), (4.99, 8.28)]  # 1 s of silence before and between the clips
        for final, (start, end) in zip([f for f in r.frames if f.final], spans, strict=True):
            assert final.words and final.pts == final.words[0].start_ns
            assert start * S <= final.words[0].start_ns < final.words[-1].end_ns <= end * S
            assert [w.start_ns for w in final.words] == sorted(w.start_ns for w in final.words)

    def test_the_final_is_published_like_whisper_does(self) -> None:
        """TranscriptReceived: final, text, language, the utterance start and the epoch."""
        r = run([930])
        [event] = r.of(TranscriptReceived)
        [final] = [f for f in r.frames if f.final]
        assert (event.text, event.final, event.language) == (text(930), True, "en-US")
        assert event.speech_start_ns == final.pts and event.epoch == final.epoch == 0
        assert 0 < event.confidence <= 1

    def test_time_to_first_transcript_is_published_per_utterance(self) -> None:
        """stt.deepgram.ttfb_ms: from sending the audio to its first transcript (fake: 250 ms)."""
        r = run([880, 930], fake_options={"latency_s": 0.25})
        values = r.metric("stt.deepgram.ttfb_ms")
        assert len(values) == 2
        assert all(250 <= v < 270 for v in values), values

    def test_the_request_is_raw_linear16_with_a_token_header(self) -> None:
        """encoding, sample_rate, interim_results, endpointing as documented; Token auth."""
        r = run([930])
        conn = r.fake.connections[0]
        assert conn.scheme == "Token"
        assert (conn.param("encoding"), conn.param("sample_rate")) == ("linear16", "16000")
        assert (conn.param("interim_results"), conn.param("endpointing")) == ("true", "300")
        assert conn.param("model") == "nova-3" and conn.param("channels") == "1"
        assert sum(m.nbytes for m in conn.received if m.kind == "audio") == 2 * 16000 * 5.29 // 1

    def test_mulaw_at_8k_is_negotiated_and_sent_raw(self) -> None:
        """encoding: mulaw, sample_rate: 8000: converters are inserted, the fake decodes it."""
        r = run([880], stt="encoding: mulaw, sample_rate: 8000")
        assert r.result.ok, r.errors
        conn = r.fake.connections[0]
        assert (conn.param("encoding"), conn.param("sample_rate")) == ("mulaw", "8000")
        assert r.finals == [text(880)]
        audio = sum(m.nbytes for m in conn.received if m.kind == "audio")
        assert audio == 8000 * 4.99 // 1  # one byte per sample: raw G.711, no header


class TestEndOfTurn:
    """Finalize and CloseStream (protocol doc: Client -> server)."""

    def test_the_vads_speech_stop_sends_finalize_after_the_utterances_audio(self) -> None:
        """Endpointing off: each final comes from a Finalize sent when the VAD heard the end."""
        r = run([880, 930], vad=", stop_ms: 500", stt="endpointing: false")
        assert r.result.ok, r.errors
        assert r.finals == [text(880), text(930)]
        stops = r.of(UserSpeechStopped)
        finalizes = r.fake.received("Finalize")
        assert len(stops) == 2 and len(finalizes) == 3  # one per stop, one at the end
        assert 3.99 <= finalizes[0].audio_s < 4.99  # after clip 1, before clip 2
        assert all(
            m["from_finalize"]
            for m in r.fake.results(final=True)
            if m["channel"]["alternatives"][0]["transcript"]
        )

    def test_speech_only_input_is_finalized_per_utterance_and_timed_across_gaps(self) -> None:
        """vad.speech -> stt: no silence reaches Deepgram; Finalize splits, times skip the gaps."""
        r = run([880, 930], vad="", vad_port="speech")
        assert r.result.ok, r.errors
        assert r.finals == [text(880), text(930)]
        sent = sum(m.nbytes for m in r.fake.received("audio")) / 32000
        assert sent < 6.3  # the clips' speech only, not the 8.3 s played
        second = [f for f in r.frames if f.final][1]
        assert 4.99 * S <= second.words[0].start_ns < second.words[-1].end_ns <= 8.28 * S

    def test_the_end_of_input_sends_finalize_then_close_stream(self) -> None:
        """The last messages are Finalize and CloseStream; Metadata arrives; closed 1000."""
        r = run([930])
        conn = r.fake.connections[0]
        assert conn.kinds()[-2:] == ["Finalize", "CloseStream"]
        assert (conn.close_code, conn.violations) == (1000, [])
        assert r.stt.metadata is not None
        assert r.stt.metadata.duration == pytest.approx(5.29, abs=0.011)

    def test_a_finalize_is_not_sent_twice_without_audio_between(self) -> None:
        """With no VAD, only the end of input finalizes: exactly one Finalize."""
        r = run([930])
        assert len(r.fake.received("Finalize")) == 1 and r.stt.finalizes == 1


class TestIdle:
    """KeepAlive and the NET-0001 idle timeout (protocol doc: KeepAlive, Errors)."""

    def test_keepalive_is_sent_every_keepalive_s_while_no_audio_flows(self) -> None:
        """The source pauses after a clip: KeepAlives 4 s apart; no idle close, one connection."""

        async def during(session: Session, fake: FakeDeepgram) -> None:
            await fake.wait_for(lambda: len(fake.received("KeepAlive")) >= 3)
            mic = session.nodes["mic"]
            assert hasattr(mic, "release")
            mic.release.set()

        r = run([880], after=[930], hold=True, during=during)
        assert r.result.ok, r.errors
        assert r.finals == [text(880), text(930)]
        keepalives = [m.at for m in r.fake.received("KeepAlive")]
        last_audio = max(m.at for m in r.fake.received("audio") if m.at < keepalives[0])
        assert keepalives[0] - last_audio == pytest.approx(4.0)
        assert [b - a for a, b in itertools.pairwise(keepalives)] == [pytest.approx(4.0)] * (
            len(keepalives) - 1
        )
        assert len(r.fake.connections) == 1 and r.stream.idle_timeouts == 0

    def test_an_idle_close_reconnects_only_when_audio_comes_again(self) -> None:
        """NET-0001 after 2 s: the node waits for audio, then opens a new connection."""

        async def during(session: Session, fake: FakeDeepgram) -> None:
            await fake.wait_for(lambda: fake.connections[0].closed)
            assert len(fake.connections) == 1  # no eager reconnect while idle
            mic = session.nodes["mic"]
            assert hasattr(mic, "release")
            mic.release.set()

        r = run(
            [880],
            after=[930],
            hold=True,
            during=during,
            stt="keepalive_s: 9",
            fake_options={"idle_timeout_s": 2.0},
        )
        assert r.result.ok, r.errors
        first, second = r.fake.connections
        assert first.close_code == 1011 and "NET-0001" in first.close_reason
        assert r.stream.idle_timeouts == 1 and r.stream.connections == 2
        assert r.finals == [text(880), text(930)]
        assert second.received[0].at >= (r.mic.held_at or 0) / S + 2.0


class TestFailures:
    """Refused keys, bad messages, dropped connections (protocol doc: Errors)."""

    def test_a_bad_key_fails_the_session_at_start_naming_the_node(self) -> None:
        """401 INVALID_AUTH: a NodeError in phase start that says what to do, not the key."""
        r = run([930], key="dg-wrong-secret")
        assert not r.result.ok and r.frames == []
        [error] = r.errors
        assert (error.node_id, error.phase, error.error_type) == ("stt", "start", "ProviderError")
        assert "stt.deepgram node 'stt'" in error.message
        assert "refused the API key" in error.message and "INVALID_AUTH" in error.message
        assert "$DEEPGRAM_API_KEY" in error.message and "dg-wrong-secret" not in error.message
        assert [status for status, _ in r.fake.rejected] == [401]

    def test_a_missing_key_is_a_config_error_naming_the_field(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No api_key and no $DEEPGRAM_API_KEY: ConfigError at start, nothing sent."""
        monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
        r = run([930], key="")
        [error] = r.errors
        assert error.error_type == "ConfigError" and "api_key" in error.message
        assert "DEEPGRAM_API_KEY" in error.message and r.fake.connections == []

    def test_the_key_comes_from_the_environment_when_not_given(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$DEEPGRAM_API_KEY is read at start."""
        monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-from-env")
        r = run([930], key="", fake_options={"api_key": "dg-from-env"})
        assert r.result.ok, r.errors
        assert r.finals == [text(930)]

    def test_the_key_is_never_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """websockets' debug log of the handshake shows the header redacted."""
        caplog.set_level(logging.DEBUG, logger="vbgraph.providers.deepgram.websocket")
        r = run([930], key="dg-secret-value", fake_options={"api_key": "dg-secret-value"})
        assert r.result.ok, r.errors
        assert "dg-secret-value" not in caplog.text
        assert "Authorization: [redacted]" in caplog.text

    def test_a_refused_handshake_is_retried_with_backoff(self) -> None:
        """Two 503s, then the connection opens; the transcript arrives."""
        r = run([930], prepare=lambda fake: fake.refuse(503, 503))
        assert r.result.ok, r.errors
        assert [s for s, _ in r.fake.rejected] == [503, 503] and r.stream.connections == 1
        assert r.finals == [text(930)]

    def test_malformed_and_unknown_messages_are_reported_or_counted_and_skipped(self) -> None:
        """A non-JSON message is a NodeError in phase receive; an unknown type is counted."""

        async def during(session: Session, fake: FakeDeepgram) -> None:
            await fake.wait_for(lambda: bool(fake.received("audio")))
            await fake.inject('{"type": "Results", "channel": ')
            await fake.inject('{"type": "SpeakerChange", "speaker": 1}')

        r = run([930], during=during)
        [error] = r.errors
        assert (error.node_id, error.phase, error.error_type) == (
            "stt",
            "receive",
            "ProviderProtocolError",
        )
        assert "not JSON" in error.message
        assert r.stream.malformed == 1 and r.stream.unknown_messages == 1
        assert r.finals == [text(930)]

    def test_a_server_error_message_is_reported(self) -> None:
        """An Error message (SchemaError) becomes a NodeError naming the variant."""

        async def during(session: Session, fake: FakeDeepgram) -> None:
            await fake.wait_for(lambda: bool(fake.received("audio")))
            await fake.inject(
                '{"type": "Error", "variant": "SchemaError", "description": "bad message"}'
            )

        r = run([930], during=during)
        [error] = r.errors
        assert error.phase == "receive" and "SchemaError: bad message" in error.message
        assert r.finals == [text(930)]

    def test_a_refusing_close_is_not_retried(self) -> None:
        """DATA-0000 (close 1002): a NodeError, no second connection, the session ends."""
        r = run(
            [880, 930],
            prepare=lambda fake: fake.drop_after(2.0, code=1002, reason="DATA-0000"),
        )
        [error] = r.errors
        assert error.phase == "run" and "refused the stream" in error.message
        assert "DATA-0000" in error.message and len(r.fake.connections) == 1


class TestReconnect:
    """A dropped connection is reopened and nothing finalized is lost or repeated."""

    @pytest.mark.parametrize("code", [None, 1011])
    def test_a_drop_mid_utterance_loses_no_final(self, code: int | None) -> None:
        """TCP abort (or close 1011) during clip 2: reconnect, replay, finals in order once."""
        r = run(
            [880, 930, 890],
            prepare=lambda fake: fake.drop_after(6.5, code=code, reason="internal"),
        )
        assert r.result.ok, r.errors
        assert r.finals == [text(880), text(930), text(890)]
        assert r.stream.drops == 1 and r.stream.connections == 2 and len(r.fake.connections) == 2
        assert r.stt.ledger.replayed_ns > 1 * S  # the start of clip 2 was sent again
        assert r.fake.connections[1].kinds()[-1] == "CloseStream"

    def test_times_after_a_reconnect_stay_on_the_session_clock(self) -> None:
        """The new connection's stream time restarts at 0; the words still land in clip 2."""
        r = run([880, 930], prepare=lambda fake: fake.drop_after(6.5))
        final = [f for f in r.frames if f.final][1]
        assert 4.99 * S <= final.words[0].start_ns < final.words[-1].end_ns <= 8.28 * S

    def test_giving_up_reports_an_error_and_counts_the_audio_dropped(self) -> None:
        """Every retry refused: NodeError in phase run; the bounded buffer overflows; ends."""

        async def during(session: Session, fake: FakeDeepgram) -> None:
            await fake.wait_for(lambda: bool(fake.connections))
            fake.refuse(*[503] * 10)  # every reconnection, not the first connection

        r = run(
            [880, 930],
            prepare=lambda fake: fake.drop_after(2.0),
            during=during,
            stt="reconnect_attempts: 2, buffer_s: 1.0",
        )
        [error] = r.errors
        assert error.phase == "run" and "gave up after 2 retries" in error.message
        assert "503" in error.message
        assert r.stt.ledger.overflow > 0 and r.stt.ledger.overflow_ns > 3 * S
        assert len(r.fake.rejected) == 3 and r.finals == []


class TestSwap:
    """stt.whisper and stt.deepgram are interchangeable in a graph."""

    def test_the_ports_match_whisper_so_swapping_is_a_type_change(self) -> None:
        """Same port names, same output frame kinds, same subscribed stop event."""
        dg_in, dg_out = SttDeepgram.ports(SttDeepgram.Params())
        assert set(dg_in) == set(SttWhisper.inputs) and set(dg_out) == set(SttWhisper.outputs)
        assert dg_out["out"].kinds == SttWhisper.outputs["out"].kinds
        assert dg_in["in"].caps is not None and dg_in["in"].caps.rates == frozenset({16000})
        assert UserSpeechStopped in (SttDeepgram.subscribes or ())

    def test_an_assistant_style_graph_compiles_with_either_stt(self) -> None:
        """mic -> vad -> stt -> turn.transcript builds with both types."""
        for stt in ("{type: stt.whisper}", "{type: stt.deepgram, api_key: k}"):
            yaml = f"""
nodes:
  mic: {{type: file.source, path: '{clip(880)}'}}
  vad: {{type: vad.native}}
  stt: {stt}
  turn: {{type: turn}}
  out: {{type: log}}
edges: [mic -> vad, vad -> stt, stt -> turn.transcript, turn.text -> out]
"""
            try:
                plan = loads(yaml).compile(registry())
            except ConfigError as exc:  # faster-whisper not installed: only whisper is refused
                assert "stt.whisper" in stt, exc
                continue
            assert plan.nodes["stt"].cls.type_name in stt
