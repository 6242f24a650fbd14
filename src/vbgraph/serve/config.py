"""Settings of ``vbgraph serve`` (command-line flags map onto these fields)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel):
    """How one server process listens and admits calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8765, ge=0, le=65535, description="Port (0: any free port).")
    max_sessions: int = Field(100, ge=1, description="Most concurrent calls in this process.")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long live calls may go on before being ended."
    )
    reuse_port: bool = Field(
        False, description="Set SO_REUSEPORT so several worker processes share the port."
    )
    auth_token: SecretStr | None = Field(
        None,
        description="Bearer token clients must present (header or ?token=); "
        "default $VBGRAPH_SERVE_TOKEN; none: open.",
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        description="Twilio auth token to validate X-Twilio-Signature; default "
        "$TWILIO_AUTH_TOKEN; none: not checked.",
    )
    rate_limit_per_minute: int = Field(
        120, ge=0, description="New connections per client address per minute (0: no limit)."
    )
    public_url: str | None = Field(
        None, description="Base URL the outside world uses (for TwiML and signatures)."
    )
