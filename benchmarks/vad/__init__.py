"""The labelled VAD benchmark: ``python -m benchmarks.vad [--quick]``.

:mod:`.dataset` builds the labelled, noise-mixed audio; :mod:`.runner` runs
vad.native's kernel, webrtcvad and Silero on it and prints markdown tables.
docs/vad.md has the figures and how to read them.
"""
