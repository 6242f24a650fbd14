"""The ``s2s.openai_realtime`` node against the fake server: setup, errors, links, negotiation."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.providers.openai_realtime.support import (
    CLIPS,
    Run,
    conversation,
    mic_wav,
    real,
    registry,
    run_graph,
    virtual,
)

from vbgraph.errors import ConfigError, ProviderConnectionError, ProviderError
from vbgraph.events import AgentReplied, Metric, TranscriptReceived
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.graph.builder import Graph
from vbgraph.providers.openai_realtime.config import Api, SessionConfig, connect_headers
from vbgraph.providers.openai_realtime.connection import RealtimeConnection
from vbgraph.providers.openai_realtime.events import AudioCodec
from vbgraph.providers.openai_realtime.node import OpenAIRealtime
from vbgraph.runtime.session import Session
from vbgraph.testing.fakes.openai_realtime import (
    BAD_KEY_MESSAGE,
    FakeRealtime,
    FakeSession,
    Turn,
)

ONE_TURN = [("silence", 300), ("clip", "0880"), ("silence", 2500)]
TWO_TURNS = [
    ("silence", 300),
    ("clip", "0880"),
    ("silence", 3500),
    ("clip", "0930"),
    ("silence", 2500),
]


def session_with(
    tmp_path: Path,
    parts: list[tuple[str, Any]],
    turns: list[Turn],
    fake_args: dict[str, object] | None = None,
    during: object = None,
    **params: Any,
) -> tuple[Run, list[FakeSession]]:
    mic = mic_wav(tmp_path / "mic.wav", parts)

    async def main() -> tuple[Run, list[FakeSession]]:
        async with FakeRealtime(turns=turns, **fake_args or {}) as fake:  # type: ignore[arg-type]
            graph, _ = conversation(fake, mic, **params)

            async def act(session: Session) -> None:
                if during is not None:
                    await during(fake, session)  # type: ignore[operator]

            return await run_graph(graph, act), fake.sessions

    return virtual(main)


class TestSetup:
    """Connecting: URL, headers, the session config, the key."""

    def test_the_session_is_configured_as_the_params_ask(self, tmp_path: Path) -> None:
        """Bearer key, ?model=, GA session.update with voice, instructions, transcription."""
        run, (fake,) = session_with(
            tmp_path,
            ONE_TURN,
            [Turn(CLIPS["0880"], "Right.")],
            model="gpt-realtime-mini",
            voice="marin",
            instructions="Be brief.",
            silence_duration_ms=700,
        )
        assert run.result.ok, run.result.errors
        assert fake.headers["authorization"] == "Bearer sk-test"
        assert "openai-beta" not in fake.headers
        assert fake.model == "gpt-realtime-mini" and fake.api == "ga"
        assert fake.session["instructions"] == "Be brief."
        audio = fake.session["audio"]
        assert audio["output"]["voice"] == "marin"
        assert audio["input"]["transcription"] == {"model": "whisper-1"}
        assert audio["input"]["turn_detection"]["silence_duration_ms"] == 700
        assert fake.received[0] == "session.update"

    def test_the_beta_protocol_sends_its_header_and_understands_its_event_names(
        self, tmp_path: Path
    ) -> None:
        """api: beta: OpenAI-Beta header, flat session.update, response.audio.* events."""
        run, (fake,) = session_with(
            tmp_path, ONE_TURN, [Turn(CLIPS["0880"], "Right you are.")], api="beta"
        )
        assert run.result.ok, run.result.errors
        assert fake.headers["openai-beta"] == "realtime=v1" and fake.api == "beta"
        assert fake.session["input_audio_format"] == "pcm16"
        assert fake.session["input_audio_transcription"] == {"model": "whisper-1"}
        assert [e.text for e in run.of(AgentReplied)] == ["Right you are."]
        assert run.sink("out").audio()

    def test_a_refused_key_fails_the_start_with_an_error_naming_the_node(
        self, tmp_path: Path
    ) -> None:
        """The server's error event and close 3000 become one clear NodeError at start."""
        run, (fake,) = session_with(tmp_path, ONE_TURN, [], api_key="sk-wrong")
        (error,) = run.result.errors
        assert error.node_id == "s2s" and error.phase == "start"
        assert error.error_type == "ProviderError"
        assert "s2s.openai_realtime 's2s'" in error.message
        assert "refused the API key" in error.message and "OPENAI_API_KEY" in error.message
        assert BAD_KEY_MESSAGE in error.message
        assert fake.errors == ["invalid_api_key"] and fake.received == []

    def test_a_missing_key_is_a_config_error_at_start(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No api_key and no $OPENAI_API_KEY: ConfigError naming the node and field."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        run, sessions = session_with(tmp_path, ONE_TURN, [], api_key=None)
        (error,) = run.result.errors
        assert error.error_type == "ConfigError" and error.phase == "start"
        assert "node 's2s' field 'api_key'" in error.message and "OPENAI_API_KEY" in error.message
        assert sessions == []

    def test_the_key_is_read_from_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$OPENAI_API_KEY is used when api_key is not given, and never printed."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        run, (fake,) = session_with(tmp_path, ONE_TURN, [Turn("hi", "Hello.")], api_key=None)
        assert run.result.ok and fake.headers["authorization"] == "Bearer sk-test"
        assert "sk-test" not in repr(run.s2s.params)

    def test_a_refused_config_names_the_field(self) -> None:
        """session.update refused (bad tool schema): ProviderError with the server's param."""

        async def main() -> None:
            async with FakeRealtime() as fake:
                config = SessionConfig(tools=[{"name": "f", "parameters": {"type": "array"}}])
                with pytest.raises(
                    ProviderError,
                    match=r"refused the session config \(field "
                    r"session\.tools\[0\]\.parameters\)",
                ):
                    await RealtimeConnection.open(
                        fake.url + "?model=m",
                        connect_headers("sk-test", Api.GA),
                        Api.GA,
                        config,
                        where="s2s.openai_realtime 'x'",
                        timeout_s=5,
                    )

        real(main)

    def test_nothing_listening_is_a_connection_error_naming_the_url(self) -> None:
        """A refused TCP connection: ProviderConnectionError with node and URL."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=m"

        async def main() -> None:
            with pytest.raises(
                ProviderConnectionError, match=f"'x': cannot connect to {re.escape(url)}"
            ):
                await RealtimeConnection.open(
                    url, {}, Api.GA, SessionConfig(), where="s2s.openai_realtime 'x'", timeout_s=5
                )

        real(main)

    def test_a_wrong_path_is_reported_with_its_http_status(self) -> None:
        """The handshake answered 404: the error says so."""

        async def main() -> None:
            async with FakeRealtime() as fake:
                url = fake.url.replace("/v1/realtime", "/v1/elsewhere") + "?model=m"
                with pytest.raises(ProviderConnectionError, match="HTTP 404"):
                    await RealtimeConnection.open(
                        url, {}, Api.GA, SessionConfig(), where="w", timeout_s=5
                    )

        real(main)


class TestLink:
    """The connection breaking, expiring, or sending garbage."""

    def test_a_dropped_connection_is_reported_and_the_next_turn_uses_a_new_session(
        self, tmp_path: Path
    ) -> None:
        """TCP cut after the first reply: NodeError, reconnect, the second turn answered."""

        async def drop_after_first_reply(fake: FakeRealtime, session: Session) -> None:
            await fake.wait_until(lambda: bool(fake.sessions[0].responses))
            fake.drop()

        turns = [Turn(CLIPS["0880"], "One."), Turn(CLIPS["0930"], "Two.")]
        run, sessions = session_with(tmp_path, TWO_TURNS, turns, during=drop_after_first_reply)
        assert len(sessions) == 2 and sessions[0].closed
        (error,) = run.result.errors
        assert error.phase == "connection" and error.error_type == "ProviderConnectionError"
        assert "s2s.openai_realtime 's2s': the connection closed" in error.message
        assert [e.text for e in run.of(AgentReplied)] == ["One.", "Two."]
        assert sessions[1].received[0] == "session.update"

    def test_an_expired_session_is_replaced(self, tmp_path: Path) -> None:
        """session_expired then close: reported, and a new session carries on."""
        turns = [Turn(CLIPS["0880"], "One."), Turn(CLIPS["0930"], "Two.")]
        run, sessions = session_with(tmp_path, TWO_TURNS, turns, {"max_session_s": 5.0})
        assert len(sessions) >= 2 and sessions[0].errors == ["session_expired"]
        assert run.result.errors[0].error_type == "ProviderError"
        assert "session_expired" in run.result.errors[0].message
        assert run.result.errors[1].phase == "connection"

    def test_a_malformed_server_message_is_reported_and_the_session_goes_on(
        self, tmp_path: Path
    ) -> None:
        """Bad JSON from the server: one NodeError (phase receive); the turn still works."""

        async def garbage(fake: FakeRealtime, session: Session) -> None:
            await fake.send_raw('{"type": "response.output_audio.delta", "delta": 5')

        run, _ = session_with(tmp_path, ONE_TURN, [Turn(CLIPS["0880"], "Fine.")], during=garbage)
        (error,) = run.result.errors
        assert error.phase == "receive" and error.error_type == "ProviderProtocolError"
        assert "s2s.openai_realtime 's2s'" in error.message and "not JSON" in error.message
        assert [e.text for e in run.of(AgentReplied)] == ["Fine."]

    def test_the_end_of_input_waits_for_a_late_reply(self, tmp_path: Path) -> None:
        """The model takes 2 s: the reply still plays after the caller's audio ended."""
        parts = [("silence", 300), ("clip", "0880"), ("silence", 600)]
        run, _ = session_with(tmp_path, parts, [Turn(CLIPS["0880"], "Late.")], {"latency_s": 2.0})
        assert run.result.ok, run.result.errors
        assert [e.text for e in run.of(AgentReplied)] == ["Late."]
        assert [e.text for e in run.of(TranscriptReceived)] == [CLIPS["0880"]]
        # Time to first audio, from the commit of the turn: the model's 2 s.
        (ttfb,) = [m for m in run.of(Metric) if m.metric == "s2s.openai_realtime.ttfb_ms"]
        assert ttfb.value == pytest.approx(2000, abs=1)

    def test_a_reply_that_never_comes_ends_the_node_after_end_timeout_s(
        self, tmp_path: Path
    ) -> None:
        """The wait at the end is bounded; the node says what it gave up on."""
        parts = [("silence", 300), ("clip", "0880"), ("silence", 600)]
        run, _ = session_with(
            tmp_path, parts, [Turn(CLIPS["0880"], "Never.")], {"latency_s": 60.0}, end_timeout_s=3
        )
        (error,) = run.result.errors
        assert error.phase == "on_end" and "still due 3.0 s after the input ended" in error.message
        assert run.of(AgentReplied) == []


class TestNegotiation:
    """Ports and formats (the input takes exactly the session's format)."""

    def test_a_16k_microphone_gets_a_resampler_in_front(self, tmp_path: Path) -> None:
        """pcm16 input: negotiation inserts a 16 -> 24 kHz converter."""
        mic = mic_wav(tmp_path / "mic.wav", [("silence", 100)], rate=16000)
        g = Graph("n")
        g.connect(g.add("file.source", path=str(mic)), g.add("s2s.openai_realtime", id="s2s"))
        plan = g.compile(registry())
        types = [node.type_name for node in plan.nodes.values()]
        assert "convert.resample" in types
        (edge,) = [e for e in plan.edges if e.dst == "s2s"]
        assert edge.fmt == AudioFormat(24000)

    @pytest.mark.parametrize(
        ("name", "fmt"),
        [
            ("pcm16", AudioFormat(24000)),
            ("pcmu", AudioFormat(8000, 1, Encoding.MULAW)),
            ("pcma", AudioFormat(8000, 1, Encoding.ALAW)),
        ],
    )
    def test_the_output_is_the_session_format(self, name: str, fmt: AudioFormat) -> None:
        """out carries the codec's format; in accepts only it."""
        params = OpenAIRealtime.Params(audio_format=AudioCodec(name))
        assert OpenAIRealtime.output_formats(params, {}) == {"out": fmt}
        inputs, _ = OpenAIRealtime.ports(params)
        caps = inputs["in"].caps
        assert caps is not None and caps.accepts(fmt)
        assert not caps.accepts(AudioFormat(16000))

    def test_bad_params_are_config_errors_naming_the_field(self) -> None:
        """A non-ws URL, both instruction sources, an unresolvable tool."""
        for params in (
            {"url": "https://api.openai.com/v1/realtime"},
            {"instructions": "a", "instructions_file": "b.txt"},
            {"tools": [{"name": "t", "function": "tests.nowhere:f"}]},
        ):
            g = Graph("bad")
            g.add("s2s.openai_realtime", id="s2s", **params)
            with pytest.raises(ConfigError, match="node 's2s'"):
                g.compile(registry())
