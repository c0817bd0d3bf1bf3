"""Every URL pattern of the project, with what its path parameters are, and real URLs built from them.

The cross-tenant suite is generated from this walk, so a new endpoint is probed (or fails for want of a
parameter mapping) without anyone remembering to add a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

_ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


@dataclass(frozen=True)
class Endpoint:
    route: str  # the patterns' text, joined: "app/conversations/<int:number>/"
    chain: tuple  # the URLResolver/URLPattern patterns from the root to this one
    view: str  # dotted path of the view function or class
    params: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    @property
    def callback(self):
        return self.chain[-1].callback

    def methods(self) -> tuple[str, ...]:
        """The methods the view declares (a DRF route's actions, a class's handlers); a function view declares
        none we can read, so it gets GET and POST, the two an HTML page of ours answers."""
        actions = getattr(self.callback, "actions", None)
        if actions:
            return tuple(method for method in HTTP_METHODS if method in actions)
        view_class = getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)
        if view_class is not None:
            return tuple(method for method in HTTP_METHODS if hasattr(view_class, method))
        return ("get", "post")

    def url(self, values: dict[str, object]) -> str:
        """The path with each parameter replaced by `values[name]`, checked to resolve back to this view."""
        path = "/" + "".join(_fill(piece.pattern, values) for piece in self.chain)
        match = resolve(path)
        assert match.func is self.callback, f"{path} resolved to {match.func}, not {self.view}"
        return path


def _fill(pattern, values: dict[str, object]) -> str:
    if isinstance(pattern, RoutePattern):
        def route_value(found: re.Match) -> str:
            converter = pattern.converters[found["name"]]
            return converter.to_url(values[found["name"]])

        return _ROUTE_PARAMETER.sub(route_value, str(pattern))
    if isinstance(pattern, RegexPattern):
        text = _REGEX_GROUP.sub(lambda found: str(values[found["name"]]), str(pattern))
        return text.lstrip("^").rstrip("$").replace("/?", "/").replace("\\.", ".")
    raise TypeError(f"Unknown pattern type {type(pattern)!r}")


def view_path(callback) -> str:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
    return f"{view.__module__}.{view.__qualname__}"


def _walk(resolver: URLResolver, chain: tuple):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, (*chain, entry))
        elif isinstance(entry, URLPattern):
            yield (*chain, entry)


def endpoints(*, skip_prefixes: tuple[str, ...] = ()) -> list[Endpoint]:
    found = []
    for chain in _walk(get_resolver(), ()):
        route = "".join(str(piece.pattern) for piece in chain)
        if route.startswith(skip_prefixes):
            continue
        params = tuple(name for piece in chain for name in piece.pattern.regex.groupindex)
        found.append(Endpoint(route=route, chain=chain, view=view_path(chain[-1].callback), params=params))
    return found
