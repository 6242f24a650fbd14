"""A minimal sans-I/O HTTP/1.1 client codec: one request out, one response in.

Theory of operation
-------------------
Just enough HTTP/1.1 for streaming JSON APIs without a new dependency:
:func:`build_request` makes the request bytes; :class:`ResponseParser` takes
response bytes in any chunking (``receive_data``, then ``receive_eof`` when the
peer closes) and yields :class:`ResponseHead`, body bytes and
:class:`ResponseEnd` from ``events_received()``. The body is framed by
``Transfer-Encoding: chunked``, ``Content-Length`` or the connection closing
(in that order of precedence, RFC 9112 §6.3). One response per connection:
requests say ``Connection: close``, so there is no keep-alive state.

Caller obligations: after each ``receive_*`` call, drain ``events_received()``;
after :class:`ResponseEnd` close the connection. Malformed input raises
:class:`~vbgraph.errors.ProviderProtocolError`; data after the end is ignored.
No asyncio here (a test imports this module with asyncio blocked).

Request bodies for file uploads are ``multipart/form-data`` (RFC 7578):
:func:`build_multipart` joins :class:`FormField` values under a boundary and
:func:`multipart_content_type` is the matching ``Content-Type``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ProviderProtocolError

__all__ = [
    "FormField",
    "ResponseEnd",
    "ResponseHead",
    "ResponseParser",
    "build_multipart",
    "build_request",
    "multipart_content_type",
]

_MAX_HEAD = 64 * 1024
_MAX_CHUNK_LINE = 4096


def build_request(
    method: str, host: str, target: str, headers: Mapping[str, str], body: bytes = b""
) -> bytes:
    """The bytes of one request (``Host``, ``Content-Length``, ``Connection: close`` added)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@dataclass(frozen=True, slots=True)
class FormField:
    """One part of a ``multipart/form-data`` body: a plain field, or a file with a name."""

    name: str
    value: bytes | str
    filename: str | None = None
    content_type: str | None = None


# RFC 2046 §5.1.1 "bchars", without the space (allowed inside, but needless trouble).
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=?]{1,70}")


def multipart_content_type(boundary: str) -> str:
    """The ``Content-Type`` header value for a body built with ``boundary``."""
    return f"multipart/form-data; boundary={boundary}"


def build_multipart(fields: Sequence[FormField], boundary: str) -> bytes:
    """A ``multipart/form-data`` body (RFC 7578): each field, then the closing delimiter.

    Text values are sent as UTF-8. Raises :class:`ValueError` for a boundary
    that is not 1-70 RFC 2046 characters or that occurs in a value (the body
    would be cut there: pick a random boundary and retry), and for names or
    file names holding a quote or a line break.
    """
    if not _BOUNDARY.fullmatch(boundary):
        raise ValueError(f"bad multipart boundary {boundary!r}")
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    for f in fields:
        for label in (f.name, f.filename or "", f.content_type or ""):
            if any(c in label for c in '"\r\n'):
                raise ValueError(f"form field {f.name!r}: {label!r} holds a quote or line break")
        value = f.value.encode() if isinstance(f.value, str) else bytes(f.value)
        if delimiter in value:
            raise ValueError(f"form field {f.name!r} contains the boundary")
        disposition = f'form-data; name="{f.name}"'
        if f.filename is not None:
            disposition += f'; filename="{f.filename}"'
        out += delimiter + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if f.content_type:
            out += b"Content-Type: " + f.content_type.encode("latin-1") + b"\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += delimiter + b"--\r\n"
    return bytes(out)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Status line and headers (names lower-cased; repeated headers joined by ', ')."""

    status: int
    reason: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ResponseEnd:
    """The body is complete."""


_Event = ResponseHead | bytes | ResponseEnd


class ResponseParser:
    """Incremental parser of one HTTP/1.1 response (see the module docstring)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._events: list[_Event] = []
        self._state = (
            "head"  # head, chunk_size, chunk_data, chunk_crlf, trailer, length, close, done
        )
        self._remaining = 0

    def events_received(self) -> list[_Event]:
        """Head, body pieces (``bytes``) and end, in order, since the last call."""
        events, self._events = self._events, []
        return events

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the connection."""
        if self._state == "done":
            return
        self._buf += data
        self._parse()

    def receive_eof(self) -> None:
        """The peer closed. Ends a close-delimited body; elsewhere an error."""
        if self._state == "done":
            return
        if self._state == "close":
            if self._buf:
                self._events.append(bytes(self._buf))
                self._buf.clear()
            self._finish()
            return
        raise ProviderProtocolError(
            f"connection closed mid-response (while reading {self._state.replace('_', ' ')})"
        )

    def _finish(self) -> None:
        self._state = "done"
        self._events.append(ResponseEnd())

    def _parse(self) -> None:
        buf = self._buf
        while True:
            state = self._state
            if state == "head":
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise ProviderProtocolError("response head is too large")
                    return
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._head(head)
            elif state == "chunk_size":
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > _MAX_CHUNK_LINE:
                        raise ProviderProtocolError("chunk size line is too long")
                    return
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ProviderProtocolError(f"bad chunk size {line!r}") from None
                if size < 0:
                    raise ProviderProtocolError(f"bad chunk size {line!r}")
                self._remaining = size
                self._state = "chunk_data" if size else "trailer"
            elif state == "chunk_data":
                if not buf:
                    return
                take = min(self._remaining, len(buf))
                self._events.append(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining:
                    return
                self._state = "chunk_crlf"
            elif state == "chunk_crlf":
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise ProviderProtocolError("chunk data not followed by CRLF")
                del buf[:2]
                self._state = "chunk_size"
            elif state == "trailer":
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()
                    return
            elif state == "length":
                if not buf:
                    return
                take = min(self._remaining, len(buf))
                self._events.append(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if not self._remaining:
                    self._finish()
                return
            elif state == "close":
                if buf:
                    self._events.append(bytes(buf))
                    buf.clear()
                return
            else:  # done
                buf.clear()
                return

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProviderProtocolError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ProviderProtocolError(f"bad header line {line!r}")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = int(parts[1])
        self._events.append(ResponseHead(status, parts[2] if len(parts) > 2 else "", headers))
        if 100 <= status < 200:
            return  # an interim response; the real head follows
        if status in (204, 304):
            self._finish()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk_size"
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise ProviderProtocolError("bad Content-Length") from None
            if self._remaining < 0:
                raise ProviderProtocolError("bad Content-Length")
            self._state = "length"
            if not self._remaining:
                self._finish()
        else:
            self._state = "close"
