"""Numpy reference for the streaming resampler in csrc/resample.c.

The definition the compiled module is tested against, and the fallback
:mod:`vbgraph.dsp.resample` uses when the compiled module is missing. It runs
the same algorithm on the same coefficients in the same float32 arithmetic, so
its output equals the C output bit for bit; it only differs in bookkeeping
(numpy arrays that grow and shrink instead of a fixed work buffer).

:func:`design` mirrors ``vb_design`` in csrc/resample.c expression by
expression: the I0 power series with a fixed number of terms, ``math.sin``
(the platform libm, as in C) and IEEE double arithmetic in the same order,
then one rounding to float32. Change the two together.

Private, with the caller's contract of ``_resample_c``: arguments already
checked by :mod:`vbgraph.dsp.resample`, buffers holding whole frames of
little-endian samples.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..typing import BytesLike

__all__ = ["ATTENUATION_DB", "Design", "Resampler", "design"]

S16 = 0
F32 = 1
KERNEL_SCALAR = 1

ATTENUATION_DB = (55.0, 75.0, 93.0)
"""Stopband attenuation of the presets low, medium and high (``VB_ATTENUATION``)."""

_TAP_MULTIPLE = 8
_I0_TERMS = 64
_OUT_BLOCK = 4096  # outputs computed per numpy pass, to bound temporary arrays


@dataclass(frozen=True, slots=True)
class Design:
    """The filter of one rate pair and preset, as ``vb_resampler_new`` builds it."""

    phases: int  # L: out / in = L / M after dividing by the gcd
    step: int  # M
    taps: int  # per phase, a multiple of 8
    lookahead: int  # R = ceil(half_width): the delay in input frames
    half_width: float  # H, the Kaiser window's half-width in input frames
    beta: float  # Kaiser beta
    attenuation_db: float  # the design's stopband attenuation A
    cutoff: float  # c = min(1, L / M): the lower Nyquist frequency / the input's
    bank: NDArray[np.float32]  # (phases, taps)


def _bessel_i0(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """I0 by its power series, the same fixed number of terms as vb_bessel_i0."""
    half = x / 2.0
    q = half * half
    term = np.ones_like(x)
    total = np.ones_like(x)
    for k in range(1, _I0_TERMS + 1):
        term = term * q / float(k * k)
        total = total + term
    return total


@functools.lru_cache(maxsize=64)
def design(in_rate: int, out_rate: int, quality: int) -> Design:
    """The coefficient bank for ``in_rate -> out_rate`` at preset ``quality`` (0, 1, 2).

    Cached (streams of one format share it), so the bank is read-only.
    """
    g = math.gcd(in_rate, out_rate)
    phases, step = out_rate // g, in_rate // g
    c = phases / step if phases < step else 1.0
    attenuation = ATTENUATION_DB[quality]
    beta = 0.1102 * (attenuation - 8.7)
    if phases == step:
        bank = np.zeros((phases, _TAP_MULTIPLE), dtype=np.float32)
        bank[0, _TAP_MULTIPLE - 1] = 1.0
        bank.flags.writeable = False
        return Design(phases, step, _TAP_MULTIPLE, 0, 0.0, beta, attenuation, c, bank)
    half_width = (attenuation - 7.95) / (2.0 * 2.285 * 2.0 * math.pi * 0.1 * c)
    lookahead = math.ceil(half_width)
    taps = -(-2 * lookahead // _TAP_MULTIPLE) * _TAP_MULTIPLE
    p = np.arange(phases, dtype=np.float64)[:, None]
    i = np.arange(taps, dtype=np.int64)[None, :]
    tau = p / float(phases) + (taps - 1 - i - lookahead).astype(np.float64)
    inside = np.abs(tau) < half_width
    r = np.where(inside, tau / half_width, 0.0)
    window = _bessel_i0(beta * np.sqrt(1.0 - r * r)) / _bessel_i0(np.array(beta))
    x = c * tau
    # math.sin is the libm sin that C calls; numpy's own SIMD sin may differ by an ulp.
    pix = math.pi * x
    sin = np.array([math.sin(v) for v in pix.ravel()]).reshape(pix.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(x == 0.0, 1.0, sin / pix)
    weight = np.where(inside, c * sinc * window, 0.0)
    # A sequential sum in bank order, as in C (cumsum does not reorder).
    total = float(np.cumsum(weight.ravel())[-1])
    bank = (weight * (phases / total)).astype(np.float32)
    bank.flags.writeable = False
    return Design(phases, step, taps, lookahead, half_width, beta, attenuation, c, bank)


def _lane_dot(x: NDArray[np.float32], h: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise dot products over the last axis in the C kernels' order.

    Eight lane sums (lane l takes taps l, l+8, ...), each step a float32
    product then a float32 sum, then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
    """
    taps = x.shape[-1]
    lanes = x[..., 0:8] * h[..., 0:8]
    for i in range(8, taps, 8):
        lanes = lanes + x[..., i : i + 8] * h[..., i : i + 8]
    a = [lanes[..., k] for k in range(8)]
    result: NDArray[np.float32] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
    return result


class Resampler:
    """The numpy twin of the compiled ``_resample_c.Resampler`` (same methods)."""

    def __init__(
        self, in_rate: int, out_rate: int, channels: int, sample_format: int, quality: int
    ) -> None:
        self._design = d = design(in_rate, out_rate, quality)
        self._in_rate = in_rate
        self._channels = channels
        self._float = sample_format == F32
        self._dtype = np.dtype("<f4") if self._float else np.dtype("<i2")
        self._phases, self._step, self._taps, self._lookahead = (
            d.phases,
            d.step,
            d.taps,
            d.lookahead,
        )
        self.reset()

    # -- queries ----------------------------------------------------------

    @property
    def latency_frames(self) -> int:
        return self._lookahead

    @property
    def latency_ns(self) -> int:
        return (self._lookahead * 1_000_000_000 + self._in_rate // 2) // self._in_rate

    @property
    def taps(self) -> int:
        return self._taps

    @property
    def ratio(self) -> tuple[int, int]:
        return (self._phases, self._step)

    @property
    def kernel(self) -> str:
        return "numpy"

    def coefficients(self) -> bytes:
        return self._design.bank.tobytes()

    def out_frames(self, in_frames: int) -> int:
        n = self._n_in + in_frames
        if n <= self._lookahead:
            return 0
        ready = -(-(n - self._lookahead) * self._phases // self._step)
        return ready - self._n_out

    def flush_frames(self) -> int:
        return self._total(self._n_in) - self._n_out

    def _total(self, n: int) -> int:
        """F(n): n L / M rounded, halves up."""
        return (2 * n * self._phases + self._step) // (2 * self._step)

    # -- streaming --------------------------------------------------------

    def reset(self) -> None:
        # (channels, frames) float32; the zeros are the silence before the stream.
        self._work = np.zeros((self._channels, self._taps - self._lookahead - 1), np.float32)
        self._s = 0
        self._p = 0
        self._n_in = 0
        self._n_out = 0

    def process(self, data: BytesLike) -> bytes:
        frames = np.frombuffer(data, dtype=self._dtype).reshape(-1, self._channels)
        self._work = np.concatenate([self._work, frames.T.astype(np.float32)], axis=1)
        self._n_in += frames.shape[0]
        return self._produce(self.out_frames(0))

    def flush(self) -> bytes:
        count = self.flush_frames()
        if count:
            last = self._p + (count - 1) * self._step
            end = self._s + last // self._phases + self._taps
            pad = max(0, end - self._work.shape[1])
            silence = np.zeros((self._channels, pad), np.float32)
            self._work = np.concatenate([self._work, silence], axis=1)
        out = self._produce(count)
        self.reset()
        return out

    def _produce(self, count: int) -> bytes:
        """Compute the next ``count`` outputs (their windows must be complete)."""
        parts = [
            self._produce_block(min(_OUT_BLOCK, count - k)) for k in range(0, count, _OUT_BLOCK)
        ]
        self._work = self._work[:, self._s :]
        self._s = 0
        self._n_out += count
        if not parts:
            return b""
        y = np.concatenate(parts, axis=0)  # (frames, channels), interleaved
        if self._float:
            return y.astype("<f4", copy=False).tobytes()
        np.clip(y, np.float32(-32768.0), np.float32(32767.0), out=y)
        return np.rint(y).astype("<i2").tobytes()

    def _produce_block(self, n: int) -> NDArray[np.float32]:
        positions = self._p + np.arange(n, dtype=np.int64) * self._step
        starts = self._s + positions // self._phases
        bank = self._design.bank[positions % self._phases]  # (n, taps)
        windows = self._work[:, starts[:, None] + np.arange(self._taps)]  # (C, n, taps)
        # NaN or inf samples in float input give NaN/inf out, as in C: not an error.
        with np.errstate(invalid="ignore", over="ignore"):
            y = _lane_dot(windows, bank[None, :, :])  # (C, n)
        total = self._p + n * self._step
        self._s += total // self._phases
        self._p = total % self._phases
        return y.T.copy()
