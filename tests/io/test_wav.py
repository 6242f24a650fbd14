"""Tests for vbgraph.io.wav: streaming WAV reading and writing."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbgraph.errors import AudioFormatError, UsageError
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.io import WavReader, WavWriter, read_wav, write_wav

SAMPLE = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "speech_16k.wav"
WAV_ENCODINGS = [Encoding.PCM_S16LE, Encoding.PCM_F32LE, Encoding.ALAW, Encoding.MULAW]
TAGS = {Encoding.PCM_S16LE: 1, Encoding.PCM_F32LE: 3, Encoding.ALAW: 6, Encoding.MULAW: 7}
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

FILE_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def chunk(chunk_id: bytes, body: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk with its pad byte; ``size`` overrides the size field."""
    pad = b"\x00" if len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body) if size is None else size) + body + pad


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    """A RIFF/WAVE file made of ``chunks``."""
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def fmt_body(tag: int, channels: int, rate: int, bits: int) -> bytes:
    """The 16 bytes of a plain ``fmt `` chunk."""
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible_fmt_body(sub_tag: int, channels: int, rate: int, bits: int) -> bytes:
    """The 40 bytes of a WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk."""
    guid = struct.pack("<H", sub_tag) + GUID_TAIL
    return fmt_body(0xFFFE, channels, rate, bits) + struct.pack("<HHI", 22, bits, 0) + guid


def data_header_offset(raw: bytes) -> int:
    """Offset of the ``data`` chunk's id in a well-formed file."""
    return raw.index(b"data", 12)


@st.composite
def wav_cases(draw: st.DrawFn) -> tuple[AudioFormat, bytes, list[int], int]:
    """A format, whole frames of random bytes, write-chunk frame counts and a read size."""
    encoding = draw(st.sampled_from(WAV_ENCODINGS))
    fmt = AudioFormat(
        draw(st.sampled_from([8000, 16000, 24000, 44100, 48000])),
        draw(st.sampled_from([1, 2])),
        encoding,
    )
    frames = draw(st.integers(0, 400))
    data = draw(st.binary(min_size=frames * fmt.frame_bytes, max_size=frames * fmt.frame_bytes))
    cuts = sorted(draw(st.lists(st.integers(0, frames), max_size=6)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, frames], strict=True)]
    read_size = draw(st.integers(1, 500))
    return fmt, data, sizes, read_size


@FILE_SETTINGS
@given(case=wav_cases())
def test_chunked_writes_and_reads_round_trip_byte_for_byte(
    tmp_path: Path, case: tuple[AudioFormat, bytes, list[int], int]
) -> None:
    """Every encoding and channel count comes back identical through chunked I/O."""
    fmt, data, sizes, read_size = case
    path = tmp_path / "round.wav"
    with WavWriter(path, fmt) as writer:
        offset = 0
        for frames in sizes:
            nbytes = frames * fmt.frame_bytes
            writer.write(data[offset : offset + nbytes])
            offset += nbytes
        assert writer.frames_written == len(data) // fmt.frame_bytes
    with WavReader(path) as reader:
        assert reader.format == fmt
        assert reader.frames_total == len(data) // fmt.frame_bytes
        blocks = []
        while block := reader.read(read_size):
            assert len(block) % fmt.frame_bytes == 0
            assert len(block) <= read_size * fmt.frame_bytes
            blocks.append(block)
        assert reader.read(read_size) == b""
    assert b"".join(blocks) == data


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("encoding", WAV_ENCODINGS)
def test_read_wav_returns_what_write_wav_wrote(
    tmp_path: Path, encoding: Encoding, channels: int
) -> None:
    """The convenience functions round-trip every supported encoding, mono and stereo."""
    fmt = AudioFormat(16000, channels, encoding)
    data = bytes(range(256)) * fmt.frame_bytes
    write_wav(tmp_path / "x.wav", fmt, data)
    assert read_wav(tmp_path / "x.wav") == (fmt, data)


@pytest.mark.parametrize("encoding", WAV_ENCODINGS)
def test_written_headers_carry_the_right_tag_sizes_and_fact_chunk(
    tmp_path: Path, encoding: Encoding
) -> None:
    """Tags are 1/3/6/7, sizes are patched on close, and non-PCM files have a fact chunk."""
    fmt = AudioFormat(8000, 2, encoding)
    path = tmp_path / "h.wav"
    write_wav(path, fmt, b"\x01" * (fmt.frame_bytes * 10))
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert struct.unpack_from("<H", raw, 20)[0] == TAGS[encoding]
    data_at = data_header_offset(raw)
    assert struct.unpack_from("<I", raw, data_at + 4)[0] == fmt.frame_bytes * 10
    fact_at = raw.find(b"fact", 12, data_at)
    if encoding is Encoding.PCM_S16LE:
        assert fact_at == -1
        assert struct.unpack_from("<I", raw, 16)[0] == 16
    else:
        assert struct.unpack_from("<I", raw, 16)[0] == 18
        assert struct.unpack_from("<II", raw, fact_at + 4) == (4, 10)


def test_odd_sized_data_is_padded_and_reads_back_exactly(tmp_path: Path) -> None:
    """Three mono A-law bytes get a pad byte on disk but the reader returns only three."""
    path = tmp_path / "odd.wav"
    write_wav(path, AudioFormat(8000, 1, Encoding.ALAW), b"\xd5\x55\x2a")
    raw = path.read_bytes()
    assert len(raw) % 2 == 0
    assert struct.unpack_from("<I", raw, data_header_offset(raw) + 4)[0] == 3
    assert read_wav(path)[1] == b"\xd5\x55\x2a"


def test_sample_file_frame_count_matches_its_size_minus_header() -> None:
    """speech_16k.wav is 16 kHz mono s16 with (file size - 44) / 2 frames."""
    with WavReader(SAMPLE) as reader:
        assert reader.format == AudioFormat(16000, 1, Encoding.PCM_S16LE)
        assert reader.frames_total == (SAMPLE.stat().st_size - 44) // 2
        assert reader.path == SAMPLE


def test_sample_file_agrees_with_stdlib_wave() -> None:
    """Stdlib wave reports the same frame count and the same first 1000 frames."""
    with wave.open(str(SAMPLE), "rb") as ref:
        ref_frames = ref.getnframes()
        ref_head = ref.readframes(1000)
    with WavReader(SAMPLE) as reader:
        assert reader.frames_total == ref_frames
        assert reader.read(1000) == ref_head


def test_sample_file_reads_in_blocks_the_same_as_all_at_once() -> None:
    """Reading 320-frame blocks concatenates to exactly read_all's bytes."""
    with WavReader(SAMPLE) as reader:
        blocks = []
        while block := reader.read(320):
            blocks.append(block)
        reader.seek_frame(0)
        everything = reader.read_all()
    assert b"".join(blocks) == everything
    assert len(everything) == reader.frames_total * 2


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_files_written_by_stdlib_wave_are_read_identically(
    tmp_path: Path, channels: int, rate: int
) -> None:
    """A 16-bit file from stdlib wave reads back as the same format and bytes."""
    data = (
        np.random.default_rng(rate + channels)
        .integers(-32768, 32767, size=777 * channels, dtype="<i2")
        .tobytes()
    )
    path = tmp_path / "std.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data)
    assert read_wav(path) == (AudioFormat(rate, channels, Encoding.PCM_S16LE), data)


def test_stdlib_wave_reads_our_16_bit_files(tmp_path: Path) -> None:
    """Files we write as s16 are ordinary PCM WAVs that stdlib wave accepts."""
    data = bytes(range(200)) * 4
    write_wav(tmp_path / "ours.wav", AudioFormat(24000, 2), data)
    with wave.open(str(tmp_path / "ours.wav"), "rb") as ref:
        assert (ref.getnchannels(), ref.getsampwidth(), ref.getframerate()) == (2, 2, 24000)
        assert ref.readframes(ref.getnframes()) == data


def test_unknown_chunks_including_an_odd_sized_list_are_skipped(tmp_path: Path) -> None:
    """LIST (odd size, padded), JUNK and fact chunks around fmt and data are skipped."""
    samples = bytes(range(40))
    info = b"INFOISFT" + struct.pack("<I", 5) + b"vbgr\x00"  # 17 bytes: odd
    path = tmp_path / "chunks.wav"
    path.write_bytes(
        riff(
            chunk(b"JUNK", b"\x00" * 28),
            chunk(b"fmt ", fmt_body(1, 2, 16000, 16)),
            chunk(b"LIST", info),
            chunk(b"fact", struct.pack("<I", 10)),
            chunk(b"data", samples),
            chunk(b"LIST", info),
        )
    )
    assert len(info) % 2 == 1
    assert read_wav(path) == (AudioFormat(16000, 2), samples)


def test_a_fmt_chunk_after_the_data_chunk_is_still_found(tmp_path: Path) -> None:
    """Chunk order is free: fmt may follow a data chunk of known size."""
    path = tmp_path / "late.wav"
    path.write_bytes(
        riff(chunk(b"data", b"\x01\x02" * 8), chunk(b"fmt ", fmt_body(1, 1, 8000, 16)))
    )
    assert read_wav(path) == (AudioFormat(8000), b"\x01\x02" * 8)


def test_truncated_data_chunk_is_read_up_to_the_last_whole_frame(tmp_path: Path) -> None:
    """A data chunk claiming 4000 bytes with 1001 present gives 250 stereo s16 frames."""
    samples = bytes(i % 251 for i in range(1001))
    path = tmp_path / "cut.wav"
    path.write_bytes(
        riff(chunk(b"fmt ", fmt_body(1, 2, 16000, 16)))
        + b"data"
        + struct.pack("<I", 4000)
        + samples
    )
    with WavReader(path) as reader:
        assert reader.frames_total == 250
        assert reader.read(10_000) == samples[:1000]
        assert reader.read(1) == b""


@pytest.mark.parametrize("size_field", [0, 0xFFFFFFFF])
def test_streamed_data_size_means_read_to_end_of_file(tmp_path: Path, size_field: int) -> None:
    """A data size of 0 or 0xFFFFFFFF (never patched) reads every byte to the end."""
    samples = bytes(range(100)) * 3
    path = tmp_path / "stream.wav"
    path.write_bytes(
        riff(chunk(b"fmt ", fmt_body(1, 1, 16000, 16)), size=0xFFFFFFFF)
        + b"data"
        + struct.pack("<I", size_field)
        + samples
    )
    assert read_wav(path) == (AudioFormat(16000), samples)


@pytest.mark.parametrize("encoding", WAV_ENCODINGS)
def test_a_writer_that_never_closed_leaves_a_readable_file(
    tmp_path: Path, encoding: Encoding
) -> None:
    """The placeholder header written up front lets a crashed run's file be read."""
    fmt = AudioFormat(16000, 1, encoding)
    data = b"\x10" * (fmt.frame_bytes * 50)
    path = tmp_path / "crash.wav"
    writer = WavWriter(path, fmt)
    writer.write(data)
    writer.flush()  # what the OS holds if the process dies now
    snapshot = tmp_path / "snapshot.wav"
    snapshot.write_bytes(path.read_bytes())
    writer.close()
    assert read_wav(snapshot) == (fmt, data)


@pytest.mark.parametrize("sub_tag, bits, encoding", [(1, 16, "pcm_s16le"), (3, 32, "pcm_f32le")])
def test_extensible_files_use_the_sub_format_tag(
    tmp_path: Path, sub_tag: int, bits: int, encoding: str
) -> None:
    """WAVE_FORMAT_EXTENSIBLE is read through the tag in its sub-format GUID."""
    samples = b"\x00\x01" * 32
    path = tmp_path / "ext.wav"
    path.write_bytes(
        riff(chunk(b"fmt ", extensible_fmt_body(sub_tag, 2, 48000, bits)), chunk(b"data", samples))
    )
    assert read_wav(path) == (AudioFormat(48000, 2, Encoding(encoding)), samples)


def test_extensible_with_a_non_audio_guid_raises_naming_the_path(tmp_path: Path) -> None:
    """An EXTENSIBLE sub-format GUID outside the standard family is refused."""
    body = extensible_fmt_body(1, 1, 8000, 16)[:-4] + b"\xde\xad\xbe\xef"
    path = tmp_path / "guid.wav"
    path.write_bytes(riff(chunk(b"fmt ", body), chunk(b"data", b"\x00\x00")))
    with pytest.raises(AudioFormatError, match="GUID") as info:
        WavReader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "only 0 bytes"),
        (b"OggS" + b"\x00" * 40, "not b'RIFF'"),
        (b"RIFF\x10\x00\x00\x00AVI " + b"\x00" * 8, "not b'WAVE'"),
        (b"RF64\xff\xff\xff\xffWAVE" + b"\x00" * 8, "RF64"),
    ],
)
def test_files_that_are_not_riff_wave_raise_naming_the_path(
    tmp_path: Path, raw: bytes, reason: str
) -> None:
    """Empty, non-RIFF, non-WAVE and RF64 files each raise AudioFormatError with the path."""
    path = tmp_path / "notwav.wav"
    path.write_bytes(raw)
    with pytest.raises(AudioFormatError, match=reason) as info:
        WavReader(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bits", [8, 24, 32])
def test_integer_pcm_other_than_16_bit_raises_naming_path_and_depth(
    tmp_path: Path, bits: int
) -> None:
    """8-, 24- and 32-bit integer PCM are refused with the depth and the supported list."""
    path = tmp_path / f"pcm{bits}.wav"
    path.write_bytes(
        riff(chunk(b"fmt ", fmt_body(1, 1, 16000, bits)), chunk(b"data", b"\x00" * bits))
    )
    with pytest.raises(AudioFormatError) as info:
        WavReader(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{bits}-bit integer PCM" in message
    assert "supported: 16-bit integer PCM" in message


def test_a_24_bit_file_from_stdlib_wave_raises(tmp_path: Path) -> None:
    """A real 24-bit file written by stdlib wave is refused, not misread."""
    path = tmp_path / "s24.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(16000)
        out.writeframes(b"\x00" * 30)
    with pytest.raises(AudioFormatError, match="24-bit") as info:
        WavReader(path)
    assert str(path) in str(info.value)


def test_compressed_format_tags_raise_naming_the_codec(tmp_path: Path) -> None:
    """An MP3-in-WAV (tag 0x55) is refused with the codec's name."""
    path = tmp_path / "mp3.wav"
    path.write_bytes(riff(chunk(b"fmt ", fmt_body(0x55, 1, 16000, 0)), chunk(b"data", b"\x00")))
    with pytest.raises(AudioFormatError, match="MP3") as info:
        WavReader(path)
    assert str(path) in str(info.value)


def test_a_missing_data_chunk_raises_naming_the_path(tmp_path: Path) -> None:
    """A WAV with a fmt chunk but no data chunk is refused."""
    path = tmp_path / "nodata.wav"
    path.write_bytes(riff(chunk(b"fmt ", fmt_body(1, 1, 16000, 16)), chunk(b"LIST", b"INFO")))
    with pytest.raises(AudioFormatError, match="no 'data' chunk") as info:
        WavReader(path)
    assert str(path) in str(info.value)


def test_a_missing_fmt_chunk_raises_naming_the_path(tmp_path: Path) -> None:
    """A WAV with samples but no format description is refused."""
    path = tmp_path / "nofmt.wav"
    path.write_bytes(riff(chunk(b"data", b"\x00" * 8)))
    with pytest.raises(AudioFormatError, match="no 'fmt ' chunk") as info:
        WavReader(path)
    assert str(path) in str(info.value)


def test_a_block_align_that_disagrees_with_the_format_raises(tmp_path: Path) -> None:
    """A fmt chunk whose block align does not match channels times sample size is refused."""
    body = bytearray(fmt_body(1, 2, 16000, 16))
    body[12:14] = struct.pack("<H", 6)
    path = tmp_path / "align.wav"
    path.write_bytes(riff(chunk(b"fmt ", bytes(body)), chunk(b"data", b"\x00" * 12)))
    with pytest.raises(AudioFormatError, match="block align") as info:
        WavReader(path)
    assert str(path) in str(info.value)


def test_seek_frame_moves_the_read_position(tmp_path: Path) -> None:
    """After seek_frame(n), read returns frames from n and read_all the rest."""
    data = bytes(range(200))
    write_wav(tmp_path / "s.wav", AudioFormat(8000, 2, Encoding.MULAW), data)
    with WavReader(tmp_path / "s.wav") as reader:
        reader.seek_frame(40)
        assert reader.position == 40
        assert reader.read(5) == data[80:90]
        assert reader.read_all() == data[90:]
        reader.seek_frame(reader.frames_total)
        assert reader.read(1) == b""
        with pytest.raises(UsageError):
            reader.seek_frame(reader.frames_total + 1)
        with pytest.raises(UsageError):
            reader.seek_frame(-1)


def test_read_of_zero_frames_is_empty_and_negative_is_misuse(tmp_path: Path) -> None:
    """read(0) returns b"" without moving; read(-1) raises UsageError."""
    write_wav(tmp_path / "z.wav", AudioFormat(8000), b"\x00\x01" * 4)
    with WavReader(tmp_path / "z.wav") as reader:
        assert reader.read(0) == b""
        assert reader.position == 0
        with pytest.raises(UsageError):
            reader.read(-1)


def test_a_closed_reader_refuses_to_read(tmp_path: Path) -> None:
    """close() is idempotent and later reads raise UsageError."""
    write_wav(tmp_path / "c.wav", AudioFormat(8000), b"\x00\x01" * 4)
    reader = WavReader(tmp_path / "c.wav")
    reader.close()
    reader.close()
    assert reader.closed
    with pytest.raises(UsageError):
        reader.read(1)


def test_write_rejects_partial_frames_naming_the_path(tmp_path: Path) -> None:
    """Three bytes of stereo s16 is not whole frames and raises AudioFormatError."""
    path = tmp_path / "partial.wav"
    with WavWriter(path, AudioFormat(16000, 2)) as writer:
        with pytest.raises(AudioFormatError) as info:
            writer.write(b"\x00\x00\x00")
        assert str(path) in str(info.value)
        writer.write(b"\x00" * 8)
    assert read_wav(path)[1] == b"\x00" * 8


def test_write_accepts_bytearray_and_typed_memoryviews(tmp_path: Path) -> None:
    """bytearray and a memoryview of an int16 numpy array are written as raw bytes."""
    samples = np.arange(-50, 50, dtype="<i2")
    path = tmp_path / "views.wav"
    with WavWriter(path, AudioFormat(16000)) as writer:
        writer.write(bytearray(samples.tobytes()))
        writer.write(samples.data)
        writer.write(memoryview(samples.tobytes())[10:20])
        assert writer.frames_written == 205
    assert read_wav(path)[1] == samples.tobytes() * 2 + samples.tobytes()[10:20]


def test_a_closed_writer_refuses_to_write(tmp_path: Path) -> None:
    """close() is idempotent and later writes raise UsageError."""
    writer = WavWriter(tmp_path / "w.wav", AudioFormat(8000))
    writer.close()
    writer.close()
    assert writer.closed
    with pytest.raises(UsageError):
        writer.write(b"\x00\x00")


def test_the_writer_creates_parent_directories(tmp_path: Path) -> None:
    """Writing to a path under missing directories creates them."""
    path = tmp_path / "a" / "b" / "c.wav"
    write_wav(path, AudioFormat(8000), b"")
    assert read_wav(path) == (AudioFormat(8000), b"")


def test_opus_cannot_be_written_to_wav(tmp_path: Path) -> None:
    """Opus has no fixed sample size, so WavWriter refuses it before creating a file."""
    path = tmp_path / "o.wav"
    with pytest.raises(AudioFormatError) as info:
        WavWriter(path, AudioFormat(48000, 1, Encoding.OPUS))
    assert str(path) in str(info.value)
    assert not path.exists()
