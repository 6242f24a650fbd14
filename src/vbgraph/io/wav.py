"""Streaming WAV (RIFF/WAVE) reading and writing for the file source and sink nodes.

What is supported
-----------------
Exactly the sample encodings vbgraph computes on or carries end to end, each
read and written without conversion, so a file round-trips byte for byte:

==================  ====  ===========  ============================
WAV format tag      bits  encoding     why
==================  ====  ===========  ============================
1 PCM               16    pcm_s16le    what ASR/TTS providers speak
3 IEEE_FLOAT        32    pcm_f32le    what DSP nodes compute in
6 ALAW              8     alaw         telephony (G.711, Europe)
7 MULAW             8     mulaw        telephony (G.711, US/Japan)
0xFFFE EXTENSIBLE   same  same         tag from the sub-format GUID
==================  ====  ===========  ============================

Other bit depths (8-, 24- and 32-bit integer PCM, 64-bit float) and compressed
tags (ADPCM, MP3 ...) raise :class:`~vbgraph.errors.AudioFormatError` naming the
file and what it holds, rather than being silently converted: a conversion here
would hide a resampling/requantisation decision that belongs in the graph.

Theory of operation
-------------------
A WAV file is a ``RIFF`` container: a 12-byte header (``RIFF``, a 32-bit size,
``WAVE``) followed by chunks, each an id, a 32-bit little-endian size and that
many bytes plus a pad byte when the size is odd. :class:`WavReader` walks the
chunks from the file's start, reads ``fmt `` (the format), skips every chunk it
does not need (``LIST``, ``fact``, ``bext``, ``JUNK`` ...) by seeking, and stops
at ``data``, remembering where the samples begin. Audio is then read through the
open file object on demand, so a long recording is never held in memory unless
:meth:`WavReader.read_all` asks for it.

The reader trusts the file over its headers. The RIFF size is ignored (chunks are
walked to the end of the file). A ``data`` size of 0 or ``0xFFFFFFFF`` is what
streaming writers leave when they could not go back and patch it, and means "to
the end of the file". A ``data`` chunk that claims more bytes than the file holds
(a truncated download, a crashed recorder) is read as far as it exists, rounded
down to whole sample frames.

:class:`WavWriter` writes the whole header first with placeholder sizes
(``0xFFFFFFFF``) and flushes it, appends samples as they come, and on
:meth:`~WavWriter.close` adds the pad byte if the data is odd-sized and patches
the RIFF, ``fact`` and ``data`` sizes. A run that crashes before closing still
leaves a file this reader (and most others) can play. Non-PCM formats (float,
A-law, μ-law) get an 18-byte ``fmt `` chunk and a ``fact`` chunk holding the
frame count, as the RIFF specification requires for them.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Self

from ..errors import AudioFormatError, UsageError
from ..formats import AudioFormat, Encoding
from ..typing import BytesLike

__all__ = ["WavReader", "WavWriter", "read_wav", "write_wav"]

StrPath = str | os.PathLike[str]

_TAG_PCM: Final = 0x0001
_TAG_FLOAT: Final = 0x0003
_TAG_ALAW: Final = 0x0006
_TAG_MULAW: Final = 0x0007
_TAG_EXTENSIBLE: Final = 0xFFFE

_TAG_NAMES: Final[dict[int, str]] = {
    0x0001: "integer PCM",
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
}

# KSDATAFORMAT_SUBTYPE_* GUIDs are {TTTT0000-0000-0010-8000-00AA00389B71}, stored
# with the first three fields little-endian: the tag's two bytes, then this.
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

_SUPPORTED: Final = "supported: 16-bit integer PCM, 32-bit IEEE float, 8-bit A-law, 8-bit mu-law"

# (tag, bits per sample) -> encoding, for plain and WAVE_FORMAT_EXTENSIBLE files.
_ENCODING_OF: Final[dict[tuple[int, int], Encoding]] = {
    (_TAG_PCM, 16): Encoding.PCM_S16LE,
    (_TAG_FLOAT, 32): Encoding.PCM_F32LE,
    (_TAG_ALAW, 8): Encoding.ALAW,
    (_TAG_MULAW, 8): Encoding.MULAW,
}
_TAG_OF: Final[dict[Encoding, int]] = {enc: tag for (tag, _), enc in _ENCODING_OF.items()}

_UNKNOWN_SIZE: Final = 0xFFFFFFFF
_MAX_FMT_BYTES: Final = 4096  # a real fmt chunk is 16..40 bytes; never trust a huge size
_U32: Final = struct.Struct("<I")
_CHUNK_HEADER: Final = struct.Struct("<4sI")


class WavReader:
    """Reads sample frames from a WAV file, a block at a time.

    ``WavReader(path)`` parses the header at once (raising
    :class:`~vbgraph.errors.AudioFormatError` for anything it cannot read) and
    keeps the file open until :meth:`close` or the end of a ``with`` block::

        with WavReader("speech.wav") as wav:
            while block := wav.read(320):
                ...

    Attributes: ``path`` (:class:`~pathlib.Path`), ``format``
    (:class:`~vbgraph.formats.AudioFormat`) and ``frames_total`` (sample frames
    in the ``data`` chunk, counting only bytes that exist in the file).
    """

    path: Path
    format: AudioFormat
    frames_total: int

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self._position = 0
        file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            fmt, data_offset, data_bytes = _parse_header(file, self.path)
        except BaseException:
            file.close()
            raise
        self._file = file
        self.format = fmt
        self._frame_bytes = fmt.frame_bytes
        self._data_offset = data_offset
        self.frames_total = data_bytes // self._frame_bytes
        file.seek(data_offset)

    @property
    def position(self) -> int:
        """Index of the next sample frame :meth:`read` returns."""
        return self._position

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._file is None

    def read(self, max_frames: int) -> bytes:
        """Up to ``max_frames`` whole sample frames from the current position, ``b""`` at end."""
        file = self._open_file()
        if max_frames < 0:
            raise UsageError(f"max_frames must be >= 0, got {max_frames}")
        count = min(max_frames, self.frames_total - self._position)
        if count <= 0:
            return b""
        data = file.read(count * self._frame_bytes)
        got = len(data) // self._frame_bytes
        self._position += got
        if got != count:  # the file shrank since it was opened: keep to whole frames
            data = data[: got * self._frame_bytes]
            file.seek(self._data_offset + self._position * self._frame_bytes)
        return data

    def read_all(self) -> bytes:
        """Every remaining sample frame from the current position (the whole file when fresh)."""
        return self.read(self.frames_total - self._position)

    def seek_frame(self, n: int) -> None:
        """Move to sample frame ``n`` (0 is the start, ``frames_total`` the end)."""
        file = self._open_file()
        if not 0 <= n <= self.frames_total:
            raise UsageError(
                f"{self.path}: cannot seek to frame {n}; the file has {self.frames_total} frames"
            )
        file.seek(self._data_offset + n * self._frame_bytes)
        self._position = n

    def close(self) -> None:
        """Close the file. Safe to call more than once."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._file is None else f"at frame {self._position}"
        return f"<WavReader {str(self.path)!r} {self.format} {self.frames_total} frames, {state}>"

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise UsageError(f"{self.path}: WavReader is closed")
        return self._file


def _parse_header(file: BinaryIO, path: Path) -> tuple[AudioFormat, int, int]:
    """Walk the RIFF chunks: (format, byte offset of the samples, bytes of samples in the file)."""
    file_size = os.fstat(file.fileno()).st_size
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file ({_describe_magic(head)})")

    fmt: AudioFormat | None = None
    data: tuple[int, int] | None = None
    pos = 12
    while pos + 8 <= file_size:
        file.seek(pos)
        chunk_id, size = _CHUNK_HEADER.unpack(file.read(8))
        body = pos + 8
        if chunk_id == b"fmt " and fmt is None:
            fmt = _parse_fmt(file.read(min(size, _MAX_FMT_BYTES)), size, path)
        elif chunk_id == b"data" and data is None:
            if size in (0, _UNKNOWN_SIZE) or body + size > file_size:
                # Streamed (size never patched) or truncated: the samples run to EOF.
                data = (body, file_size - body)
                break
            data = (body, size)
            if fmt is not None:
                break
        pos = body + size + (size & 1)

    if fmt is None:
        raise AudioFormatError(f"{path}: WAV file has no 'fmt ' chunk (format description)")
    if data is None:
        raise AudioFormatError(f"{path}: WAV file has no 'data' chunk (no audio samples)")
    return fmt, data[0], data[1]


def _describe_magic(head: bytes) -> str:
    if len(head) < 12:
        return f"only {len(head)} bytes long, a WAV header needs 12"
    if head[:4] == b"RF64":
        return "it is RF64 (a WAV over 4 GiB), which is not supported"
    if head[:4] == b"RIFX":
        return "it is big-endian RIFX, which is not supported"
    if head[:4] == b"RIFF":
        return f"a RIFF file of form {head[8:12]!r}, not b'WAVE'"
    return f"starts with {head[:4]!r}, not b'RIFF'"


def _parse_fmt(body: bytes, declared: int, path: Path) -> AudioFormat:
    """Turn the bytes of a ``fmt `` chunk into an :class:`AudioFormat`."""
    if len(body) < 16:
        raise AudioFormatError(
            f"{path}: 'fmt ' chunk is {len(body)} bytes (declares {declared}), needs at least 16"
        )
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _TAG_EXTENSIBLE:
        if len(body) < 40:
            raise AudioFormatError(
                f"{path}: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is {len(body)} bytes, needs 40"
            )
        guid = body[24:40]
        if guid[2:] != _GUID_TAIL:
            raise AudioFormatError(
                f"{path}: WAVE_FORMAT_EXTENSIBLE sub-format GUID {guid.hex()} is not a "
                f"standard audio format; {_SUPPORTED}"
            )
        (tag,) = struct.unpack_from("<H", guid)

    encoding = _ENCODING_OF.get((tag, bits))
    if encoding is None:
        name = _TAG_NAMES.get(tag, "unknown format")
        raise AudioFormatError(
            f"{path}: WAV holds {bits}-bit {name} (format tag 0x{tag:04X}), "
            f"which vbgraph does not read; {_SUPPORTED}"
        )
    if channels == 0:
        raise AudioFormatError(f"{path}: WAV 'fmt ' chunk declares 0 channels")
    try:
        fmt = AudioFormat(rate, channels, encoding)
    except AudioFormatError as exc:
        raise AudioFormatError(f"{path}: {exc}") from None
    if block_align != fmt.frame_bytes:
        raise AudioFormatError(
            f"{path}: WAV block align is {block_align} bytes but {fmt} frames are "
            f"{fmt.frame_bytes} bytes"
        )
    return fmt


class WavWriter:
    """Writes sample frames to a new WAV file as they arrive.

    The header goes out first with placeholder sizes; :meth:`close` (or leaving
    the ``with`` block, even on an exception) patches them. Parent directories
    are created. Format tags: 1 for ``pcm_s16le``, 3 for ``pcm_f32le``, 6 for
    ``alaw``, 7 for ``mulaw``; the last three with a ``fact`` chunk::

        with WavWriter("out/reply.wav", AudioFormat(24000)) as wav:
            for frame in frames:
                wav.write(frame.data)
    """

    path: Path
    format: AudioFormat

    def __init__(self, path: StrPath, fmt: AudioFormat) -> None:
        self.path = Path(path)
        self.format = fmt
        tag = _TAG_OF.get(fmt.encoding)
        if tag is None:
            raise AudioFormatError(f"{self.path}: cannot write {fmt.encoding} to WAV; {_SUPPORTED}")
        self._frame_bytes = fmt.frame_bytes
        self._data_bytes = 0
        header, self._fact_offset = _build_header(fmt, tag)
        self._header_bytes = len(header)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        try:
            self._file.write(header)
            self._file.flush()
        except BaseException:
            self._file.close()
            self._file = None
            raise

    @property
    def frames_written(self) -> int:
        """Sample frames written so far."""
        return self._data_bytes // self._frame_bytes

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._file is None

    def write(self, data: BytesLike) -> None:
        """Append whole sample frames in this writer's format (raw little-endian bytes)."""
        if self._file is None:
            raise UsageError(f"{self.path}: WavWriter is closed")
        view = memoryview(data)
        nbytes = view.nbytes
        if nbytes % self._frame_bytes:
            raise AudioFormatError(
                f"{self.path}: {nbytes} bytes is not a whole number of "
                f"{self._frame_bytes}-byte sample frames ({self.format})"
            )
        total = self._data_bytes + nbytes
        if self._riff_size(total) > _UNKNOWN_SIZE - 1:
            raise AudioFormatError(
                f"{self.path}: a WAV file holds at most 4 GiB; writing {nbytes} more bytes "
                f"after {self._data_bytes} would exceed that"
            )
        self._file.write(view if view.c_contiguous else view.tobytes())
        self._data_bytes = total

    def flush(self) -> None:
        """Hand buffered samples to the OS, so they survive if this process dies."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Pad, patch the RIFF, ``fact`` and ``data`` sizes, and close. Safe to call twice."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            if self._data_bytes & 1:
                file.write(b"\x00")
            file.seek(4)
            file.write(_U32.pack(self._riff_size(self._data_bytes)))
            if self._fact_offset:
                file.seek(self._fact_offset)
                file.write(_U32.pack(self.frames_written))
            file.seek(self._header_bytes - 4)
            file.write(_U32.pack(self._data_bytes))
        finally:
            file.close()

    def _riff_size(self, data_bytes: int) -> int:
        return self._header_bytes - 8 + data_bytes + (data_bytes & 1)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._file is None else "open"
        return f"<WavWriter {str(self.path)!r} {self.format} {self.frames_written} frames, {state}>"


def _build_header(fmt: AudioFormat, tag: int) -> tuple[bytes, int]:
    """The header up to and including the ``data`` chunk's size, and the ``fact`` size offset.

    Sizes are placeholders (``0xFFFFFFFF``, "unknown, read to end of file") until
    :meth:`WavWriter.close` patches them. The offset is 0 when there is no ``fact``.
    """
    block_align = fmt.frame_bytes
    bits = 8 * block_align // fmt.channels
    fmt_body = struct.pack(
        "<HHIIHH", tag, fmt.channels, fmt.rate, fmt.rate * block_align, block_align, bits
    )
    parts = [b"RIFF", _U32.pack(_UNKNOWN_SIZE), b"WAVE"]
    fact_offset = 0
    if tag == _TAG_PCM:
        parts += [b"fmt ", _U32.pack(16), fmt_body]
    else:
        parts += [b"fmt ", _U32.pack(18), fmt_body, b"\x00\x00"]  # cbSize = 0
        fact_offset = sum(map(len, parts)) + 8
        parts += [b"fact", _U32.pack(4), _U32.pack(0)]
    parts += [b"data", _U32.pack(_UNKNOWN_SIZE)]
    return b"".join(parts), fact_offset


def read_wav(path: StrPath) -> tuple[AudioFormat, bytes]:
    """Read a whole WAV file: its format and all its sample frames."""
    with WavReader(path) as reader:
        return reader.format, reader.read_all()


def write_wav(path: StrPath, fmt: AudioFormat, data: BytesLike) -> None:
    """Write ``data`` (whole sample frames in ``fmt``) as a complete WAV file."""
    with WavWriter(path, fmt) as writer:
        writer.write(data)
