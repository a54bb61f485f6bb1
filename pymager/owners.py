"""Who holds a generation claim or created a temporary file, and whether that process is gone.

An owner is ``<host>:<pid>:<token>``. ``<host>`` is a short readable prefix of the hostname and a hash of
all of it (``web-1.a3f09c2b``): at most 33 characters, so an owner always fits the registry's 64, and
two hosts whose names share a long prefix (pods of one deployment) never pass for one another. A
process on the same host can tell at once that an owner died (kill -9, OOM) instead of waiting for its
claim to age past ``generation_timeout``; owners on other hosts can only be judged by age.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid


def _host_tag(hostname: str) -> str:
    digest = hashlib.sha256(hostname.encode()).hexdigest()[:8]
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in hostname[:24])
    return f"{readable}.{digest}"


_HOST = _host_tag(socket.gethostname())


def new_owner() -> str:
    """A unique owner name for one claim by this process."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def owner_alive(owner: str) -> bool | None:
    """Whether the owner's process exists: ``True`` or ``False`` for a process of this host, ``None``
    for another host's (or an owner that cannot be read)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


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
