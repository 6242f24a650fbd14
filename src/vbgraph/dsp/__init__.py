"""Audio DSP kernels: compiled C with a numpy fallback.

Import the functions from here or from their module (:mod:`vbgraph.dsp.pcm`).
Each kernel lives in ``csrc/`` as plain C, is wrapped by a private Cython module
(``_X_c``) and has a private numpy reference (``_X_ref``) that defines the same
contract and stands in when the compiled module is missing.
"""

from .pcm import db_to_gain, f32_to_s16, gain_f32, gain_s16, peak_s16, rms_s16, s16_to_f32

__all__ = [
    "db_to_gain",
    "f32_to_s16",
    "gain_f32",
    "gain_s16",
    "peak_s16",
    "rms_s16",
    "s16_to_f32",
]
