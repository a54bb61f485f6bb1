"""The CherryPy application: routes, dispatcher and error handling, built from a service."""

from __future__ import annotations

from typing import Any, ClassVar

import cherrypy

from pymager.config import Settings
from pymager.interfaces import IImageService, IMetrics
from pymager.web.auth import announce, write_auth
from pymager.web.bodies import ClientTimedOut, body_limit, discard_unread, refuse_oversized
from pymager.web.derived import DerivedApp, Router
from pymager.web.errors import error_page, handle_exception, problems
from pymager.web.resources import HealthResource, MetricsResource, OriginalResource


class MethodDispatcher(cherrypy.dispatch.MethodDispatcher):  # type: ignore[misc]
    """CherryPy's method dispatcher, with each resource class's ``Allow`` header computed once: the
    original builds it from ``dir(resource)`` on every request, a quarter of a cache hit's own cost."""

    def __init__(self) -> None:
        super().__init__()
        self._allow: dict[type[object], str] = {}

    def __call__(self, path_info: str) -> None:
        request = cherrypy.serving.request
        resource, vpath = self.find_handler(path_info)
        if not resource:
            request.handler = cherrypy.NotFound()
            return
        allow = self._allow.get(type(resource))
        if allow is None:
            methods = {name for name in dir(resource) if name.isupper()}
            if "GET" in methods:
                methods.add("HEAD")
            allow = self._allow[type(resource)] = ", ".join(sorted(methods))
        cherrypy.serving.response.headers["Allow"] = allow
        method = request.method.upper()
        handler = getattr(resource, method, None)
        if handler is None and method == "HEAD":
            handler = getattr(resource, "GET", None)
        if handler is None:
            request.handler = cherrypy.HTTPError(405)
            return
        if hasattr(handler, "_cp_config"):
            request.config.update(handler._cp_config)
        atoms = [atom.replace("%2F", "/") for atom in vpath]  # as CherryPy's: leftover encoded slashes
        request.handler = cherrypy.dispatch.LateParamPageHandler(handler, *atoms)


class Request(cherrypy._cprequest.Request):  # type: ignore[misc]
    """CherryPy's request with pymager's fixed settings as class attributes: set in config, CherryPy
    would apply them again on every request."""

    error_response = staticmethod(handle_exception)
    # A class attribute, not config: also for errors found before config applies (no Host header).
    error_page: ClassVar[dict[str, Any]] = {"default": error_page}
    show_tracebacks = False
    show_mismatched_params = False
    methods_with_bodies = ("POST",)
    # Only an upload reads its body, and only once its id is valid and free (read_file_field); any other
    # request's body is discarded unread, so a POST to /derived gets its 405, not a 411 or 400.
    process_request_body = False
    # A stalled upload leaves CherryPy for cheroot, which closes the connection quietly (408).
    throws = (KeyboardInterrupt, SystemExit, cherrypy.InternalRedirect, ClientTimedOut)

    def respond(self, path_info: str) -> None:
        """CherryPy's, then whatever body the resource left unread is read and dropped in blocks
        (``pymager.web.bodies``); a client that stalls in it leaves as ``ClientTimedOut`` (408)."""
        super().respond(path_info)
        discard_unread(self)

    def process_query_string(self) -> None:
        """Not parsed: pymager takes no query parameters (ids come from the path alone), so a query
        string is ignored on every route, as on ``/derived``. CherryPy's parsing answered a query
        string that is not UTF-8 with a 404, even for an image that exists."""


class Root:
    """Not exposed itself: ``/`` is 404; its attributes are the resources (``/derived`` is routed
    before CherryPy, see ``pymager.web.derived``)."""

    def __init__(self, service: IImageService, metrics: IMetrics, settings: Settings) -> None:
        self.original = OriginalResource(service, metrics, settings)
        self.health = HealthResource(service)
        self.metrics = MetricsResource(metrics)


def app_config(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "/": {
            "request.dispatch": MethodDispatcher(),
            "wsgi.ExceptionTrapper.throws": (KeyboardInterrupt, SystemExit, ClientTimedOut),
            "request.body.maxbytes": body_limit(settings),
            "tools.problems.on": True,
            "tools.refuse_oversized.on": True,
            "tools.write_auth.on": bool(settings.api_keys),
            "tools.write_auth.key_hashes": settings.api_keys,
            "tools.encode.on": False,
            "tools.trailing_slash.on": False,
        }
    }


def make_app(service: IImageService, metrics: IMetrics, settings: Settings) -> Router:
    """The WSGI application serving pymager's HTTP API: ``/derived`` as plain WSGI, the rest through
    CherryPy."""
    cherrypy.tools.problems = problems
    cherrypy.tools.write_auth = write_auth
    cherrypy.tools.refuse_oversized = refuse_oversized
    announce(settings.api_keys)
    root = Root(service, metrics, settings)
    application = cherrypy.Application(root, script_name="", config=app_config(settings))
    application.request_class = Request
    return Router(DerivedApp(service, settings, application.log), application)
