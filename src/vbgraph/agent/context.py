"""The conversation context agent nodes keep: system prompt, history, tools.

Theory of operation
-------------------
A :class:`ConversationContext` is a list of :class:`Message` values (user,
assistant, tool) behind a system prompt, plus the :class:`Tool` declarations
the model may call. Each agent node (``agent.rules``, ``llm.openai``) owns one
per session; nothing here does I/O except importing a tool's callable and
awaiting it when asked.

*What the bot said is what was heard.* A reply goes into the history as it is
generated (an LLM's tokens are appended as they stream), so at any moment the
last assistant message holds what the agent has sent towards TTS. When a
barge-in cuts the reply, :meth:`ConversationContext.record_played` replaces
it with the text the caller actually heard; the generated text is kept on the
message (``generated``) so a later, better figure can replace an earlier one.

How an agent node learns what was heard, in order of preference:

1. Exactly, from a :class:`~vbgraph.events.BotTextPlayed` event, published by
   whatever knows the alignment of text to played audio (a TTS node with word
   timings reading ``audio.playout``'s ``played``). Nothing in vbgraph
   publishes it yet; it is the hook for TTS nodes that can.
2. Estimated, from what exists today: ``audio.playout`` publishes
   ``BotSpeechStarted`` / ``BotSpeechStopped(interrupted=...)`` and the turn
   node ``BargeInStarted`` / ``BargeInCancelled`` (playout paused / resumed).
   :class:`PlayedSpeech` sums the time the bot's audio was actually playing
   for the current reply; on ``BotSpeechStopped(interrupted=True)`` the node
   calls ``record_played(text_heard(reply, heard_ns, chars_per_second))``:
   the words of the reply that fit in that time at the voice's speaking rate.
   Rough (a voice's rate varies, pauses between sentences count as speech),
   but it cuts at a word boundary and never claims more than was generated.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    BotTextPlayed,
    Event,
)

__all__ = [
    "DEFAULT_CHARS_PER_SECOND",
    "ConversationContext",
    "HeardTracker",
    "Message",
    "PlayedSpeech",
    "Role",
    "Tool",
    "ToolCall",
    "load_system_prompt",
    "resolve_callable",
    "text_heard",
]

Role = Literal["user", "assistant", "tool"]

DEFAULT_CHARS_PER_SECOND = 15.0
"""Typical English TTS speaking rate (~170 words a minute) used to estimate what was heard."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to run tool ``name`` with ``arguments`` (JSON text, as received)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of the history.

    ``tool_calls`` only on assistant messages, ``tool_call_id`` only on tool
    results. ``generated`` is set when the content was truncated to what the
    caller heard: it keeps the text the agent had produced.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    generated: str | None = None

    @property
    def interrupted(self) -> bool:
        """True if a barge-in cut this (assistant) message short."""
        return self.generated is not None


def resolve_callable(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (dots after the colon walk attributes).

    Raises :class:`ValueError` with what is wrong (pydantic turns it into a
    :class:`~vbgraph.errors.ConfigError` at the YAML line).
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{path!r} is not callable")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: its declaration and the Python callable behind it.

    ``parameters`` is a JSON-schema object describing the keyword arguments;
    the callable (sync or ``async def``) receives them as keywords and returns
    anything JSON can encode (a ``str`` is passed on as is).
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: Callable[..., Any] = field(compare=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Tool:
        """A tool from its YAML form: ``{name, description, parameters, function: "m:f"}``."""
        name = spec.get("name")
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"tool name {name!r} must be letters, digits, '_' or '-'")
        parameters = spec.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise ValueError(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
        function = spec.get("function")
        if not isinstance(function, str):
            raise ValueError(f"tool {name!r}: 'function' must be an import path 'pkg.mod:func'")
        extra = set(spec) - {"name", "description", "parameters", "function"}
        if extra:
            raise ValueError(f"tool {name!r}: unknown keys {sorted(extra)}")
        return cls(
            name=name,
            description=str(spec.get("description", "")),
            parameters=dict(parameters),
            function=resolve_callable(function),
        )

    def declaration(self) -> dict[str, Any]:
        """The chat-completions ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


def load_system_prompt(text: str | None, file: str | None) -> str:
    """The system prompt given inline or in a file (UTF-8); not both. Empty if neither."""
    if text is not None and file is not None:
        raise ConfigError("give system_prompt or system_prompt_file, not both")
    if file is not None:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read system prompt file {file!r}: {exc}") from exc
    return text or ""


class ConversationContext:
    """The history an agent replies from. Not thread-safe; one per session.

    Use :meth:`add_user` when the caller's turn ends, :meth:`add_assistant`
    (or :meth:`append_assistant` while streaming) for replies,
    :meth:`add_tool_result` after running a call, and :meth:`record_played`
    when an interruption shows how much of the last reply was heard.
    ``max_messages`` bounds the history (oldest first; a tool result never
    outlives the call that asked for it).
    """

    def __init__(
        self,
        system_prompt: str = "",
        tools: Sequence[Tool] = (),
        max_messages: int | None = None,
    ) -> None:
        self.system_prompt = system_prompt
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ConfigError(f"tool {tool.name!r} is declared twice")
            self.tools[tool.name] = tool
        self.max_messages = max_messages
        self._messages: list[Message] = []

    @property
    def messages(self) -> tuple[Message, ...]:
        """The history, oldest first (without the system prompt)."""
        return tuple(self._messages)

    def last_assistant(self) -> Message | None:
        """The most recent assistant message, if any."""
        for message in reversed(self._messages):
            if message.role == "assistant":
                return message
        return None

    # -- adding ---------------------------------------------------------------------------

    def add_user(self, text: str) -> None:
        """The caller's turn."""
        self._append(Message("user", text))

    def add_assistant(self, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> None:
        """A reply (or a request to call tools)."""
        self._append(Message("assistant", text, tuple(tool_calls)))

    def append_assistant(self, text: str) -> None:
        """Add streamed text to the reply in progress (starts one if the last message is not)."""
        last = self._messages[-1] if self._messages else None
        if last is None or last.role != "assistant" or last.tool_calls:
            self._append(Message("assistant", text))
        else:
            self._messages[-1] = replace(last, content=last.content + text)

    def add_tool_calls(self, calls: Sequence[ToolCall]) -> None:
        """The reply in progress asks for ``calls`` (text streamed before them stays)."""
        last = self._messages[-1] if self._messages else None
        if last is not None and last.role == "assistant" and not last.tool_calls:
            self._messages[-1] = replace(last, tool_calls=tuple(calls))
        else:
            self._append(Message("assistant", "", tuple(calls)))

    def add_tool_result(self, call_id: str, content: str) -> None:
        """The result of running the tool call ``call_id``."""
        self._append(Message("tool", content, tool_call_id=call_id))

    def _append(self, message: Message) -> None:
        self._messages.append(message)
        limit = self.max_messages
        if limit is not None:
            while len(self._messages) > limit:
                del self._messages[0]
            while self._messages and self._messages[0].role == "tool":
                del self._messages[0]

    # -- interruption -----------------------------------------------------------------------

    def record_played(self, text_played: str) -> bool:
        """Truncate the last assistant reply to ``text_played``, what the caller heard.

        The content becomes ``text_played`` (stripped) and the text generated is
        kept in ``Message.generated``, so calling again with a better figure
        replaces the first. A reply nobody heard anything of is removed (unless
        it asked for tools). Returns False if there was no reply to truncate or
        ``text_played`` covers all of it.
        """
        for i in range(len(self._messages) - 1, -1, -1):
            message = self._messages[i]
            if message.role != "assistant":
                continue
            generated = message.content if message.generated is None else message.generated
            heard = text_played.strip()
            if heard == generated.strip():
                self._messages[i] = replace(message, content=generated, generated=None)
                return False
            if not heard and not message.tool_calls:
                del self._messages[i]
                return True
            self._messages[i] = replace(message, content=heard, generated=generated)
            return True
        return False

    # -- tools ------------------------------------------------------------------------------

    def tool_declarations(self) -> list[dict[str, Any]]:
        """The ``tools`` list of a chat-completions request (empty when none are declared)."""
        return [tool.declaration() for tool in self.tools.values()]

    async def call_tool(self, call: ToolCall) -> str:
        """Run ``call`` and return the result as text for the model.

        Failures are reported *to the model*, not raised: an unknown tool, bad
        JSON arguments or an exception in the function give ``{"error": ...}``,
        so the model can apologise or retry instead of the turn dying.
        """
        tool = self.tools.get(call.name)
        if tool is None:
            return json.dumps({"error": f"unknown tool {call.name!r}"})
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return json.dumps({"error": f"arguments are not valid JSON: {exc}"})
        if not isinstance(args, dict):
            return json.dumps({"error": "arguments must be a JSON object"})
        try:
            result = tool.function(**args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # the model hears about it; see the docstring
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        if isinstance(result, str):
            return result
        return json.dumps(result, default=str)

    # -- wire shape ---------------------------------------------------------------------------

    def to_openai(self) -> list[dict[str, Any]]:
        """The ``messages`` list of a chat-completions request."""
        out: list[dict[str, Any]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        for m in self._messages:
            entry: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in m.tool_calls
                ]
                if not m.content:
                    entry["content"] = None
            if m.tool_call_id is not None:
                entry["tool_call_id"] = m.tool_call_id
            out.append(entry)
        return out


def text_heard(text: str, heard_ns: int, chars_per_second: float = DEFAULT_CHARS_PER_SECOND) -> str:
    """The words of ``text`` a voice speaking ``chars_per_second`` gets through in ``heard_ns``.

    Cut at a word boundary (a word counts once its last character is spoken);
    the whole text if the time covers it.
    """
    budget = int(heard_ns * chars_per_second / 1_000_000_000)
    text = text.strip()
    if budget >= len(text):
        return text
    if budget <= 0:
        return ""
    if not text[budget].isspace():
        cut = text.rfind(" ", 0, budget + 1)
        budget = cut if cut >= 0 else 0
    return text[:budget].rstrip()


class PlayedSpeech:
    """How long the bot's current reply has actually been playing (sans-I/O).

    Feed it the playout's and turn node's events with their ``pts``:
    ``started`` (BotSpeechStarted), ``paused`` (BargeInStarted), ``resumed``
    (BargeInCancelled), ``stopped`` (BotSpeechStopped). Paused time does not
    count. :meth:`reset` when a new reply starts.
    """

    __slots__ = ("_paused", "_since", "heard_ns")

    def __init__(self) -> None:
        self.heard_ns = 0
        """Time played so far, in ns."""
        self._since: int | None = None
        self._paused = False

    def reset(self) -> None:
        """A new reply begins: nothing of it has been played."""
        self.heard_ns = 0
        self._since = None
        self._paused = False

    def started(self, pts: int) -> None:
        """Audio started (or restarted after running dry) at ``pts``."""
        if self._since is None and not self._paused:
            self._since = pts

    def paused(self, pts: int) -> None:
        """Playout paused for a possible barge-in at ``pts``."""
        self._close(pts)
        self._paused = True

    def resumed(self, pts: int) -> None:
        """It was not a barge-in: playout resumed at ``pts``."""
        if self._paused:
            self._paused = False
            self._since = pts

    def stopped(self, pts: int) -> None:
        """Audio stopped at ``pts`` (ran dry, finished or was cut off)."""
        self._close(pts)
        self._paused = False

    def _close(self, pts: int) -> None:
        if self._since is not None:
            self.heard_ns += max(0, pts - self._since)
            self._since = None


class HeardTracker:
    """Keeps a context's last reply truncated to what was heard, from bus events.

    An agent node holds one, subscribes to :attr:`EVENTS`, forwards them to
    :meth:`on_event` and calls :meth:`reply_started` when it starts a reply. See
    the module docstring for the exact and the estimated path.
    """

    EVENTS: tuple[type[Event], ...] = (
        BotSpeechStarted,
        BotSpeechStopped,
        BargeInStarted,
        BargeInCancelled,
        BotTextPlayed,
    )

    def __init__(
        self, context: ConversationContext, chars_per_second: float = DEFAULT_CHARS_PER_SECOND
    ) -> None:
        self.context = context
        self.chars_per_second = chars_per_second
        self.speech = PlayedSpeech()
        self._epoch: int | None = None
        self._exact = False

    def reply_started(self, epoch: int) -> None:
        """A reply of ``epoch`` begins: nothing of it has been heard yet."""
        self.speech.reset()
        self._epoch = epoch
        self._exact = False

    def on_event(self, event: Event) -> bool:
        """Update from one event; True if the context's last reply was truncated."""
        kind = type(event)
        speech = self.speech
        if kind is BotSpeechStarted:
            speech.started(event.pts)
        elif kind is BargeInStarted:
            speech.paused(event.pts)
        elif kind is BargeInCancelled:
            speech.resumed(event.pts)
        elif kind is BotSpeechStopped:
            assert isinstance(event, BotSpeechStopped)
            speech.stopped(event.pts)
            if event.interrupted and not self._exact and self._epoch is not None:
                reply = self.context.last_assistant()
                if reply is None:
                    return False
                generated = reply.content if reply.generated is None else reply.generated
                heard = text_heard(generated, speech.heard_ns, self.chars_per_second)
                return self.context.record_played(heard)
        elif kind is BotTextPlayed:
            assert isinstance(event, BotTextPlayed)
            if event.interrupted and event.epoch == self._epoch:
                self._exact = True
                return self.context.record_played(event.text)
        return False
