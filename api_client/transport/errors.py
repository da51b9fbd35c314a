"""urllib3's failures as our errors, in words a person can act on."""

from __future__ import annotations

from urllib.parse import urlsplit

from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from ..conf import ApiSettings
from ..deadline import Deadline
from ..exceptions import ApiConnectionError, ApiError, ApiResponseError, ApiTimeoutError


def deadline_error(url: str, current: Deadline, config: ApiSettings) -> ApiTimeoutError:
    return _may_have_arrived(
        ApiTimeoutError(
            f"{urlsplit(url).netloc} did not finish answering within {current.seconds:g} s "
            f"({config.named('DEADLINE')}); the call was cut off there."
        )
    )


def _may_have_arrived[E: ApiError](error: E) -> E:
    error.reached = None  # sent, and then broken off: the API may have acted on it
    return error


def network_error(
    exc: BaseException, url: str, config: ApiSettings, current: Deadline | None = None
) -> ApiError:
    """Our error for a urllib3 failure, saying what happened in words a person can act on."""
    if isinstance(exc, ApiError):  # ours, raised from inside urllib3's loop (a body too large)
        return exc
    if current is not None and current.passed:
        return deadline_error(url, current, config)
    host = urlsplit(url).netloc
    chain = _cause_chain(exc)
    if any(isinstance(e, DecodeError) for e in chain):
        return _may_have_arrived(
            ApiResponseError(
                f"{host} sent a body that cannot be decoded as its Content-Encoding says "
                f"({_describe(chain[-1])})."
            )
        )
    if any(
        isinstance(e, ConnectTimeoutError) and not isinstance(e, NewConnectionError) for e in chain
    ):
        return ApiTimeoutError(
            f"Connecting to {host} timed out after {config.CONNECT_TIMEOUT:g} s "
            f"({config.named('CONNECT_TIMEOUT')})."
        )
    if any(isinstance(e, ReadTimeoutError | TimeoutError) for e in chain):
        return _may_have_arrived(
            ApiTimeoutError(
                f"{host} did not answer within {config.READ_TIMEOUT:g} s "
                f"({config.named('READ_TIMEOUT')})."
            )
        )
    if any(isinstance(e, ProtocolError) for e in chain):
        # The connection was open and broke mid-exchange: the request may have arrived.
        return _may_have_arrived(
            ApiConnectionError(
                f"The connection to {host} broke before an answer came "
                f"({_describe(chain[-1])}); the API may have received the request."
            )
        )
    return ApiConnectionError(f"Could not connect to {host}: {_describe(chain[-1])}.")


def _cause_chain(exc: BaseException) -> list[BaseException]:
    """The exception and the reasons wrapped inside it, outermost first."""
    chain = [exc]
    while len(chain) < 10:
        current = chain[-1]
        inner = getattr(current, "reason", None) or (current.args[0] if current.args else None)
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _describe(cause: BaseException) -> str:
    text = str(cause)
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
        return "Connection refused"
    if isinstance(cause, ConnectionResetError) or "Connection reset" in text:
        return "Connection reset by peer"
    if "RemoteDisconnected" in text or "closed connection without response" in text:
        return "the server closed the connection without answering"
    if "Name or service not known" in text or "getaddrinfo failed" in text:
        return "the host name could not be resolved"
    return text[:200] or type(cause).__name__
