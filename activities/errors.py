"""Map provider failures onto Temporal's retry model.

Temporal owns retries: transient failures stay retryable (honouring Retry-After through
`next_retry_delay`), permanent ones become non-retryable errors with the provider's message.
"""

from __future__ import annotations

from collections.abc import Mapping

import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import beat, invalid_outputs
from activities.rate_limits import DEFAULT_WAIT_S, RateLimited, retry_after, wait_seconds

RETRYABLE_STATUS = {408, 409}
PERMANENT_CODES = {"insufficient_quota", "content_policy_violation", "moderation_blocked", "invalid_api_key"}
INVALID_OUTPUT_ATTEMPTS = 3


def error_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    found = inner.get("code") or inner.get("type")  # OpenRouter's code is the HTTP status, a number
    return None if found is None else str(found)


def is_missing_model(exc: openai.NotFoundError) -> bool:
    """A 404 about the model (OpenAI: `model_not_found`), not about the route."""
    code = error_code(exc) or ""
    return code == "model_not_found" or "model" in code or "model" in str(exc.message).lower()


def provider_error(exc: Exception, what: str) -> ApplicationError:
    """Translate an openai SDK exception into a (non-)retryable ApplicationError (a 429: `RateLimited`)."""
    if isinstance(exc, openai.APITimeoutError):
        return ApplicationError(f"{what}: provider timed out", type="ProviderTimeout")
    if isinstance(exc, openai.APIConnectionError):
        return ApplicationError(f"{what}: cannot reach provider ({exc})", type="ProviderUnavailable")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = error_code(exc)
        message = f"{what}: provider answered HTTP {status}" + (f" [{code}]" if code else "") + f": {exc.message}"
        if (refusal := refusal_of(exc, code)) is not None:
            return refused(what, *refusal, status=status)
        return classify(status, code, message, exc.response.headers, what)
    if isinstance(exc, openai.APIError) and isinstance(exc.body, dict):  # an error sent in a stream's chunk
        code = exc.body.get("code")
        status = code if isinstance(code, int) else 502
        return classify(status, None if isinstance(code, int) else code, f"{what}: {exc.message}", {}, what)
    return ApplicationError(f"{what}: {type(exc).__name__}: {exc}", type="ProviderError")


def classify(status: int, code: str | None, message: str, headers: Mapping[str, str], what: str) -> ApplicationError:
    """An HTTP status (or the code of an error sent inside a 200 body) as Temporal's kind of failure."""
    if status == 402:  # OpenRouter: out of credits; with retry-after, a spending limit that resets
        if (wait := wait_seconds(headers)) is not None:
            return RateLimited(f"{message} (a spending limit: waiting {wait:.0f} s)", wait)
        return ApplicationError(
            f"{what}: the provider refused for lack of credits (HTTP 402): add credits to the account or raise "
            f"the key's limit ({message})",
            type="InsufficientCredits",
            non_retryable=True,
        )
    if code == "insufficient_quota":
        return ApplicationError(
            f"{what}: the account's quota is used up: check its plan and billing ({message})",
            type="InsufficientQuota",
            non_retryable=True,
        )
    if status == 429 and code not in PERMANENT_CODES:  # back-pressure: wait as long as the provider says
        wait = wait_seconds(headers)
        return RateLimited(message, DEFAULT_WAIT_S if wait is None else wait)
    if code in PERMANENT_CODES or not (status in RETRYABLE_STATUS or status >= 500):
        return ApplicationError(message, type=f"ProviderHTTP{status}", non_retryable=True)
    return ApplicationError(message, type=f"ProviderHTTP{status}", next_retry_delay=retry_after(headers))


def refusal_of(exc: openai.APIStatusError, code: str | None) -> tuple[str, str] | None:
    """A safety refusal sent as an HTTP error, as (reason, category): OpenAI's `moderation_blocked` and
    `content_policy_violation`, OpenRouter's 403 with `error.metadata.reasons`."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    message = str(error.get("message") or exc.message)
    if code in ("moderation_blocked", "content_policy_violation"):
        return message, code
    reasons = (error.get("metadata") or {}).get("reasons") if isinstance(error.get("metadata"), dict) else None
    if exc.status_code == 403 and reasons:
        return f"{message} ({', '.join(map(str, reasons))})", "moderation"
    return None


def refused(what: str, reason: str, category: str, status: int | None = None) -> ApplicationError:
    """A safety refusal: an outcome, not a fault. Non-retryable (the same request is refused again); the
    provider's reason and category travel in the error's details."""
    return ApplicationError(
        f"{what}: refused by the provider's safety system ({f'HTTP {status}, ' if status else ''}{category}): {reason}",
        {"reason": reason, "category": category},
        type="Refused",
        non_retryable=True,
    )


def invalid_output(what: str, detail: str) -> ApplicationError:
    """Malformed model output: retried until the model has answered badly 3 times, then permanent.

    Only malformed replies count (other failures in between do not); the count travels from attempt
    to attempt in the activity's heartbeat details.
    """
    count = INVALID_OUTPUT_ATTEMPTS
    if activity.in_activity():
        count = invalid_outputs() + 1
        beat("invalid model output", count)
    return ApplicationError(
        f"{what}: model returned invalid output ({count}/{INVALID_OUTPUT_ATTEMPTS}): {detail[:300]}",
        type="InvalidModelOutput",
        non_retryable=count >= INVALID_OUTPUT_ATTEMPTS,
    )
