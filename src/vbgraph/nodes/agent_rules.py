"""The ``agent.rules`` node: a deterministic agent from YAML intents (no model, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from ..agent.context import DEFAULT_CHARS_PER_SECOND, ConversationContext, HeardTracker
from ..agent.rules import RuleAgent, RuleSet, load_rules, parse_rules
from ..events import AgentReplied, Event
from ..frames import Frame, TextFrame, TranscriptFrame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, frame_port, text_port
from ..registry import register
from ._params import typed

__all__ = ["AgentRules"]


@register
class AgentRules(Node):
    """Example launch line::

        nodes:
          agent:
            type: agent.rules
            greeting: Hello! Ask me about the weather.
            rules:
              - {name: weather, patterns: ["weather in {city}"], reply: "It is sunny in {city}."}
          out: {type: log}
        edges: [agent -> out]

    The default "brain" of the offline assistant: each user turn arriving on
    ``in`` (the ``turn`` node's ``text``) gets one reply on ``out``, a
    ``TextFrame`` stamped with the session's current epoch, chosen by the
    first intent whose pattern or keywords match (``{slot}`` captures fill the
    reply template), else ``fallback``. ``greeting``, if set, is said once
    when the session starts. Every reply is also published as
    ``AgentReplied(text, intent)`` for UIs and logs.

    Intents come from a YAML file (``intents``: ``greeting``, ``fallback`` and
    an ``intents`` list) or inline (``rules``); the syntax (patterns,
    ``re:`` regexes, keywords, reply lists, ``when``/``next`` follow-up
    states) is in ``vbgraph.agent.rules``. The node keeps a conversation
    context; when a barge-in cuts a reply, the context keeps only what the
    caller heard (``vbgraph.agent.context``).
    """

    type_name: ClassVar[str] = "agent.rules"

    class Params(NodeParams):
        """Parameters of ``agent.rules``."""

        intents: GraphPath | None = Field(
            None, description="YAML rule file (greeting, fallback, intents); or use 'rules'."
        )
        rules: list[dict[str, Any]] | None = Field(
            None, description="Inline list of intents (same form as the file's 'intents')."
        )
        greeting: str | None = Field(
            None, description="Said once at session start (overrides the file's greeting)."
        )
        fallback: str | None = Field(
            None, description="Reply when no intent matches (overrides the file's fallback)."
        )
        chars_per_second: float = Field(
            DEFAULT_CHARS_PER_SECOND,
            gt=0,
            description="Speaking rate used to estimate how much of a cut reply was heard.",
        )

        @model_validator(mode="after")
        def _parse(self) -> Self:
            self.rule_set()
            return self

        def rule_set(self) -> RuleSet:
            """The parsed rules (file or inline) with the greeting/fallback overrides."""
            if self.intents is not None and self.rules is not None:
                raise ValueError("give 'intents' (a file) or inline 'rules', not both")
            if self.intents is not None:
                base = load_rules(self.intents)
            else:
                base = parse_rules(self.rules or [])
            return RuleSet(
                intents=base.intents,
                fallback=base.fallback if self.fallback is None else self.fallback,
                greeting=base.greeting if self.greeting is None else self.greeting,
            )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(TextFrame, TranscriptFrame, doc="The user's turn (final text).")
    }
    outputs: ClassVar[Mapping[str, Port]] = {"out": text_port(doc="One reply per turn.")}
    subscribes: ClassVar[tuple[type[Event], ...] | None] = HeardTracker.EVENTS

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, AgentRules.Params)
        self.agent = RuleAgent(p.rule_set())
        self.context = ConversationContext()
        """What was said, truncated to what the caller heard."""
        self._heard = HeardTracker(self.context, p.chars_per_second)
        self._greeted = False

    def _say(self, text: str, intent: str | None) -> None:
        epoch = self.ctx.epoch
        self.context.add_assistant(text)
        self._heard.reply_started(epoch)
        self.emit("out", TextFrame(text, epoch=epoch))
        self.ctx.publish(AgentReplied(text=text, intent=intent or "", epoch=epoch))

    def _greet(self) -> None:
        if self._greeted:
            return
        self._greeted = True
        greeting = self.agent.rules.greeting
        if greeting:
            self._say(greeting, "greeting")

    async def run(self) -> None:
        """Say the greeting as the session starts."""
        self._greet()

    def process(self, port: str, frame: Frame) -> None:
        """Reply to one user turn (empty or interim text is ignored)."""
        if not isinstance(frame, (TextFrame, TranscriptFrame)):
            return
        if isinstance(frame, TranscriptFrame) and not frame.final:
            return
        text = frame.text.strip()
        if not text:
            return
        self._greet()  # a turn that beats the greeting task still comes after it
        self.context.add_user(text)
        reply = self.agent.reply(text)
        self._say(reply.text, reply.intent)

    def on_event(self, event: Event) -> None:
        """Bot speech and barge-in events: truncate the last reply to what was heard."""
        self._heard.on_event(event)

    def on_end(self) -> None:
        """If the input ended before the greeting task ran, greet now (outputs end after)."""
        self._greet()
