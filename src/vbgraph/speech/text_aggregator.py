"""Cutting streamed text into speakable pieces for TTS (sans-I/O).

Theory of operation
-------------------
A TTS voice such as Piper synthesizes a whole piece of text before the first
sample of it exists, so what reaches the voice decides both time to first
audio (a short first piece) and prosody (whole sentences). :class:`TextAggregator`
takes text as it streams (LLM tokens of any size, or whole messages) and hands
back pieces:

* the **first piece** of an utterance may end at a clause mark (``,`` ``;``
  ``:`` or a dash) once it holds ``first_clause_min_words`` words, so speech
  starts after a few words rather than a whole sentence;
* after that, pieces are **whole sentences** (``.`` ``!`` ``?`` ``…`` and
  their CJK forms, with closing quotes or brackets kept on the sentence); a
  sentence that runs past ``max_words`` words breaks at its next clause mark;
* :meth:`flush` ends the utterance: what is held becomes the last piece and
  the next text starts a new utterance (with an early first clause again).

A piece only ever ends at whitespace, after a word ending in punctuation, so
no piece ends inside a number (``3.14``, ``1,000``, ``10:30``) or a URL. A
word ending in ``.`` is not a sentence end when it is a known abbreviation
(``Mr.``, ``Dr.``, ``e.g.``, ``etc.``), a dotted acronym or initial (``U.S.``,
``J.``), or when the next word starts in lower case (an unknown abbreviation).
An ellipsis ends a sentence only before an upper-case word; otherwise it is a
clause mark.

Each decision needs the word before the whitespace and the first character
after it, so a boundary is decided only once that character has arrived (or
at :meth:`flush`). Therefore the pieces depend only on the text, not on how it
was cut into pushes: any tokenization gives the same pieces, and joining the
pieces with single spaces gives the text with its whitespace normalised
(runs of whitespace become one space; leading and trailing whitespace goes).
The cost of that guarantee is latency on the very last sentence of a stream,
which waits for :meth:`flush` (the ``tts.piper`` node flushes at an end of
input, a ``TextFrame``, or a pause in the token stream).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["ABBREVIATIONS", "TextAggregator"]

ABBREVIATIONS: Final = frozenset(
    {
        # titles and name parts: a name always follows
        "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "rev", "hon", "gen",
        "capt", "lt", "col", "sgt", "gov", "sen", "rep", "pres", "mt", "ft",
        # in-sentence abbreviations
        "e.g", "i.e", "etc", "vs", "cf", "approx", "incl", "dept", "est", "fig",
        "inc", "ltd", "corp", "co", "bros", "no", "nos", "vol", "pp", "ca",
        "a.m", "p.m", "u.s", "u.k", "u.s.a", "ph.d", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip
"""Words (lower case, without the final dot) after which ``.`` never ends a piece.

"No." and "co." are in the list although they can end a sentence ("I said
no."): a missed boundary only makes a piece longer, a false one breaks a
phrase (and "No. 5" is common in read text). "etc." and "U.S." at a sentence's
end are the same trade-off.
"""

# Escaped: ellipsis, the CJK full stop and full-width ! ? , ; : and the CJK comma.
_SENTENCE_END: Final = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLAUSE_END: Final = frozenset(",;:\u3001\uff0c\uff1b\uff1a")
_DASHES: Final = "-\u2013\u2014"  # hyphen, en dash, em dash
_CLOSERS: Final = "\"'\u201d\u2019\u00bb)]}"  # with curly quotes and »
_OPENERS: Final = "\"'\u201c\u2018\u00ab([{"
_SPACE: Final = re.compile(r"\s+")
_DOTTED: Final = re.compile(r"[^\W\d_](?:\.[^\W\d_])*")  # J, U.S, e.g (letters only)

# What a word before whitespace makes of the gap after it.
_NONE, _CLAUSE, _SENTENCE = 0, 1, 2


class TextAggregator:
    """Accumulates streamed text and returns speakable pieces (see the module docs).

    ``push(text)`` returns the pieces the new text completed (often none);
    ``flush()`` returns the rest and starts a new utterance; ``reset()`` drops
    what is held (an interruption). Pieces are whitespace-normalised and never
    empty. Not thread-safe; one caller.
    """

    __slots__ = ("_abbreviations", "_buf", "_first", "_first_min", "_max_words", "_scan")

    def __init__(
        self,
        first_clause_min_words: int = 3,
        *,
        max_words: int = 40,
        abbreviations: Iterable[str] = ABBREVIATIONS,
    ) -> None:
        if first_clause_min_words < 1:
            raise ValueError("first_clause_min_words must be at least 1")
        if max_words < 1:
            raise ValueError("max_words must be at least 1")
        self._first_min = first_clause_min_words
        self._max_words = max_words
        self._abbreviations = frozenset(a.lower().rstrip(".") for a in abbreviations)
        self._buf = ""  # text not yet handed out
        self._scan = 0  # gaps before this index of _buf are decided (not boundaries)
        self._first = True  # the next piece is the first of the utterance

    @property
    def held(self) -> str:
        """Text pushed and not yet returned in a piece (as pushed, not normalised)."""
        return self._buf

    @property
    def at_utterance_start(self) -> bool:
        """True if no piece of the current utterance has been returned yet."""
        return self._first

    def push(self, text: str) -> list[str]:
        """Add streamed ``text``; return the pieces it completed, in order.

        The caller speaks them; the held remainder waits for more text or for
        :meth:`flush`.
        """
        if not text:
            return []
        self._buf += text
        return self._cut(final=False)

    def flush(self) -> list[str]:
        """End the utterance: return every remaining piece; the next text starts a new one."""
        pieces = self._cut(final=True)
        rest = " ".join(self._buf.split())
        if rest:
            pieces.append(rest)
        self._buf = ""
        self._scan = 0
        self._first = True
        return pieces

    def reset(self) -> None:
        """Drop held text and start a new utterance (an interruption made it stale)."""
        self._buf = ""
        self._scan = 0
        self._first = True

    # -- boundaries --------------------------------------------------------------------

    def _cut(self, final: bool) -> list[str]:
        pieces: list[str] = []
        buf = self._buf
        pos = self._scan
        while True:
            gap = _SPACE.search(buf, pos)
            if gap is None:
                break
            start, end = gap.span()
            if end == len(buf) and not final:
                pos = start  # the character after the gap decides: wait for it
                break
            next_char = buf[end] if end < len(buf) else ""
            word = _last_word(buf, start)
            if word and self._is_boundary(word, next_char, buf, start):
                piece = " ".join(buf[:start].split())
                if piece:
                    pieces.append(piece)
                    self._first = False
                buf = buf[end:]
                pos = 0
            else:
                pos = end
        self._buf = buf
        self._scan = pos
        return pieces

    def _is_boundary(self, word: str, next_char: str, buf: str, start: int) -> bool:
        kind = self._classify(word, next_char)
        if kind == _SENTENCE:
            return True
        if kind == _NONE:
            return False
        limit = min(self._first_min, self._max_words) if self._first else self._max_words
        return len(buf[:start].split()) >= limit

    def _classify(self, word: str, next_char: str) -> int:
        core = word.rstrip(_CLOSERS)
        if not core:
            return _NONE
        if core.endswith(("...", "\u2026")):
            return _SENTENCE if next_char.isupper() else _CLAUSE
        last = core[-1]
        if last == ".":
            stem = core[:-1].lstrip(_OPENERS).lower()
            if stem in self._abbreviations or _DOTTED.fullmatch(stem):
                return _NONE
            if next_char.islower():
                return _NONE
            return _SENTENCE
        if last in _SENTENCE_END:
            return _SENTENCE
        if last in _CLAUSE_END:
            return _CLAUSE
        # A dash is a clause mark as a word of its own ("so - then", "well --") or as an
        # en/em dash stuck to a word ("well\u2014 then"); "pre- and post-" keeps its hyphen.
        if last in _DASHES and (last != "-" or not core.rstrip(_DASHES)):
            return _CLAUSE
        return _NONE


def _last_word(buf: str, end: int) -> str:
    """The non-whitespace run that ends at ``end`` (the whitespace gap starts there)."""
    i = end
    while i > 0 and not buf[i - 1].isspace():
        i -= 1
    return buf[i:end]
