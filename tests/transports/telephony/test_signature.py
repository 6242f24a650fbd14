"""X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted form, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from vbgraph.transports.telephony.signature import (
    compute_signature,
    url_variants,
    validate_signature,
)

# Twilio's documented example (docs "Validating requests"): token 12345.
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
EXPECTED = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


class TestCompute:
    """The signed string and its digest."""

    def test_the_documented_example_gives_the_documented_signature(self) -> None:
        """URL + sorted name/value pairs, HMAC-SHA1 with the token, base64."""
        assert compute_signature(TOKEN, URL, PARAMS) == EXPECTED

    def test_parameters_are_sorted_by_name_whatever_their_order(self) -> None:
        """A mapping or pairs in any order sign the same."""
        pairs = list(reversed(PARAMS.items()))
        assert compute_signature(TOKEN, URL, pairs) == EXPECTED

    def test_a_handshake_signs_the_url_alone(self) -> None:
        """No parameters: the digest of the wss:// URL."""
        url = "wss://example.com/twilio"
        digest = hmac.new(b"tok", url.encode(), hashlib.sha1).digest()
        assert compute_signature("tok", url) == base64.b64encode(digest).decode()


class TestValidate:
    """Accepting only what Twilio signed."""

    def test_the_right_signature_is_valid(self) -> None:
        """The documented example validates."""
        assert validate_signature(TOKEN, EXPECTED, URL, PARAMS)

    @pytest.mark.parametrize(
        ("token", "sig", "url", "params"),
        [
            ("54321", EXPECTED, URL, PARAMS),
            (TOKEN, EXPECTED, URL.replace("foo=1", "foo=2"), PARAMS),
            (TOKEN, EXPECTED, URL, {**PARAMS, "Digits": "9999"}),
            (TOKEN, EXPECTED, URL, {**PARAMS, "Extra": "1"}),
            (TOKEN, EXPECTED[:-2] + "x=", URL, PARAMS),
            (TOKEN, "", URL, PARAMS),
            (TOKEN, None, URL, PARAMS),
            ("", EXPECTED, URL, PARAMS),
            (TOKEN, "not ascii: é", URL, PARAMS),
        ],
        ids=[
            "wrong token",
            "other url",
            "tampered param",
            "added param",
            "wrong signature",
            "empty",
            "missing",
            "no token",
            "non-ascii header",
        ],
    )
    def test_anything_else_is_invalid(
        self, token: str, sig: str | None, url: str, params: dict[str, str]
    ) -> None:
        """A changed token, URL, parameter or signature fails."""
        assert not validate_signature(token, sig, url, params)

    def test_one_matching_candidate_url_is_enough(self) -> None:
        """The shell passes the URLs Twilio may have used; one that matches validates."""
        urls = ["wss://internal:8765/twilio", "wss://voice.example.com/twilio"]
        sig = compute_signature("t", "wss://voice.example.com/twilio")
        assert validate_signature("t", sig, urls)

    def test_the_default_port_may_be_present_or_not(self) -> None:
        """Signed with :443, validated against the URL without it (and the reverse)."""
        with_port = compute_signature("t", "https://h.example.com:443/twilio/voice", PARAMS)
        assert validate_signature("t", with_port, "https://h.example.com/twilio/voice", PARAMS)
        without = compute_signature("t", "wss://h.example.com/twilio")
        assert validate_signature("t", without, "wss://h.example.com:443/twilio")

    def test_url_variants_toggle_only_the_default_port(self) -> None:
        """A non-default port has no variant."""
        assert url_variants("https://h/x?q=1") == ["https://h/x?q=1", "https://h:443/x?q=1"]
        assert url_variants("ws://h:80/x") == ["ws://h:80/x", "ws://h/x"]
        assert url_variants("https://h:8443/x") == ["https://h:8443/x"]

    def test_the_comparison_is_constant_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every candidate goes through hmac.compare_digest, even after a match."""
        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        assert validate_signature(TOKEN, EXPECTED, [URL, "https://other.example.com/"], PARAMS)
        assert len(calls) == 4  # two URLs, each with and without :443
