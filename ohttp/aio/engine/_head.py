"""A request head as the engine hands it to a handler."""

from __future__ import annotations

__all__ = ["METHODS", "Head", "Headers", "parsed_head", "request_path"]


class Headers:
    """Header fields by lower-case name (RFC 9110 §5.1), each name's values in arrival order,
    latin-1 text as on the wire. Made by the engine's parser over the index it filled."""

    __slots__ = ("_index",)

    def __init__(self, index: dict[str, list[str]]) -> None:
        self._index = index

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (lower case), or None."""
        values = self._index.get(name)
        return None if values is None else values[0]

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` (lower case), in order."""
        return self._index.get(name, [])

    def joined(self, name: str) -> str | None:
        """The values of ``name`` joined with ", " (RFC 9110 §5.3), or None when absent."""
        values = self._index.get(name)
        return None if values is None else ", ".join(values)

    def __contains__(self, name: str) -> bool:
        return name in self._index


class Head:
    """A complete request head. ``path`` is the request target's path without its query
    (origin or absolute form); ``content_length`` is None for a chunked body (RFC 9112 §6.3)."""

    __slots__ = ("chunked", "content_length", "headers", "http_version", "method", "path",
                 "target")

    def __init__(self, method: str, target: str, path: str, headers: Headers,  # noqa: PLR0917
                 http_version: str, content_length: int | None, chunked: bool) -> None:
        self.method, self.target, self.path, self.headers = method, target, path, headers
        self.http_version, self.content_length, self.chunked = http_version, content_length, chunked


# The methods llhttp knows, as text made once (a decode per request otherwise).
METHODS = {name.encode(): name for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")}


def request_path(target: str) -> str:
    """The path of an origin-form or absolute-form request target (RFC 9112 §3.2)."""
    if target[:1] == "/":
        return target if "?" not in target else target.partition("?")[0]
    if target == "*" or "://" not in target:
        return target
    _scheme, _, rest = target.partition("://")
    slash = rest.find("/")
    return "/" if slash < 0 else rest[slash:].partition("?")[0]


def parsed_head(url: list[bytes], fields: dict[str, list[str]], method: bytes,
                http_version: str) -> Head:
    """The head of a request llhttp parsed: the pieces of its target, its field index (lower
    case names), its method and version."""
    target = (url[0] if len(url) == 1 else b"".join(url)).decode("latin-1")
    length = fields.get("content-length")  # llhttp checked: one value, digits only
    chunked = "transfer-encoding" in fields  # llhttp checked: it ends in chunked
    content_length = None if chunked else int(length[0]) if length else 0
    return Head(METHODS.get(method) or method.decode("ascii"), target, request_path(target),
                Headers(fields), http_version, content_length, chunked)
