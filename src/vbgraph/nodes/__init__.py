"""Built-in node types. Importing this package registers them.

Each module holds one node type (a small final class); ``_``-prefixed modules
are helpers the nodes hold, not public API.
"""

from ..providers.cartesia.node import TtsCartesia
from ..providers.deepgram.node import SttDeepgram
from ..providers.elevenlabs.node import TtsElevenLabs
from ..providers.openai.node import OpenAILLM
from ..providers.openai.stt_node import OpenAISTT
from ..providers.openai.tts_node import OpenAITTS
from ..providers.openai_realtime.node import OpenAIRealtime
from .agent_rules import AgentRules
from .audio_playout import AudioPlayout
from .conversation_sink import ConversationSink
from .convert_channels import ConvertChannels
from .convert_g711 import ConvertG711
from .convert_rechunk import ConvertRechunk
from .convert_resample import ConvertResample
from .convert_sample_format import ConvertSampleFormat
from .fallback import Fallback
from .file_sink import FileSink
from .file_source import FileSource
from .gain import Gain
from .llm_fake import LlmFake
from .log import Log
from .log_turns import LogTurns
from .mixer import Mixer
from .passthrough import Passthrough
from .recorder import Recorder
from .silence import Silence
from .stt_fake import SttFake
from .stt_whisper import SttWhisper
from .tee import Tee
from .tone import Tone
from .transport_in import TransportIn
from .transport_out import TransportOut
from .tts_fake import TtsFake
from .tts_piper import TtsPiper
from .turn import Turn
from .vad_native import VadNative
from .vad_silero import VadSilero

__all__ = [
    "AgentRules",
    "AudioPlayout",
    "ConversationSink",
    "ConvertChannels",
    "ConvertG711",
    "ConvertRechunk",
    "ConvertResample",
    "ConvertSampleFormat",
    "Fallback",
    "FileSink",
    "FileSource",
    "Gain",
    "LlmFake",
    "Log",
    "LogTurns",
    "Mixer",
    "OpenAILLM",
    "OpenAIRealtime",
    "OpenAISTT",
    "OpenAITTS",
    "Passthrough",
    "Recorder",
    "Silence",
    "SttDeepgram",
    "SttFake",
    "SttWhisper",
    "Tee",
    "Tone",
    "TransportIn",
    "TransportOut",
    "TtsCartesia",
    "TtsElevenLabs",
    "TtsFake",
    "TtsPiper",
    "Turn",
    "VadNative",
    "VadSilero",
]
