"""What the front-server site renderers share (``deploy/apache/render.py``, ``deploy/nginx/render.py``):
reading ``pymager.ini``, checking the values a template quotes, filling its ``@NAME@`` placeholders,
and the command line's exit on a value that cannot be rendered.

A front server serves derived files from disk with the headers pymager would send, so its site is
rendered from the same settings: data directory, ``Cache-Control``, ETag formula, body limit.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from pymager.config import ConfigError, EtagStyle, Settings, load_settings
from pymager.errors import PymagerError
from pymager.web.errors import problem_type, status_for

# Paths end up in rewrite conditions and file tests, where "$", "%", "\" and spaces have meanings of
# their own (in Apache and in nginx alike).
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class RenderError(Exception):
    """The site configuration cannot be rendered; the message names the value at fault."""


def problem(error: PymagerError, forbidden: str) -> str:
    """The JSON body of pymager's own problem for ``error`` (as ``error_problem`` shapes it, which would
    also log an unavailable service), for a front server to answer itself; refused if it holds one of
    the ``forbidden`` characters of the template's quoting."""
    text = json.dumps(
        {
            "type": problem_type(type(error)),
            "title": error.title,
            "status": status_for(error),
            "detail": error.detail,
        }
    )
    if any(char in text for char in forbidden):
        raise RenderError(f"the problem {text!r} cannot be quoted in the site")
    return text


def load(config: Path, etag_style: EtagStyle) -> Settings:
    """The settings of ``config``, which must compute ETags as the front server does (``etag_style``)."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise RenderError(str(exc)) from None
    if settings.etag_style != etag_style:
        raise RenderError(
            f"[pymager] etag_style = {settings.etag_style}: this site needs etag_style = {etag_style}, "
            "so that pymager sends the ETag the front server sends for the same file"
        )
    return settings


def path(name: str, value: Path) -> str:
    text = str(value)
    if not _SAFE_PATH.match(text):
        raise RenderError(f"{name} = {text!r}: use an absolute path of letters, digits and _ . / + -")
    return text


def account(key: str, value: str) -> str:
    if not _ACCOUNT.match(value):
        raise RenderError(f"{key} = {value!r}: not a user or group name")
    return value


def quoted(name: str, value: str, forbidden: str = '"\\\n\r') -> str:
    """A value for inside a double-quoted argument, free of the characters that would end or escape it."""
    if any(char in value for char in forbidden):
        shown = " ".join(repr(char) for char in forbidden)
        raise RenderError(f"{name} = {value!r}: none of {shown} is allowed")
    return value


def fill(template: Path, values: Mapping[str, str]) -> str:
    """The template's text with each ``@NAME@`` replaced by ``values[NAME]``."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template.read_text(encoding="utf-8"))


def emit(program: str, render: Callable[[], str], output: Path | None) -> int:
    """Write what ``render`` returns to ``output`` (standard output if ``None``): exit status 0, or 2
    with one line on standard error when a value cannot be rendered."""
    try:
        text = render()
    except RenderError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    return 0
