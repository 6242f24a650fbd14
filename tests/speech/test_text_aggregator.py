"""Tests for ``speech.text_aggregator``: speakable pieces from streamed text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.speech.text_aggregator import ABBREVIATIONS, TextAggregator


def pieces(
    text: str,
    chunks: list[int] | None = None,
    first_clause_min_words: int = 3,
    max_words: int = 40,
) -> list[str]:
    """The pieces of ``text`` pushed whole, or cut at ``chunks`` offsets, then flushed."""
    agg = TextAggregator(first_clause_min_words, max_words=max_words)
    out: list[str] = []
    cuts = sorted({c for c in chunks or [] if 0 < c < len(text)})
    start = 0
    for cut in [*cuts, len(text)]:
        out += agg.push(text[start:cut])
        start = cut
    return out + agg.flush()


class TestSentences:
    """After the first piece, pieces are whole sentences."""

    def test_sentences_split_at_terminal_punctuation(self) -> None:
        """., ! and ? end pieces; the last sentence comes at flush."""
        text = "Hi. How are you today? I am fine! Thanks for asking."
        assert pieces(text) == ["Hi.", "How are you today?", "I am fine!", "Thanks for asking."]

    def test_closing_quotes_and_brackets_stay_on_their_sentence(self) -> None:
        """The quote after the full stop belongs to the sentence it closes."""
        text = 'He said "stop." Then he left (quickly.) The end.'
        assert pieces(text) == ['He said "stop."', "Then he left (quickly.)", "The end."]

    def test_the_last_sentence_waits_for_the_next_character_or_flush(self) -> None:
        """A boundary is decided by the character after the gap: nothing before it arrives."""
        agg = TextAggregator()
        assert agg.push("All done. ") == []
        assert agg.push("N") == ["All done."]
        assert agg.flush() == ["N"]

    def test_a_full_stop_before_a_lower_case_word_does_not_end_a_sentence(self) -> None:
        """An unknown abbreviation ("approx.") followed by lower case stays in its sentence."""
        assert pieces("It weighs abt. ten kilos. Okay.") == ["It weighs abt. ten kilos.", "Okay."]

    def test_a_long_sentence_breaks_at_a_clause_after_max_words(self) -> None:
        """Past max_words a clause mark is a boundary again."""
        text = "one two three four five, six seven, eight nine."
        got = pieces(text, first_clause_min_words=100, max_words=5)
        assert got == ["one two three four five,", "six seven, eight nine."]

    def test_cjk_punctuation_ends_sentences(self) -> None:
        """Full-width ! and ? count (followed by a space, as a piece only ends at whitespace)."""
        assert pieces("\u4f60\u597d\uff01 \u518d\u89c1\u3002") == [
            "\u4f60\u597d\uff01",
            "\u518d\u89c1\u3002",
        ]


class TestFirstClause:
    """The first piece of an utterance may be a clause, for early first audio."""

    def test_the_first_clause_goes_once_it_has_enough_words(self) -> None:
        """A comma after three words ends the first piece; later commas do not."""
        text = "Sure thing, my friend, I can do that. Anything else, then?"
        assert pieces(text) == ["Sure thing, my friend,", "I can do that.", "Anything else, then?"]

    @pytest.mark.parametrize("mark", [",", ";", ":", " -", " \u2014", "\u2014"])
    def test_clause_marks(self, mark: str) -> None:
        """Commas, semicolons, colons and dashes are clause marks."""
        got = pieces(f"one two three{mark} four five six.", first_clause_min_words=3)
        assert got == [f"one two three{mark}", "four five six."]

    def test_a_hyphen_stuck_to_a_word_is_not_a_clause_mark(self) -> None:
        """ "pre- and post-war" keeps its hyphens."""
        assert pieces("one two pre- and post-war times.", first_clause_min_words=1) == [
            "one two pre- and post-war times."
        ]

    def test_flush_starts_a_new_utterance_with_an_early_first_clause(self) -> None:
        """After flush the next text's first clause goes early again."""
        agg = TextAggregator(first_clause_min_words=2)
        assert agg.push("Well, hello there, friend. Bye") == ["Well, hello there,", "friend."]
        assert agg.flush() == ["Bye"]
        assert agg.at_utterance_start
        assert agg.push("Yes indeed, quite so. ") == ["Yes indeed,"]

    def test_reset_drops_held_text(self) -> None:
        """An interruption drops what is held and starts a new utterance."""
        agg = TextAggregator()
        agg.push("Half a sent")
        agg.reset()
        assert agg.held == "" and agg.flush() == []


class TestNotBoundaries:
    """Full stops inside numbers, abbreviations, initials and ellipses are not sentence ends."""

    @pytest.mark.parametrize(
        "text",
        [
            "Mr. Smith and Dr. Jones met at 5 p.m. today.",
            "Bring fruit, e.g. apples or pears, i.e. something sweet.",
            "She moved to the U.S. last year.",
            "J. K. Rowling wrote it.",
            "Pi is 3.14 and e is 2.71 roughly.",
            "It costs 1,000.50 dollars at 10:30 sharp.",
            "Visit example.com/a.b for details.",
        ],
    )
    def test_one_sentence(self, text: str) -> None:
        """Each is one piece."""
        assert pieces(text, first_clause_min_words=100) == [text]

    def test_an_ellipsis_before_lower_case_is_a_clause_mark(self) -> None:
        """Mid-sentence "..." does not end a sentence but may end the first clause."""
        assert pieces("Well... I think so... maybe. Yes.", first_clause_min_words=1) == [
            "Well...",
            "I think so... maybe.",
            "Yes.",
        ]
        assert pieces("So... and then... okay. Yes.", first_clause_min_words=9) == [
            "So... and then... okay.",
            "Yes.",
        ]

    def test_an_ellipsis_before_upper_case_ends_a_sentence(self) -> None:
        """ "Hmm... Okay." is two sentences."""
        assert pieces("Hmm\u2026 Okay then. Fine.", first_clause_min_words=9) == [
            "Hmm\u2026",
            "Okay then.",
            "Fine.",
        ]


# -- properties ------------------------------------------------------------------------------

WORDS = [
    "hello", "world", "Mr.", "Dr.", "e.g.", "U.S.", "3.14", "1,000", "10:30", "etc.",
    "yes,", "no;", "so:", "-", "\u2014", "ok.", "Why?", "Stop!", "wait...", "Hmm\u2026",
    '"Hi."', "(aside)", "it's", "A.", "x", "\u4f60\u597d\uff01",
]  # fmt: skip
_text = st.lists(
    st.tuples(st.sampled_from(WORDS), st.sampled_from([" ", " ", " ", "  ", "\n", " \t"])),
    max_size=40,
).map(lambda ws: "".join(w + s for w, s in ws))
_cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=30)


class TestProperties:
    """Streaming correctness: properties over generated text and tokenizations."""

    @settings(max_examples=300, deadline=None)
    @given(text=_text, cuts=_cuts, first=st.integers(min_value=1, max_value=6))
    def test_any_tokenization_gives_the_same_pieces(
        self, text: str, cuts: list[int], first: int
    ) -> None:
        """Pushing text in arbitrary chunks gives the pieces of one push."""
        whole = pieces(text, first_clause_min_words=first)
        assert pieces(text, cuts, first_clause_min_words=first) == whole

    @settings(max_examples=300, deadline=None)
    @given(text=_text | st.text(max_size=80), cuts=_cuts)
    def test_pieces_join_to_the_normalised_input(self, text: str, cuts: list[int]) -> None:
        """Joining the pieces with spaces gives the text with its whitespace normalised."""
        got = pieces(text, cuts)
        assert " ".join(got) == " ".join(text.split())
        assert all(p and p == " ".join(p.split()) for p in got)

    @settings(max_examples=300, deadline=None)
    @given(text=_text, cuts=_cuts)
    def test_no_piece_ends_inside_a_number_or_after_a_known_abbreviation(
        self, text: str, cuts: list[int]
    ) -> None:
        """Pieces hold whole words ("3.14", "1,000" are never cut); none ends with "Mr." etc."""
        got = pieces(text, cuts, first_clause_min_words=1)
        assert [w for p in got for w in p.split()] == text.split()
        for piece in got[:-1]:
            last = piece.rsplit(" ", 1)[-1].lstrip('"(').lower()
            assert last.removesuffix(".") not in ABBREVIATIONS, piece

    @settings(max_examples=100, deadline=None)
    @given(text=st.text(max_size=200))
    def test_one_character_at_a_time_matches_one_push(self, text: str) -> None:
        """Feeding arbitrary unicode one character at a time changes nothing."""
        assert pieces(text, list(range(len(text)))) == pieces(text)
