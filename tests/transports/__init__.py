"""Tests of vbgraph.transports."""
