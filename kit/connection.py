"""One way to reach Temporal: the settings' connection (envconfig profile: address, namespace, TLS, API key),
pydantic payloads; and what to tell the user when the connection is refused."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from datetime import timedelta
from typing import Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from models.search_attributes import KEYS
from models.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """pydantic payloads, encrypted when ATELIER_CODEC_KEY is set; then failures' messages and stack traces
    (model output, reference URLs, refusal reasons) are moved into an encoded payload too, so history
    keeps only "Encoded failure" in plain text. Plain failures recorded before still decode."""
    if settings.codec_key is None:
        return pydantic_data_converter
    from kit.codec import EncryptionCodec, parse_key

    codec = EncryptionCodec(parse_key(settings.codec_key.get_secret_value()))
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


class TemporalSetupError(ValueError):
    """The connection is refused for a reason the user fixes in the configuration (TLS, key, namespace)."""


def sdk_telemetry(**more: Any) -> TelemetryConfig:
    """The SDK core's telemetry (and `more`: metrics). Its own log lines (a retried RPC, a slow poll) go to the
    `temporalio.core` logger, on stderr: by default the core prints them to stdout, where they would break a
    command's output (`runs --json`)."""
    forwarded = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    return TelemetryConfig(logging=LoggingConfig(filter=LoggingConfig.default.filter, forwarding=forwarded), **more)


@functools.cache
def sdk_runtime() -> Runtime:
    """One runtime per process, its core logs on stderr (see `sdk_telemetry`)."""
    return Runtime(telemetry=sdk_telemetry())


async def connect(settings: Settings, runtime: Runtime | None = None, service: str = "atelier") -> Client:
    """A client for the configured cluster; a refused handshake or key, or a missing namespace, raises
    `TemporalSetupError` with one line naming what to fix; an unreachable server raises RuntimeError."""
    from kit.tracing import interceptors

    config = settings.temporal_connect_config()
    try:
        client = await Client.connect(
            **config,
            data_converter=data_converter(settings),
            runtime=runtime or sdk_runtime(),
            interceptors=interceptors(service),
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace), timeout=timedelta(seconds=10)
        )
    except RPCError as exc:
        raise setup_error(config, exc.status, exc.message) from None
    except RuntimeError as exc:
        error = setup_error(config, None, str(exc))
        if (
            not isinstance(error, TemporalSetupError)
            and not config.get("tls")
            and await speaks_tls(config["target_host"])
        ):
            error = TemporalSetupError(
                f"Temporal at {config['target_host']} speaks TLS: set TEMPORAL_TLS=true (or use a profile with tls)"
            )
        raise error from None
    return client


def setup_error(config: dict[str, Any], status: RPCStatusCode | None, message: str) -> Exception:
    """What to fix, in one line, from how the connection made with `config` failed. A plaintext client at a
    TLS endpoint fails in no one way (a frame size error, the connection closed): `connect` asks the address."""
    at = f"Temporal at {config['target_host']}"
    text = message.lower()
    if status == RPCStatusCode.NOT_FOUND and "namespace" in text:
        return TemporalSetupError(
            f"{at} has no namespace {config['namespace']!r} (check TEMPORAL_NAMESPACE or the profile)"
        )
    refused = ("unauthenticated", "401 unauthorized", "403 forbidden", "permission denied")
    if status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED) or any(w in text for w in refused):
        what = "API key" if config.get("api_key") else "credentials"
        return TemporalSetupError(f"{at} refused the {what} (check TEMPORAL_API_KEY or the profile's api_key)")
    if "certificaterequired" in text.replace(" ", "") or (config.get("tls") and "400 bad request" in text):
        return TemporalSetupError(
            f"{at} refused the client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH to a certificate its CA signed"
        )
    if any(word in text for word in ("certificate", "unknownissuer", "handshake", "tls", "ssl")):
        return TemporalSetupError(
            f"TLS handshake with {at} failed: the server's certificate is not trusted or does not match "
            "(check TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME)"
        )
    first = message.strip().splitlines()[0] if message.strip() else "no answer"
    return RuntimeError(f"cannot reach {at}: {first}")


async def speaks_tls(address: str, timeout: float = 5.0) -> bool:
    """Whether `address` (host:port) completes a TLS handshake (no certificate checked, nothing sent)."""
    import ssl

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port), ssl=context, server_hostname=host.strip("[]")),
            timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


async def has_search_attributes(client: Client, namespace: str) -> bool:
    """Whether the namespace has all of Atelier's search attributes. A server that will not say (e.g. Temporal
    Cloud without operator rights) is assumed to have them: a start that needs them then says so."""
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    except RPCError:
        return True
    present = set(listed.custom_attributes) | set(listed.system_attributes)
    return all(key.name in present for key in KEYS)


def missing_search_attributes(namespace: str) -> str:
    return (
        f"namespace {namespace!r} lacks Atelier's search attributes: runs are not searchable by pipeline; register "
        "them with `python -m starter server` / `up` (they pass --search-attribute) or "
        "`temporal operator search-attribute create` as the README shows"
    )
