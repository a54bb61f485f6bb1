"""Who holds a generation claim: ``<host>:<pid>:<token>``, and whether that process is gone.

A claim carries its owner's host and process id, so a process on the same host can tell at once that
the owner died (kill -9, OOM) instead of waiting for the claim to age past ``generation_timeout``.
Owners on other hosts are only ever judged by age.
"""

from __future__ import annotations

import os
import socket
import uuid

_HOST = socket.gethostname()[:40]


def new_owner() -> str:
    """A unique owner name for one claim by this process."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def file_tag() -> str:
    """A filename-safe tag of this process (``<host>~<pid>~``) for temporary files it creates."""
    return f"{_HOST}~{os.getpid()}~"


def owner_of_tag(name: str) -> str:
    """The owner (``<host>:<pid>:``) encoded in a name containing ``file_tag()``, or ``""``."""
    host, separator, rest = name.partition("~")
    pid, separator2, _ = rest.partition("~")
    if not (separator and separator2 and pid.isdigit()):
        return ""
    return f"{host}:{pid}:"
