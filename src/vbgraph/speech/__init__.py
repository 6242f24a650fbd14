"""Speech-level logic shared by nodes: VAD segmentation, turn taking."""

from .barge_in import BargeInAction, BargeInPolicy, BargeInState, BargeInTiming
from .segmenter import SegmenterState, SpeechSegmenter, VadParams, VadTransition
from .turn_policy import TurnEnd, TurnPolicy, TurnState, TurnTiming

__all__ = [
    "BargeInAction",
    "BargeInPolicy",
    "BargeInState",
    "BargeInTiming",
    "SegmenterState",
    "SpeechSegmenter",
    "TurnEnd",
    "TurnPolicy",
    "TurnState",
    "TurnTiming",
    "VadParams",
    "VadTransition",
]
