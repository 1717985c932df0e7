"""Temporal's connection as the ecosystem configures it (`temporalio.envconfig`): the same TOML profiles and
TEMPORAL_* variables as the `temporal` CLI. Certificates are read when the settings load, so a bad path is
reported before anything starts; the API key and private keys stay out of every message."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.envconfig import ClientConfigProfile

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, repr=False)
class Connection:
    address: str
    namespace: str
    profile: ClientConfigProfile
    config: dict[str, Any]

    def connect_config(self) -> dict[str, Any]:
        return dict(self.config)

    @property
    def secured(self) -> str | None:
        """'mTLS', 'TLS', 'API key over TLS' or None, for messages."""
        tls = self.config.get("tls")
        kind = "mTLS" if self.profile.tls and self.profile.tls.client_cert else "TLS" if tls else None
        if self.config.get("api_key"):
            return f"API key over {kind}" if kind else "API key"
        return kind

    def __repr__(self) -> str:
        return f"Connection({self.address!r}, {self.namespace!r}, {self.secured or 'plaintext'})"


def load(profile_name: str | None, config_file: str | None, address: str, namespace: str) -> Connection:
    """The profile (file, then TEMPORAL_* variables), with the settings' address and namespace (when set)
    over it."""
    environment = {name: value for name, value in os.environ.items() if value}  # empty is unset (compose's ${X:-})
    try:
        profile = ClientConfigProfile.load(
            profile_name or None,
            config_source=Path(config_file) if config_file else None,
            override_env_vars=environment,
        )
    except Exception as exc:  # the SDK's ConfigError: a missing profile or file, bad TOML
        raise ValueError(f"Temporal profile: {exc}") from None
    address = address or profile.address or DEFAULT_ADDRESS
    namespace = namespace or profile.namespace or DEFAULT_NAMESPACE
    profile = dataclasses.replace(profile, address=address, namespace=namespace)
    try:
        config = dict(profile.to_client_connect_config())
    except FileNotFoundError as exc:
        raise ValueError(
            f"Temporal TLS: no file {exc.filename} (check TEMPORAL_TLS_CLIENT_CERT_PATH, "
            "TEMPORAL_TLS_CLIENT_KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH or the profile's tls section)"
        ) from None
    except OSError as exc:
        raise ValueError(f"Temporal TLS: cannot read {exc.filename}: {exc.strerror}") from None
    return Connection(address=address, namespace=namespace, profile=profile, config=config)
