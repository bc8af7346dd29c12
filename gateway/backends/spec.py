"""The backend named on the command line (``--backend``)."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.echo import EchoBackend
from gateway.backends.origin import DEFAULT_SETTINGS, HttpOriginBackend, OriginSettings
from gateway.config import default_authority

__all__ = ["backend_from_spec"]


def backend_from_spec(spec: str, settings: OriginSettings = DEFAULT_SETTINGS) -> Backend:
    """``echo``, ``processing`` or an ``http(s)://`` origin URL, as given to ``--backend``;
    ``settings`` apply to the client of an origin."""
    default_authority(spec)  # ValueError for any other spec
    if spec == "echo":
        return EchoBackend()
    if spec == "processing":
        from gateway.processing import ProcessingBackend  # lazily: the app is heavier

        return ProcessingBackend()
    return HttpOriginBackend(spec, settings)
