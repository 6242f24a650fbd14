"""The conversation context: history, tools, and truncation to what the caller heard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from vbgraph.agent.context import (
    ConversationContext,
    HeardTracker,
    PlayedSpeech,
    Tool,
    ToolCall,
    load_system_prompt,
    resolve_callable,
    text_heard,
)
from vbgraph.errors import ConfigError
from vbgraph.events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    BotTextPlayed,
)

S = 1_000_000_000


def add(a: int, b: int) -> int:
    """A sync tool for these tests."""
    return a + b


async def shout(text: str) -> str:
    """An async tool for these tests."""
    await asyncio.sleep(0)
    return text.upper()


def broken() -> None:
    """A tool that fails."""
    raise RuntimeError("disk on fire")


def tool(name: str, function: str) -> Tool:
    return Tool.from_spec({"name": name, "function": f"tests.agent.test_context:{function}"})


class TestHistory:
    """Messages in, chat-completions messages out."""

    def test_messages_come_out_in_the_chat_completions_shape(self) -> None:
        """System prompt first, then user/assistant/tool with their ids."""
        ctx = ConversationContext("Be brief.")
        ctx.add_user("add 2 and 3")
        ctx.add_tool_calls([ToolCall("call_1", "add", '{"a":2,"b":3}')])
        ctx.add_tool_result("call_1", "5")
        ctx.add_assistant("Five.")
        assert ctx.to_openai() == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "add 2 and 3"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
                    }
                ],
            },
            {"role": "tool", "content": "5", "tool_call_id": "call_1"},
            {"role": "assistant", "content": "Five."},
        ]

    def test_streamed_text_grows_one_reply(self) -> None:
        """append_assistant extends the reply in progress instead of adding messages."""
        ctx = ConversationContext()
        ctx.add_user("hi")
        for piece in ("Hel", "lo", "!"):
            ctx.append_assistant(piece)
        assert [(m.role, m.content) for m in ctx.messages] == [
            ("user", "hi"),
            ("assistant", "Hello!"),
        ]

    def test_tool_calls_attach_to_text_streamed_before_them(self) -> None:
        """A reply that says something, then calls a tool, is one assistant message."""
        ctx = ConversationContext()
        ctx.add_user("weather?")
        ctx.append_assistant("Let me check.")
        ctx.add_tool_calls([ToolCall("c", "w", "{}")])
        (reply,) = [m for m in ctx.messages if m.role == "assistant"]
        assert reply.content == "Let me check." and reply.tool_calls[0].id == "c"

    def test_max_messages_drops_the_oldest_and_never_an_orphan_tool_result(self) -> None:
        """Trimming never leaves a tool result first (its call is gone)."""
        ctx = ConversationContext(max_messages=3)
        ctx.add_user("q")
        ctx.add_tool_calls([ToolCall("c", "w", "{}")])
        ctx.add_tool_result("c", "r")
        ctx.add_assistant("a")
        assert [m.role for m in ctx.messages] == ["assistant", "tool", "assistant"]
        ctx.add_user("q2")
        assert [m.role for m in ctx.messages] == ["assistant", "user"]


class TestSystemPrompt:
    """The system prompt, inline or from a file."""

    def test_a_file_is_read_and_stripped(self, tmp_path: Path) -> None:
        """The file's text is the prompt."""
        (tmp_path / "p.txt").write_text("You help.\n\n")
        assert load_system_prompt(None, str(tmp_path / "p.txt")) == "You help."

    def test_both_or_a_missing_file_are_config_errors(self, tmp_path: Path) -> None:
        """Two sources, or an unreadable file, do not silently pick one."""
        with pytest.raises(ConfigError, match="not both"):
            load_system_prompt("a", "b")
        with pytest.raises(ConfigError, match="cannot read"):
            load_system_prompt(None, str(tmp_path / "missing.txt"))

    def test_neither_gives_no_system_message(self) -> None:
        """No prompt: the messages start with the user."""
        ctx = ConversationContext(load_system_prompt(None, None))
        ctx.add_user("x")
        assert ctx.to_openai() == [{"role": "user", "content": "x"}]


class TestTools:
    """Tools declared in YAML, implemented by Python callables."""

    def test_a_declaration_has_the_chat_completions_shape(self) -> None:
        """{type: function, function: {name, description, parameters}}."""
        params = {"type": "object", "properties": {"a": {"type": "integer"}}}
        t = Tool.from_spec(
            {
                "name": "add",
                "description": "Add.",
                "parameters": params,
                "function": "tests.agent.test_context:add",
            }
        )
        assert ConversationContext(tools=[t]).tool_declarations() == [
            {
                "type": "function",
                "function": {"name": "add", "description": "Add.", "parameters": params},
            }
        ]

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ({"name": "x", "function": "no_colon"}, "import path"),
            ({"name": "x", "function": "no.such.module:f"}, "cannot import"),
            ({"name": "x", "function": "tests.agent.test_context:missing"}, "no attribute"),
            ({"name": "x", "function": "tests.agent.test_context:S"}, "not callable"),
            ({"name": "bad name", "function": "m:f"}, "tool name"),
            ({"name": "x", "function": "m:f", "parameters": {"type": "array"}}, "object"),
            ({"name": "x", "function": "m:f", "extra": 1}, "unknown keys"),
        ],
    )
    def test_bad_declarations_say_what_is_wrong(
        self, spec: dict[str, object], message: str
    ) -> None:
        """Each mistake raises ValueError naming it (a ConfigError at the YAML line)."""
        with pytest.raises(ValueError, match=message):
            Tool.from_spec(spec)

    def test_a_tool_declared_twice_is_refused(self) -> None:
        """Names are unique."""
        with pytest.raises(ConfigError, match="twice"):
            ConversationContext(tools=[tool("add", "add"), tool("add", "add")])

    def test_sync_and_async_tools_run_with_keyword_arguments(self) -> None:
        """Results are JSON text (a str is passed through)."""
        ctx = ConversationContext(tools=[tool("add", "add"), tool("shout", "shout")])

        async def main() -> tuple[str, str]:
            a = await ctx.call_tool(ToolCall("1", "add", '{"a": 2, "b": 3}'))
            b = await ctx.call_tool(ToolCall("2", "shout", '{"text": "hi"}'))
            return a, b

        assert asyncio.run(main()) == ("5", "HI")

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (ToolCall("1", "nope", "{}"), "unknown tool"),
            (ToolCall("1", "add", "{not json"), "not valid JSON"),
            (ToolCall("1", "add", "[1, 2]"), "JSON object"),
            (ToolCall("1", "add", '{"a": 1}'), "TypeError"),
            (ToolCall("1", "broken", ""), "disk on fire"),
        ],
    )
    def test_failures_are_reported_to_the_model_not_raised(
        self, call: ToolCall, message: str
    ) -> None:
        """The result is {"error": ...} so the model can recover."""
        ctx = ConversationContext(tools=[tool("add", "add"), tool("broken", "broken")])
        result = json.loads(asyncio.run(ctx.call_tool(call)))
        assert message in result["error"]

    def test_resolve_callable_walks_attributes_after_the_colon(self) -> None:
        """'pkg.mod:Class.method' works."""
        assert resolve_callable("json:JSONDecoder.decode") is json.JSONDecoder.decode


class TestRecordPlayed:
    """What the bot said is what was heard."""

    def context(self) -> ConversationContext:
        ctx = ConversationContext()
        ctx.add_user("tell me about Paris")
        ctx.add_assistant("Paris is the capital of France. It has many museums.")
        return ctx

    def test_the_last_reply_is_cut_to_what_was_played(self) -> None:
        """content becomes the played text; generated keeps the rest."""
        ctx = self.context()
        assert ctx.record_played("Paris is the capital")
        last = ctx.messages[-1]
        assert last.content == "Paris is the capital" and last.interrupted
        assert last.generated == "Paris is the capital of France. It has many museums."

    def test_a_better_figure_replaces_an_earlier_one(self) -> None:
        """Truncating again starts from the generated text, not the first cut."""
        ctx = self.context()
        ctx.record_played("Paris")
        ctx.record_played("Paris is the capital of France.")
        assert ctx.messages[-1].content == "Paris is the capital of France."

    def test_a_reply_played_whole_is_left_alone(self) -> None:
        """Nothing to truncate: returns False and the message is not marked."""
        ctx = self.context()
        assert not ctx.record_played("Paris is the capital of France. It has many museums.")
        assert not ctx.messages[-1].interrupted

    def test_a_reply_nobody_heard_is_removed(self) -> None:
        """Cut before the first word: the model should not think it said anything."""
        ctx = self.context()
        assert ctx.record_played("")
        assert [m.role for m in ctx.messages] == ["user"]

    def test_without_a_reply_there_is_nothing_to_truncate(self) -> None:
        """No assistant message: False."""
        assert not ConversationContext().record_played("x")


class TestEstimate:
    """Estimating the words heard from the playout's timing."""

    @pytest.mark.parametrize(
        ("seconds", "heard"),
        [
            (0.0, ""),
            (0.3, "Paris"),
            (0.45, "Paris is"),
            (0.5, "Paris is"),
            (10.0, "Paris is the capital."),
        ],
    )
    def test_text_heard_cuts_at_word_boundaries(self, seconds: float, heard: str) -> None:
        """At 20 chars/s: whole words only, never more than the text."""
        assert text_heard("Paris is the capital.", int(seconds * S), 20) == heard

    def test_paused_time_does_not_count_as_played(self) -> None:
        """A barge-in pause then a resume: only the playing spans add up."""
        p = PlayedSpeech()
        p.started(0)
        p.paused(1 * S)
        p.resumed(3 * S)
        p.stopped(4 * S)
        assert p.heard_ns == 2 * S

    def test_several_spans_of_one_reply_add_up_and_reset_clears(self) -> None:
        """Audio that ran dry and restarted counts twice; reset starts over."""
        p = PlayedSpeech()
        p.started(0)
        p.stopped(S)
        p.started(2 * S)
        p.stopped(3 * S)
        assert p.heard_ns == 2 * S
        p.reset()
        assert p.heard_ns == 0


class TestHeardTracker:
    """From bus events to a truncated context."""

    def tracked(self) -> tuple[ConversationContext, HeardTracker]:
        ctx = ConversationContext()
        ctx.add_user("q")
        ctx.add_assistant("one two three four five six")
        tracker = HeardTracker(ctx, chars_per_second=10)
        tracker.reply_started(epoch=0)
        return ctx, tracker

    def test_an_interrupted_stop_truncates_by_the_time_played(self) -> None:
        """0.8 s at 10 chars/s: 'one two'."""
        ctx, tracker = self.tracked()
        tracker.on_event(BotSpeechStarted(pts=S))
        tracker.on_event(BargeInStarted(pts=int(1.8 * S)))
        assert tracker.on_event(BotSpeechStopped(interrupted=True, pts=3 * S))
        assert ctx.messages[-1].content == "one two"

    def test_a_false_interruption_keeps_counting(self) -> None:
        """Paused then resumed: the pause is left out and the reply ends whole."""
        ctx, tracker = self.tracked()
        tracker.on_event(BotSpeechStarted(pts=0))
        tracker.on_event(BargeInStarted(pts=S))
        tracker.on_event(BargeInCancelled(pts=2 * S))
        assert not tracker.on_event(BotSpeechStopped(interrupted=False, pts=4 * S))
        assert ctx.messages[-1].content == "one two three four five six"

    def test_an_exact_report_wins_over_the_estimate(self) -> None:
        """BotTextPlayed for this reply's epoch sets the text; a later estimate is ignored."""
        ctx, tracker = self.tracked()
        tracker.on_event(BotSpeechStarted(pts=0))
        tracker.on_event(BotTextPlayed(text="one two three", epoch=0, interrupted=True))
        tracker.on_event(BotSpeechStopped(interrupted=True, pts=S // 2))
        assert ctx.messages[-1].content == "one two three"

    def test_a_report_for_another_epoch_is_ignored(self) -> None:
        """An exact report about an older reply does not touch this one."""
        ctx, tracker = self.tracked()
        assert not tracker.on_event(BotTextPlayed(text="x", epoch=7, interrupted=True))
        assert ctx.messages[-1].content == "one two three four five six"
