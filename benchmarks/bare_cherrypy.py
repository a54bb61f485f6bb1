"""The hit-path baseline: a minimal CherryPy app that only ``serve_file``s one file at ``/file``.

    python benchmarks/bare_cherrypy.py --file PATH --port PORT --thread-pool N

It runs with the same server settings as ``pymager_standalone.py`` (production environment, no
screen logging, the same socket queue) and logs the same way (an access line per request through
Python logging, as pymager's standalone server does), so the difference measured is pymager's own work.
"""

from __future__ import annotations

import argparse
import logging
import sys

import cherrypy
from cherrypy.lib.static import serve_file


class Root:
    def __init__(self, path: str) -> None:
        self._path = path

    @cherrypy.expose  # type: ignore[untyped-decorator]
    def file(self) -> object:
        return serve_file(self._path, content_type="image/jpeg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--thread-pool", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cherrypy.config.update(
        {
            "environment": "production",
            "engine.autoreload.on": False,
            "log.screen": False,
            "server.socket_host": "127.0.0.1",
            "server.socket_port": args.port,
            "server.thread_pool": args.thread_pool,
            "server.socket_timeout": 10,
            "server.socket_queue_size": 128,
        }
    )
    cherrypy.tree.mount(Root(args.file), "", {"/": {"tools.encode.on": False}})
    cherrypy.engine.signals.subscribe()
    cherrypy.engine.start()
    cherrypy.engine.block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
