"""A deterministic agent: intents from YAML, pattern → templated reply (sans-I/O).

Theory of operation
-------------------
A rule set is a greeting, a fallback reply and an ordered list of intents::

    greeting: Hello! Ask me about the weather.
    fallback: Sorry, I did not catch that.
    intents:
      - name: weather
        patterns: ["weather in {city}", "re:how (?:hot|cold) is (?P<city>\\w+)"]
        keywords: [forecast]
        reply: ["It is sunny in {city}.", "Still sunny in {city}."]
        next: weather_followup
      - name: thanks
        when: weather_followup
        keywords: [thanks, thank you]
        reply: You are welcome. Anything else about {city}?

*Matching.* :meth:`RuleAgent.reply` tries, in file order, first the intents
whose ``when`` is the current follow-up state, then those with no ``when``.
An intent matches if one of its ``patterns`` or ``keywords`` does; the first
that matches (and has every slot its reply needs) wins; else the fallback.

*Patterns.* A plain pattern is a phrase, matched case-insensitively at word
boundaries anywhere in the utterance, with flexible whitespace. ``{name}``
captures a slot: the shortest text that lets the rest match, or, when the
slot ends the pattern, everything to the end of the utterance (without
closing punctuation). ``re:`` starts a Python regex searched
case-insensitively; its named groups are slots. ``keywords`` are words or
phrases; any one present (whole words) matches and captures nothing.

*Replies.* ``reply`` is one template or a list used in turn (the first
match says the first, the next the second ...). ``{name}`` is filled from the
slots of this utterance, then from slots remembered from earlier turns. An
intent whose reply needs a slot that is not known yet is skipped.

*Follow-up state.* ``next`` sets the state for the *next* turn: a matching
intent replaces it (with its own ``next``, or none); the fallback keeps it,
so a caller can rephrase an answer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["Intent", "Reply", "RuleAgent", "RuleSet", "load_rules", "parse_rules"]

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRAILING = " \t\n.,;:!?\"'"
DEFAULT_FALLBACK = "Sorry, I did not understand that."
_INTENT_KEYS = frozenset({"name", "patterns", "keywords", "reply", "when", "next"})
_TOP_KEYS = frozenset({"greeting", "fallback", "intents"})


@dataclass(frozen=True, slots=True)
class Intent:
    """One intent: how to recognise it and what to answer."""

    name: str
    patterns: tuple[re.Pattern[str], ...]
    keywords: tuple[re.Pattern[str], ...]
    replies: tuple[str, ...]
    when: str | None = None
    next_state: str | None = None
    needs: frozenset[str] = frozenset()
    """Slot names the reply templates use."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A parsed rule file: intents in order, the fallback and an optional greeting."""

    intents: tuple[Intent, ...]
    fallback: str = DEFAULT_FALLBACK
    greeting: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the agent answers. ``intent`` is None for the fallback."""

    text: str
    intent: str | None
    slots: Mapping[str, str] = field(default_factory=dict)
    state: str | None = None
    """The follow-up state after this reply."""


def _phrase_regex(phrase: str) -> re.Pattern[str]:
    """A pattern phrase with ``{slot}`` captures as a compiled regex (see module doc)."""
    parts: list[str] = []
    pos = 0
    seen: set[str] = set()
    matches = list(_SLOT.finditer(phrase))
    for i, m in enumerate(matches):
        literal = phrase[pos : m.start()]
        parts.append(_literal(literal))
        name = m.group(1)
        if name in seen:
            raise ValueError(f"pattern {phrase!r} captures slot {name!r} twice")
        seen.add(name)
        last = i == len(matches) - 1 and not phrase[m.end() :].strip()
        parts.append(f"(?P<{name}>.+)" if last else f"(?P<{name}>.+?)")
        pos = m.end()
    parts.append(_literal(phrase[pos:]))
    body = "".join(parts).strip()
    if not body:
        raise ValueError("empty pattern")
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _literal(text: str) -> str:
    words = text.split()
    if not words:
        return r"\s*" if text else ""
    inner = r"\s+".join(re.escape(w) for w in words)
    lead = r"\s*" if text[:1].isspace() else ""
    tail = r"\s*" if text[-1:].isspace() else ""
    return lead + inner + tail


def _keyword_regex(keyword: str) -> re.Pattern[str]:
    words = keyword.split()
    if not words:
        raise ValueError("empty keyword")
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)", re.I)


def _template_slots(template: str) -> set[str]:
    names: set[str] = set()
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise ValueError(f"reply {template!r}: only plain {{slot}} placeholders are allowed")
        names.add(name)
    return names


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{what} must be a string or a list of strings")


def _parse_intent(spec: Any, index: int) -> Intent:
    if not isinstance(spec, Mapping):
        raise ValueError(f"intent #{index + 1} must be a mapping")
    name = spec.get("name", f"intent{index + 1}")
    where = f"intent {name!r}"
    unknown = set(spec) - _INTENT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(_INTENT_KEYS)})")
    patterns: list[re.Pattern[str]] = []
    for p in _str_list(spec.get("patterns"), f"{where}: patterns"):
        try:
            patterns.append(re.compile(p[3:], re.I) if p.startswith("re:") else _phrase_regex(p))
        except (re.error, ValueError) as exc:
            raise ValueError(f"{where}: bad pattern {p!r}: {exc}") from None
    keywords = [_keyword_regex(k) for k in _str_list(spec.get("keywords"), f"{where}: keywords")]
    if not patterns and not keywords:
        raise ValueError(f"{where}: needs at least one pattern or keyword")
    replies = _str_list(spec.get("reply"), f"{where}: reply")
    if not replies:
        raise ValueError(f"{where}: needs a reply")
    needs: set[str] = set()
    for r in replies:
        needs |= _template_slots(r)
    when, nxt = spec.get("when"), spec.get("next")
    for key, value in (("when", when), ("next", nxt)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {key} must be a state name")
    return Intent(
        name=str(name),
        patterns=tuple(patterns),
        keywords=tuple(keywords),
        replies=tuple(replies),
        when=when,
        next_state=nxt,
        needs=frozenset(needs),
    )


def parse_rules(
    intents: Sequence[Any], fallback: str | None = None, greeting: str | None = None
) -> RuleSet:
    """A :class:`RuleSet` from plain data (a YAML ``intents`` list).

    Raises :class:`ValueError` naming the intent and what is wrong: unknown keys,
    no pattern, a bad regex, a reply slot no pattern anywhere captures.
    """
    parsed = tuple(_parse_intent(spec, i) for i, spec in enumerate(intents))
    captured: set[str] = set()
    for intent in parsed:
        for p in intent.patterns:
            captured |= set(p.groupindex)
    for intent in parsed:
        missing = intent.needs - captured
        if missing:
            raise ValueError(
                f"intent {intent.name!r}: reply uses {sorted(missing)} but no pattern captures it"
            )
    if fallback is not None:
        _template_slots(fallback)
    return RuleSet(
        intents=parsed,
        fallback=fallback if fallback is not None else DEFAULT_FALLBACK,
        greeting=greeting,
    )


def load_rules(path: str | Path) -> RuleSet:
    """Read a rule file (YAML: ``greeting``, ``fallback``, ``intents``); ConfigError if bad."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read rules file {str(path)!r}: {exc}") from exc
    if isinstance(data, list):
        data = {"intents": data}
    if not isinstance(data, dict):
        raise ConfigError(f"rules file {str(path)!r}: expected a mapping with 'intents'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"rules file {str(path)!r}: unknown keys {sorted(unknown)}")
    try:
        return parse_rules(data.get("intents") or [], data.get("fallback"), data.get("greeting"))
    except ValueError as exc:
        raise ConfigError(f"rules file {str(path)!r}: {exc}") from None


class RuleAgent:
    """Replies to utterances from a :class:`RuleSet`; remembers slots and follow-up state.

    Pure and synchronous: ``reply(text)`` returns at once and does no I/O.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.state: str | None = None
        """The follow-up state set by the last reply's ``next``."""
        self.memory: dict[str, str] = {}
        """Slots captured in earlier turns."""
        self._uses: dict[str, int] = {}

    def reset(self) -> None:
        """Forget state, remembered slots and reply rotation."""
        self.state = None
        self.memory.clear()
        self._uses.clear()

    def _candidates(self) -> list[Intent]:
        intents = self.rules.intents
        first = [i for i in intents if i.when is not None and i.when == self.state]
        return first + [i for i in intents if i.when is None]

    def reply(self, text: str) -> Reply:
        """The reply to one user turn (updates state and memory)."""
        utterance = text.strip()
        for intent in self._candidates():
            slots = _match(intent, utterance)
            if slots is None:
                continue
            known = {**self.memory, **slots}
            if not intent.needs <= known.keys():
                continue
            uses = self._uses.get(intent.name, 0)
            self._uses[intent.name] = uses + 1
            template = intent.replies[uses % len(intent.replies)]
            self.memory.update(slots)
            self.state = intent.next_state
            return Reply(template.format_map(known), intent.name, slots, self.state)
        # Fallback: the state is kept so the caller can rephrase an answer.
        text_out = self.rules.fallback.format_map(_Missing(self.memory))
        return Reply(text_out, None, {}, self.state)


def _match(intent: Intent, utterance: str) -> dict[str, str] | None:
    for pattern in intent.patterns:
        m = pattern.search(utterance)
        if m is not None:
            return {
                k: v.strip(_TRAILING)
                for k, v in m.groupdict().items()
                if v is not None and v.strip(_TRAILING)
            }
    for keyword in intent.keywords:
        if keyword.search(utterance):
            return {}
    return None


class _Missing(dict[str, str]):
    """format_map helper: an unknown slot in the fallback renders as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""
