"""Test tools for graphs and nodes: virtual time, frame helpers, conformance checks."""

from ..clock import VirtualClock
from .caller import CallRecording, simulate_call
from .conformance import check_node
from .helpers import collect_audio, run_virtual

__all__ = [
    "CallRecording",
    "VirtualClock",
    "check_node",
    "collect_audio",
    "run_virtual",
    "simulate_call",
]
