"""ObservabilityConfig: off by default; --otel and VBGRAPH_OTEL* switch it on; errors say where."""

from __future__ import annotations

import pytest

from vbgraph.errors import ConfigError
from vbgraph.observability.config import ObservabilityConfig, command_config


def test_the_default_is_off() -> None:
    """No variable set: exporter none, not enabled."""
    config = ObservabilityConfig.from_env({})
    assert config.exporter == "none" and not config.enabled
    assert config.node_sample_interval_s == 1.0 and config.service_name == "vbgraph"


def test_every_field_can_come_from_the_environment() -> None:
    """VBGRAPH_OTEL and its VBGRAPH_OTEL_* companions."""
    config = ObservabilityConfig.from_env(
        {
            "VBGRAPH_OTEL": "OTLP",
            "VBGRAPH_OTEL_SERVICE_NAME": "cafe-bot",
            "VBGRAPH_OTEL_METRICS": "yes",
            "VBGRAPH_OTEL_TRACES": "off",
            "VBGRAPH_OTEL_SAMPLE_S": "0.25",
            "VBGRAPH_OTEL_EXPORT_INTERVAL_S": "5",
            "VBGRAPH_OTEL_ENDPOINT": "http://collector:4318",
            "VBGRAPH_OTEL_RECORD_TEXT": "1",
        }
    )
    assert config.model_dump() == {
        "exporter": "otlp",
        "service_name": "cafe-bot",
        "metrics": True,
        "traces": False,
        "node_sample_interval_s": 0.25,
        "export_interval_s": 5.0,
        "otlp_endpoint": "http://collector:4318",
        "record_text": True,
    }


def test_otel_service_name_is_the_fallback_and_overrides_win() -> None:
    """The standard variable counts; a flag beats the environment; None is no override."""
    env = {"VBGRAPH_OTEL": "console", "OTEL_SERVICE_NAME": "svc"}
    config = ObservabilityConfig.from_env(env, exporter="otlp", service_name=None)
    assert (config.exporter, config.service_name) == ("otlp", "svc")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VBGRAPH_OTEL": "jaeger"}, "VBGRAPH_OTEL:"),
        ({"VBGRAPH_OTEL_SAMPLE_S": "-1"}, "VBGRAPH_OTEL_SAMPLE_S:"),
        ({"VBGRAPH_OTEL_TRACES": "maybe"}, "VBGRAPH_OTEL_TRACES='maybe'"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    """Not a traceback from pydantic: the variable and what is wrong."""
    with pytest.raises(ConfigError, match=f"observability: {message}"):
        ObservabilityConfig.from_env(env)


def test_prometheus_is_for_serve_and_memory_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """`vbgraph run --otel prometheus` has no /metrics to serve: a clear error."""
    monkeypatch.delenv("VBGRAPH_OTEL", raising=False)
    assert command_config("prometheus", serve=True).exporter == "prometheus"
    with pytest.raises(ConfigError, match="only for `vbgraph serve`"):
        command_config("prometheus", serve=False)
    with pytest.raises(ConfigError, match="only for tests"):
        command_config("memory", serve=True)
    monkeypatch.setenv("VBGRAPH_OTEL", "console")
    assert command_config(None, serve=False).exporter == "console"
    assert not command_config("none", serve=False).enabled
