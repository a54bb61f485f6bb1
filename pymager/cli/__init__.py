"""The ``pymager`` command: one program, a subcommand per action.

    pymager serve | migrate | check | repair | hash-key | sign PATH | purge-derived (ID… | --all)
    pymager import DIR | pregenerate | info ID | ls | rm ID…      (through the HTTP API: --url, --key)

Built on click (``pymager.cli.app``): explicit groups and options, typed, its own exit codes. This
package imports nothing itself, so that ``pymager_standalone.py`` (``pymager.cli.legacy``) and a server
load neither click's group nor the client's code. The flags of ``pymager_standalone.py`` are still
understood (``pymager --config X --migrate``).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from pymager.cli.app import main as run

    return run(argv)
