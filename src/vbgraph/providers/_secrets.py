"""API keys in node params: never logged, redacted in ``vbgraph inspect``, read from the env.

A provider node declares ``api_key: ApiKey = api_key_field("DEEPGRAM_API_KEY")``
and calls :func:`resolve_api_key` in ``start()``. The param is a
:class:`pydantic.SecretStr`, so ``repr``, ``model_dump`` and the graph
printers show ``**********`` instead of the key. A YAML file should say
``api_key: ${DEEPGRAM_API_KEY}`` or leave it out; either way the key comes from
the environment (or a secret manager that fills it), never from the file.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, SecretStr

from ..errors import ConfigError

__all__ = ["ApiKey", "api_key_field", "resolve_api_key"]

ApiKey = SecretStr | None


def api_key_field(env: str) -> Any:
    """The ``api_key`` param field: optional, falls back to ``$env`` at start."""
    return Field(None, description=f"API key; omitted: ${env}. Redacted in every printout.")


def resolve_api_key(
    value: SecretStr | None, env: str, *, node_id: str, required: bool = True
) -> str | None:
    """The key to send: the param if given, else ``$env``.

    Raises :class:`ConfigError` naming the node and the variable when the key
    is ``required`` and neither is set: a missing key is found at start, not
    at the first turn.
    """
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    found = os.environ.get(env)
    if found:
        return found
    if required:
        raise ConfigError(
            f"no API key: set the api_key param or the ${env} variable",
            node_id=node_id,
            field="api_key",
        )
    return None
