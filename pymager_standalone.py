#!/usr/bin/env python3
"""Run pymager on CherryPy's own HTTP server.

    pymager_standalone.py [--config PATH]
                          [--migrate | --check | --repair | --hash-key | --sign PATH
                           | --purge-derived (ID… | --all)]

The configuration file is PATH, else ``$PYMAGER_CONFIG``, else ``./pymager.ini``. The flags are those of
``pymager.cli.legacy``; the installed ``pymager`` command has the same actions as subcommands.
"""

from __future__ import annotations

import sys

from pymager.cli.legacy import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
