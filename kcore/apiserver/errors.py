"""API errors: every failure answers with a Kubernetes ``Status`` body.

kubectl prints ``Error from server (NotFound): pods "x" not found`` from
``reason`` and ``message``; the Python client raises ``ApiException`` with
``status`` = ``code``. The constructors below produce exactly the messages the
Kubernetes API server uses, so users see familiar text.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP ``code``, machine ``reason``, human ``message``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.retry_after = retry_after
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object for the response body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group is not None:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, detail: str) -> ApiError:
    message = (f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}')
    return ApiError(409, "Conflict", message, name=name, group=group, kind=resource)


def stale_update(resource: str, group: str, name: str) -> ApiError:
    return conflict(resource, group, name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again")


def invalid(kind: str, group: str, name: str | None, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are ``{reason, message, field}`` as Kubernetes sends them."""
    texts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(422, "Invalid", f'{_qualified(kind, group)} "{name or ""}" is invalid: {summary}',
                    name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(message: str, *, name: str | None = None, group: str | None = None,
              kind: str | None = None) -> ApiError:
    return ApiError(403, "Forbidden", message, name=name, group=group, kind=kind)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge",
                    f"the request body is too large: the limit is {limit} bytes")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: application/json, application/yaml, application/vnd.kubernetes.protobuf '
                    f'(got "{content_type}")')


def not_acceptable(accept: str) -> ApiError:
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: "
                    f"application/json, application/yaml (asked for {accept!r})")


def too_many_requests(retry_after: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    retry_after=retry_after, headers={"Retry-After": str(retry_after)})


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)
