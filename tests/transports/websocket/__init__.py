"""Tests of the WebSocket transport (protocol and server shell)."""
