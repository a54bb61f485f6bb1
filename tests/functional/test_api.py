"""The HTTP contract, row by row, against a real server (SQLite and PostgreSQL registries)."""

from __future__ import annotations

import io
import random
import time
from email.utils import format_datetime, parsedate_to_datetime
from typing import cast

import pytest
import requests
from PIL import Image

from tests import images
from tests.functional.conftest import (
    MAX_DIMENSION,
    MAX_UPLOAD_BYTES,
    Server,
    all_at_once,
    assert_problem,
    raw_post,
    upload,
)

# -- POST /original/<id> ---------------------------------------------------------------------------


def test_upload_creates_original(server: Server, image_id: str) -> None:
    data = images.jpeg(320, 200)
    response = upload(server, image_id, data)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/original/{image_id}"
    body = response.json()
    assert body["id"] == image_id
    assert (body["format"], body["width"], body["height"], body["bytes"]) == ("JPEG", 320, 200, len(data))
    assert body["created"]
    assert server.rows(image_id) == (1, 0)


def test_upload_rejects_duplicate_id_and_keeps_the_original(server: Server, image_id: str) -> None:
    first = images.png(30, 30)
    assert upload(server, image_id, first).status_code == 201
    assert_problem(upload(server, image_id, images.jpeg(10, 10)), 409)
    assert requests.get(server.url(f"/original/{image_id}"), timeout=10).content == first


def test_upload_without_file_field_is_bad_request(server: Server, image_id: str) -> None:
    assert_problem(upload(server, image_id, images.jpeg(), field="picture"), 400)
    assert server.leaves_nothing(image_id)


def test_upload_that_is_not_multipart_is_bad_request(server: Server, image_id: str) -> None:
    response = requests.post(
        server.url(f"/original/{image_id}"),
        data=images.jpeg(),
        headers={"Content-Type": "image/jpeg"},
        auth=server.auth,
        timeout=10,
    )
    assert_problem(response, 400)
    assert server.leaves_nothing(image_id)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nabc"),
        ("multipart/form-data; boundary=zz", b"garbage without any boundary"),
        ("multipart/form-data; boundary=zz", b"--zz\r\nno headers end"),
    ],
)
def test_upload_with_malformed_multipart_is_bad_request(
    server: Server, image_id: str, content_type: str, body: bytes
) -> None:
    response = requests.post(
        server.url(f"/original/{image_id}"),
        data=body,
        headers={"Content-Type": content_type},
        auth=server.auth,
        timeout=10,
    )
    assert_problem(response, 400)
    assert server.leaves_nothing(image_id)


@pytest.mark.parametrize("bad_id", ["bad.id", "a%20b", "%2e%2e", "x" * 129, "%C3%A9"])
def test_upload_with_invalid_id_is_bad_request(server: Server, bad_id: str) -> None:
    stored_before = server.stored_originals()
    response = upload(server, bad_id, images.jpeg(), timeout=10)
    if bad_id == "%2e%2e" and server.behind_apache:
        # Apache decodes %2e and removes the dot segment (RFC 3986 §6.2.2) before routing: "/" is 404.
        assert_problem(response, 404)
    else:
        assert_problem(response, 400)
    assert not server.temporary_files()
    assert server.stored_originals() == stored_before


def test_upload_over_max_upload_bytes_is_too_large(server: Server, image_id: str) -> None:
    data = images.jpeg(64, 64) + b"\0" * (MAX_UPLOAD_BYTES + 1)
    assert_problem(upload(server, image_id, data), 413)
    assert server.leaves_nothing(image_id)


@pytest.mark.parametrize(
    "data",
    [b"just some text", b"<html><body>hi</body></html>", images.tiff(), images.bmp()],
    ids=["text", "html", "tiff", "bmp"],
)
def test_upload_of_unsupported_data_is_bad_request_unsupported_image(
    server: Server, image_id: str, data: bytes
) -> None:
    # 400, as pymager specified it in 2011 and its Java client expects; the type tells the kind.
    assert_problem(upload(server, image_id, data), 400, problem="unsupported-image")
    assert server.leaves_nothing(image_id)


@pytest.mark.parametrize(
    "data",
    [images.jpeg(200, 200)[:-400], images.png(100, 100)[:-60]],
    ids=["jpeg", "png"],
)
def test_upload_of_truncated_image_is_bad_request_corrupt_image(
    server: Server, image_id: str, data: bytes
) -> None:
    assert_problem(upload(server, image_id, data), 400, problem="corrupt-image")
    assert server.leaves_nothing(image_id)


def test_concurrent_uploads_of_one_id_create_exactly_one(server: Server, image_id: str) -> None:
    pictures = [images.jpeg(20 + n, 20) for n in range(50)]
    statuses = all_at_once(50, lambda n: upload(server, image_id, pictures[n]).status_code)
    assert sorted(statuses) == [201] + [409] * 49
    assert server.rows(image_id) == (1, 0)
    assert not server.temporary_files()


# -- GET / HEAD /original/<id> ----------------------------------------------------------------------


def test_get_original_returns_exact_bytes_and_validators(server: Server, image_id: str) -> None:
    data = images.webp(50, 40)
    upload(server, image_id, data)
    response = requests.get(server.url(f"/original/{image_id}"), timeout=10)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["ETag"].startswith('"')
    assert not response.headers["ETag"].startswith("W/")
    assert parsedate_to_datetime(response.headers["Last-Modified"])
    assert "max-age" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Length"] == str(len(data))


def test_head_original_has_headers_and_no_body(server: Server, image_id: str) -> None:
    data = images.gif(20, 20)
    upload(server, image_id, data)
    response = requests.head(server.url(f"/original/{image_id}"), timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Content-Length"] == str(len(data))


def test_conditional_get_original(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg())
    url = server.url(f"/original/{image_id}")
    first = requests.get(url, timeout=10)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    not_modified = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert requests.get(url, headers={"If-None-Match": f'"nope", {etag}'}, timeout=10).status_code == 304
    assert requests.get(url, headers={"If-Modified-Since": last_modified}, timeout=10).status_code == 304
    # RFC 9110: If-None-Match takes precedence; a non-matching tag means 200 whatever the date says.
    both = requests.get(
        url, headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified}, timeout=10
    )
    assert both.status_code == 200
    assert both.content == first.content
    old = format_datetime(parsedate_to_datetime(last_modified).replace(year=2000), usegmt=True)
    assert requests.get(url, headers={"If-Modified-Since": old}, timeout=10).status_code == 200


def test_range_get_original(server: Server, image_id: str) -> None:
    data = images.png(60, 60)
    upload(server, image_id, data)
    url = server.url(f"/original/{image_id}")
    partial = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert partial.status_code == 206
    assert partial.content == data[10:20]
    assert partial.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    suffix = requests.get(url, headers={"Range": "bytes=-5"}, timeout=10)
    assert suffix.status_code == 206
    assert suffix.content == data[-5:]
    stale = requests.get(url, headers={"Range": "bytes=0-4", "If-Range": '"stale"'}, timeout=10)
    assert stale.status_code == 200
    assert stale.content == data
    unsatisfiable = requests.get(url, headers={"Range": f"bytes={len(data) + 10}-"}, timeout=10)
    assert_problem(unsatisfiable, 416)
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(data)}"


def test_get_unknown_original_is_not_found(server: Server, image_id: str) -> None:
    assert_problem(requests.get(server.url(f"/original/{image_id}"), timeout=10), 404)
    assert_problem(requests.get(server.url("/original/bad.id"), timeout=10), 400)


# -- DELETE /original/<id> ---------------------------------------------------------------------------


def test_delete_removes_original_and_every_derived_image(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg(100, 80))
    for segment in ("10x10.jpg", "20x30.png", "5x5.webp"):
        assert requests.get(server.url(f"/derived/{image_id}-{segment}"), timeout=30).status_code == 200
    assert server.rows(image_id) == (1, 3)
    response = requests.delete(server.url(f"/original/{image_id}"), auth=server.auth, timeout=10)
    assert response.status_code == 204
    assert response.content == b""
    assert server.leaves_nothing(image_id)
    assert_problem(requests.get(server.url(f"/original/{image_id}"), timeout=10), 404)
    assert_problem(requests.get(server.url(f"/derived/{image_id}-10x10.jpg"), timeout=10), 404)


def test_delete_unknown_original_is_not_found(server: Server, image_id: str) -> None:
    assert_problem(requests.delete(server.url(f"/original/{image_id}"), auth=server.auth, timeout=10), 404)


# -- GET / HEAD /derived/<id>-<W>x<H>.<ext> ----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ext", "mime", "pil_format"),
    [
        ((100, 100), "jpg", "image/jpeg", "JPEG"),
        ((120, 40), "jpeg", "image/jpeg", "JPEG"),
        ((40, 120), "png", "image/png", "PNG"),
        ((300, 200), "webp", "image/webp", "WEBP"),
        ((16, 16), "gif", "image/gif", "GIF"),
    ],
)
def test_derived_has_exactly_the_requested_size_and_type(
    server: Server, image_id: str, size: tuple[int, int], ext: str, mime: str, pil_format: str
) -> None:
    upload(server, image_id, images.jpeg(200, 150))
    url = server.url(f"/derived/{image_id}-{size[0]}x{size[1]}.{ext}")
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == mime
    with Image.open(io.BytesIO(response.content)) as picture:
        assert picture.format == pil_format
        assert picture.size == size
    again = requests.get(url, timeout=10)
    assert again.content == response.content
    # The same validator by weak comparison: Apache, serving a hit itself, marks the ETag of a file
    # written less than a second ago weak (W/); test_apache.py checks exact equality on older files.
    assert again.headers["ETag"].removeprefix("W/") == response.headers["ETag"]
    assert server.derived_names(image_id, f"{size[0]}x{size[1]}.{'jpg' if ext == 'jpeg' else ext}")


def test_derived_validators_and_conditional_get(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg())
    url = server.url(f"/derived/{image_id}-10x10.png")
    first = requests.get(url, timeout=30)
    assert first.headers["ETag"]
    assert first.headers["Last-Modified"]
    assert first.headers["Cache-Control"]
    assert requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10).status_code == 304
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert requests.get(url, headers=since, timeout=10).status_code == 304
    head = requests.head(url, timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(first.content))


def test_a_large_derived_image_streams_whole_and_by_range(server: Server, image_id: str) -> None:
    # Noise does not compress: a 300x300 PNG is several of the 64 KiB chunks a body is sent in.
    noise = Image.frombytes("RGB", (400, 400), random.Random(3).randbytes(400 * 400 * 3))
    upload(server, image_id, images.jpeg(image=noise, quality=95))
    whole_url = server.url(f"/derived/{image_id}-300x300.png")
    whole = requests.get(whole_url, timeout=30)  # generated by this request
    assert whole.status_code == 200
    assert len(whole.content) > 3 * 64 * 1024
    assert whole.headers["Content-Length"] == str(len(whole.content))
    with Image.open(io.BytesIO(whole.content)) as picture:
        assert picture.size == (300, 300)
    size = len(whole.content)
    start = 70_000
    part = requests.get(whole_url, headers={"Range": f"bytes={start}-"}, timeout=10)
    assert part.status_code == 206
    assert part.content == whole.content[start:]
    assert part.headers["Content-Range"] == f"bytes {start}-{size - 1}/{size}"
    beyond = requests.get(whole_url, headers={"Range": f"bytes={size}-"}, timeout=10)
    assert_problem(beyond, 416)
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
    # A range asked of an image not generated yet: generated, then the range of it.
    cold = requests.get(
        server.url(f"/derived/{image_id}-299x299.png"), headers={"Range": "bytes=100-65635"}, timeout=30
    )
    assert cold.status_code == 206
    assert len(cold.content) == 65536
    assert cold.headers["Content-Range"].startswith("bytes 100-65635/")


def test_derived_carries_no_exif_or_comments(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg(80, 60, gps=True, comment=b"secret comment"))
    for ext in ("jpg", "png", "webp"):
        response = requests.get(server.url(f"/derived/{image_id}-40x30.{ext}"), timeout=30)
        assert response.status_code == 200
        assert images.has_metadata(response.content) == []


def test_derived_over_max_dimension_is_forbidden_before_existence(server: Server, image_id: str) -> None:
    too_big = MAX_DIMENSION + 1
    assert_problem(requests.get(server.url(f"/derived/{image_id}-{too_big}x10.jpg"), timeout=10), 403)
    upload(server, image_id, images.jpeg())
    assert_problem(requests.get(server.url(f"/derived/{image_id}-10x{too_big}.jpg"), timeout=10), 403)
    assert server.rows(image_id) == (1, 0)


def test_derived_with_unknown_extension_is_bad_request(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg())
    for ext in ("bmp", "tiff", "JPG", "svg"):
        assert_problem(requests.get(server.url(f"/derived/{image_id}-10x10.{ext}"), timeout=10), 400)


@pytest.mark.parametrize(
    "segment",
    [
        "{id}.jpg",
        "{id}-10x.jpg",
        "{id}-x10.jpg",
        "{id}-0x10.jpg",
        "{id}-010x10.jpg",
        "{id}-10x10",
        "{id}-10x10.jpg/extra",
        "bad.id-10x10.jpg",
    ],
)
def test_derived_segment_outside_the_grammar_is_not_found(
    server: Server, image_id: str, segment: str
) -> None:
    upload(server, image_id, images.jpeg())
    assert_problem(requests.get(server.url(f"/derived/{segment.format(id=image_id)}"), timeout=10), 404)
    assert server.rows(image_id) == (1, 0)


def test_derived_of_unknown_original_is_not_found(server: Server, image_id: str) -> None:
    assert_problem(requests.get(server.url(f"/derived/{image_id}-10x10.jpg"), timeout=10), 404)
    assert server.leaves_nothing(image_id)


def test_reupload_after_delete_serves_new_derived_images(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg(60, 60, color=(255, 0, 0)))
    url = server.url(f"/derived/{image_id}-8x8.png")
    red = requests.get(url, timeout=30).content
    requests.delete(server.url(f"/original/{image_id}"), auth=server.auth, timeout=10)
    upload(server, image_id, images.jpeg(60, 60, color=(0, 0, 255)))
    blue = requests.get(url, timeout=30).content
    with Image.open(io.BytesIO(red)) as old, Image.open(io.BytesIO(blue)) as new:
        old_pixel = cast(tuple[int, int, int], old.convert("RGB").getpixel((4, 4)))
        new_pixel = cast(tuple[int, int, int], new.convert("RGB").getpixel((4, 4)))
    assert old_pixel[0] > 200
    assert new_pixel[2] > 200
    assert new_pixel[0] < 60


def test_concurrent_requests_for_a_cold_derived_image_get_identical_bytes(
    server: Server, image_id: str
) -> None:
    upload(server, image_id, images.jpeg(800, 600))
    generated_before = server.metric("pymager_derived_generated_total")
    url = server.url(f"/derived/{image_id}-123x77.jpg")
    responses = all_at_once(20, lambda _: requests.get(url, timeout=60))
    bodies = [response.content if response.status_code == 200 else b"" for response in responses]
    assert len(set(bodies)) == 1
    assert bodies[0]
    assert server.rows(image_id) == (1, 1)
    generated_after = server.metric("pymager_derived_generated_total")
    assert generated_after - generated_before == 1


# -- methods, routes, health --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/original/x", "DELETE, GET, HEAD, POST"),
        ("PATCH", "/original/x", "DELETE, GET, HEAD, POST"),
        ("POST", "/derived/x-1x1.jpg", "GET, HEAD"),
        ("DELETE", "/derived/x-1x1.jpg", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
    ],
)
def test_unsupported_method_is_405_with_allow(server: Server, method: str, path: str, allow: str) -> None:
    response = requests.request(method, server.url(path), timeout=10)
    assert_problem(response, 405, problem="method-not-allowed")
    assert response.headers["Allow"] == allow


def test_every_route_answers_with_one_family_of_headers(server: Server, image_id: str) -> None:
    """One framework answers every route: the same ``Server``, an ``Allow`` on every resource's 200,
    and the same validators on both kinds of image (behind Apache, httpd sends its own ``Server``)."""
    upload(server, image_id, images.jpeg(40, 30))
    expected = {
        f"/original/{image_id}": "DELETE, GET, HEAD, POST",
        f"/derived/{image_id}-8x8.png": "GET, HEAD",
        "/health": "GET, HEAD",
        "/metrics": "GET, HEAD",
    }
    servers = set()
    for path, allow in expected.items():
        requests.get(server.url(path), timeout=30)  # a derived image: made first, so the next is a hit
        response = requests.get(server.url(path), timeout=30)
        assert response.status_code == 200, path
        assert response.headers["Allow"] == allow, path
        servers.add(response.headers["Server"])
        if "/original/" in path or "/derived/" in path:
            assert {"ETag", "Last-Modified", "Cache-Control", "Accept-Ranges"} <= response.headers.keys()
    missing = requests.get(server.url("/nothing-here"), timeout=10)
    assert_problem(missing, 404, problem="no-such-resource")
    servers.add(missing.headers["Server"])
    assert len(servers) == 1
    if not server.behind_front:
        assert servers.pop().startswith("CherryPy/")


@pytest.mark.parametrize("path", ["/", "/nothing", "/original/a/b", "/original/a/info/b", "/derived"])
def test_unknown_route_is_not_found(server: Server, path: str) -> None:
    assert_problem(requests.get(server.url(path), timeout=10), 404)


def test_health_is_ok(server: Server) -> None:
    response = requests.get(server.url("/health"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "registry": "ok", "storage": "ok"}


def test_metrics_count_generations_hits_and_uploads(server: Server, image_id: str) -> None:
    before = {
        "generated": server.metric("pymager_derived_generated_total"),
        "from_disk": server.metric("pymager_derived_served_total", source="disk"),
        "fresh": server.metric("pymager_derived_served_total", source="generated"),
        "created": server.metric("pymager_uploads_total", status="201"),
        "conflict": server.metric("pymager_uploads_total", status="409"),
        "timed": server.metric("pymager_derived_generation_seconds_count"),
    }
    upload(server, image_id, images.jpeg())
    upload(server, image_id, images.jpeg())
    for _ in range(3):
        assert requests.get(server.url(f"/derived/{image_id}-9x9.png"), timeout=30).status_code == 200
    response = requests.get(server.url("/metrics"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert server.metric("pymager_derived_generated_total") - before["generated"] == 1
    assert server.metric("pymager_derived_generation_seconds_count") - before["timed"] == 1
    assert server.metric("pymager_derived_served_total", source="generated") - before["fresh"] == 1
    # Behind Apache or nginx the two cache hits never reach Python (test_apache.py, test_nginx.py).
    hits_seen_by_python = 0 if server.behind_front else 2
    assert (
        server.metric("pymager_derived_served_total", source="disk") - before["from_disk"]
        == hits_seen_by_python
    )
    assert server.metric("pymager_uploads_total", status="201") - before["created"] == 1
    assert server.metric("pymager_uploads_total", status="409") - before["conflict"] == 1


def test_every_request_gets_one_access_log_line(server: Server, image_id: str) -> None:
    if server.behind_front:
        pytest.skip("behind a front server, its access log has the lines (hits never reach the app)")
    upload(server, image_id, images.jpeg())
    marker = f"pytest-{image_id}"
    requests_made = [
        ("GET", f"/derived/{image_id}-8x8.jpg", 200),  # generated
        ("GET", f"/derived/{image_id}-8x8.jpg", 200),  # from disk
        ("HEAD", f"/derived/{image_id}-8x8.jpg", 200),
        ("DELETE", f"/derived/{image_id}-8x8.jpg", 405),
        ("GET", f"/derived/{image_id}-0x8.jpg", 404),
        ("GET", f"/original/{image_id}", 200),
    ]
    for method, path, status in requests_made:
        response = requests.request(method, server.url(path), headers={"User-Agent": marker}, timeout=30)
        assert response.status_code == status
    expected = [f'"{method} {path} HTTP/1.1" {status} ' for method, path, status in requests_made]

    def logged() -> list[str]:
        lines = server.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if marker in line]

    deadline = time.monotonic() + 10
    while len(logged()) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)  # the log is written after the response; poll it with a deadline
    lines = logged()
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert start in line, (start, line)
        assert line.endswith(f'"{marker}"')


def test_chunked_upload_is_accepted(server: Server, image_id: str) -> None:
    data = images.jpeg(30, 20)
    body = (
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        + data
        + b"\r\n--zz--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=zz", "Transfer-Encoding": "chunked"}
    status, _ = raw_post(
        server, f"/original/{image_id}", headers, [f"{len(body):x}\r\n".encode(), body, b"\r\n0\r\n\r\n"]
    )
    assert status == 201
    assert requests.get(server.url(f"/original/{image_id}"), timeout=10).content == data


def test_upload_without_length_is_411(server: Server, image_id: str) -> None:
    status, body = raw_post(
        server, f"/original/{image_id}", {"Content-Type": "multipart/form-data; boundary=zz"}, []
    )
    assert status == 411
    assert b'"status": 411' in body
    assert server.leaves_nothing(image_id)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_ids_come_from_the_path_never_the_query_string(server: Server, image_id: str, method: str) -> None:
    # CherryPy binds query parameters to handler arguments; /original?image_id=x must not reach the
    # handler for x (a front server guards /original/ only). /original is the listing: it reads only
    # after and limit (400 for anything else), and takes no POST or DELETE (405; 401 where the front
    # server asks for the password first).
    upload(server, image_id, images.jpeg())
    response = requests.request(
        method,
        server.url(f"/original?image_id={image_id}"),
        files={"file": ("a.jpg", images.jpeg())} if method == "POST" else None,
        timeout=10,
    )
    assert response.status_code in ((400,) if method == "GET" else (401, 405)), response.text
    assert server.rows(image_id) == (1, 0)
    assert_problem(requests.get(server.url(f"/derived?segment={image_id}-10x10.jpg"), timeout=10), 404)


@pytest.mark.parametrize("query", ["x=1", "%ff", "a=%ff%fe&b", "image_id=other"])
@pytest.mark.parametrize("path", ["/original/{id}", "/derived/{id}-10x10.jpg", "/health"])
def test_a_query_string_is_ignored_even_when_not_utf8(
    server: Server, image_id: str, path: str, query: str
) -> None:
    upload(server, image_id, images.jpeg())
    url = server.url(path.format(id=image_id))
    plain = requests.get(url, timeout=30)
    queried = requests.get(f"{url}?{query}", timeout=30)
    assert plain.status_code == 200
    assert queried.status_code == 200, queried.text
    assert queried.content == plain.content or path == "/health"


@pytest.mark.parametrize("path", ["/original/{id}/", "/derived/{id}-10x10.jpg/"])
def test_a_trailing_slash_is_not_a_resource(server: Server, image_id: str, path: str) -> None:
    upload(server, image_id, images.jpeg())
    requests.get(server.url(f"/derived/{image_id}-10x10.jpg"), timeout=30)
    assert_problem(requests.get(server.url(path.format(id=image_id)), timeout=10), 404)


@pytest.mark.parametrize(
    ("header", "status", "content"),
    [
        ("bytes=0-99999999999999999999999", 206, slice(0, None)),  # end clamped to the file
        ("bytes=5-", 206, slice(5, None)),
        ("bytes=-0", 416, None),  # an empty suffix is unsatisfiable
        ("bytes=abc", 200, slice(0, None)),  # invalid: ignored, never a 500
        ("bytes=1-x", 200, slice(0, None)),
        ("bytes=,", 200, slice(0, None)),
        ("bytes=--1", 200, slice(0, None)),
        ("bytes=9-3", 200, slice(0, None)),  # last < first: invalid
        ("items=0-1", 200, slice(0, None)),  # another unit
        ("bytes=0-1,4-5", 200, slice(0, None)),  # several ranges: the whole file
        # Numbers longer than Python's int() takes from a string (4300 digits): still no 500.
        ("bytes=0-" + "9" * 5000, 206, slice(0, None)),
        ("bytes=" + "9" * 5000 + "-", 416, None),
        ("bytes=-" + "9" * 5000, 206, slice(0, None)),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else None,
)
def test_range_edge_cases(
    server: Server, image_id: str, header: str, status: int, content: slice | None
) -> None:
    data = images.png(40, 40)
    upload(server, image_id, data)
    response = requests.get(server.url(f"/original/{image_id}"), headers={"Range": header}, timeout=10)
    if content is None:
        assert_problem(response, status)
        return
    assert response.status_code == status
    assert response.content == data[content]
    assert response.headers["Content-Length"] == str(len(data[content]))
    if status == 206:
        assert response.headers["Content-Range"] == f"bytes {content.start}-{len(data) - 1}/{len(data)}"


def test_an_out_of_range_if_modified_since_is_ignored(server: Server, image_id: str) -> None:
    upload(server, image_id, images.jpeg())
    headers = {"If-Modified-Since": "Sun, 22 Nov 99999999999 16:48:32 GMT"}
    assert requests.get(server.url(f"/original/{image_id}"), headers=headers, timeout=10).status_code == 200


def test_a_post_to_a_read_only_resource_is_405_even_without_a_length(server: Server, image_id: str) -> None:
    status, body = raw_post(server, f"/derived/{image_id}-10x10.jpg", {}, [])
    assert status == 405
    assert b'"status": 405' in body


@pytest.mark.parametrize(
    "part",
    [
        # a 'file' part that is itself multipart
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        b"Content-Type: multipart/mixed; boundary=CC\r\n\r\n"
        b"--CC\r\nContent-Type: text/plain\r\n\r\nhi\r\n--CC--\r\n--zz--\r\n",
        # a part without a filename in an unknown charset
        b'--zz\r\nContent-Disposition: form-data; name="file"\r\n'
        b"Content-Type: text/plain; charset=nonsense\r\n\r\nhello\r\n--zz--\r\n",
    ],
    ids=["nested-multipart", "unknown-charset"],
)
def test_odd_multipart_parts_are_bad_requests(server: Server, image_id: str, part: bytes) -> None:
    if server.behind_apache:
        pytest.skip("raw requests carry no Basic credentials behind Apache")
    headers = {"Content-Type": "multipart/form-data; boundary=zz", "Content-Length": str(len(part))}
    status, body = raw_post(server, f"/original/{image_id}", headers, [part])
    assert status == 400, body
    assert server.leaves_nothing(image_id)


def test_a_chunk_size_too_large_for_any_machine_is_a_bad_request(server: Server, image_id: str) -> None:
    if server.behind_apache:
        pytest.skip("raw requests carry no Basic credentials behind Apache")
    headers = {"Content-Type": "multipart/form-data; boundary=zz", "Transfer-Encoding": "chunked"}
    status, body = raw_post(server, f"/original/{image_id}", headers, [b"ffffffffffffffffffff\r\n--zz\r\n"])
    assert status == 400, body
    assert server.leaves_nothing(image_id)


# -- CDN cache tags ---------------------------------------------------------------------------------


def test_every_image_answer_is_tagged_with_its_original_for_cdn_purges(server: Server, image_id: str) -> None:
    """Originals, their info, derived images made now and served again (behind a front server, from
    disk without Python), auto answers and 304s all carry Surrogate-Key and Cache-Tag naming the
    original: what a CDN purges them by."""
    assert upload(server, image_id, images.jpeg(320, 200)).status_code == 201
    urls = [
        f"/original/{image_id}",
        f"/original/{image_id}/info",
        f"/derived/{image_id}-100x100.jpg",  # made now
        f"/derived/{image_id}-100x100.jpg",  # a hit
        f"/derived/{image_id}-100x100.auto",
        f"/derived/{image_id}-100x100.auto",
    ]
    for path in urls:
        response = requests.get(server.url(path), headers={"Accept": "image/webp"}, timeout=30)
        assert response.status_code == 200, path
        assert (response.headers.get("Surrogate-Key"), response.headers.get("Cache-Tag")) == (
            image_id,
            image_id,
        ), path
        revalidated = requests.get(
            server.url(path),
            headers={"If-None-Match": response.headers["ETag"], "Accept": "image/webp"},
            timeout=30,
        )
        assert revalidated.status_code == 304, path
        assert revalidated.headers.get("Surrogate-Key") == image_id, path
    missing = requests.get(server.url(f"/derived/{image_id}x-100x100.jpg"), timeout=30)
    assert missing.status_code == 404
    assert "Surrogate-Key" not in missing.headers
