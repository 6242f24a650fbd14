"""Twilio request signatures (``X-Twilio-Signature``): compute and validate, sans-I/O.

Twilio signs every webhook and the media stream's WebSocket handshake with
the account's auth token: the header is the base64 HMAC-SHA1 of the full URL
Twilio requested (scheme, host, path and query; ``wss://`` for the stream)
followed, for a form POST, by each parameter's name and value, sorted by
name, with no separators. A request whose header does not match did not come
from Twilio (or a proxy rewrote its URL; see :func:`url_variants`).

Comparison is constant-time (:func:`hmac.compare_digest`), so the expected
signature does not leak through response timing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable, Mapping

__all__ = ["SIGNATURE_HEADER", "compute_signature", "url_variants", "validate_signature"]

SIGNATURE_HEADER = "X-Twilio-Signature"

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}

Params = Mapping[str, str] | Iterable[tuple[str, str]]
"""Form parameters: a mapping, or pairs (a name may repeat)."""


def _pairs(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    return sorted((str(k), str(v)) for k, v in items)


def compute_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The signature Twilio sends for a request to ``url`` with form ``params``.

    Parameters are sorted by name (then value, for a repeated name) and
    appended as ``name + value``; a GET or a WebSocket handshake has none.
    """
    data = url + "".join(k + v for k, v in _pairs(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as given, then with its default port added or removed.

    Twilio's own validators accept either: depending on how the request
    reached us, the ``Host`` we see may or may not carry ``:443``.
    """
    parts = urllib.parse.urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        host = f"{userinfo}@{host}"
    if parts.port is None:
        other = f"{host}:{default}"
    elif parts.port == default:
        other = host
    else:
        return variants
    variants.append(urllib.parse.urlunsplit(parts._replace(netloc=other)))
    return variants


def validate_signature(
    auth_token: str,
    signature: str | None,
    urls: str | Iterable[str],
    params: Params | None = None,
) -> bool:
    """True when ``signature`` matches a request to one of ``urls`` with ``params``.

    ``urls`` is the URL Twilio used, or the candidates for it (each is also
    tried with its default port toggled). A missing or empty signature is
    invalid. Every candidate is compared in constant time.
    """
    if not signature or not auth_token:
        return False
    candidates = [urls] if isinstance(urls, str) else list(urls)
    pairs = _pairs(params)
    given = signature.encode("ascii", "replace")
    valid = False
    for url in candidates:
        for variant in url_variants(url):
            expected = compute_signature(auth_token, variant, pairs).encode("ascii")
            valid |= hmac.compare_digest(expected, given)
    return valid
