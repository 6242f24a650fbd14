"""Speech-level logic shared by nodes: VAD segmentation, turn taking, text for TTS."""

from .barge_in import BargeInAction, BargeInPolicy, BargeInState, BargeInTiming
from .segmenter import SegmenterState, SpeechSegmenter, VadParams, VadTransition
from .text_aggregator import TextAggregator
from .turn_policy import TurnEnd, TurnPolicy, TurnState, TurnTiming

__all__ = [
    "BargeInAction",
    "BargeInPolicy",
    "BargeInState",
    "BargeInTiming",
    "SegmenterState",
    "SpeechSegmenter",
    "TextAggregator",
    "TurnEnd",
    "TurnPolicy",
    "TurnState",
    "TurnTiming",
    "VadParams",
    "VadTransition",
]
