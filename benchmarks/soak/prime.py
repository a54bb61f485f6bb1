"""Before the soak's clock starts, each server is taken once to the peak memory the load can ask of it:
as many concurrent uploads of the largest pictures as the load has client threads, then as many
concurrent cold derivations of them, then they are deleted. A server keeps freed memory for the next
peak (one malloc heap that keeps its top: pymager/process.py), so without this the first time the
random load happens to line up its largest requests shows as growth, in whatever minute it falls."""

from __future__ import annotations

import threading
from collections.abc import Callable

from benchmarks.soak import client, pictures
from benchmarks.soak.load import Target

# The largest pictures of the load, and derivations that read their largest reduced copies.
_LARGEST = ("jpeg-large", "png-alpha", "webp-still")
_SIZES = ("1200x800-fit.webp", "1024x768.avif", "800x0-fit.png", "640x640-pad.jpg")


def prime(targets: list[Target], threads: int, factory: pictures.PictureFactory) -> None:
    """Peak each target once with ``threads`` concurrent requests of each heavy kind; raise if any is
    not answered as it must be (the soak should not start on a server that cannot do this)."""
    for target in targets:
        _prime_one(target, threads, factory)


def _prime_one(target: Target, threads: int, factory: pictures.PictureFactory) -> None:
    ids = [f"prime-{target.name}-{index}" for index in range(threads)]

    def upload(index: int, image_id: str) -> None:
        template = pictures.TEMPLATES_BY_NAME[_LARGEST[index % len(_LARGEST)]]
        data = factory.version_bytes(template, index % len(pictures.PALETTE), b"p" * pictures.TAG_BYTES)
        body, content_type = client.multipart({"file": ("p", template.content_type, data)})
        headers = {"Content-Type": content_type}
        _expect(client.request(target.port, "POST", f"/original/{image_id}", body, headers), 201)

    def derive(index: int, image_id: str) -> None:
        path = f"/derived/{image_id}-{_SIZES[index % len(_SIZES)]}"
        _expect(client.request(target.port, "GET", path), 200)

    def delete(_index: int, image_id: str) -> None:
        _expect(client.request(target.port, "DELETE", f"/original/{image_id}"), 204)

    for step in (upload, derive, delete):
        _together(ids, step)


def _together(ids: list[str], step: Callable[[int, str], None]) -> None:
    failures: list[BaseException] = []

    def run(index: int, image_id: str) -> None:
        try:
            step(index, image_id)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(index, image_id)) for index, image_id in enumerate(ids)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def _expect(answer: client.Answer, status: int) -> None:
    if answer.status != status:
        raise RuntimeError(
            f"priming: expected {status}, got {answer.status or answer.error}: {answer.body[:200]!r}"
        )
