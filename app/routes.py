"""Which route a request goes to, found outside the router: for a request answered before
routing (refused by a limit, or matching no route), whose metrics label and error shape still
follow the route it was for."""

from __future__ import annotations

import weakref

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

# each app's routes, flattened once, on the first request that needs them (all are added by then)
_ROUTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def api_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Every route and mount, with those of included routers (which this FastAPI keeps as wrappers)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        found += api_routes(included.routes) if included is not None else [route]
    return found


def find_route(scope: Scope) -> BaseRoute | None:
    """The route (or mount) that ``scope`` matches in its app, chosen as the router chooses: the
    first full match, else the first partial one (a path whose method is not allowed)."""
    app = scope.get("app")
    if app is None:
        return None
    routes = _ROUTES.get(app)
    if routes is None:
        routes = _ROUTES[app] = api_routes(app.router.routes)
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial
