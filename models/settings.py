"""The one configuration object, read from the environment and `.env`."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import temporal_profile
from models.endpoints import PREFIX, Endpoint, Kind, check_base_url
from models.usage import DEFAULT_PRICES, Price

# An attempt of a paid call may wait this long on a rate limit (its start-to-close timeout).
MAX_CALL_DEADLINE_S = 4 * 3600

WORKFLOW_QUEUE = "atelier-workflows"
TEXT_QUEUE = "atelier-text"  # paid text calls: chat, structured output, evaluation, refinement, phases
IMAGE_QUEUE = "atelier-images"  # paid image generation
STORAGE_QUEUE = "atelier-storage"  # storage-only steps: references, manifests, render, upload, cache
SCORING_QUEUE = "atelier-scoring"  # PyTorch scoring and embeddings
EVENTS_QUEUE = "atelier-events"  # following runs for the API: events, webhook deliveries
DATABASE_FILE = "atelier.db"  # the default database, in the data dir
DATABASE_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://", "sqlite:///")


class Settings(BaseSettings):
    """Atelier settings. Secrets are `SecretStr` and never leave the worker process."""

    # Only the documented names (each field's validation_alias: ATELIER_*, LLM_*, IMAGE_*, ...) are read, from
    # the environment, `.env` and keyword arguments; a bare field name (BUILD_ID, PROVIDER, DATA_DIR) is not.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)
    _temporal: temporal_profile.Connection = PrivateAttr()

    # Temporal's connection, the way the `temporal` CLI reads it (temporalio.envconfig): a TOML profile
    # (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) with the TEMPORAL_* variables over it (address, namespace,
    # API key, TLS and client certificates, gRPC metadata). Address and namespace given here win.
    temporal_address: str = Field("", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("", validation_alias="TEMPORAL_NAMESPACE")
    temporal_profile: str | None = Field(None, validation_alias="TEMPORAL_PROFILE")
    temporal_config_file: str | None = Field(None, validation_alias="TEMPORAL_CONFIG_FILE")
    temporal_ui: str | None = Field(None, validation_alias="TEMPORAL_UI_URL")
    data_dir: Path = Field(Path(".atelier"), validation_alias="ATELIER_DATA_DIR")
    # Worker Versioning, opt-in: the Worker Deployment these workers belong to, and their build id
    # (default: package version + digest of the workflow code). Temporal's worker controller hands its pods
    # TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID: where set, they win.
    deployment: str | None = Field(
        None, validation_alias=AliasChoices("TEMPORAL_DEPLOYMENT_NAME", "ATELIER_DEPLOYMENT")
    )
    build_id: str | None = Field(None, validation_alias=AliasChoices("TEMPORAL_WORKER_BUILD_ID", "ATELIER_BUILD_ID"))

    provider: Literal["auto", "openai", "offline"] = Field("auto", validation_alias="ATELIER_PROVIDER")
    llm_base_url: str | None = Field(None, validation_alias="LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY"))
    llm_model: str = Field("gpt-4o", validation_alias="LLM_MODEL")
    image_model: str = Field("gpt-image-1", validation_alias="IMAGE_MODEL")
    eval_model: str = Field("gpt-4o", validation_alias="EVAL_MODEL")
    # pictures and vision evaluation from their own endpoints (unset: the text endpoint's)
    image_base_url: str | None = Field(None, validation_alias="IMAGE_BASE_URL")
    image_api_key: SecretStr | None = Field(None, validation_alias="IMAGE_API_KEY")
    image_api: Literal["auto", "responses", "images", "chat", "offline"] = Field("auto", validation_alias="IMAGE_API")
    # strict JSON schemas: on where the endpoint enforces them (auto: OpenAI, OpenRouter)
    strict_output: Literal["auto", "on", "off"] = Field("auto", validation_alias="ATELIER_STRICT_OUTPUT")
    # the model catalog (models/catalog.py): a TOML file of `[[models]]`; unset: ./models.toml when present, else
    # the LLM_*/IMAGE_*/EVAL_* settings above as one model per kind
    models_file: Path | None = Field(None, validation_alias="ATELIER_MODELS_FILE")
    eval_base_url: str | None = Field(None, validation_alias="EVAL_BASE_URL")
    eval_api_key: SecretStr | None = Field(None, validation_alias="EVAL_API_KEY")
    llm_timeout_s: float = Field(120.0, gt=0, validation_alias="LLM_TIMEOUT_S")

    storage: Literal["local", "s3"] = Field("local", validation_alias="ATELIER_STORAGE")
    s3_endpoint: str | None = Field(None, validation_alias="S3_ENDPOINT")
    s3_access_key: SecretStr | None = Field(None, validation_alias="S3_ACCESS_KEY")
    s3_secret_key: SecretStr | None = Field(None, validation_alias="S3_SECRET_KEY")
    s3_bucket: str = Field("atelier", validation_alias="S3_BUCKET")
    s3_secure: bool = Field(True, validation_alias="S3_SECURE")
    # host:port people reach the store at, when it differs from S3_ENDPOINT (presigned URLs are signed for it)
    s3_public_endpoint: str | None = Field(None, validation_alias="S3_PUBLIC_ENDPOINT")
    s3_region: str = Field("us-east-1", validation_alias="S3_REGION")

    allow_private_urls: bool = Field(False, validation_alias="ATELIER_ALLOW_PRIVATE_URLS")
    offline_latency_s: float = Field(0.0, ge=0, validation_alias="ATELIER_OFFLINE_LATENCY_S")
    call_log: bool = Field(True, validation_alias="ATELIER_CALL_LOG")
    call_log_max_mb: float = Field(64, gt=0, validation_alias="ATELIER_CALL_LOG_MAX_MB")  # then it rotates
    call_log_files: int = Field(5, ge=2, le=100, validation_alias="ATELIER_CALL_LOG_FILES")  # kept, current included
    scoring_device: str = Field("auto", validation_alias="ATELIER_SCORING_DEVICE")
    scoring_batch: int | None = Field(None, ge=1, le=256, validation_alias="ATELIER_SCORING_BATCH")
    text_model: Path | None = Field(None, validation_alias="ATELIER_TEXT_MODEL")
    metrics_port: int | None = Field(None, ge=1, le=65535, validation_alias="ATELIER_METRICS_PORT")
    metrics_host: str = Field("127.0.0.1", validation_alias="ATELIER_METRICS_HOST")
    # a worker's /livez and /readyz for orchestrators' probes (workers/health.py); off unless a port is set
    health_port: int | None = Field(None, ge=1, le=65535, validation_alias="ATELIER_HEALTH_PORT")
    health_host: str = Field("127.0.0.1", validation_alias="ATELIER_HEALTH_HOST")
    codec_key: SecretStr | None = Field(None, validation_alias="ATELIER_CODEC_KEY")
    codec_port: int = Field(8888, validation_alias="ATELIER_CODEC_PORT")
    codec_token: SecretStr | None = Field(None, validation_alias="ATELIER_CODEC_TOKEN")  # bearer token it wants
    # provider limits: requests per minute for each kind of paid call, enforced across all workers by the
    # Temporal server (0 = unlimited); activity slots per worker; how long one call may wait on a rate limit
    text_rpm: float = Field(0, ge=0, validation_alias="ATELIER_TEXT_RPM")
    image_rpm: float = Field(0, ge=0, validation_alias="ATELIER_IMAGE_RPM")
    text_concurrency: int = Field(64, ge=1, le=1000, validation_alias="ATELIER_TEXT_CONCURRENCY")
    image_concurrency: int = Field(16, ge=1, le=1000, validation_alias="ATELIER_IMAGE_CONCURRENCY")
    # slots of the other queues per worker process (workflow tasks need two: a sticky and a normal poll)
    workflow_concurrency: int = Field(100, ge=2, le=1000, validation_alias="ATELIER_WORKFLOW_CONCURRENCY")
    storage_concurrency: int = Field(32, ge=1, le=1000, validation_alias="ATELIER_STORAGE_CONCURRENCY")
    events_concurrency: int = Field(200, ge=1, le=2000, validation_alias="ATELIER_EVENTS_CONCURRENCY")
    scoring_concurrency: int = Field(4, ge=1, le=64, validation_alias="ATELIER_SCORING_CONCURRENCY")
    # pollers per queue per worker scale between 1 and this on the server's hints (a poll waits for a free slot)
    max_pollers: int = Field(20, ge=1, le=200, validation_alias="ATELIER_MAX_POLLERS")
    text_deadline_s: float = Field(1800, gt=0, le=MAX_CALL_DEADLINE_S, validation_alias="ATELIER_TEXT_DEADLINE_S")
    image_deadline_s: float = Field(3600, gt=0, le=MAX_CALL_DEADLINE_S, validation_alias="ATELIER_IMAGE_DEADLINE_S")
    max_cost_usd: float | None = Field(None, ge=0, validation_alias="ATELIER_MAX_COST_USD")
    # circuit breakers, "failures/seconds": open after that many failures in a row, half-open after the seconds
    breaker_text: str = Field("5/30", pattern=r"^[1-9]\d*/\d+(\.\d+)?$", validation_alias="ATELIER_BREAKER_TEXT")
    breaker_image: str = Field("3/60", pattern=r"^[1-9]\d*/\d+(\.\d+)?$", validation_alias="ATELIER_BREAKER_IMAGE")
    breaker_upload: str = Field("2/30", pattern=r"^[1-9]\d*/\d+(\.\d+)?$", validation_alias="ATELIER_BREAKER_UPLOAD")
    blocked_words: list[str] = Field(default_factory=list, validation_alias="ATELIER_BLOCKED_WORDS")  # JSON list
    # the HTTP API (`python -m starter serve`): where it listens, its keys (hashed), requests per key per minute,
    # and per-tenant caps (0 = none)
    api_host: str = Field("127.0.0.1", validation_alias="ATELIER_API_HOST")
    api_port: int = Field(8000, ge=1, le=65535, validation_alias="ATELIER_API_PORT")
    api_keys_file: Path | None = Field(
        None, validation_alias="ATELIER_API_KEYS_FILE"
    )  # the keys file of releases before the database, imported into it once (default <data dir>/api-keys.json)
    api_public_url: str | None = Field(None, validation_alias="ATELIER_API_PUBLIC_URL")  # links in results and events
    # keys, tenants, webhook endpoints, uploads (kit/db): PostgreSQL (postgresql://user:password@host/db) for
    # several API processes; unset, a SQLite file in the data dir (<data dir>/atelier.db)
    database_url: SecretStr | None = Field(None, validation_alias="ATELIER_DATABASE_URL")
    api_rate_per_minute: int = Field(600, ge=1, validation_alias="ATELIER_API_RATE_PER_MINUTE")
    # wrong keys, bad session cookies and failed sign-ins per client address per minute: past them, 429
    auth_failures_per_minute: int = Field(10, ge=1, validation_alias="ATELIER_AUTH_FAILURES_PER_MINUTE")
    # the largest JSON or form body a request may send (uploads have their files' own limits): 413 beyond
    api_max_body_bytes: int = Field(64 * 1024, ge=1024, validation_alias="ATELIER_API_MAX_BODY_BYTES")
    tenant_max_running: int = Field(0, ge=0, validation_alias="ATELIER_TENANT_MAX_RUNNING")
    tenant_max_usd_per_day: float = Field(0, ge=0, validation_alias="ATELIER_TENANT_MAX_USD_PER_DAY")
    # with a cap set, how long a create waits on the tenant's admission workflow (a worker) before a 503
    admission_wait_s: float = Field(30, gt=0, le=300, validation_alias="ATELIER_ADMISSION_WAIT_S")
    # how long `POST /v1/knowledge` waits for its ingest: done, 201 with the documents; else 202 with the run
    ingest_wait_s: float = Field(30, gt=0, le=300, validation_alias="ATELIER_INGEST_WAIT_S")
    # event streams (SSE): open at once per tenant (its keys and studio sessions together) and per API process
    # (429 beyond), and the most seconds one lives before its client resumes it with Last-Event-ID
    streams_per_tenant: int = Field(20, ge=1, validation_alias="ATELIER_STREAMS_PER_TENANT")
    streams_per_process: int = Field(500, ge=1, validation_alias="ATELIER_STREAMS_PER_PROCESS")
    stream_max_s: float = Field(300, gt=0, le=86400, validation_alias="ATELIER_STREAM_MAX_S")
    # pictures: the most pixels an upload may have and a thumbnail will decode (24 MP: a 6000x4000 photo, any
    # image model's output; 96 MB decoded as RGBA); decoding threads (half the cores, at most two: the rest answer
    # requests, and two decodes bound the memory); thumbnails being made or waiting (503 beyond)
    upload_max_pixels: int = Field(24_000_000, ge=1, validation_alias="ATELIER_UPLOAD_MAX_PIXELS")
    thumbnail_workers: int = Field(
        default_factory=lambda: min(2, max(1, (os.cpu_count() or 2) // 2)),
        ge=1,
        le=32,
        validation_alias="ATELIER_THUMBNAIL_WORKERS",
    )
    thumbnail_queue: int = Field(16, ge=1, le=1000, validation_alias="ATELIER_THUMBNAIL_QUEUE")
    # webhook deliveries: the Standard Webhooks retry schedule (seconds before each attempt), and whether a
    # webhook may point at a loopback, private or link-local address (tests; a private network's receiver)
    webhook_schedule_s: list[float] = Field(
        default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 36000],
        min_length=1,
        max_length=20,
        validation_alias="ATELIER_WEBHOOK_SCHEDULE_S",
    )
    webhook_allow_private: bool = Field(False, validation_alias="ATELIER_WEBHOOK_ALLOW_PRIVATE")
    # JSON, e.g. {"my-model": {"input_per_mtok": 0.2, "output_per_mtok": 0.8, "per_image": 0}}
    price_overrides: dict[str, Price] = Field(default_factory=dict, validation_alias="ATELIER_PRICES")

    @field_validator("llm_base_url", "image_base_url", "eval_base_url", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_base_url(value)

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(DATABASE_SCHEMES):
            raise ValueError("use postgresql://user:password@host:port/database or sqlite:///path")
        return value

    @cached_property
    def resolved_provider(self) -> Literal["openai", "offline"]:
        """`auto` means an OpenAI-compatible endpoint when a key or a base URL is set (Ollama and vLLM need
        no key), else the built-in offline provider."""
        if self.provider == "auto":
            return "openai" if self.llm_api_key or self.llm_base_url else "offline"
        return self.provider

    def endpoint(self, kind: Kind) -> Endpoint:
        """Where calls of `kind` go; an unset base URL, key or model falls back to the text endpoint's (a key
        only together with its URL: a key is never sent to another host)."""
        text = Endpoint("text", self.llm_base_url, self.llm_api_key, self.llm_model, "LLM_BASE_URL", "LLM_API_KEY")
        if kind == "text":
            return text
        url, key = (
            (self.image_base_url, self.image_api_key) if kind == "image" else (self.eval_base_url, self.eval_api_key)
        )
        model = self.image_model if kind == "image" else self.eval_model
        prefix = PREFIX[kind]
        if url is None:
            return Endpoint(kind, text.base_url, key or text.api_key, model, "LLM_BASE_URL", f"{prefix}_API_KEY")
        return Endpoint(kind, url, key, model, f"{prefix}_BASE_URL", f"{prefix}_API_KEY")

    @property
    def prices(self) -> dict[str, Price]:
        """The price table: built-in list prices with ATELIER_PRICES on top."""
        return DEFAULT_PRICES | self.price_overrides

    def rpm(self, kind: str) -> float:
        """The requests-per-minute limit for `text` or `image` calls (0 = unlimited)."""
        return self.image_rpm if kind == "image" else self.text_rpm

    def deadline_s(self, kind: str) -> float:
        return self.image_deadline_s if kind == "image" else self.text_deadline_s

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def call_log_path(self) -> Path:
        return self.log_dir / "provider-calls.jsonl"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.data_dir / "api-keys.json"

    @property
    def database_address(self) -> str:
        """The database what is not a run lives in (kit/db): ATELIER_DATABASE_URL, else SQLite in the data dir."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / DATABASE_FILE).absolute()}"

    @property
    def api_url(self) -> str:
        """Where clients reach the API: ATELIER_API_PUBLIC_URL, else the address it listens on."""
        return (self.api_public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @model_validator(mode="after")
    def _temporal_profile(self) -> Settings:
        """Resolve the Temporal connection now, so a bad profile or a missing certificate is reported up front."""
        self._temporal = temporal_profile.load(
            self.temporal_profile, self.temporal_config_file, self.temporal_address, self.temporal_namespace
        )
        self.temporal_address = self._temporal.address
        self.temporal_namespace = self._temporal.namespace
        return self

    def temporal_connect_config(self) -> dict[str, Any]:
        """Keyword arguments for `Client.connect`: address, namespace (as set now, e.g. after `model_copy`),
        TLS, API key, gRPC metadata."""
        return self._temporal.connect_config() | {
            "target_host": self.temporal_address,
            "namespace": self.temporal_namespace,
        }

    @property
    def temporal_secured(self) -> str | None:
        """How the connection is secured, for messages (never the key itself)."""
        return self._temporal.secured

    @property
    def temporal_ui_url(self) -> str:
        """TEMPORAL_UI_URL, else Temporal Cloud's UI for a Cloud address, else the dev server's (port + 1000)."""
        if self.temporal_ui:
            return self.temporal_ui.rstrip("/")
        host, _, port = self.temporal_address.rpartition(":")
        if host.endswith(".tmprl.cloud"):
            return "https://cloud.temporal.io"
        return f"http://{host or 'localhost'}:{int(port or 7233) + 1000}"


def invalid_settings(exc: ValidationError) -> str:
    """A settings error as one line: the setting and what is wrong."""
    first = exc.errors()[0]
    where = f"{first['loc'][0]}: " if first["loc"] else ""
    return f"invalid configuration: {where}{first['msg'].removeprefix('Value error, ')}"
