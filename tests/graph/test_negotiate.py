"""Tests for format negotiation: passthrough, converter choice and order, fan-in, failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import ConfigError, FormatNegotiationError
from vbgraph.formats import AudioCaps, AudioFormat, Encoding
from vbgraph.graph.builder import Graph
from vbgraph.graph.negotiate import conversion_steps
from vbgraph.graph.plan import Plan
from vbgraph.node import Node, NodeParams, Port, audio_port
from vbgraph.registry import Registry

S16, F32 = Encoding.PCM_S16LE, Encoding.PCM_F32LE
RATES = (8000, 16000, 22050, 24000, 44100, 48000)
EDGE = "src.out -> sink.in"


class Wideband(Node):
    """Two inputs that accept only 48 kHz int16."""

    type_name: ClassVar[str] = "t.wideband"
    inputs: ClassVar[Mapping[str, Port]] = {
        "a": audio_port(rates=(48000,), encodings=(S16,)),
        "b": audio_port(rates=(48000,), encodings=(S16,)),
    }


class Picky(Node):
    """Its output format cannot be decided: output_formats raises a ConfigError."""

    type_name: ClassVar[str] = "t.picky"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port()}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        raise ConfigError("cannot decide", field="mode")


@pytest.fixture(scope="module")
def reg(module_registry: Registry) -> Registry:
    module_registry.add(Wideband)
    module_registry.add(Picky)
    return module_registry


def src_params(fmt: AudioFormat) -> dict[str, object]:
    return {"rate": fmt.rate, "channels": fmt.channels, "encoding": fmt.encoding.value}


def caps_params(caps: AudioCaps) -> dict[str, object]:
    out: dict[str, object] = {}
    if caps.rates is not None:
        out["rates"] = sorted(caps.rates)
    if caps.channels is not None:
        out["channels"] = sorted(caps.channels)
    if caps.encodings is not None:
        out["encodings"] = sorted(e.value for e in caps.encodings)
    return out


def plan_one_edge(reg: Registry, fmt: AudioFormat, caps: AudioCaps) -> Plan:
    g = Graph("n")
    g.add("t.source", id="src", **src_params(fmt))
    g.add("t.sink", id="sink", **caps_params(caps))
    g.connect("src", "sink")
    return g.compile(registry=reg)


def path_to(plan: Plan, node_id: str) -> list[tuple[str, AudioFormat | None]]:
    """From src along the only chain of edges to ``node_id``: (node, format on the edge in)."""
    hops: list[tuple[str, AudioFormat | None]] = []
    cur = "src"
    while cur != node_id:
        (edge,) = plan.edges_from(cur)
        hops.append((edge.dst, edge.fmt))
        cur = edge.dst
    return hops


formats = st.builds(
    AudioFormat, st.sampled_from(RATES), st.integers(1, 2), st.sampled_from((S16, F32))
)


def subset_or_any(values: tuple[object, ...]) -> st.SearchStrategy[frozenset[object] | None]:
    return st.none() | st.frozensets(st.sampled_from(values), min_size=1)


caps_strategy = st.builds(
    AudioCaps,
    subset_or_any(RATES),
    subset_or_any((1, 2)),
    subset_or_any((S16, F32)),
)


class TestConversionSteps:
    def test_a_format_the_caps_accept_needs_no_converter(self) -> None:
        """Passthrough: nothing to insert."""
        assert conversion_steps(AudioFormat(16000), AudioCaps(rates={16000})) == []

    def test_down_mix_comes_before_resampling_and_format_last(self) -> None:
        """Stereo 48 kHz int16 → mono 16 kHz float: channels, resample, format."""
        steps = conversion_steps(AudioFormat(48000, 2, S16), AudioCaps({16000}, {1}, {F32}))
        assert [(s.type_name, s.params) for s in steps] == [
            ("convert.channels", {"channels": 1}),
            ("convert.resample", {"rate": 16000}),
            ("convert.sample_format", {"encoding": "pcm_f32le"}),
        ]
        assert [s.out for s in steps] == [
            AudioFormat(48000, 1, S16),
            AudioFormat(16000, 1, S16),
            AudioFormat(16000, 1, F32),
        ]

    def test_up_mix_comes_after_resampling(self) -> None:
        """Mono 8 kHz → stereo 48 kHz: resample (less data), then up-mix."""
        steps = conversion_steps(AudioFormat(8000, 1), AudioCaps({48000}, {2}))
        assert [s.label for s in steps] == ["resample", "channels"]

    def test_g711_is_decoded_first(self) -> None:
        """mulaw 8 kHz in, float 16 kHz wanted: decode, resample, then float."""
        steps = conversion_steps(AudioFormat(8000, 1, "mulaw"), AudioCaps({16000}, encodings={F32}))
        assert [(s.type_name, s.label) for s in steps] == [
            ("convert.g711", "decode"),
            ("convert.resample", "resample"),
            ("convert.sample_format", "format"),
        ]
        assert steps[0].params == {"encoding": "pcm_s16le"}

    def test_g711_is_encoded_last(self) -> None:
        """float 16 kHz in, alaw 8 kHz wanted: resample, int16, then encode."""
        steps = conversion_steps(AudioFormat(16000, 1, F32), AudioCaps({8000}, encodings={"alaw"}))
        assert [s.label for s in steps] == ["resample", "format", "encode"]
        assert steps[-1].out == AudioFormat(8000, 1, "alaw")

    def test_a_packet_codec_has_no_converter(self) -> None:
        """opus in, PCM wanted: ValueError naming opus (codecs stay at transports)."""
        with pytest.raises(ValueError, match="no converter handles opus"):
            conversion_steps(AudioFormat(48000, 1, "opus"), AudioCaps(encodings={S16}))


class TestNegotiationProperty:
    @settings(max_examples=300, deadline=None)
    @given(fmt=formats, caps=caps_strategy)
    def test_edges_into_a_consumer_carry_a_format_it_accepts_with_minimal_converters(
        self, reg: Registry, fmt: AudioFormat, caps: AudioCaps
    ) -> None:
        """Any producer format meets any PCM caps through the fewest converters, in order."""
        plan = plan_one_edge(reg, fmt, caps)
        (into_sink,) = plan.edges_into("sink")
        assert into_sink.fmt is not None and caps.accepts(into_sink.fmt)
        assert into_sink.fmt == caps.fixate(fmt)
        inserted = [n for n in plan.nodes.values() if n.inserted_for is not None]
        if caps.accepts(fmt):
            # passthrough: no converter, the producer's format on the one edge
            assert inserted == []
            assert list(plan.nodes) == ["src", "sink"]
            assert into_sink.fmt == fmt and into_sink.src == "src"
            return
        assert len(plan.nodes) == 2 + len(inserted)
        assert all(n.inserted_for == EDGE for n in inserted)
        hops = path_to(plan, "sink")
        assert [node for node, _ in hops[:-1]] == [n.id for n in inserted]
        # each converter changes exactly the field its type is about
        before = fmt
        kinds: list[str] = []
        for node, (_, fmt_in) in zip(inserted, hops[1:], strict=True):
            after = next(f for n, f in hops if n == node.id)
            assert after == before
            assert fmt_in is not None
            changed = {
                name
                for name in ("rate", "channels", "encoding")
                if getattr(before, name) != getattr(fmt_in, name)
            }
            expected = {
                "convert.resample": {"rate"},
                "convert.channels": {"channels"},
                "convert.sample_format": {"encoding"},
            }[node.type_name]
            assert changed == expected
            if node.type_name == "convert.channels":
                kinds.append("down" if fmt_in.channels < before.channels else "up")
            else:
                kinds.append(node.type_name)
            before = fmt_in
        # documented order: channels-down, resample, channels-up, sample format
        order = ["down", "convert.resample", "up", "convert.sample_format"]
        assert kinds == sorted(kinds, key=order.index)
        assert len(set(kinds)) == len(kinds)
        # only what differs is converted
        differs = sum(
            getattr(fmt, name) != getattr(into_sink.fmt, name)
            for name in ("rate", "channels", "encoding")
        )
        assert len(inserted) == differs

    def test_converters_are_placed_right_after_their_producer(self, reg: Registry) -> None:
        """Plan order is topological with converters next to the edge they serve."""
        plan = plan_one_edge(reg, AudioFormat(44100, 2, F32), AudioCaps({16000}, {1}, {S16}))
        assert list(plan.nodes) == [
            "src",
            "src~sink.0.channels",
            "src~sink.1.resample",
            "src~sink.2.format",
            "sink",
        ]

    def test_one_converter_is_named_after_its_step(self, reg: Registry) -> None:
        """A single converter's id is src~dst.<step>."""
        plan = plan_one_edge(reg, AudioFormat(8000), AudioCaps(rates={16000}))
        assert list(plan.nodes) == ["src", "src~sink.resample", "sink"]
        assert plan.nodes["src~sink.resample"].params.model_dump()["rate"] == 16000


class TestFanIn:
    def test_a_second_edge_into_a_port_is_converted_to_the_first_edges_format(
        self, reg: Registry
    ) -> None:
        """Two producers into one any-format port: the second is resampled to the first."""
        g = Graph()
        g.add("t.source", id="a", rate=16000)
        g.add("t.source", id="b", rate=48000, channels=2)
        g.add("t.sink", id="sink")
        g.connect("a", "sink")
        g.connect("b", "sink")
        plan = g.compile(registry=reg)
        fmts = {e.src: e.fmt for e in plan.edges_into("sink")}
        assert fmts["a"] == AudioFormat(16000)
        assert set(fmts.values()) == {AudioFormat(16000)}
        assert [n.type_name for n in plan.nodes.values() if n.inserted_for] == [
            "convert.channels",
            "convert.resample",
        ]
        assert {n.inserted_for for n in plan.nodes.values() if n.inserted_for} == {
            "b.out -> sink.in"
        }

    def test_the_first_edge_sets_the_format_after_its_own_conversion(self, reg: Registry) -> None:
        """If the first edge is converted into the caps, the second follows that result."""
        g = Graph()
        g.add("t.source", id="a", rate=8000, encoding="pcm_f32le")
        g.add("t.source", id="b", rate=22050)
        g.add("t.sink", id="sink", rates=[16000, 24000])
        g.connect("a", "sink")
        g.connect("b", "sink")
        plan = g.compile(registry=reg)
        assert {e.fmt for e in plan.edges_into("sink")} == {AudioFormat(16000, 1, F32)}

    def test_two_converted_edges_between_the_same_nodes_get_distinct_converters(
        self, reg: Registry
    ) -> None:
        """Converter ids stay unique when one producer feeds two ports of one consumer."""
        g = Graph()
        g.add("t.source", id="src", rate=16000)
        g.add("t.wideband", id="wb")
        g.connect("src", "wb.a")
        g.connect("src", "wb.b")
        plan = g.compile(registry=reg)
        assert list(plan.nodes) == ["src", "src~wb.resample", "src~wb.resample-2", "wb"]
        assert len({e.name for e in plan.edges}) == len(plan.edges) == 4


class TestFailures:
    def test_a_missing_converter_type_names_the_edge(
        self, test_nodes: tuple[type[Node], ...]
    ) -> None:
        """Without convert.resample registered, negotiation says what it needed and where."""
        bare = Registry(load_entry_points=False)
        for cls in test_nodes:
            bare.add(cls)
        g = Graph()
        g.add("t.source", id="src", rate=8000)
        g.add("t.sink", id="sink", rates=[16000])
        g.connect("src", "sink")
        with pytest.raises(FormatNegotiationError) as info:
            g.compile(registry=bare)
        assert info.value.message == (
            "edge src.out -> sink.in: pcm_s16le/8000Hz/1ch → pcm_s16le/16000Hz/1ch needs the "
            "converter 'convert.resample', which is not registered"
        )
        assert (info.value.node_id, info.value.field) == ("sink", "to")

    def test_an_output_format_error_is_placed_at_its_node(self, reg: Registry) -> None:
        """A ConfigError from output_formats gets the node id it lacked."""
        g = Graph()
        g.add("t.source", id="src")
        g.add("t.picky", id="p")
        g.connect("src", "p")
        with pytest.raises(ConfigError) as info:
            g.compile(registry=reg)
        assert (info.value.node_id, info.value.field) == ("p", "mode")


class TestChunkNegotiation:
    """A port that needs exact N-ms frames gets a rechunker unless the producer promises them."""

    def _plan(self, src_params: dict[str, object], want_ms: float) -> list[str]:

        from vbgraph.graph.builder import Graph
        from vbgraph.node import Node, audio_port
        from vbgraph.registry import Registry, default_registry

        class Needs(Node):
            type_name = "t.needs_chunks"
            inputs: ClassVar[Mapping[str, Port]] = {
                "in": audio_port(rates=(16000,), encodings=("pcm_s16le",), chunk_ms=want_ms)
            }

        reg = Registry(load_entry_points=False, parent=default_registry())
        reg.add(Needs)
        g = Graph("c")
        g.chain(g.add("tone", **src_params), g.add("t.needs_chunks", id="sink"))
        return [n.type_name for n in g.compile(reg).nodes.values() if n.inserted_for]

    def test_a_producer_with_the_right_chunks_gets_no_rechunker(self) -> None:
        """tone at 20 ms into a 20 ms port: nothing inserted."""
        assert self._plan({"rate": 16000, "chunk_ms": 20}, 20) == []

    def test_resampled_audio_is_rechunked_even_from_exact_chunks(self) -> None:
        """tone at 48 kHz, 20 ms: a resampled chunk varies by a sample, so rechunk."""
        assert self._plan({"rate": 48000, "chunk_ms": 20}, 20)[-1] == "convert.rechunk"

    def test_other_chunks_get_a_rechunker_after_the_other_converters(self) -> None:
        """tone at 48 kHz, 37 ms into a 16 kHz 20 ms port: resample, then rechunk."""
        assert self._plan({"rate": 48000, "chunk_ms": 37}, 20) == [
            "convert.resample",
            "convert.rechunk",
        ]
