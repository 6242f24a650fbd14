"""Tests for the ``turn`` node: end of turn on the session clock, and barge-in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.conversation_support import MS, Run, Sink, registry, run
from tests.smart_turn_support import logit, write_model

from vbgraph.errors import ConfigError
from vbgraph.events import (
    BargeInCancelled,
    BargeInStarted,
    Interrupt,
    TurnEnded,
)
from vbgraph.frames import TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.graph.load import loads
from vbgraph.nodes.turn import Turn

Steps = list[tuple[float, str]]


def turn_graph(
    steps: Steps, mic_ms: float = 4000, bot: dict[str, object] | None = None, **params: object
) -> Graph:
    """Mic (silence, real time) -> scripted VAD/STT -> turn -> sink; optionally a bot."""
    g = Graph("turn")
    mic = g.add("silence", duration_ms=mic_ms, chunk_ms=20, realtime=True)
    stt = g.add("test.vad_stt", id="stt", steps=steps)
    turn = g.add("turn", id="turn", **params)
    sink = g.add("test.turn_sink", id="sink")
    g.chain(mic, stt, turn, sink)
    if bot is not None:
        b = g.add("test.bot", id="bot", **bot)
        play = g.add("audio.playout", id="play")
        out = g.add("test.turn_sink", id="out")
        g.chain(b, play, out)
    return g


def texts(r: Run) -> list[str]:
    return [f.text for f in r.node("sink", Sink).frames if isinstance(f, TextFrame)]


def ends(r: Run) -> list[tuple[int, str]]:
    return [(e.pts // MS, e.text) for e in r.of(TurnEnded)]  # type: ignore[attr-defined]


class TestEndOfTurn:
    """When the turn ends, on the session clock."""

    def test_silence_ends_the_turn_stop_ms_after_speech_stopped(self) -> None:
        """No STT: TurnEnded("") at stop + 600 ms, and no text frame."""
        r = run(turn_graph([(100, "start"), (1000, "stop")]))
        assert r.result.ok, r.result.errors
        assert ends(r) == [(1600, "")]
        assert texts(r) == []

    def test_a_complete_sentence_ends_the_turn_after_min_delay(self) -> None:
        """Final "Book a table." then stop at 1000 ms: ends at 1200 ms with the text."""
        r = run(turn_graph([(100, "start"), (900, "final:Book a table."), (1000, "stop")]))
        assert ends(r) == [(1200, "Book a table.")]
        assert texts(r) == ["Book a table."]
        (frame,) = r.node("sink", Sink).frames
        assert frame.epoch == 0 and frame.pts == 1200 * MS

    def test_a_trailing_conjunction_waits_max_delay(self) -> None:
        """ "... and" then stop at 1000 ms: ends at 2500 ms."""
        r = run(turn_graph([(100, "start"), (900, "final:a table for two and"), (1000, "stop")]))
        assert ends(r) == [(2500, "a table for two and")]

    def test_the_params_set_the_delays(self) -> None:
        """stop_ms=300 ends a textless turn 300 ms after the stop."""
        r = run(turn_graph([(100, "start"), (1000, "stop")], stop_ms=300))
        assert ends(r) == [(1300, "")]

    def test_speech_before_the_deadline_continues_the_turn_once(self) -> None:
        """A pause of 300 ms, then more speech: one turn, ended thinking_ms after the last stop."""
        steps: Steps = [
            (0, "start"),
            (400, "final:I would like"),
            (500, "stop"),
            (800, "start"),
            (1400, "final:a window seat"),
            (1500, "stop"),
        ]
        r = run(turn_graph(steps))
        assert ends(r) == [(2500, "I would like a window seat")]
        assert texts(r) == ["I would like a window seat"]

    def test_a_late_final_ends_a_waiting_turn_at_once(self) -> None:
        """The final arrives 400 ms after the stop, past the 200 ms delay: the turn ends then."""
        r = run(turn_graph([(0, "start"), (500, "stop"), (900, "final:Yes.")]))
        assert ends(r) == [(900, "Yes.")]

    def test_a_turn_still_waiting_when_the_transcripts_end_ends_then(self) -> None:
        """The input ends 100 ms after the stop: the turn ends at once, not later."""
        r = run(turn_graph([(0, "start"), (400, "final:so"), (500, "stop")], mic_ms=600))
        assert ends(r) == [(600, "so")]


class TestBargeIn:
    """Speech over the bot: pause, then interrupt or resume."""

    def test_words_over_the_bot_interrupt_it(self) -> None:
        """Start at 500, pause at 800, words at 900: Interrupt at 900 ms, then the turn ends."""
        steps: Steps = [
            (500, "start"),
            (900, "interim:wait"),
            (1500, "final:Wait."),
            (1600, "stop"),
        ]
        r = run(turn_graph(steps, bot={}))
        assert r.result.ok, r.result.errors
        assert r.times(BargeInStarted) == [800 * MS]
        assert r.times(Interrupt) == [900 * MS]
        assert r.of(Interrupt)[0].reason == "barge-in"  # type: ignore[attr-defined]
        assert ends(r) == [(1800, "Wait.")]
        (frame,) = [f for f in r.node("sink", Sink).frames if isinstance(f, TextFrame)]
        assert frame.epoch == 1

    def test_a_cough_over_the_bot_is_a_false_interruption(self) -> None:
        """No words: BargeInCancelled 1000 ms after the pause, no interrupt, no turn."""
        r = run(turn_graph([(500, "start"), (900, "stop")], bot={}))
        assert r.times(BargeInStarted) == [800 * MS]
        assert r.times(BargeInCancelled) == [1800 * MS]
        assert r.result.interrupts == 0 and ends(r) == []

    def test_a_backchannel_does_not_interrupt(self) -> None:
        """ "Uh-huh." over the bot: resumed, no turn."""
        r = run(turn_graph([(500, "start"), (900, "final:Uh-huh."), (1000, "stop")], bot={}))
        assert r.times(BargeInCancelled) == [1800 * MS]
        assert r.result.interrupts == 0 and ends(r) == []

    def test_speech_shorter_than_min_interruption_is_ignored(self) -> None:
        """200 ms of speech over the bot: no pause, no turn."""
        r = run(turn_graph([(500, "start"), (700, "stop")], bot={}))
        assert r.times(BargeInStarted) == [] and ends(r) == []

    def test_a_graph_without_interruptions_never_pauses_the_bot(self) -> None:
        """allow_interruptions=false: words over the bot change nothing."""
        steps: Steps = [(500, "start"), (900, "final:Stop talking."), (1000, "stop")]
        r = run(turn_graph(steps, bot={}, allow_interruptions=False))
        assert r.times(BargeInStarted) == [] and r.result.interrupts == 0
        assert ends(r) == []

    def test_an_uninterruptible_utterance_ignores_barge_in_until_it_ends(self) -> None:
        """InterruptionsDisabled for the greeting; speech after it ends is a normal turn."""
        steps: Steps = [
            (500, "start"),
            (900, "final:Stop."),
            (1000, "stop"),
            (2500, "start"),
            (2900, "final:Hello."),
            (3000, "stop"),
        ]
        r = run(turn_graph(steps, bot={"disclaimer": True}))
        assert r.times(BargeInStarted) == [] and r.result.interrupts == 0
        assert ends(r) == [(3200, "Hello.")]

    def test_the_policies_are_inspectable_on_the_node(self) -> None:
        """ended_turns keeps every turn with its speech times."""
        r = run(turn_graph([(100, "start"), (900, "final:Hi."), (1000, "stop")]))
        (end,) = r.node("turn", Turn).ended_turns
        assert (end.started_ns, end.stopped_ns, end.text) == (100 * MS, 1000 * MS, "Hi.")


def model_graph(
    steps: Steps,
    model: Path | None,
    mic: str = "silence",
    mic_params: dict[str, object] | None = None,
    audio_edge: bool = True,
    **params: object,
) -> Graph:
    """Mic -> scripted VAD/STT -> turn.transcript, mic -> turn.audio, turn -> sink."""
    g = Graph("turn-model")
    source = g.add(
        mic, id="mic", duration_ms=3000, chunk_ms=20, realtime=True, **(mic_params or {})
    )
    stt = g.add("test.vad_stt", id="stt", steps=steps)
    if model is not None:
        params["model_path"] = str(model)
    turn = g.add("turn", id="turn", **params)
    sink = g.add("test.turn_sink", id="sink")
    g.connect(source, stt)
    g.connect(stt["transcript"], turn["transcript"])
    if audio_edge:
        g.connect(source, turn["audio"])
    g.connect(turn, sink)
    return g


SPEECH: Steps = [(100, "start"), (1000, "stop")]


class TestEndOfTurnModel:
    """An ONNX end-of-turn model picks min_delay_ms or max_delay_ms (synthetic models)."""

    def test_a_complete_verdict_ends_the_turn_after_min_delay(self, tmp_path: Path) -> None:
        """P = 0.9: the textless turn ends at stop + 200 ms, not stop + stop_ms."""
        model = write_model(tmp_path / "yes.onnx", scale=0.0, bias=logit(0.9))
        r = run(model_graph(SPEECH, model))
        assert r.result.ok, r.result.errors
        assert ends(r) == [(1200, "")]
        turn = r.node("turn", Turn)
        assert turn.model_probabilities == pytest.approx([0.9])
        assert turn.ended_turns[0].model_complete is True

    def test_an_incomplete_verdict_waits_max_delay(self, tmp_path: Path) -> None:
        """P = 0.1: the turn ends at stop + 1500 ms."""
        model = write_model(tmp_path / "no.onnx", scale=0.0, bias=logit(0.1))
        r = run(model_graph(SPEECH, model))
        assert ends(r) == [(2500, "")]
        assert r.node("turn", Turn).ended_turns[0].model_complete is False

    def test_model_threshold_sets_the_cut(self, tmp_path: Path) -> None:
        """P = 0.6 is complete at the default 0.5 and incomplete at 0.7."""
        model = write_model(tmp_path / "sixty.onnx", scale=0.0, bias=logit(0.6))
        assert ends(run(model_graph(SPEECH, model))) == [(1200, "")]
        assert ends(run(model_graph(SPEECH, model, model_threshold=0.7))) == [(2500, "")]

    def test_a_trailing_conjunction_outweighs_a_complete_verdict(self, tmp_path: Path) -> None:
        """ "... and" still waits max_delay_ms when the model says complete."""
        model = write_model(tmp_path / "yes.onnx", scale=0.0, bias=logit(0.9))
        steps: Steps = [(100, "start"), (900, "final:a table and"), (1000, "stop")]
        assert ends(run(model_graph(steps, model))) == [(2500, "a table and")]

    def test_the_model_hears_the_callers_audio(self, tmp_path: Path) -> None:
        """The same tail-energy model: a tone to the end is complete, silence is not."""
        model = write_model(tmp_path / "tail.onnx", frames=20, scale=8.0)
        loud = model_graph(SPEECH, model, mic="tone", mic_params={"freq_hz": 300})
        quiet = model_graph(SPEECH, model)
        assert ends(run(loud)) == [(1200, "")]
        assert ends(run(quiet)) == [(2500, "")]

    def test_speech_before_the_deadline_cancels_the_verdict_and_asks_again(
        self, tmp_path: Path
    ) -> None:
        """Complete at 1000 ms, but speech at 1100: one turn, ended 200 ms after the 2nd stop."""
        model = write_model(tmp_path / "yes.onnx", scale=0.0, bias=logit(0.9))
        steps: Steps = [(100, "start"), (1000, "stop"), (1100, "start"), (2000, "stop")]
        r = run(model_graph(steps, model))
        assert len(r.node("turn", Turn).model_probabilities) == 2
        assert ends(r) == [(2200, "")]

    def test_float_audio_at_another_rate_is_converted_for_the_model(self, tmp_path: Path) -> None:
        """A 48 kHz float tone: negotiation resamples and converts; the verdict is the same."""
        model = write_model(tmp_path / "tail.onnx", frames=20, scale=8.0)
        mic = {"freq_hz": 300, "rate": 48000, "encoding": "pcm_f32le"}
        r = run(model_graph(SPEECH, model, mic="tone", mic_params=mic))
        assert r.result.ok, r.result.errors
        assert ends(r) == [(1200, "")]

    def test_without_model_path_the_rules_decide(self) -> None:
        """No model: stop_ms after the stop, and turn has no audio input."""
        r = run(turn_graph(SPEECH))
        assert ends(r) == [(1600, "")]
        assert "audio" not in Turn.ports(Turn.Params())[0]

    def test_a_slow_model_is_turned_off_for_the_session(self, tmp_path: Path) -> None:
        """model_timeout_ms below any call's wall time: one verdict, then rules only."""
        model = write_model(tmp_path / "yes.onnx", scale=0.0, bias=logit(0.9))
        steps: Steps = [(100, "start"), (500, "stop"), (1000, "start"), (1500, "stop")]
        r = run(model_graph(steps, model, model_timeout_ms=1e-6))
        turn = r.node("turn", Turn)
        assert turn.model_disabled and len(turn.model_probabilities) == 1
        assert ends(r) == [(700, ""), (2100, "")]


class TestModelConfigErrors:
    """A configured model that cannot run fails the compile, naming model_path."""

    YAML = """\
nodes:
  mic: {type: silence, duration_ms: 100}
  turn:
    type: turn
    model_path: MODEL
edges: [mic -> turn.audio]
"""

    def compile_yaml(self, model: str) -> None:
        """Compile YAML naming ``model`` (relative paths resolve against tmp dirs)."""
        loads(self.YAML.replace("MODEL", model), name="graph.yaml").compile(registry())

    def test_a_missing_file_is_an_error_at_its_line(self, tmp_path: Path) -> None:
        """graph.yaml:5 field 'model_path': no smart-turn model file at ... ."""
        with pytest.raises(ConfigError) as err:
            self.compile_yaml(str(tmp_path / "absent.onnx"))
        assert err.value.field == "model_path" and err.value.node_id == "turn"
        assert err.value.location is not None
        assert (err.value.location.file, err.value.location.line) == ("graph.yaml", 5)
        assert "graph.yaml:5" in str(err.value) and "no smart-turn model file" in str(err.value)

    def test_missing_onnxruntime_is_an_error_at_the_field(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the import blocked: ConfigError at model_path with the install hint."""
        model = write_model(tmp_path / "m.onnx")
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        with pytest.raises(ConfigError) as err:
            self.compile_yaml(str(model))
        assert err.value.field == "model_path" and err.value.location is not None
        assert err.value.location.line == 5 and "pip install onnxruntime" in str(err.value)

    def test_a_model_without_the_audio_edge_is_an_error(self, tmp_path: Path) -> None:
        """model_path but nothing on turn.audio: the model would hear nothing."""
        model = write_model(tmp_path / "m.onnx")
        with pytest.raises(ConfigError, match="needs the caller's audio"):
            model_graph(SPEECH, model, audio_edge=False).compile(registry())

    def test_an_audio_edge_without_a_model_is_an_unknown_port(self) -> None:
        """turn.audio exists only with model_path."""
        with pytest.raises(ConfigError, match="no input port 'audio'"):
            model_graph(SPEECH, None).compile(registry())
