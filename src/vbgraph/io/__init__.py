"""File input and output: reading and writing audio files for the file source and sink nodes.

:mod:`vbgraph.io.wav` streams WAV files (16-bit PCM, 32-bit float, A-law, μ-law)
a block at a time without converting samples; see its docstring for details.
"""

from __future__ import annotations

from .wav import WavReader, WavWriter, read_wav, write_wav

__all__ = ["WavReader", "WavWriter", "read_wav", "write_wav"]
