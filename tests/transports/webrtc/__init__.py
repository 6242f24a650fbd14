"""Tests of the WebRTC transport (vbgraph.transports.webrtc)."""
