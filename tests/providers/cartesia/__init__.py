"""Tests of the Cartesia Sonic streaming TTS provider."""
