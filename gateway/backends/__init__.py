"""The backend seam: where a decapsulated inner request is answered.

``base`` holds the protocols and the shared helpers; ``echo``, ``function`` (a plain async
function), ``origin`` (an HTTP(S) origin), ``aiohttp_app`` and ``asgi`` the backends;
``spec`` the one the command line names. Backend failures are ``gateway.errors.BackendError``
and its subclasses, re-exported here.
"""

from __future__ import annotations

from gateway.backends.aiohttp_app import AiohttpAppBackend
from gateway.backends.asgi import AsgiApp, AsgiBackend, Message, Receive, Scope, Send, asgi_scope
from gateway.backends.base import (
    Backend,
    StreamedResponse,
    StreamingBackend,
    backend_authority,
    strip_connection_fields,
)
from gateway.backends.echo import EchoBackend, echo_body
from gateway.backends.function import CallableBackend
from gateway.backends.origin import HttpOriginBackend, OriginSettings, PoolUse
from gateway.backends.spec import backend_from_spec
from gateway.config import default_authority
from gateway.errors import BackendError, BackendTimeout
from ohttp.bhttp import Fields

__all__ = [
    "AiohttpAppBackend",
    "AsgiApp",
    "AsgiBackend",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "CallableBackend",
    "EchoBackend",
    "Fields",
    "HttpOriginBackend",
    "Message",
    "OriginSettings",
    "PoolUse",
    "Receive",
    "Scope",
    "Send",
    "StreamedResponse",
    "StreamingBackend",
    "asgi_scope",
    "backend_authority",
    "backend_from_spec",
    "default_authority",
    "echo_body",
    "strip_connection_fields",
]
