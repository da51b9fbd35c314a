"""What can go wrong when talking to the API, as a small hierarchy views and commands can map.

``ApiError`` is the base; do not raise it directly. Its subclasses say what happened:
the request was refused before sending (``InvalidRequestError``), the network failed
(``ApiConnectionError``, ``ApiTimeoutError``), the API answered with an error status
(``HTTPStatusError`` and one subclass per meaning), or no token could be obtained
(``TokenError``, with subclasses named after RFC 6749's error codes).

Messages are full sentences meant for people; they never contain a token or a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar


class ApiError(Exception):
    """Base of every api_client error. Do not raise directly; raise a subclass."""

    default_message: ClassVar[str] = "The API call failed."

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        body: str = "",
        request_id: str = "",
        exchange_id: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.body = body[:500]  # an excerpt, for messages and logs
        self.request_id = request_id
        self.exchange_id = exchange_id
        self.attempts = 0  # how often the call was sent before it failed (0: never)
        self.reply: Any = None  # what the API sent before the call failed, to be recorded
        # Whether the request reached the API: False when it surely did not (refused, never
        # sent), None when it may have (broken off after sending).
        self.reached: bool | None = False
        super().__init__(self.message)

    @property
    def code(self) -> str:
        """A stable machine-readable name, e.g. ``timeout`` or ``http_503``."""
        return getattr(self, "error_code", type(self).__name__)


class LedgerError(ApiError):
    """The exchange log could not record a call; one that needs its record first (every call
    that may reach the API) is then not sent."""

    error_code = "not_recorded"


class InvalidRequestError(ApiError):
    """Bad input caught before anything was sent. ``field`` names the culprit."""

    error_code = "invalid_request"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ApiConnectionError(ApiError):
    error_code = "connection_error"
    default_message = "Could not connect to the API. Check POC_API_BASE_URL and the network."


class ApiTimeoutError(ApiConnectionError):
    error_code = "timeout"
    default_message = "The API did not answer within the timeout."


class ApiResponseError(ApiError):
    """The API answered, but with something pocclient will not take whole."""

    error_code = "bad_response"


class ResponseTooLargeError(ApiResponseError):
    """The body was longer than ``MAX_RESPONSE_BYTES`` (after decompression); reading stopped
    there and the connection was closed. The exchange keeps the first part of the body."""

    error_code = "response_too_large"


class RetryLaterError(ApiError):
    """The API asked to be called again later (``Retry-After``) than the call may wait.

    ``retry_after`` is the number of seconds it asked for, ``retry_at`` the moment."""

    error_code = "retry_later"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.retry_at = datetime.now(UTC) + timedelta(seconds=retry_after)


class HTTPStatusError(ApiError):
    """The API answered with a status of 400 or more."""

    error_code = "http_error"

    @classmethod
    def for_status(cls, status: int) -> type[HTTPStatusError]:
        if status in _BY_STATUS:
            return _BY_STATUS[status]
        return ServerError if status >= 500 else HTTPStatusError


class BadRequestError(HTTPStatusError):
    error_code = "bad_request"


class UnauthorizedError(HTTPStatusError):
    error_code = "unauthorized"


class ForbiddenError(HTTPStatusError):
    error_code = "forbidden"


class NotFoundError(HTTPStatusError):
    error_code = "not_found"


class ConflictError(HTTPStatusError):
    error_code = "conflict"


class RateLimitedError(HTTPStatusError):
    error_code = "rate_limited"


class ServerError(HTTPStatusError):
    error_code = "server_error"


_BY_STATUS: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitedError,
}


class TokenError(ApiError):
    """No usable access token. Subclasses carry the OAuth2 error code the provider sent."""

    error_code = "token_error"
    default_message = "Could not obtain an access token."
    # The settings a person should look at, named as the connection has them (ApiSettings.named).
    settings_to_check: tuple[str, ...] = ()

    @classmethod
    def for_oauth_error(cls, oauth_code: str) -> type[TokenError]:
        return _BY_OAUTH_CODE.get(oauth_code, TokenError)


class InvalidClientError(TokenError):
    error_code = "invalid_client"
    default_message = "The token endpoint rejected the client credentials."
    settings_to_check = ("CLIENT_ID", "CLIENT_SECRET")


class InvalidGrantError(TokenError):
    error_code = "invalid_grant"


class UnauthorizedClientError(TokenError):
    error_code = "unauthorized_client"


class UnsupportedGrantTypeError(TokenError):
    error_code = "unsupported_grant_type"


class InvalidScopeError(TokenError):
    error_code = "invalid_scope"
    default_message = "The token endpoint refused the requested scope."
    settings_to_check = ("SCOPE",)


class TokenEndpointError(TokenError):
    """The token endpoint was unreachable or answered with something that is not a token."""

    error_code = "token_endpoint_error"


class TokenStorageError(TokenError):
    """The token could not be read or stored: the database failed or stayed locked for longer
    than its timeout (``POC_SQLITE_BUSY_TIMEOUT``, ``POC_PG_LOCK_TIMEOUT``)."""

    error_code = "token_storage_error"


_BY_OAUTH_CODE: dict[str, type[TokenError]] = {
    cls.error_code: cls
    for cls in (
        InvalidClientError,
        InvalidGrantError,
        UnauthorizedClientError,
        UnsupportedGrantTypeError,
        InvalidScopeError,
    )
}
