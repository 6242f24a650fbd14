"""The rule-based agent: patterns, slots, replies, follow-up states, rule files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vbgraph.agent.rules import RuleAgent, load_rules, parse_rules
from vbgraph.errors import ConfigError

WEATHER: list[dict[str, Any]] = [
    {
        "name": "weather",
        "patterns": ["weather in {city}", "re:how (?:hot|cold) is it in (?P<city>\\w+)"],
        "reply": ["It is sunny in {city}.", "Still sunny in {city}."],
        "next": "weather_followup",
    },
    {
        "name": "thanks",
        "when": "weather_followup",
        "keywords": ["thanks", "thank you"],
        "reply": "You are welcome. Enjoy {city}!",
    },
    {"name": "hello", "keywords": ["hello", "hi"], "reply": "Hello!"},
    {
        "name": "book",
        "patterns": ["book a table for {people} at {time}"],
        "reply": "A table for {people} at {time}.",
    },
]


def agent(fallback: str | None = None) -> RuleAgent:
    return RuleAgent(parse_rules(WEATHER, fallback=fallback))


class TestMatching:
    """Which intent answers."""

    def test_a_phrase_captures_a_trailing_slot_to_the_end(self) -> None:
        """'weather in {city}' takes the rest of the utterance, minus closing punctuation."""
        reply = agent().reply("What's the weather in New York?")
        assert (reply.intent, reply.text, dict(reply.slots)) == (
            "weather",
            "It is sunny in New York.",
            {"city": "New York"},
        )

    def test_phrases_match_case_insensitively_with_any_whitespace(self) -> None:
        """Capitals and extra spaces do not matter; the slot keeps the caller's casing."""
        assert agent().reply("WEATHER   in  Oslo").text == "It is sunny in Oslo."

    def test_inner_slots_take_the_shortest_text(self) -> None:
        """Two slots split the utterance around the literal words between them."""
        reply = agent().reply("please book a table for four people at eight pm")
        assert reply.text == "A table for four people at eight pm."

    def test_a_regex_pattern_captures_named_groups(self) -> None:
        """'re:' patterns are searched; named groups are slots."""
        assert agent().reply("how cold is it in Tromso").text == "It is sunny in Tromso."

    def test_keywords_match_whole_words_only(self) -> None:
        """'hi' matches 'hi there' but not 'this'."""
        assert agent().reply("hi there").intent == "hello"
        assert agent().reply("this is odd").intent is None

    def test_nothing_matching_gives_the_fallback(self) -> None:
        """The fallback reply, no intent."""
        reply = agent("Sorry?").reply("sing me a song")
        assert (reply.intent, reply.text) == (None, "Sorry?")


class TestReplies:
    """Templates, rotation and memory."""

    def test_a_reply_list_is_used_in_turn(self) -> None:
        """The second match of an intent says its second reply, then the first again."""
        a = agent()
        texts = [a.reply("weather in Rome").text for _ in range(3)]
        assert texts == ["It is sunny in Rome.", "Still sunny in Rome.", "It is sunny in Rome."]

    def test_slots_are_remembered_for_later_replies(self) -> None:
        """A follow-up reply can use a slot captured in an earlier turn."""
        a = agent()
        a.reply("weather in Lima")
        assert a.reply("thank you!").text == "You are welcome. Enjoy Lima!"

    def test_an_intent_missing_a_slot_is_skipped(self) -> None:
        """A reply that needs an unknown slot does not answer with a hole in it."""
        rules = parse_rules(
            [
                {"name": "where", "keywords": ["there"], "reply": "In {city}."},
                {"name": "w", "patterns": ["in {city}"], "reply": "Noted {city}."},
            ],
            fallback="Which city?",
        )
        a = RuleAgent(rules)
        assert a.reply("over there").text == "Which city?"
        a.reply("in Bern")
        assert a.reply("over there").text == "In Bern."


class TestFollowUp:
    """Per-intent follow-up states."""

    def test_a_when_intent_only_matches_in_its_state(self) -> None:
        """'thanks' means nothing before the weather reply set the state."""
        a = agent()
        assert a.reply("thanks").intent is None
        a.reply("weather in Rome")
        assert a.state == "weather_followup"
        assert a.reply("thanks").intent == "thanks"
        assert a.state is None

    def test_the_fallback_keeps_the_state_for_a_rephrase(self) -> None:
        """Not understood in a follow-up: the follow-up still applies next turn."""
        a = agent()
        a.reply("weather in Rome")
        a.reply("mumble")
        assert a.reply("thanks").intent == "thanks"

    def test_reset_forgets_state_memory_and_rotation(self) -> None:
        """A new conversation starts clean."""
        a = agent()
        a.reply("weather in Rome")
        a.reset()
        assert (a.state, a.memory) == (None, {})
        assert a.reply("weather in Rome").text == "It is sunny in Rome."


class TestParsing:
    """Rule definitions that are wrong say so."""

    @pytest.mark.parametrize(
        ("intents", "message"),
        [
            ([{"name": "x", "reply": "r"}], "at least one pattern"),
            ([{"name": "x", "keywords": ["k"]}], "needs a reply"),
            ([{"name": "x", "keywords": ["k"], "reply": "{city}"}], "no pattern captures"),
            ([{"name": "x", "patterns": ["re:("], "reply": "r"}], "bad pattern"),
            ([{"name": "x", "patterns": ["{a} {a}"], "reply": "r"}], "twice"),
            ([{"name": "x", "keywords": ["k"], "reply": "r", "colour": 1}], "unknown keys"),
            ([{"name": "x", "keywords": ["k"], "reply": "{a!r}"}], "placeholders"),
            (["not a mapping"], "mapping"),
        ],
    )
    def test_bad_intents_raise_value_errors_naming_the_problem(
        self, intents: list[Any], message: str
    ) -> None:
        """ValueError (a ConfigError at the YAML line in a graph)."""
        with pytest.raises(ValueError, match=message):
            parse_rules(intents)

    def test_a_rule_file_gives_greeting_fallback_and_intents(self, tmp_path: Path) -> None:
        """The YAML file form."""
        path = tmp_path / "rules.yaml"
        path.write_text(
            "greeting: Hi, I am the kiosk.\n"
            "fallback: Pardon?\n"
            "intents:\n"
            "  - {name: hours, keywords: [open, hours], reply: We open at nine.}\n"
        )
        rules = load_rules(path)
        assert (rules.greeting, rules.fallback) == ("Hi, I am the kiosk.", "Pardon?")
        assert RuleAgent(rules).reply("when are you open").text == "We open at nine."

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("intents: [{name: x}]\n", "at least one pattern"),
            ("colour: red\n", "unknown keys"),
            ("- just\n- a list of strings\n", "mapping"),
            ("intents: [\n", "cannot read"),
        ],
    )
    def test_a_bad_rule_file_is_a_config_error_naming_the_file(
        self, tmp_path: Path, text: str, message: str
    ) -> None:
        """ConfigError with the file name and what is wrong."""
        path = tmp_path / "rules.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            load_rules(path)
        assert "rules.yaml" in str(info.value)

    def test_a_missing_rule_file_is_a_config_error(self, tmp_path: Path) -> None:
        """No file: ConfigError, not OSError."""
        with pytest.raises(ConfigError, match="cannot read"):
            load_rules(tmp_path / "nope.yaml")
