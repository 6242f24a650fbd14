"""Tests of the OpenAI-compatible chat-completions provider."""
