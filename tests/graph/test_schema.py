"""Tests for the JSON Schema of graph files and the node summaries it carries."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

from vbgraph.errors import ConfigError, UnknownNodeTypeError
from vbgraph.graph.load import load
from vbgraph.graph.schema import graph_json_schema, node_params_schema, node_summary
from vbgraph.graph.yaml_loader import load_graph_document
from vbgraph.node import Node
from vbgraph.registry import Registry, default_registry

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted((Path(__file__).parents[2] / "graphs").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator(module_registry: Registry) -> jsonschema.Draft202012Validator:
    schema = graph_json_schema(module_registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def good_data() -> dict[str, Any]:
    return load_graph_document(DATA / "good_chain.yaml", env={}).data


def invalid(validator: jsonschema.Draft202012Validator, data: dict[str, Any]) -> bool:
    return not validator.is_valid(data)


class TestGraphSchema:
    def test_the_schema_is_a_valid_draft_2020_12_schema(self, module_registry: Registry) -> None:
        """Editors can load it: it passes the metaschema and names its dialect."""
        schema = graph_json_schema(module_registry)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def test_the_good_test_graph_validates(
        self, validator: jsonschema.Draft202012Validator
    ) -> None:
        """Chains, ports, a queue and typed params are all accepted."""
        validator.validate(good_data())

    @pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
    def test_the_schema_agrees_with_the_compiler_on_the_example_graphs(self, path: Path) -> None:
        """An example graph the compiler accepts validates, and one it rejects does not."""
        schema = graph_json_schema(default_registry())
        data = load_graph_document(path).data
        try:
            load(path).compile()
        except ConfigError:
            compiles = False
        else:
            compiles = True
        assert jsonschema.Draft202012Validator(schema).is_valid(data) == compiles

    @pytest.mark.parametrize(
        ("where", "value"),
        [
            (("nodes", "lo", "dbb"), -6),  # unknown param
            (("nodes", "lo", "db"), "loud"),  # wrong param type
            (("nodes", "lo", "type"), "t.gian"),  # unknown type
            (("nodes", "src", "encoding"), "mp3"),  # not an Encoding ($defs of a param)
            (("edges", 0), "src -> "),  # not a chain
            (("edges", 2, "queue", "policy"), "drop_all"),  # bad policy
            (("edges", 2, "quee"), {}),  # unknown edge key
            (("edges", 2, "to"), "mix.b.c"),  # not an endpoint
            (("version",), 2),
            (("nodse",), {}),
        ],
    )
    def test_bad_graphs_are_rejected(
        self,
        validator: jsonschema.Draft202012Validator,
        where: tuple[str | int, ...],
        value: object,
    ) -> None:
        """Each single mistake in an otherwise good graph makes it invalid."""
        data = copy.deepcopy(good_data())
        target: Any = data
        for part in where[:-1]:
            target = target[part]
        target[where[-1]] = value
        assert invalid(validator, data)

    def test_a_bad_node_id_is_rejected(self, validator: jsonschema.Draft202012Validator) -> None:
        """Node ids follow the same pattern as in the spec."""
        data = good_data()
        data["nodes"]["2nd"] = {"type": "t.gain"}
        assert invalid(validator, data)

    def test_a_graph_without_nodes_is_rejected(
        self, validator: jsonschema.Draft202012Validator
    ) -> None:
        """nodes is the one required key."""
        assert invalid(validator, {"version": 1, "edges": []})
        assert validator.is_valid({"nodes": {}})


class TestNodeSchema:
    def test_a_node_entry_lists_its_params_and_forbids_others(
        self, module_registry: Registry
    ) -> None:
        """type is fixed to the node's name, params come from its model."""
        schema = node_params_schema("t.gain", module_registry)
        assert schema["properties"]["type"] == {"const": "t.gain"}
        assert schema["properties"]["db"]["type"] == "number"
        assert schema["required"] == ["type"]
        assert schema["additionalProperties"] is False
        assert schema["description"] == "One audio input, one output in the input's format."

    def test_an_unknown_type_raises_the_registrys_error(self, module_registry: Registry) -> None:
        """node_params_schema of a missing type is UnknownNodeTypeError."""
        with pytest.raises(UnknownNodeTypeError):
            node_params_schema("t.nope", module_registry)


class TestNodeSummary:
    def test_the_example_block_is_skipped_and_the_first_sentence_kept(self) -> None:
        """STYLE rule 19 docs open with an example; the summary is the prose after it."""

        class Documented(Node):
            """Example launch line::

                nodes:
                  g: {type: doc}

            Does one thing well. And more
            in a second sentence.
            """

            type_name: ClassVar[str] = "doc"

        assert node_summary(Documented) == "Does one thing well."

    def test_a_lead_in_to_a_literal_block_ends_as_a_sentence(self) -> None:
        """'… in a chain::' reads as '… in a chain.'."""

        class Lead(Node):
            """Prints lines
            like these::

                [mic] audio
            """

        assert node_summary(Lead) == "Prints lines like these."

    def test_a_class_without_a_docstring_has_an_empty_summary(self) -> None:
        """No docs, no summary."""

        class Bare(Node):
            pass

        Bare.__doc__ = None
        assert node_summary(Bare) == ""
