"""Audio DSP kernels: compiled C with a numpy fallback.

Import the functions from here or from their module (:mod:`vbgraph.dsp.pcm`,
:mod:`vbgraph.dsp.g711`, :mod:`vbgraph.dsp.resample`, :mod:`vbgraph.dsp.ring`).
Each kernel lives in ``csrc/`` as plain C, is wrapped by a private Cython module
(``_X_c``) and has a private numpy reference (``_X_ref``) that defines the same
contract and stands in when the compiled module is missing.
"""

from .g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from .pcm import (
    db_to_gain,
    f32_to_s16,
    gain_f32,
    gain_s16,
    mix_f32,
    mix_s16,
    mono_to_stereo_f32,
    mono_to_stereo_s16,
    peak_f32,
    peak_s16,
    rms_f32,
    rms_s16,
    s16_to_f32,
    stereo_to_mono_f32,
    stereo_to_mono_s16,
)
from .resample import SUPPORTED_RATES, Resampler, is_supported
from .ring import Rechunker, RingBuffer

__all__ = [
    "SUPPORTED_RATES",
    "Rechunker",
    "Resampler",
    "RingBuffer",
    "alaw_decode",
    "alaw_encode",
    "db_to_gain",
    "f32_to_s16",
    "gain_f32",
    "gain_s16",
    "is_supported",
    "mix_f32",
    "mix_s16",
    "mono_to_stereo_f32",
    "mono_to_stereo_s16",
    "peak_f32",
    "peak_s16",
    "rms_f32",
    "rms_s16",
    "s16_to_f32",
    "stereo_to_mono_f32",
    "stereo_to_mono_s16",
    "ulaw_decode",
    "ulaw_encode",
]
