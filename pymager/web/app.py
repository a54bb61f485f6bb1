"""The CherryPy application: routes, dispatcher and error handling, built from a service.

pymager configures CherryPy lean. Everything fixed is a class attribute of ``Request`` or an argument
of ``Dispatcher``, not config: config set on the application is merged and applied again on every
request, and each tool attaches its hooks per request. So the dispatcher sets an empty per-request
config, no tool runs, and the few things the tools did (413 for a declared body over the limit, write
authentication, problems for pymager's errors) are done once by ``Dispatcher.handle`` around the
resource's method. What remains per request is CherryPy's core: headers, dispatch, the handler,
``finalize``, the access log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import cherrypy

from pymager.config import Settings
from pymager.errors import MethodNotAllowed, NoSuchResource, PymagerError
from pymager.interfaces import IImageService, IMetrics
from pymager.web.auth import WriteGuard, announce
from pymager.web.bodies import ClientTimedOut, body_limit, discard_unread, oversized
from pymager.web.console import ConsoleResource
from pymager.web.errors import error_page, handle_exception, problem_for
from pymager.web.openapi import OpenApiResource
from pymager.web.resources import (
    DerivedResource,
    HealthResource,
    InfoResource,
    ListingResource,
    MetricsResource,
    OriginalResource,
    OriginalRoutes,
)

log = logging.getLogger(__name__)

Handler = Callable[..., object]

_NO_CONFIG: dict[str, Any] = {}  # the per-request config: nothing for CherryPy to apply


class Dispatcher:
    """Routes ``/<resource>/<segments…>`` to the resource's method (HEAD is answered by GET).

    Paths are split as CherryPy's own dispatchers split them (empty segments dropped, an encoded
    slash inside a segment kept as ``/``). Every response of an existing resource carries ``Allow``;
    no resource is 404 and no such method 405, both problems of pymager's errors.
    """

    def __init__(self, resources: dict[str, object], guard: WriteGuard, limit: int) -> None:
        self._resources = resources
        self._guard = guard
        self._limit = limit
        self._allow: dict[type, tuple[tuple[str, ...], str]] = {}

    def __call__(self, path_info: str) -> None:
        request = cherrypy.serving.request
        request.config = _NO_CONFIG
        segments = [segment for segment in path_info.split("/") if segment]
        name = segments[0] if segments else ""
        resource = self._resources.get(name)
        if resource is None:
            request.handler = functools.partial(self.handle, _raiser(NoSuchResource(path_info)))
            return
        atoms = tuple(segment.replace("%2F", "/") for segment in segments[1:])
        route = getattr(resource, "route", None)
        if route is not None:  # a name with several resources under it (/original, /original/<id>, …)
            resource, atoms = route(atoms, path_info)
        allowed, allow_header = self._allowed(resource)
        cherrypy.serving.response.headers["Allow"] = allow_header
        method = request.method
        handler: Handler | None = getattr(resource, "GET" if method == "HEAD" else method, None)
        if handler is None or method not in allowed:
            request.handler = functools.partial(self.handle, _raiser(MethodNotAllowed(method, allowed)))
            return
        request.handler = functools.partial(self.handle, handler, atoms, guarded=True)

    def _allowed(self, resource: object) -> tuple[tuple[str, ...], str]:
        """The methods of ``resource`` and its ``Allow`` header, found once per resource class."""
        known = self._allow.get(type(resource))
        if known is None:
            allowed = _allowed(resource)
            known = self._allow[type(resource)] = (allowed, ", ".join(allowed))
        return known

    def handle(self, handler: Handler, atoms: tuple[str, ...] = (), guarded: bool = False) -> object:
        """Run ``handler`` with the path's atoms: after the 413 for a declared body over the limit and
        (for a write of an existing route) the API key check; a ``PymagerError`` becomes its problem."""
        request = cherrypy.serving.request
        request.body.maxbytes = self._limit
        try:
            too_large = oversized(request.headers.get("Content-Length"), self._limit)
            if too_large is not None:
                request.process_request_body = False
                raise too_large
            if guarded:
                self._guard.check(request.method, request.headers.get("Authorization"))
            return handler(*atoms)
        except PymagerError as error:
            return problem_for(error)


def _allowed(resource: object) -> tuple[str, ...]:
    methods = {name for name in dir(resource) if name.isupper()}
    if "GET" in methods:
        methods.add("HEAD")
    return tuple(sorted(methods))


def _raiser(error: PymagerError) -> Handler:
    def fail(*_atoms: str) -> object:
        raise error

    return fail


class Request(cherrypy._cprequest.Request):  # type: ignore[misc]
    """CherryPy's request with pymager's fixed settings as class attributes: set in config, CherryPy
    would apply them again on every request. ``make_app`` subclasses it with the dispatcher and the
    body limit of one application."""

    dispatch: ClassVar[Dispatcher]
    body_limit: ClassVar[int]
    error_response = staticmethod(handle_exception)
    # A class attribute, not config: also for errors found before config applies (no Host header).
    error_page: ClassVar[dict[str, Any]] = {"default": error_page}
    show_tracebacks = False
    show_mismatched_params = False
    methods_with_bodies = ("POST",)
    # Only an upload reads its body, and only once its id is valid and free (read_upload); any other
    # request's body is discarded unread, so a POST to /derived gets its 405, not a 411 or 400.
    process_request_body = False
    # A stalled upload leaves CherryPy for cheroot, which closes the connection quietly (408).
    throws = (KeyboardInterrupt, SystemExit, cherrypy.InternalRedirect, ClientTimedOut)

    def get_resource(self, path: str) -> None:
        """The one dispatcher, without looking for another in the application's config."""
        self.dispatch(path)

    def respond(self, path_info: str) -> None:
        """CherryPy's, then whatever body the resource left unread is read and dropped in blocks
        (``pymager.web.bodies``); a client that stalls in it leaves as ``ClientTimedOut`` (408)."""
        super().respond(path_info)
        response = cherrypy.serving.response
        repeated = getattr(response, "repeated_headers", None)
        if repeated:  # a header sent twice (two challenges): CherryPy's header map holds one of each
            response.header_list.extend(repeated)
        discard_unread(self, self.body_limit)

    def process_query_string(self) -> None:
        """Not parsed: pymager takes no query parameters (ids come from the path alone), so a query
        string is ignored on every route. CherryPy's parsing answered a query string that is not
        UTF-8 with a 404, even for an image that exists. (The one exception, a derived URL's signature,
        is read raw by ``DerivedResource`` when url keys are set.)"""


def make_app(service: IImageService, metrics: IMetrics, settings: Settings) -> cherrypy.Application:
    """The CherryPy application serving pymager's HTTP API."""
    announce(settings.api_keys)
    if settings.url_keys:
        ids = ", ".join(key.key_id for key in settings.url_keys)
        log.info("derived images are generated only for signed URLs (url keys %s; the first signs)", ids)
    guard = WriteGuard(settings.api_keys)
    resources: dict[str, object] = {
        "original": OriginalRoutes(
            ListingResource(service, guard),
            OriginalResource(service, metrics, settings),
            InfoResource(service, settings, guard),
        ),
        "derived": DerivedResource(service, settings),
        "health": HealthResource(service),
        "metrics": MetricsResource(metrics),
        "openapi.json": OpenApiResource(),
    }
    if settings.console:  # off: /console is no resource (404), like any unknown path
        resources["console"] = ConsoleResource()
    limit = body_limit(settings)
    application = cherrypy.Application(
        None,
        script_name="",
        config={"/": {"wsgi.ExceptionTrapper.throws": (KeyboardInterrupt, SystemExit, ClientTimedOut)}},
    )
    attributes = {
        "dispatch": Dispatcher(resources, guard, limit),
        "body_limit": limit,
    }
    application.request_class = type("Request", (Request,), attributes)
    return application
