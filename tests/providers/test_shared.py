"""Shared provider helpers: API keys never printed, backoff policy."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from vbgraph.errors import ConfigError
from vbgraph.providers._backoff import Backoff
from vbgraph.providers._secrets import resolve_api_key
from vbgraph.registry import default_registry

PROVIDERS = [
    "llm.openai",
    "stt.openai",
    "tts.openai",
    "stt.deepgram",
    "tts.elevenlabs",
    "tts.cartesia",
    "s2s.openai_realtime",
]


@pytest.mark.parametrize("type_name", PROVIDERS)
def test_a_key_in_params_is_never_printed(type_name: str) -> None:
    """repr, str and model_dump of a provider's params show asterisks, not the key."""
    cls = default_registry().get(type_name)
    params = cls.Params.model_validate({"api_key": "sk-TOPSECRET"})
    assert isinstance(params.api_key, SecretStr)  # type: ignore[attr-defined]
    for text in (repr(params), str(params), str(params.model_dump())):
        assert "TOPSECRET" not in text


class TestResolveKey:
    def test_the_param_wins_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An explicit key is used as given."""
        monkeypatch.setenv("X_KEY", "from-env")
        assert resolve_api_key(SecretStr("given"), "X_KEY", node_id="n") == "given"

    def test_the_environment_fills_a_missing_param(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No param: $X_KEY."""
        monkeypatch.setenv("X_KEY", "from-env")
        assert resolve_api_key(None, "X_KEY", node_id="n") == "from-env"

    def test_no_key_anywhere_names_the_node_and_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A clear ConfigError at start, not a 401 at the first turn."""
        monkeypatch.delenv("X_KEY", raising=False)
        with pytest.raises(ConfigError, match=r"node 'stt'.*\$X_KEY") as info:
            resolve_api_key(None, "X_KEY", node_id="stt")
        assert info.value.field == "api_key"
        assert resolve_api_key(None, "X_KEY", node_id="stt", required=False) is None


class TestBackoff:
    def test_delays_grow_by_the_factor_up_to_the_cap_then_stop(self) -> None:
        """0.2, 0.4, 0.8, 1.0, 1.0 without jitter; None after `attempts`."""
        b = Backoff(initial_s=0.2, max_s=1.0, factor=2, jitter=0, attempts=5)
        assert [b.next_delay() for _ in range(6)] == [0.2, 0.4, 0.8, 1.0, 1.0, None]
        b.reset()
        assert b.next_delay() == 0.2

    def test_jitter_stays_within_its_spread_and_is_reproducible(self) -> None:
        """±20 %, the same for the same seed."""
        a = [Backoff(jitter=0.2, seed=3, attempts=None).next_delay() for _ in range(1)]
        b = Backoff(jitter=0.2, seed=3, attempts=None)
        assert a == [b.next_delay()]
        c = Backoff(initial_s=1.0, max_s=1.0, jitter=0.2, seed=1, attempts=None)
        assert all(0.8 <= (c.next_delay() or 0) <= 1.2 for _ in range(100))

    def test_nonsense_settings_are_refused(self) -> None:
        """A clear ValueError for impossible parameters."""
        with pytest.raises(ValueError, match="initial_s"):
            Backoff(initial_s=0)
        with pytest.raises(ValueError, match="jitter"):
            Backoff(jitter=1.5)
