"""Speech-level logic shared by nodes: VAD segmentation, turn taking."""

from .segmenter import SegmenterState, SpeechSegmenter, VadParams, VadTransition

__all__ = ["SegmenterState", "SpeechSegmenter", "VadParams", "VadTransition"]
