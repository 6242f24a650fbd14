"""Tests for the ``agent.rules`` node: one reply per turn, greeting, events, truncation."""

from __future__ import annotations

from pathlib import Path

import pytest
from nodes_support import Collect, make_node, run_graph

from vbgraph.errors import ConfigError
from vbgraph.events import AgentReplied, BotSpeechStarted, BotSpeechStopped
from vbgraph.frames import TextFrame, TranscriptFrame
from vbgraph.graph.builder import Graph
from vbgraph.nodes.agent_rules import AgentRules

RULES = [
    {"name": "weather", "patterns": ["weather in {city}"], "reply": "It is sunny in {city}."},
    {"name": "bye", "keywords": ["bye", "goodbye"], "reply": "Goodbye!"},
]
S = 1_000_000_000


def rules_node(**params: object) -> tuple[AgentRules, list[tuple[str, object]]]:
    node, emitted = make_node(AgentRules, **params)
    assert isinstance(node, AgentRules)
    return node, emitted  # type: ignore[return-value]


class TestReplies:
    """Each user turn gets one reply."""

    def test_a_turn_gets_the_matching_reply_stamped_with_the_current_epoch(self) -> None:
        """TextFrame in, TextFrame out, epoch = ctx.epoch."""
        node, emitted = rules_node(rules=RULES)
        node.ctx._session.epoch = 3  # type: ignore[attr-defined]
        node.process("in", TextFrame("weather in Lisbon", epoch=2))
        assert emitted == [("out", TextFrame("It is sunny in Lisbon.", epoch=3))]

    def test_unmatched_text_gets_the_fallback_param(self) -> None:
        """fallback overrides the default."""
        node, emitted = rules_node(rules=RULES, fallback="Say that again?")
        node.process("in", TextFrame("hmm"))
        assert emitted == [("out", TextFrame("Say that again?"))]

    def test_empty_and_interim_text_get_no_reply(self) -> None:
        """Only final, non-empty turns are answered; final transcripts are."""
        node, emitted = rules_node(rules=RULES)
        node.process("in", TextFrame("   "))
        node.process("in", TranscriptFrame("bye", final=False))
        assert emitted == []
        node.process("in", TranscriptFrame("bye"))
        assert emitted == [("out", TextFrame("Goodbye!"))]

    def test_replies_are_published_for_uis(self) -> None:
        """AgentReplied carries the text and the intent (empty for the fallback)."""
        node, _ = rules_node(rules=RULES)
        node.process("in", TextFrame("goodbye"))
        node.process("in", TextFrame("what?"))
        published = node.ctx._session.published  # type: ignore[attr-defined]
        assert [(e.text, e.intent) for e in published if isinstance(e, AgentReplied)] == [
            ("Goodbye!", "bye"),
            ("Sorry, I did not understand that.", ""),
        ]

    def test_the_context_records_both_sides(self) -> None:
        """User turns and replies go into the node's conversation context."""
        node, _ = rules_node(rules=RULES)
        node.process("in", TextFrame("weather in Rome"))
        assert [(m.role, m.content) for m in node.context.messages] == [
            ("user", "weather in Rome"),
            ("assistant", "It is sunny in Rome."),
        ]


class TestGreeting:
    """The greeting is said once, first."""

    def test_the_greeting_comes_first_and_only_once(self) -> None:
        """A turn that arrives before the greeting task ran is answered after it."""
        node, emitted = rules_node(rules=RULES, greeting="Hello!")
        node.process("in", TextFrame("bye"))
        node.on_end()
        assert [f.text for _, f in emitted] == ["Hello!", "Goodbye!"]  # type: ignore[attr-defined]

    def test_in_a_graph_the_greeting_is_emitted_at_start(self) -> None:
        """With nothing said by the user, the greeting still goes out and the graph ends."""
        g = Graph("greet")
        agent = g.add("agent.rules", id="agent", rules=RULES, greeting="Welcome.")
        g.connect(agent, g.add("test.collect", id="sink"))
        result, nodes = run_graph(g)
        assert result.ok, result.errors
        sink = nodes["sink"]
        assert isinstance(sink, Collect)
        assert [f.text for f in sink.frames if isinstance(f, TextFrame)] == ["Welcome."]

    def test_a_conversation_through_a_graph(self) -> None:
        """Turns from a source get their replies in order after the greeting."""
        g = Graph("talk")
        say = g.add("test.texts", id="say", count=2)
        rules = [{"name": "t", "patterns": ["t{n}"], "reply": "heard {n}"}]
        agent = g.add("agent.rules", id="agent", rules=rules, greeting="Hi.")
        g.chain(say, agent, g.add("test.collect", id="sink"))
        result, nodes = run_graph(g)
        assert result.ok, result.errors
        sink = nodes["sink"]
        assert isinstance(sink, Collect)
        texts = [f.text for f in sink.frames if isinstance(f, TextFrame)]
        assert texts == ["Hi.", "heard 0", "heard 1"]


class TestInterruption:
    """What the caller heard is what the context keeps."""

    def test_a_cut_reply_is_truncated_to_the_estimated_words(self) -> None:
        """0.5 s of a reply at 20 chars/s keeps 'It is sunny'."""
        node, _ = rules_node(rules=RULES, chars_per_second=20)
        node.process("in", TextFrame("weather in Rome"))
        node.on_event(BotSpeechStarted(pts=S))
        node.on_event(BotSpeechStopped(interrupted=True, pts=S + S // 2 + S // 10))
        assert node.context.messages[-1].content == "It is sunny"


class TestConfig:
    """Parameters that are wrong fail at compile time."""

    def test_rules_from_a_file_relative_to_the_graph(self, tmp_path: Path) -> None:
        """intents: names a YAML file; greeting and fallback come from it unless overridden."""
        (tmp_path / "rules.yaml").write_text(
            "greeting: Hi from the file.\nfallback: File fallback.\n"
            "intents:\n  - {name: hi, keywords: [hello], reply: Hello from the file.}\n"
        )
        node, emitted = rules_node(intents=str(tmp_path / "rules.yaml"), fallback="Param.")
        node.on_end()
        node.process("in", TextFrame("hello"))
        node.process("in", TextFrame("zzz"))
        texts = [f.text for _, f in emitted]  # type: ignore[attr-defined]
        assert texts == ["Hi from the file.", "Hello from the file.", "Param."]

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"rules": [{"name": "x", "reply": "r"}]}, "at least one pattern"),
            ({"intents": "missing.yaml"}, "cannot read"),
            ({"intents": "a.yaml", "rules": []}, "not both"),
        ],
    )
    def test_bad_rules_are_config_errors(self, params: dict[str, object], message: str) -> None:
        """The graph does not compile; the message says why."""
        g = Graph("bad")
        g.add("agent.rules", id="agent", **params)
        with pytest.raises(ConfigError, match=message):
            g.compile()
