"""The CherryPy application: routes, dispatcher and error handling, built from a service."""

from __future__ import annotations

from typing import Any

import cherrypy

from pymager.config import Settings
from pymager.interfaces import IImageService, IMetrics
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
            "request.body.maxbytes": settings.max_upload_bytes + MULTIPART_ALLOWANCE,
            "error_page.default": error_page,
            "tools.problems.on": True,
            "tools.encode.on": False,
            "tools.trailing_slash.on": False,
        }
    }


def make_app(service: IImageService, metrics: IMetrics, settings: Settings) -> cherrypy.Application:
    """A WSGI-callable CherryPy application serving pymager's HTTP API."""
    cherrypy.tools.problems = problems
    root = Root(service, metrics, settings)
    return cherrypy.Application(root, script_name="", config=app_config(settings))
