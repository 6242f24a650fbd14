"""Agent plumbing: the conversation context and the rule-based agent.

``context`` holds the history an agent replies from (system prompt, messages,
tools implemented as Python callables) and the helpers that truncate a reply
to what the caller heard; ``rules`` is the sans-I/O engine of ``agent.rules``.
"""

from .context import (
    DEFAULT_CHARS_PER_SECOND,
    ConversationContext,
    HeardTracker,
    Message,
    PlayedSpeech,
    Role,
    Tool,
    ToolCall,
    load_system_prompt,
    resolve_callable,
    text_heard,
)
from .rules import Intent, Reply, RuleAgent, RuleSet, load_rules, parse_rules

__all__ = [
    "DEFAULT_CHARS_PER_SECOND",
    "ConversationContext",
    "HeardTracker",
    "Intent",
    "Message",
    "PlayedSpeech",
    "Reply",
    "Role",
    "RuleAgent",
    "RuleSet",
    "Tool",
    "ToolCall",
    "load_rules",
    "load_system_prompt",
    "parse_rules",
    "resolve_callable",
    "text_heard",
]
