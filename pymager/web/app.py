"""The CherryPy application: routes, dispatcher and error handling, built from a service."""

from __future__ import annotations

from typing import Any

import cherrypy

from pymager.config import Settings
from pymager.interfaces import IImageService, IMetrics
from pymager.web.auth import announce, write_auth
from pymager.web.bodies import ClientTimedOut, discard_unread, refuse_oversized
from pymager.web.errors import error_page, handle_exception, problems
from pymager.web.resources import DerivedResource, HealthResource, MetricsResource, OriginalResource

# The multipart envelope (boundaries, part headers) around the file, allowed above max_upload_bytes.
MULTIPART_ALLOWANCE = 64 * 1024


class Root:
    """Not exposed itself: ``/`` is 404; its attributes are the resources."""

    def __init__(self, service: IImageService, metrics: IMetrics, settings: Settings) -> None:
        self.original = OriginalResource(service, metrics, settings)
        self.derived = DerivedResource(service, settings)
        self.health = HealthResource(service)
        self.metrics = MetricsResource(metrics)


def app_config(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "/": {
            "request.dispatch": cherrypy.dispatch.MethodDispatcher(),
            "request.error_response": handle_exception,
            "request.show_tracebacks": False,
            "request.show_mismatched_params": False,
            "request.methods_with_bodies": ("POST",),
            # A stalled upload leaves CherryPy for cheroot, which closes the connection quietly (408).
            "request.throws": (KeyboardInterrupt, SystemExit, cherrypy.InternalRedirect, ClientTimedOut),
            "wsgi.ExceptionTrapper.throws": (KeyboardInterrupt, SystemExit, ClientTimedOut),
            "request.body.maxbytes": settings.max_upload_bytes + MULTIPART_ALLOWANCE,
            "error_page.default": error_page,
            "tools.problems.on": True,
            "tools.refuse_oversized.on": True,
            "tools.discard_unread.on": True,
            "tools.write_auth.on": bool(settings.api_keys),
            "tools.write_auth.key_hashes": settings.api_keys,
            "tools.encode.on": False,
            "tools.trailing_slash.on": False,
        }
    }


def make_app(service: IImageService, metrics: IMetrics, settings: Settings) -> cherrypy.Application:
    """A WSGI-callable CherryPy application serving pymager's HTTP API."""
    cherrypy.tools.problems = problems
    cherrypy.tools.write_auth = write_auth
    cherrypy.tools.refuse_oversized = refuse_oversized
    cherrypy.tools.discard_unread = discard_unread
    announce(settings.api_keys)
    root = Root(service, metrics, settings)
    return cherrypy.Application(root, script_name="", config=app_config(settings))
