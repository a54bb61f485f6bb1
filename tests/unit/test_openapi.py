"""The OpenAPI document is valid OpenAPI 3.1 and says what the README's API table says: the same routes,
methods and statuses (the failures any request may meet, 408, 413 and 500, are the table's "any route"
rows)."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate

from pymager.web.errors import STATUS_BY_ERROR, problem_type
from pymager.web.openapi import document

README = Path(__file__).resolve().parents[2] / "README.md"
_GENERIC = {408, 413, 500}
# README routes as the document names them.
_ROUTES = {
    "/original/<id>": "/original/{id}",
    "/original/<id>/info": "/original/{id}/info",
    "/original": "/original",
    "/derived/<id>-<W>x<H>[-<mode>].<ext>": "/derived/{segment}",
    "/health": "/health",
    "/metrics": "/metrics",
    "/openapi.json": "/openapi.json",
    "/console`, `/console/<file>": "/console",
}


def readme_table() -> dict[tuple[str, str], set[int]]:
    """(route, method) → statuses, from the README's API table."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| route | method | status | when |") :]
    table = table[: table.index("\n\n")]
    found: dict[tuple[str, str], set[int]] = {}
    route = methods = ""
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0]:
            route = cells[0].strip("`")
        if cells[1]:
            methods = cells[1]
        if route not in _ROUTES:
            continue  # "any route …" rows
        for method in re.findall(r"\b(GET|HEAD|POST|DELETE)\b", methods.split("(")[0]):
            statuses = {int(status) for status in re.findall(r"\b[1-5][0-9][0-9]\b", cells[2])}
            found.setdefault((_ROUTES[route], method.lower()), set()).update(statuses)
    return found


def document_table() -> dict[tuple[str, str], set[int]]:
    return {
        (path, method): {int(status) for status in operation["responses"]}
        for path, operations in document()["paths"].items()
        if path != "/console/{file}"  # the README names both console paths in one row
        for method, operation in operations.items()
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(document())  # type: ignore[arg-type]


def test_the_readme_api_table_and_the_document_name_the_same_operations_and_statuses() -> None:
    readme = readme_table()
    documented = document_table()
    assert set(readme) == set(documented)
    for operation, statuses in documented.items():
        assert readme[operation] - _GENERIC == statuses - _GENERIC, operation


def test_the_document_names_every_problem_type() -> None:
    problem = document()["components"]["schemas"]["Problem"]["properties"]
    assert set(problem["type"]["enum"]) == {problem_type(error) for error in STATUS_BY_ERROR}
    assert set(problem["status"]["enum"]) == set(STATUS_BY_ERROR.values())
