"""The telephony handlers on a real server: fake providers call an echo graph over loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from vbgraph.dsp.convert import FormatConverter
from vbgraph.formats import ALAW, AudioFormat
from vbgraph.graph.load import loads
from vbgraph.nodes.transport_out import TransportOut
from vbgraph.runtime.session import Session
from vbgraph.serve import ServeConfig, Server, load_handler
from vbgraph.transports.link import CallLink
from vbgraph.transports.telephony import CallStarted, DtmfReceived
from vbgraph.transports.telephony.shell import (
    ExotelHandler,
    MediaStreamHandler,
    PlivoHandler,
    TelnyxHandler,
    TwilioHandler,
    TwilioRestHangup,
    VonageHandler,
)
from vbgraph.transports.telephony.signature import SIGNATURE_HEADER, compute_signature

from .peers import WIRES, FakeCall, Wire

TOKEN = "12345-test-auth-token"


def echo_graph(rate: int) -> str:
    return f"""
version: 1
name: echo
nodes:
  caller:
    type: transport.in
    sample_rate: {rate}
    transports: [twilio, telnyx, plivo, exotel, vonage]
  gain: {{type: gain, db: 0}}
  speaker: {{type: transport.out}}
edges: [caller -> gain -> speaker]
"""


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No test may leave an error in the server's logs (a crashed handler, a failed call)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def handler_for(name: str, **options: Any) -> MediaStreamHandler:
    classes: dict[str, type[MediaStreamHandler]] = {
        "twilio": TwilioHandler,
        "telnyx": TelnyxHandler,
        "plivo": PlivoHandler,
        "exotel": ExotelHandler,
        "vonage": VonageHandler,
    }
    return classes[name](**options)


@asynccontextmanager
async def serving(
    *handlers: MediaStreamHandler, rate: int = 8000, **config: Any
) -> AsyncIterator[Server]:
    plan = loads(echo_graph(rate)).compile()
    srv = Server(plan, ServeConfig(port=0, **config), list(handlers) or None)
    async with srv:
        yield srv


def url(srv: Server, path: str) -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


def speech_like(wire: Wire, seconds: float, seed: int = 1) -> bytes:
    """Audio in the wire's format that survives the echo graph unchanged (no silence codes)."""
    rng = np.random.default_rng(seed)
    n = int(wire.rate * seconds)
    if wire.encoding == "mulaw":
        codes = (
            rng.integers(0, 0x7E, n, dtype=np.uint8) | rng.integers(0, 2, n, dtype=np.uint8) << 7
        )
        return bytes(codes.tobytes())
    pcm = rng.integers(2000, 12000, n) * rng.choice([-1, 1], n)
    data = bytes(pcm.astype("<i2").tobytes())
    if wire.encoding == "alaw":
        return bytes(FormatConverter(AudioFormat(8000), AudioFormat(8000, 1, ALAW)).process(data))
    return data


def silence_free(audio: bytes, wire: Wire) -> bytes:
    """The bot's audio without the silence the playout may add between bursts."""
    if wire.encoding == "mulaw":
        return audio.replace(b"\xff", b"")
    if wire.encoding == "alaw":
        return audio.replace(b"\xd5", b"")
    samples = np.frombuffer(audio, "<i2")
    return bytes(samples[samples != 0].tobytes())


def live_session(srv: Server) -> Session:
    (session,) = srv.calls.sessions.values()
    return session


def link_of(session: Session) -> CallLink:
    speaker = session.nodes["speaker"]
    assert isinstance(speaker, TransportOut) and speaker.link is not None
    return speaker.link


async def settled(srv: Server) -> None:
    """Wait until every connection handler has finished."""
    tasks = list(srv.context.tasks)
    if tasks:
        await asyncio.wait(tasks)


class TestTwilioCall:
    """A Twilio call through the echo graph, as in the media-streams protocol."""

    def test_audio_comes_back_with_marks_and_the_played_position_is_confirmed(self) -> None:
        """Caller audio is echoed exactly; marks every 200 ms and at the end; all confirmed."""
        wire = WIRES["twilio"]()
        audio = speech_like(wire, 1.0)

        async def main() -> tuple[FakeCall, CallLink, dict[str, str]]:
            async with serving(TwilioHandler(), rate=8000) as srv:
                async with FakeCall(wire, url(srv, "/twilio"), parameters={"who": "ann"}) as call:
                    await call.send_audio(audio)
                    await call.until(lambda c: any(n.startswith("utterance-1@") for n in c.echoed))
                    link = link_of(live_session(srv))
                    await call.stop()
                await settled(srv)
                return call, link, dict(link.metadata)

        call, link, metadata = asyncio.run(main())
        assert not call.violations
        assert silence_free(bytes(call.bot_audio), wire) == audio
        marks = call.kinds("mark")
        positions = [int(name.rpartition("@")[2]) for name in marks]
        assert positions == sorted(positions) and positions[-1] == 8000
        assert [n for n in marks if n.startswith("audio@")][:3] == [
            "audio@1600",
            "audio@3200",
            "audio@4800",
        ]
        assert (
            link.reports_playback and link.played_samples == link.statistics().sent_samples == 8000
        )
        assert link.transport == "twilio" and link.call_id == wire.call_id
        assert metadata["who"] == "ann" and metadata["stream_id"] == wire.stream_id
        assert link.end_reason == "stop"

    def test_an_interruption_sends_clear_and_no_old_audio_follows(self) -> None:
        """Interrupt mid-reply: clear on the wire; afterwards only the new audio arrives."""
        wire = WIRES["twilio"]()
        # 0.8 s of one code (a burst under the link's 1 s inbound bound), 0.2 s of another.
        old, new = b"\x10" * 6400, b"\x90" * 1600

        async def main() -> tuple[FakeCall, CallLink]:
            async with serving(TwilioHandler(), rate=8000) as srv:
                async with FakeCall(wire, url(srv, "/twilio")) as call:
                    await call.send_audio(old)
                    await call.until(lambda c: len(c.bot_audio) > 0)
                    session = live_session(srv)

                    def all_old_buffered(c: FakeCall) -> bool:
                        # Every old frame reached transport.out (so it is all "old" audio).
                        return session.result().nodes["speaker"].frames_in >= len(old) // 160

                    await call.until(all_old_buffered)
                    session.interrupt("test barge-in")
                    await call.until(lambda c: bool(c.kinds("clear")))
                    await call.send_audio(new)
                    # The interrupted reply got no end mark: the new one is utterance 1.
                    await call.until(lambda c: any(n.startswith("utterance-1@") for n in c.echoed))
                    link = link_of(session)
                    await call.stop()
                await settled(srv)
                return call, link

        call, link = asyncio.run(main())
        assert not call.violations
        kinds = [k for k, _ in call.order]
        cut = kinds.index("clear")
        before = b"".join(v for k, v in call.order[:cut] if k == "media")
        after = b"".join(v for k, v in call.order[cut:] if k == "media")
        assert 0 < len(before) < len(old)
        assert set(after) <= {0x90, 0xFF} and after.count(0x90) == len(new)
        # What the wire carried is what the link counts as sent; the last mark confirms it all.
        assert link.statistics().sent_samples == len(before) + len(after) == link.played_samples

    def test_a_malformed_message_closes_only_that_call(self) -> None:
        """Garbage on one call: 1002 with the error; a concurrent call goes on and echoes."""
        wire_a, wire_b = WIRES["twilio"](), WIRES["twilio"]()
        wire_b.stream_id, wire_b.call_id = "MZbbbb", "CAbbbb"
        audio = speech_like(wire_b, 0.4)

        async def main() -> tuple[FakeCall, FakeCall, int]:
            async with serving(TwilioHandler(), rate=8000) as srv:
                async with (
                    FakeCall(wire_a, url(srv, "/twilio")) as bad,
                    FakeCall(wire_b, url(srv, "/twilio")) as good,
                ):
                    await bad.send(
                        json.dumps(
                            {
                                "event": "media",
                                "streamSid": wire_a.stream_id,
                                "media": {"payload": "%%%"},
                            }
                        )
                    )
                    await bad.until(lambda c: c.closed)
                    await good.send_audio(audio)
                    await good.until(lambda c: any(n.startswith("utterance-1@") for n in c.echoed))
                    await good.stop()
                await settled(srv)
                return bad, good, srv.calls.counters().ended

        bad, good, ended = asyncio.run(main())
        assert bad.close_code == 1002
        assert "media.payload" in bad.close_reason and "base64" in bad.close_reason
        assert silence_free(bytes(good.bot_audio), wire_b) == audio and not good.violations
        assert ended == 2

    def test_media_before_start_is_refused_with_a_protocol_error(self) -> None:
        """A stream that sends media first is closed (1002) and takes no call slot."""
        wire = WIRES["twilio"]()

        async def main() -> tuple[FakeCall, int]:
            async with serving(TwilioHandler()) as srv:
                async with FakeCall(wire, url(srv, "/twilio"), send_opening=False) as call:
                    await call.send(wire.media(b"\x10" * 160, 1, 1, 20))
                    await call.until(lambda c: c.closed)
                await settled(srv)
                return call, srv.calls.counters().started

        call, started = asyncio.run(main())
        assert call.close_code == 1002 and "'media' is not allowed before" in call.close_reason
        assert started == 0

    def test_a_full_server_refuses_the_stream_with_1013(self) -> None:
        """With every slot taken, a new stream is closed with 1013 and the reason."""
        wire = WIRES["twilio"]()

        async def main() -> FakeCall:
            async with serving(TwilioHandler(), max_sessions=1) as srv:
                async with FakeCall(wire, url(srv, "/twilio")) as first:
                    await first.send_audio(speech_like(wire, 0.1))
                    await first.until(lambda c: len(c.bot_audio) > 0)
                    async with FakeCall(WIRES["twilio"](), url(srv, "/twilio")) as second:
                        await second.until(lambda c: c.closed)
                    await first.stop()
                await settled(srv)
                return second

        second = asyncio.run(main())
        assert second.close_code == 1013 and "full" in second.close_reason

    def test_a_stream_without_start_is_closed_after_the_timeout(self) -> None:
        """No start within start_timeout_s: closed with 1008."""

        async def main() -> FakeCall:
            handler = TwilioHandler(start_timeout_s=0.2)
            async with serving(handler) as srv:
                async with FakeCall(
                    WIRES["twilio"](), url(srv, "/twilio"), send_opening=False
                ) as call:
                    await call.until(lambda c: c.closed)
                await settled(srv)
                return call

        call = asyncio.run(main())
        assert call.close_code == 1008 and call.close_reason == "no start message"


class TestHangup:
    """Who ends the call."""

    def test_when_the_session_ends_first_the_hook_hangs_up_and_the_socket_closes(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """session.end() on a live call: the hook gets the call, then close 1000.

        The caller's audio that still arrives during the hang-up is dropped quietly.
        """
        caplog.set_level(logging.WARNING)
        hung: list[CallStarted] = []
        in_hook, proceed = asyncio.Event(), asyncio.Event()

        async def record(call: CallStarted) -> None:
            hung.append(call)
            in_hook.set()
            await proceed.wait()

        async def main() -> FakeCall:
            async with serving(TwilioHandler(hangup=record)) as srv:
                async with FakeCall(WIRES["twilio"](), url(srv, "/twilio")) as call:
                    await call.send_audio(speech_like(call.wire, 0.1))
                    await call.until(lambda c: len(c.bot_audio) > 0)
                    live_session(srv).end()
                    await in_hook.wait()
                    await call.send_audio(speech_like(call.wire, 0.1))  # still talking
                    proceed.set()
                    await call.until(lambda c: c.closed)
                await settled(srv)
                return call

        call = asyncio.run(main())
        assert [c.call_id for c in hung] == [call.wire.call_id]
        assert hung[0].account_id == "AC0123"
        assert (call.close_code, call.close_reason) == (1000, "call ended")
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_when_the_caller_hangs_up_the_hook_is_not_called(self) -> None:
        """A stop from the provider ends the call without a REST hang-up."""
        hung: list[CallStarted] = []

        async def record(call: CallStarted) -> None:
            hung.append(call)

        async def main() -> None:
            async with serving(TwilioHandler(hangup=record)) as srv:
                async with FakeCall(WIRES["twilio"](), url(srv, "/twilio")) as call:
                    await call.send_audio(speech_like(call.wire, 0.1))
                    await call.stop()
                await settled(srv)

        asyncio.run(main())
        assert hung == []

    def test_dtmf_reaches_the_hook(self) -> None:
        """A dtmf message calls on_dtmf with the call's link and the digit."""
        got: list[tuple[str, str]] = []

        def on_dtmf(link: CallLink, event: DtmfReceived) -> None:
            got.append((link.call_id, event.digit))

        async def main() -> None:
            async with serving(TwilioHandler(on_dtmf=on_dtmf)) as srv:
                wire = WIRES["twilio"]()
                async with FakeCall(wire, url(srv, "/twilio")) as call:
                    dtmf = {"track": "inbound_track", "digit": "7"}
                    sid = wire.stream_id
                    await call.send(json.dumps({"event": "dtmf", "streamSid": sid, "dtmf": dtmf}))
                    await call.stop()
                await settled(srv)

        asyncio.run(main())
        assert got == [(WIRES["twilio"]().call_id, "7")]


class TestHandlers:
    """What ``vbgraph serve`` mounts."""

    @pytest.mark.parametrize("name", ["twilio", "telnyx", "plivo", "exotel", "vonage"])
    def test_each_transport_name_loads_its_handler(self, name: str) -> None:
        """HANDLERS points at these classes; each serves its own path."""
        handler = load_handler(name)
        assert isinstance(handler, MediaStreamHandler) and handler.name == name
        assert handler.dialect.path == f"/{name}"

    def test_with_an_auth_token_twilio_hangs_up_over_rest_by_default(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Token configured: the default hook is TwilioRestHangup; without one, no hook."""
        monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
        plan = loads(echo_graph(8000)).compile()
        with_token, without = TwilioHandler(), TwilioHandler()
        Server(plan, ServeConfig(port=0, twilio_auth_token=TOKEN), [with_token]).make_app()
        Server(plan, ServeConfig(port=0), [without]).make_app()
        assert isinstance(with_token.hangup, TwilioRestHangup) and without.hangup is None
        routes = {r.resource.canonical for r in twilio_routes(plan) if r.resource is not None}
        assert {"/twilio", "/twilio/voice"} <= routes


def twilio_routes(plan: Any) -> list[Any]:
    app = Server(plan, ServeConfig(port=0), [TwilioHandler()]).make_app()
    return list(app.router.routes())


class TestTwilioSignature:
    """X-Twilio-Signature on the stream's handshake and on the call webhook."""

    def test_the_handshake_needs_a_valid_signature(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No or a wrong signature: 403; the right one for wss://host/twilio: the call runs."""
        monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)

        async def main() -> tuple[int, int, FakeCall]:
            async with serving(TwilioHandler(rest_hangup=False), twilio_auth_token=TOKEN) as srv:
                statuses = []
                for headers in (
                    {},
                    {
                        SIGNATURE_HEADER: compute_signature(
                            "wrong", f"wss://127.0.0.1:{srv.port}/twilio"
                        )
                    },
                ):
                    try:
                        async with connect(
                            url(srv, "/twilio"), additional_headers=headers, proxy=None
                        ):
                            statuses.append(101)
                    except InvalidStatus as exc:
                        statuses.append(exc.response.status_code)
                signed = {
                    SIGNATURE_HEADER: compute_signature(TOKEN, f"wss://127.0.0.1:{srv.port}/twilio")
                }
                async with FakeCall(WIRES["twilio"](), url(srv, "/twilio"), headers=signed) as call:
                    await call.send_audio(speech_like(call.wire, 0.1))
                    await call.until(lambda c: len(c.bot_audio) > 0)
                    await call.stop()
                await settled(srv)
                return statuses[0], statuses[1], call

        missing, wrong, call = asyncio.run(main())
        assert (missing, wrong) == (403, 403)
        assert call.bot_audio and not call.violations

    def test_the_voice_webhook_answers_twiml_for_a_signed_request(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """POST /twilio/voice: signed over URL + sorted form → TwiML; tampered → 403."""
        monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
        form = {"CallSid": "CA1", "From": "+15551112222", "To": "+15553334444", "AccountSid": "AC1"}

        async def main() -> list[tuple[int, str]]:
            out = []
            async with serving(TwilioHandler(rest_hangup=False), twilio_auth_token=TOKEN) as srv:
                target = f"http://127.0.0.1:{srv.port}/twilio/voice"
                good = compute_signature(TOKEN, f"https://127.0.0.1:{srv.port}/twilio/voice", form)
                async with aiohttp.ClientSession() as http:
                    for data, sig in (
                        (form, good),
                        ({**form, "From": "+1999"}, good),
                        (form, None),
                    ):
                        headers = {SIGNATURE_HEADER: sig} if sig else {}
                        async with http.post(target, data=data, headers=headers) as resp:
                            out.append((resp.status, await resp.text()))
            return out

        (ok, body), (tampered, _), (unsigned, _) = asyncio.run(main())
        assert ok == 200 and (tampered, unsigned) == (403, 403)
        assert body.startswith(
            '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://127.0.0.1:'
        )
        assert '/twilio"><Parameter name="from" value="+15551112222"/>' in body
        assert body.endswith("</Stream></Connect></Response>")

    def test_the_public_url_is_used_for_twiml_and_signatures(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Behind a proxy: the TwiML points at wss://public/twilio; its signature validates."""
        monkeypatch.setenv(
            "TWILIO_AUTH_TOKEN", TOKEN
        )  # the env var is read when the config has none
        public = "https://voice.example.com"

        async def main() -> tuple[int, str]:
            async with serving(TwilioHandler(rest_hangup=False), public_url=public) as srv:
                sig = compute_signature(TOKEN, public + "/twilio/voice", {"CallSid": "CA9"})
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(
                        f"http://127.0.0.1:{srv.port}/twilio/voice",
                        data={"CallSid": "CA9"},
                        headers={SIGNATURE_HEADER: sig},
                    ) as resp,
                ):
                    return resp.status, await resp.text()

        status, body = asyncio.run(main())
        assert status == 200 and '<Stream url="wss://voice.example.com/twilio">' in body


class TestDialects:
    """Every provider's wire through the same echo graph."""

    @pytest.mark.parametrize("name", ["telnyx", "plivo", "exotel", "vonage"])
    def test_audio_comes_back_in_the_providers_format_and_marks_are_confirmed(
        self, name: str
    ) -> None:
        """Echo exact in the wire's format and framing; the end-of-utterance mark confirms all."""
        wire = WIRES[name]()
        audio = speech_like(wire, 0.6)

        async def main() -> tuple[FakeCall, CallLink]:
            async with serving(handler_for(name), rate=wire.rate) as srv:
                async with FakeCall(wire, url(srv, f"/{name}"), parameters={"lang": "en"}) as call:
                    await call.send_audio(audio)
                    await call.until(lambda c: any(n.startswith("utterance-1@") for n in c.echoed))
                    link = link_of(live_session(srv))
                    await call.stop()
                await settled(srv)
                return call, link

        call, link = asyncio.run(main())
        assert not call.violations
        assert silence_free(bytes(call.bot_audio), wire) == audio
        samples = len(audio) // wire.sample_bytes
        assert link.played_samples == link.statistics().sent_samples == samples
        assert link.caller_format == link.bot_format
        # Plivo and Vonage have no stop message: the socket's close is the hang-up.
        assert link.end_reason == ("hangup" if name in ("plivo", "vonage") else "stop")
        if name == "telnyx":  # Telnyx has no custom parameters; the numbers come instead
            assert link.metadata["from"] == "+15550001111"
        else:
            assert link.metadata["lang"] == "en"

    @pytest.mark.parametrize("name", ["plivo", "vonage"])
    def test_a_clear_is_acknowledged_and_the_cleared_marks_never_confirm(self, name: str) -> None:
        """Plivo clearAudio / Vonage clear: the provider acks; audio it dropped is not 'played'."""
        wire = WIRES[name]()

        async def main() -> tuple[FakeCall, CallLink, int]:
            async with serving(handler_for(name), rate=wire.rate) as srv:
                # Half a second of provider-side buffering: marks are pending at the clear.
                async with FakeCall(wire, url(srv, f"/{name}"), latency_s=0.5) as call:
                    await call.send_audio(speech_like(wire, 0.8))
                    await call.until(lambda c: len(c.echoed) >= 1)
                    session = live_session(srv)
                    link = link_of(session)
                    session.interrupt("test")
                    await call.until(lambda c: bool(c.kinds("clear")))
                    await call.stop()
                await settled(srv)
                return call, link, len(call.echoed)

        call, link, echoed = asyncio.run(main())
        assert not call.violations and echoed >= 1
        assert len(call.kinds("mark")) > echoed  # the provider dropped marks at the clear
        assert 0 < link.played_samples < link.statistics().sent_samples
