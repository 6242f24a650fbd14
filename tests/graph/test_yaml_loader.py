"""Tests for the YAML front end: data, source map, substitution, includes, errors."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbgraph.errors import ConfigError, SourceLocation
from vbgraph.graph.yaml_loader import (
    LoadedDocument,
    SourceMap,
    SourcePath,
    load_graph_document,
    load_graph_text,
)

DATA = Path(__file__).parent / "data"
GOOD = DATA / "good"
BAD = DATA / "bad"


def at(path: Path | str, line: int, column: int) -> SourceLocation:
    return SourceLocation(str(path), line, column)


def text_error(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_graph_text(text, name="g.yaml", env={} if env is None else env)
    return info.value


def file_error(name: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_graph_document(BAD / name, env={} if env is None else env)
    return info.value


# --------------------------------------------------------------------------- data and source map


def test_plain_document_loads_like_safe_load() -> None:
    """A document without keys that need typing loads to what yaml.safe_load gives."""
    text = "version: 1\nname: demo\nnodes:\n  mic: {type: file.source, gain: 0.5}\nedges: []\n"
    assert load_graph_text(text).data == yaml.safe_load(text)


def test_loaded_document_keeps_the_path_as_given_and_is_frozen() -> None:
    """The document records the path it was loaded from and cannot be reassigned."""
    doc = load_graph_document(GOOD / "parts" / "stt.yaml")
    assert doc.path == str(GOOD / "parts" / "stt.yaml")
    assert isinstance(doc, LoadedDocument)
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.path = "other"  # type: ignore[misc]


def test_text_documents_are_named_string_by_default() -> None:
    """load_graph_text reports locations in '<string>' unless given a name."""
    doc = load_graph_text("a: 1\n")
    assert doc.path == "<string>"
    assert doc.source_map.locate(("a",)) == at("<string>", 1, 4)


def test_locate_points_at_values_and_locate_key_at_keys() -> None:
    """Mapping entries are recorded at both their value and their key."""
    text = "nodes:\n  gain:\n    type: gain\n    db: -6\n"
    smap = load_graph_text(text, name="g.yaml").source_map
    assert smap.locate(("nodes", "gain", "db")) == at("g.yaml", 4, 9)
    assert smap.locate_key(("nodes", "gain", "db")) == at("g.yaml", 4, 5)
    assert smap.locate_key(("nodes", "gain")) == at("g.yaml", 2, 3)
    assert smap.locate(("nodes", "gain")) == at("g.yaml", 3, 5)


def test_sequence_items_and_nested_fields_are_located() -> None:
    """List items are addressed by int index, down to fields inside them."""
    text = "edges:\n  - a -> b\n  - from: a\n    to: c\n    queue: {capacity: 8}\n"
    smap = load_graph_text(text, name="g.yaml").source_map
    assert smap.locate(("edges", 0)) == at("g.yaml", 2, 5)
    assert smap.locate(("edges", 1)) == at("g.yaml", 3, 5)
    assert smap.locate(("edges", 1, "queue")) == at("g.yaml", 5, 12)
    assert smap.locate(("edges", 1, "queue", "capacity")) == at("g.yaml", 5, 23)
    assert smap.locate_key(("edges", 1, "queue", "capacity")) == at("g.yaml", 5, 13)


def test_locate_falls_back_to_the_nearest_recorded_ancestor() -> None:
    """A path that is not in the document is located at its closest existing parent."""
    smap = load_graph_text("nodes:\n  mic: {type: x}\n", name="g.yaml").source_map
    assert smap.locate(("nodes", "mic", "missing", 3)) == at("g.yaml", 2, 8)
    assert smap.locate_key(("nodes", "mic", "missing")) == at("g.yaml", 2, 8)
    assert smap.locate(("nowhere",)) == at("g.yaml", 1, 1)


def test_locate_key_of_a_list_item_falls_back_to_its_value() -> None:
    """List items have no key, so locate_key gives the item's position."""
    smap = load_graph_text("edges:\n  - a -> b\n", name="g.yaml").source_map
    assert smap.locate_key(("edges", 0)) == at("g.yaml", 2, 5)


def test_an_empty_source_map_locates_nothing() -> None:
    """A fresh SourceMap has no entries and answers None."""
    smap = SourceMap()
    assert smap.locate(("a",)) is None
    assert smap.locate_key(("a",)) is None
    assert len(smap) == 0
    smap.record((), at("x", 1, 1))
    smap.record_key(("a",), at("x", 2, 1))
    assert ("a",) not in smap
    assert () in smap
    assert smap.locate(("a", "b")) == at("x", 1, 1)
    assert smap.locate_key(("a",)) == at("x", 2, 1)
    assert list(smap.key_items()) == [(("a",), at("x", 2, 1))]


def test_mapping_keys_are_always_their_text() -> None:
    """Keys like 1, yes, null and 1.50 stay the strings written, so node ids are strings."""
    text = "nodes:\n  1: {a: 1}\n  yes: {a: yes}\n  null: {a: null}\n  1.50: {a: 1.50}\n"
    nodes = load_graph_text(text).data["nodes"]
    assert list(nodes) == ["1", "yes", "null", "1.50"]
    assert [n["a"] for n in nodes.values()] == [1, True, None, 1.5]


def test_scalar_values_keep_safe_loader_typing() -> None:
    """Values are typed as yaml.SafeLoader types them, explicit safe tags included."""
    text = "a: 16000\nb: '16000'\nc: !!str 5\nd: 0.5\ne: off\nf: ~\ng: !!float 3\nh: 2024-01-02\n"
    data = load_graph_text(text).data
    assert data == yaml.safe_load(text)
    assert data["c"] == "5"
    assert data["g"] == 3.0


def test_aliases_copy_the_anchored_value_and_are_located_at_the_anchor() -> None:
    """An alias gives an independent copy that points back to where the anchor was written."""
    text = "base: &b {rate: 16000}\nnodes:\n  a: *b\n"
    doc = load_graph_text(text, name="g.yaml")
    assert doc.data["nodes"]["a"] == {"rate": 16000}
    assert doc.data["nodes"]["a"] is not doc.data["base"]
    assert doc.source_map.locate(("nodes", "a", "rate")) == at("g.yaml", 1, 17)


def test_merge_keys_merge_with_own_keys_winning() -> None:
    """'<<' merges mappings; earlier merged mappings and the mapping's own keys take precedence."""
    text = (
        "one: &one {a: 1, b: 1}\n"
        "two: &two {b: 2, c: 2}\n"
        "nodes:\n"
        "  x:\n"
        "    <<: [*one, *two]\n"
        "    c: 3\n"
    )
    doc = load_graph_text(text, name="g.yaml")
    assert doc.data["nodes"]["x"] == {"a": 1, "b": 1, "c": 3}
    assert doc.source_map.locate(("nodes", "x", "b")) == at("g.yaml", 1, 21)
    assert doc.source_map.locate(("nodes", "x", "c")) == at("g.yaml", 6, 8)


# --------------------------------------------------------------------------- substitution


def test_variables_are_substituted_anywhere_in_a_string() -> None:
    """Several ${...} references in one string are all replaced."""
    env = {"HOST": "example.org", "PORT": "8443"}
    data = load_graph_text("url: wss://${HOST}:${PORT}/v1 (${USER:-anon})\n", env=env).data
    assert data["url"] == "wss://example.org:8443/v1 (anon)"


def test_defaults_apply_when_a_variable_is_unset_or_empty() -> None:
    """${NAME:-default} falls back when NAME is unset or empty, like the shell."""
    text = "a: ${A:-x}\nb: ${B:-x}\nc: ${C:-x}\nd: '${D}'\n"
    data = load_graph_text(text, env={"B": "", "C": "set", "D": ""}).data
    assert data == {"a": "x", "b": "x", "c": "set", "d": ""}


def test_a_whole_plain_reference_is_retyped_after_substitution() -> None:
    """rate: ${RATE:-16000} gives an int, and booleans, floats and null retype too."""
    text = "rate: ${RATE:-16000}\non: ${ON:-true}\ngain: ${GAIN}\nnone: ${NONE:-}\nlist: ${L}\n"
    data = load_graph_text(text, env={"GAIN": "0.25", "L": "[1, 2]"}).data
    assert data == {"rate": 16000, "on": True, "gain": 0.25, "none": None, "list": "[1, 2]"}


def test_quoted_tagged_and_partial_references_stay_strings() -> None:
    """Only an untagged plain scalar that is exactly one reference is retyped."""
    text = "a: '${R:-1}'\nb: \"${R:-1}\"\nc: !!str ${R:-1}\nd: ${R:-1}0\ne: ${R:-1}${R:-2}\n"
    assert load_graph_text(text, env={}).data == {
        "a": "1",
        "b": "1",
        "c": "1",
        "d": "10",
        "e": "12",
    }


def test_double_dollar_brace_escapes_a_literal_reference() -> None:
    """$${ gives a literal ${, and a $ not followed by { is left alone."""
    data = load_graph_text("a: $${HOME} costs $5 or $$6\n", env={"HOME": "/root"}).data
    assert data["a"] == "${HOME} costs $5 or $$6"


def test_keys_are_not_substituted() -> None:
    """A ${...} in a key stays as written."""
    data = load_graph_text("${X}: 1\n", env={"X": "y"}).data
    assert data == {"${X}": 1}


def test_the_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without env, variables come from os.environ."""
    monkeypatch.setenv("VBGRAPH_TEST_RATE", "8000")
    assert load_graph_text("rate: ${VBGRAPH_TEST_RATE}\n").data == {"rate": 8000}


def test_a_missing_variable_is_an_error_at_the_reference() -> None:
    """An unset variable without default names the variable and the column of its ${."""
    error = file_error("missing_env.yaml")
    assert error.location == at(BAD / "missing_env.yaml", 5, 21)
    assert error.node_id == "llm"
    assert error.field == "api_key"
    assert error.message == (
        "environment variable 'OPENAI_API_KEY' is not set "
        "(use ${OPENAI_API_KEY:-default} for a default)"
    )


def test_a_missing_variable_in_a_quoted_scalar_is_located_inside_the_quotes() -> None:
    """The ${ of a quoted scalar is found past the opening quote."""
    error = text_error("nodes:\n  a:\n    path: 'in/${DIR}/x.wav'\n")
    assert error.location == at("g.yaml", 3, 15)
    assert error.field == "path"


def test_a_missing_variable_in_a_folded_scalar_is_located_at_the_scalar() -> None:
    """When the text cannot be mapped character by character the scalar's start is named."""
    error = text_error("a: >\n  some ${TEXT}\n  more\n")
    assert error.location == at("g.yaml", 1, 4)


def test_an_unterminated_reference_is_an_error() -> None:
    """A ${ with no closing brace is reported at the ${."""
    error = text_error("a: x ${A:-1\n")
    assert error.location == at("g.yaml", 1, 6)
    assert "unterminated" in error.message


@pytest.mark.parametrize("body", ["1A", "A-B", "", "A:-${B}"])
def test_a_malformed_reference_is_an_error(body: str) -> None:
    """A reference that is not ${NAME} or ${NAME:-default} is reported at its ${."""
    error = text_error(f"a: x ${{{body}}}\n")
    assert error.location == at("g.yaml", 1, 6)
    assert "malformed reference" in error.message


# --------------------------------------------------------------------------- includes


def test_included_nodes_and_edges_come_first_in_include_order() -> None:
    """Includes merge depth first, in order, before the including file's own entries."""
    doc = load_graph_document(GOOD / "assistant.yaml", env={})
    assert list(doc.data) == ["version", "name", "nodes", "edges"]
    assert list(doc.data["nodes"]) == ["mic", "speaker", "stt", "agent", "tts", "gain"]
    assert doc.data["edges"][1:5] == [
        "mic -> stt",
        "stt -> agent -> tts",
        "tts -> speaker",
        "mic -> gain",
    ]
    assert doc.data["nodes"]["mic"]["path"] == "samples/hello.wav"
    assert doc.data["nodes"]["tts"]["rate"] == 22050
    assert doc.data["name"] == "assistant"


def test_merged_entries_keep_their_original_file_and_renumbered_paths() -> None:
    """Every merged node and edge is located in the file that defined it."""
    smap = load_graph_document(GOOD / "assistant.yaml", env={}).source_map
    parts = GOOD / "parts"
    assert smap.locate_key(("nodes", "mic")) == at(parts / "io.yaml", 4, 3)
    assert smap.locate(("nodes", "mic", "path")) == at(parts / "io.yaml", 6, 11)
    assert smap.locate_key(("nodes", "stt")) == at(parts / "stt.yaml", 2, 3)
    assert smap.locate(("edges", 0, "queue", "max_ms")) == at(parts / "io.yaml", 9, 57)
    assert smap.locate(("edges", 1)) == at(parts / "stt.yaml", 4, 5)
    assert smap.locate(("edges", 3)) == at(parts / "brain.yaml", 9, 5)
    assert smap.locate(("edges", 5, "queue", "capacity")) == at(GOOD / "assistant.yaml", 11, 49)
    assert smap.locate_key(("nodes", "gain")) == at(GOOD / "assistant.yaml", 8, 3)
    assert smap.locate(("edges",)) == at(GOOD / "assistant.yaml", 10, 3)
    assert smap.locate(("include", 1)) == at(GOOD / "assistant.yaml", 6, 5)


def test_text_documents_include_relative_to_base_dir() -> None:
    """load_graph_text resolves includes against base_dir."""
    doc = load_graph_text("include: parts/stt.yaml\nversion: 1\n", base_dir=GOOD)
    assert doc.data == {
        "version": 1,
        "nodes": {"stt": {"type": "stt.whisper"}},
        "edges": ["mic -> stt"],
    }
    assert doc.source_map.locate(("nodes",)) == at(GOOD / "parts" / "stt.yaml", 2, 3)
    assert doc.source_map.locate_key(("edges",)) == at(GOOD / "parts" / "stt.yaml", 3, 1)


def test_includes_substitute_variables_in_included_files(tmp_path: Path) -> None:
    """Included files see the same environment as the including file."""
    (tmp_path / "inc.yaml").write_text("nodes:\n  a: {rate: '${R}'}\n", encoding="utf-8")
    (tmp_path / "main.yaml").write_text("include: ${INC}\n", encoding="utf-8")
    doc = load_graph_document(tmp_path / "main.yaml", env={"R": "8000", "INC": "inc.yaml"})
    assert doc.data["nodes"] == {"a": {"rate": "8000"}}


def test_a_node_defined_in_two_files_names_both_places() -> None:
    """A node id in an included file and the including file is an error naming both."""
    error = file_error("duplicate_included_node.yaml")
    first = at(BAD / "parts" / "mic.yaml", 2, 3)
    second = at(BAD / "duplicate_included_node.yaml", 5, 3)
    assert error.location == second
    assert error.node_id == "mic"
    assert error.message == f"defined twice: {first} and {second}"


def test_an_include_cycle_names_the_chain() -> None:
    """A file that includes itself through another is reported with the whole chain."""
    error = file_error("cycle_a.yaml")
    a, b = BAD / "cycle_a.yaml", BAD / "parts" / "cycle_b.yaml"
    assert error.location == at(b, 2, 5)
    assert error.message == f"include cycle: {a} -> {b} -> {a}"


def test_a_file_included_twice_is_an_error() -> None:
    """Two includes of the same file (a diamond) are reported at the second one."""
    error = file_error("diamond.yaml")
    assert error.location == at(BAD / "parts" / "right.yaml", 1, 10)
    assert f"first included at {at(BAD / 'parts' / 'left.yaml', 1, 10)}" in error.message


def test_a_missing_included_file_is_reported_at_its_entry() -> None:
    """An include that cannot be read is located at the include entry."""
    error = file_error("include_missing.yaml")
    assert error.location == at(BAD / "include_missing.yaml", 2, 27)
    assert "no_such_file.yaml" in error.message


def test_an_include_entry_must_be_a_path() -> None:
    """A non-string include entry is located at the entry."""
    error = file_error("include_not_path.yaml")
    assert error.location == at(BAD / "include_not_path.yaml", 3, 5)


def test_an_included_file_may_not_carry_other_top_level_keys() -> None:
    """Keys other than version, name, include, nodes, edges are refused at the key."""
    error = file_error("included_extra_key.yaml")
    assert error.location == at(BAD / "parts" / "extra_key.yaml", 3, 1)
    assert "'sessions'" in error.message


def test_an_included_version_must_match_the_root_version() -> None:
    """A differing version in an included file is located at that version."""
    error = file_error("version_conflict.yaml")
    assert error.location == at(BAD / "parts" / "version_2.yaml", 1, 10)
    assert str(at(BAD / "version_conflict.yaml", 1, 10)) in error.message


def test_nodes_must_be_a_mapping_when_files_are_included(tmp_path: Path) -> None:
    """Merging needs 'nodes' to be a mapping and 'edges' a list."""
    (tmp_path / "inc.yaml").write_text("nodes: {}\n", encoding="utf-8")
    main = "include: inc.yaml\nnodes: [a]\n"
    with pytest.raises(ConfigError) as info:
        load_graph_text(main, name="m.yaml", base_dir=tmp_path)
    assert info.value.location == at("m.yaml", 2, 8)
    with pytest.raises(ConfigError) as info:
        load_graph_text("include: inc.yaml\nedges: a -> b\n", name="m.yaml", base_dir=tmp_path)
    assert info.value.location == at("m.yaml", 2, 8)


def test_include_must_be_a_path_or_a_list() -> None:
    """An include value that is a mapping is refused at the value."""
    error = text_error("include: {a: b}\n")
    assert error.location == at("g.yaml", 1, 10)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "line", "column", "phrase"),
    [
        ("unclosed_flow.yaml", 4, 6, "expected ',' or '}', but got ':'"),
        ("tab_indent.yaml", 3, 1, "found character '\\t' that cannot start any token"),
        ("two_documents.yaml", 3, 1, "but found another document"),
        ("duplicate_field.yaml", 6, 5, "duplicate key 'stop_ms'"),
        ("duplicate_node.yaml", 5, 3, "defined twice"),
        ("empty.yaml", 1, 1, "empty graph file: expected a mapping"),
        ("top_list.yaml", 1, 1, "expected a mapping at the top level"),
        ("unknown_tag.yaml", 3, 11, "unsupported YAML tag '!!python/object/apply:os.system'"),
        ("complex_key.yaml", 3, 3, "a mapping key must be a plain value"),
    ],
)
def test_bad_files_report_file_line_and_column(
    name: str, line: int, column: int, phrase: str
) -> None:
    """Each bad sample fails with a ConfigError at the exact place of the problem."""
    error = file_error(name)
    assert error.location == at(BAD / name, line, column)
    assert phrase in error.message
    assert str(error).startswith(f"{BAD / name}:{line}:{column}:")


def test_a_syntax_error_mentions_where_the_open_construct_started() -> None:
    """The parser's context (what it was parsing, and where) is kept in the message."""
    error = file_error("unclosed_flow.yaml")
    assert f"while parsing a flow mapping at {at(BAD / 'unclosed_flow.yaml', 3, 8)}" in str(error)


def test_a_duplicate_field_names_its_node_and_the_first_place() -> None:
    """The duplicate key error carries the node id and where the key was first written."""
    error = file_error("duplicate_field.yaml")
    assert error.node_id == "vad"
    assert f"first at {at(BAD / 'duplicate_field.yaml', 5, 5)}" in error.message


def test_a_missing_graph_file_is_a_config_error(tmp_path: Path) -> None:
    """A graph file that cannot be read is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read graph file"):
        load_graph_document(tmp_path / "absent.yaml")


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported at their line and column."""
    target = tmp_path / "latin1.yaml"
    target.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_graph_document(target)
    assert info.value.location == at(target, 2, 7)


@pytest.mark.parametrize(
    ("text", "line", "column", "phrase"),
    [
        ("a: 1\nb: \x07\n", 2, 4, "unacceptable character #x0007"),
        ("a: *nope\n", 1, 4, "found undefined alias 'nope'"),
        ("a: &x [1, *x]\n", 1, 4, "an alias refers to a collection that contains it"),
        ("a: &x {<<: *x}\n", 1, 4, "an alias refers to a collection that contains it"),
        ("a: !!set {x}\n", 1, 4, "unsupported YAML tag '!!set'"),
        ("a:\n  <<: 3\n", 2, 7, "a merge key '<<' needs a mapping"),
        ("a: !!int abc\n", 1, 4, "cannot read 'abc' as !!int"),
        ("a: !!bool maybe\n", 1, 4, "cannot read 'maybe' as !!bool"),
        ("nodes:\n  b: 1\n  b: 2\n", 3, 3, "defined twice"),
    ],
)
def test_bad_text_reports_line_and_column(text: str, line: int, column: int, phrase: str) -> None:
    """Reader, composer and construction problems all become located ConfigErrors."""
    error = text_error(text)
    assert error.location == at("g.yaml", line, column)
    assert phrase in error.message


# --------------------------------------------------------------------------- property

_TEXT = st.text(alphabet="abcXYZ019 _-.:#,", max_size=12).filter(lambda s: "$" not in s)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), _TEXT.filter(lambda s: "\n" not in s)
)
_DOCS = st.dictionaries(
    _TEXT.filter(lambda k: k != "include"),
    st.recursive(
        _SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(_TEXT, children, max_size=4)
        ),
        max_leaves=20,
    ),
    min_size=1,
    max_size=5,
)


def _walk(value: Any, path: SourcePath) -> list[tuple[SourcePath, Any]]:
    found = [(path, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _walk(child, (*path, index))
    return found


def _written_forms(value: Any) -> tuple[str, ...]:
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, int):
        return (str(value),)
    if isinstance(value, str):
        return (value, f"'{value}", f'"{value}') if value else ("''", '""')
    if isinstance(value, dict):
        first = next(iter(value), None)
        return ("{", "? ", *(() if first is None else _written_forms(first)))
    return ("[", "-")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_DOCS, flow=st.sampled_from([False, True, None]), indent=st.integers(2, 6))
def test_every_recorded_location_points_at_its_text(
    doc: dict[str, Any], flow: bool | None, indent: int
) -> None:
    """For random documents, each key and value location starts at that key's or value's text."""
    text = yaml.safe_dump(doc, default_flow_style=flow, indent=indent, width=10**6, sort_keys=False)
    loaded = load_graph_text(text, name="p.yaml", env={})
    assert loaded.data == doc
    lines = text.split("\n")

    def text_at(location: SourceLocation | None) -> str:
        assert location is not None and location.file == "p.yaml"
        return lines[location.line - 1][location.column - 1 :]

    for path, value in _walk(doc, ()):
        assert path in loaded.source_map
        assert text_at(loaded.source_map.locate(path)).startswith(_written_forms(value))
        if path and isinstance(path[-1], str):
            written = text_at(loaded.source_map.locate_key(path))
            assert written.startswith(_written_forms(path[-1]))
    assert {path for path, _ in loaded.source_map.items()} == {p for p, _ in _walk(doc, ())}


def test_source_paths_are_tuples_of_keys_and_indexes() -> None:
    """Every recorded path is a tuple of str keys and int indexes."""
    smap = load_graph_document(GOOD / "assistant.yaml", env={}).source_map
    for path, location in smap.items():
        assert all(isinstance(part, str | int) for part in path)
        assert os.path.exists(location.file)
