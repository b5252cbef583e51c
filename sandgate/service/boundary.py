"""The gRPC error boundary: where a handler's exception becomes the call's status.

Each server keeps its own table, domain exception class -> status code, and
installs an :class:`ErrorBoundary` built from it (``create_grpc_server`` asks
for one). The boundary wraps every handler of the server, whatever its shape:

- a domain error aborts the call with its table's status and its message (the
  message is written for the caller; it must hold no secret);
- a call the handler aborted itself (``grpc.aio.AbortError``) passes through;
- ``asyncio.CancelledError`` and other ``BaseException`` are never caught;
- anything else is logged with its traceback and a short request id, and
  answered ``INTERNAL`` with that id only: no message, no stack trace.

The table is looked up along the exception's MRO, so a class stands for its
subclasses unless they have an entry of their own. An entry may be a function
of the exception instead of a code, for errors that carry their own status.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, NoReturn, TypeAlias

import grpc

from sandgate.service.keys import Metadata

__all__ = ["ErrorBoundary", "StatusRule", "StatusTable", "status_for"]

logger = logging.getLogger(__name__)

StatusRule: TypeAlias = "grpc.StatusCode | Callable[[Exception], grpc.StatusCode]"
"""A status code, or a function giving the code of an exception that carries its own."""
StatusTable: TypeAlias = Mapping[type[Exception], StatusRule]
"""Domain exception class -> status: one table per server."""

_Context = Any
"""grpc.aio.ServicerContext (grpc ships no types)."""
_Handler = Any
"""grpc.RpcMethodHandler."""

_SHAPES: dict[tuple[bool, bool], tuple[str, Callable[..., _Handler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}
"""(request streaming, response streaming) -> the handler's behavior field and factory."""


def status_for(table: StatusTable, exc: Exception) -> grpc.StatusCode | None:
    """The status ``table`` gives ``exc`` through its nearest mapped class.

    Returns:
        The code, or None when ``exc`` is not a domain error of this table.
    """
    for cls in type(exc).__mro__:
        rule = table.get(cls)
        if rule is not None:
            return rule if isinstance(rule, grpc.StatusCode) else rule(exc)
    return None


class ErrorBoundary(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """A server interceptor that answers every handler's exceptions by one table.

    It can also authenticate each call before its handler runs (sandboxd checks
    its per-sandbox token so): ``authenticate`` gets the call's metadata and
    raises a mapped error to refuse it, before a streaming request is read.
    """

    def __init__(self, statuses: StatusTable, *, server: str,
                 authenticate: Callable[[Metadata], object] | None = None,
                 open_methods: Sequence[str] = (),
                 trailers: Callable[[Exception], Sequence[tuple[str, str]]] | None = None
                 ) -> None:
        """
        Args:
            statuses: domain exception class -> status (see :data:`StatusTable`).
            server: the server's name, in logs and in INTERNAL messages (``"sandboxd"``).
            authenticate: checks a call's metadata before its handler; None admits all.
            open_methods: prefixes of the full method names ``authenticate`` skips
                (``"/grpc.health.v1.Health/"``: probes carry no credentials).
            trailers: trailing metadata to send with a domain error's status
                (e.g. ``retry-after``); None sends none.
        """
        self._statuses = statuses
        self.server_name = server
        """The server's name, as given."""
        self._authenticate = authenticate
        self._open_methods = tuple(open_methods)
        self._trailers = trailers
        self._guarded: dict[str, tuple[_Handler, _Handler]] = {}

    def status_for(self, exc: Exception) -> grpc.StatusCode | None:
        """The status of a domain error, or None for an unexpected exception."""
        return status_for(self._statuses, exc)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """The method's handler, guarded by this boundary (made once per method)."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._guarded.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = self.guard(handler, method)
        self._guarded[method] = (handler, guarded)
        return guarded

    def guard(self, handler: _Handler, method: str) -> _Handler:
        """A handler of the same shape as ``handler`` whose behavior runs inside the boundary.

        Behaviors that are neither coroutine nor async generator functions are
        left as they are (grpc.aio servers here only have async ones).
        """
        field, factory = _SHAPES[(handler.request_streaming, handler.response_streaming)]
        behavior = getattr(handler, field)
        check = None if method.startswith(self._open_methods) else self._authenticate
        if inspect.isasyncgenfunction(behavior):
            wrapped: Callable[..., Any] = self._guard_stream(behavior, method, check)
        elif inspect.iscoroutinefunction(behavior):
            wrapped = self._guard_unary(behavior, method, check)
        else:
            return handler
        return factory(wrapped, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)

    def _guard_unary(self, behavior: Callable[[Any, _Context], Awaitable[Any]], method: str,
                     check: Callable[[Metadata], object] | None
                     ) -> Callable[[Any, _Context], Awaitable[Any]]:
        async def call(request: Any, context: _Context) -> Any:
            try:
                if check is not None:
                    check(context.invocation_metadata() or ())
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # the boundary: every other failure becomes a status
                await self._abort(context, exc, method)
        return call

    def _guard_stream(self, behavior: Callable[[Any, _Context], AsyncGenerator[Any, None]],
                      method: str, check: Callable[[Metadata], object] | None
                      ) -> Callable[[Any, _Context], AsyncGenerator[Any, None]]:
        async def call(request: Any, context: _Context) -> AsyncGenerator[Any, None]:
            try:
                if check is not None:
                    check(context.invocation_metadata() or ())
                # aclosing: a cancelled call closes the handler's generator now, not at GC.
                async with aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # the boundary: every other failure becomes a status
                await self._abort(context, exc, method)
        return call

    async def _abort(self, context: _Context, exc: Exception, method: str) -> NoReturn:
        code = self.status_for(exc)
        if code is not None:
            trailers = self._trailers(exc) if self._trailers is not None else ()
            if trailers:
                context.set_trailing_metadata(tuple(trailers))
            await context.abort(code, str(exc))
        else:
            import secrets  # only on this path: every sandboxd start-up would pay for it

            request_id = secrets.token_hex(4)
            logger.exception("%s: %s failed (request id %s)", self.server_name, method, request_id,
                             exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"internal error in {self.server_name} (request id {request_id})")
        raise AssertionError("context.abort returned instead of raising")
