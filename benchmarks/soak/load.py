"""The mixed load: client threads at a steady rate of operations, each operation one or two requests
to either server, every answer checked against the ledger as it arrives (bytes, ETags, colours);
whether its status was right is judged at the end, when the outage windows are known."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.soak import client, pictures
from benchmarks.soak.client import Answer
from benchmarks.soak.hostile import BAD_IDS, BAD_SEGMENTS, HOSTILE_UPLOADS
from benchmarks.soak.ledger import Entry, Ledger, Record, Seen, Version

# The Accept headers of real browsers and clients (tests/browsers.py has the same, with what each
# should get; here any answer's bytes are checked, so the header's name is enough).
ACCEPTS: tuple[str | None, ...] = (
    "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",  # Chrome
    "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",  # Firefox
    "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",  # Safari 15
    "image/webp,image/apng,image/*,*/*;q=0.8",  # an old Android WebView
    "*/*",  # curl
    None,  # no header
)
EXTENSIONS = ("jpg", "jpg", "jpg", "jpeg", "png", "png", "gif", "webp", "webp", "webp", "avif", "avif")
PIL_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "avif": "AVIF"}
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
MODES = ("", "", "-fit", "-pad")
ANY_READ = frozenset({200, 206, 304, 404})


def _etag_sha(etag: str | None) -> str:
    return (etag or "").removeprefix("W/").strip('"')


def _problem(answer: Answer) -> str:
    try:
        document = json.loads(answer.body)
    except ValueError:
        return answer.body[:120].decode(errors="replace")
    if not isinstance(document, dict):
        return str(document)[:120]
    return f"{str(document.get('type', '')).removeprefix('urn:pymager:problem:')}: {document.get('detail')}"


@dataclass(frozen=True)
class Target:
    name: str
    port: int


class Load:
    def __init__(
        self,
        ledger: Ledger,
        targets: list[Target],
        entries: list[Entry],
        factory: pictures.PictureFactory,
        seed: int,
    ) -> None:
        self.ledger = ledger
        self.targets = targets
        self.entries = entries
        self.factory = factory
        self._seed = seed
        self.stop = threading.Event()
        self._operations: list[tuple[int, Callable[[random.Random], None]]] = [
            (24, self.derived_hit),
            (12, self.derived_cold),
            (8, self.derived_auto),
            (8, self.original),
            (5, self.ranged),
            (8, self.conditional),
            (3, self.info),
            (6, self.mutate),
            (2, self.hostile_upload),
            (2, self.bad_id),
            (2, self.bad_segment),
            (1, self.listing),
            (1, self.health),
        ]

    # --- requests -------------------------------------------------------------------------------

    def call(
        self,
        rng: random.Random,
        kind: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expected: frozenset[int],
        entry: Entry | None = None,
        epoch: int | None = None,
        target: Target | None = None,
    ) -> Answer:
        """Send one request to ``target`` (else either server) and record it. ``expected`` is what it
        must get if no mutation of ``entry`` overlapped it (``epoch``, even, taken before)."""
        chosen = target or rng.choice(self.targets)
        answer = client.request(chosen.port, method, path, body, headers)
        stable = entry is None or (epoch is not None and epoch % 2 == 0 and entry.epoch == epoch)
        self.ledger.record(
            Record(
                kind,
                chosen.name,
                method,
                path,
                answer.start,
                answer.end,
                answer.status,
                answer.error,
                answer.header("retry-after") is not None,
                expected if stable else expected | ANY_READ,
                stable,
                _problem(answer) if answer.status is not None and answer.status >= 400 else None,
            )
        )
        return answer

    # --- the loop -----------------------------------------------------------------------------------

    def run_worker(self, index: int, period: float, first_due: float) -> None:
        """Operations every ``period`` seconds from ``first_due``; a late one starts the schedule again
        from now instead of bursting to catch up, so the rate stays steady."""
        rng = random.Random(self._seed * 1000 + index)  # noqa: S311 - reproducible, not secret
        weights = [weight for weight, _ in self._operations]
        operations = [operation for _, operation in self._operations]
        due = first_due
        while not self.stop.wait(max(0.0, due - time.monotonic())):
            operation = rng.choices(operations, weights)[0]
            try:
                operation(rng)
            except Exception as exc:  # a bug of the soak itself: recorded, the load goes on
                self.ledger.find("soak-error", operation=operation.__name__, error=repr(exc))
            due += period
            if due < time.monotonic() - period:
                self.ledger.count("late-operations")
                due = time.monotonic()

    def seed_all(self, threads: int) -> None:
        """Upload every id once, ``threads`` at a time."""
        pending = list(self.entries)
        lock = threading.Lock()

        def work(index: int) -> None:
            rng = random.Random(self._seed * 7919 + index)  # noqa: S311 - reproducible, not secret
            while True:
                with lock:
                    if not pending:
                        return
                    entry = pending.pop()
                with entry.mutex:
                    self._upload(rng, entry)

        workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    # --- mutations ------------------------------------------------------------------------------

    def mutate(self, rng: random.Random) -> None:
        """Delete an id, upload it, or replace it (delete and upload again). One writer per id: an id
        another thread is writing is read instead."""
        entry = rng.choice(self.entries)
        if not entry.mutex.acquire(blocking=False):
            self.original(rng)
            return
        try:
            if entry.unsettled and not self.settle(rng, entry):
                return
            # A delete alone about a third of the time, else a replace (the same id uploaded again).
            if entry.present and (not self._delete(rng, entry) or rng.random() < 0.35):
                return
            self._upload(rng, entry)
        finally:
            entry.mutex.release()

    def _delete(self, rng: random.Random, entry: Entry) -> bool:
        """True if the original is gone (204, or 404); else the entry is left unsettled."""
        entry.begin_mutation()
        answer = self.call(rng, "delete", "DELETE", f"/original/{entry.image_id}", expected=frozenset({204}))
        if answer.status in (204, 404):
            if answer.status == 404:
                self.ledger.find("delete-of-stored-got-404", path=f"/original/{entry.image_id}")
            self._gone(entry, answer.end)
            return True
        entry.unsettled = "delete"
        return False

    def _gone(self, entry: Entry, when: float) -> None:
        current = entry.current
        if current is not None:
            current.deleted_at = when
        entry.present = False
        entry.unsettled = None
        entry.end_mutation()

    def _upload(self, rng: random.Random, entry: Entry) -> None:
        template = rng.choice(pictures.TEMPLATES)
        number = len(entry.versions) + 1
        colour = (self.entries.index(entry) + number) % len(pictures.PALETTE)
        tag = f"soak:{entry.image_id}:v{number}:{uuid.uuid4().hex}".encode()[: pictures.TAG_BYTES]
        tag = tag.ljust(pictures.TAG_BYTES, b"-")
        data = self.factory.version_bytes(template, colour, tag)
        sha = hashlib.sha256(data).hexdigest()
        entry.begin_mutation()
        version = Version(number, template.name, colour, tag, sha, len(data), time.monotonic())
        entry.add_version(version)  # before sending: a racing read may see it once it is committed
        fields: dict[str, bytes | tuple[str, str, bytes]] = {
            "file": (f"picture.{template.format.lower()}", template.content_type, data)
        }
        if rng.random() < 0.3:
            fields["focus"] = f"{rng.uniform(0.2, 0.8):.2f},{rng.uniform(0.2, 0.8):.2f}".encode()
        body, content_type = client.multipart(fields)
        answer = self.call(
            rng,
            "upload",
            "POST",
            f"/original/{entry.image_id}",
            body=body,
            headers={"Content-Type": content_type},
            expected=frozenset({201}),
        )
        if answer.status == 201:
            document = json.loads(answer.body)
            if document.get("bytes") != len(data):
                self.ledger.find("upload-answer-wrong", path=f"/original/{entry.image_id}", answer=document)
            version.stored_at = answer.end
            entry.present = True
            entry.unsettled = None
            entry.end_mutation()
        elif answer.status is not None and 400 <= answer.status < 500:
            self.ledger.find(
                "upload-refused",
                path=f"/original/{entry.image_id}",
                template=template.name,
                status=answer.status,
                body=answer.body[:300].decode(errors="replace"),
            )
            version.never_stored = True
            if answer.status == 409:  # the registry holds something the soak did not expect
                entry.unsettled = "upload"
            else:
                entry.end_mutation()
        else:  # 5xx or no answer: stored or not, the next writer finds out
            entry.unsettled = "upload"

    def settle(self, rng: random.Random, entry: Entry) -> bool:
        """Learn what an ambiguous mutation did; True once known."""
        if entry.unsettled == "delete":
            answer = self.call(
                rng, "settle", "DELETE", f"/original/{entry.image_id}", expected=frozenset({204, 404})
            )
            if answer.status in (204, 404):
                self._gone(entry, answer.end)
                return True
            return False
        answer = self.call(
            rng, "settle", "GET", f"/original/{entry.image_id}/info", expected=frozenset({200, 404})
        )
        pending = entry.versions[-1]
        if answer.status == 404:
            pending.never_stored = True
            entry.present = False
        elif answer.status == 200:
            sha = json.loads(answer.body).get("sha256")
            if sha != pending.sha256:
                self.ledger.find(
                    "settle-found-foreign-original", path=f"/original/{entry.image_id}", sha256=sha
                )
                return False
            pending.stored_at = answer.end
            entry.present = True
            self.ledger.count("ambiguous-uploads-stored")
        else:
            return False
        entry.unsettled = None
        entry.end_mutation()
        return True

    # --- reads of originals -------------------------------------------------------------------

    def _check_original(self, entry: Entry, answer: Answer, path: str, sha: str) -> None:
        live = entry.live_versions(answer.start, answer.end)
        if sha not in {version.sha256 for version in live}:
            known = {version.sha256: version.number for version in entry.versions}
            self.ledger.find(
                "original-bytes-mismatch",
                path=path,
                sha256=sha,
                version=known.get(sha),
                live=[version.number for version in live],
            )
            return
        self.ledger.count("originals-verified")

    def original(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        epoch, current = entry.snapshot()
        path = f"/original/{entry.image_id}"
        expected = frozenset({200 if current else 404})
        answer = self.call(rng, "original", "GET", path, expected=expected, entry=entry, epoch=epoch)
        if answer.status == 200:
            sha = hashlib.sha256(answer.body).hexdigest()
            if _etag_sha(answer.header("etag")) != sha:
                self.ledger.find(
                    "original-etag-not-its-sha256", path=path, etag=answer.header("etag"), sha256=sha
                )
            self._check_original(entry, answer, path, sha)

    def ranged(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        epoch, current = entry.snapshot()
        path = f"/original/{entry.image_id}"
        if current is None:
            self.call(
                rng,
                "range",
                "GET",
                path,
                headers={"Range": "bytes=0-99"},
                expected=frozenset({404}),
                entry=entry,
                epoch=epoch,
            )
            return
        if rng.random() < 0.1:
            header = f"bytes={current.size + 10}-"
            self.call(
                rng,
                "range",
                "GET",
                path,
                headers={"Range": header},
                expected=frozenset({416}),
                entry=entry,
                epoch=epoch,
            )
            return
        first = rng.randrange(current.size)
        last = min(current.size - 1, first + rng.randrange(1, 65536))
        answer = self.call(
            rng,
            "range",
            "GET",
            path,
            headers={"Range": f"bytes={first}-{last}"},
            expected=frozenset({206}),
            entry=entry,
            epoch=epoch,
        )
        if answer.status != 206:
            return
        # The ETag (the SHA-256) says which version answered; the range is checked against its bytes.
        sha = _etag_sha(answer.header("etag"))
        version = next((v for v in entry.live_versions(answer.start, answer.end) if v.sha256 == sha), None)
        if version is None:
            self.ledger.find("range-of-unknown-version", path=path, etag=answer.header("etag"))
            return
        if version is not current:  # replaced meanwhile: the range fits the size of the one that answered
            last = min(last, version.size - 1)
        template = pictures.TEMPLATES_BY_NAME[version.template]
        data = self.factory.version_bytes(template, version.colour, version.tag)
        content_range = answer.header("content-range")
        if content_range != f"bytes {first}-{last}/{version.size}" or answer.body != data[first : last + 1]:
            self.ledger.find(
                "range-bytes-mismatch",
                path=path,
                range=f"{first}-{last}",
                content_range=content_range,
                got=len(answer.body),
            )
            return
        self.ledger.count("ranges-verified")

    def info(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        epoch, current = entry.snapshot()
        path = f"/original/{entry.image_id}/info"
        answer = self.call(
            rng, "info", "GET", path, expected=frozenset({200 if current else 404}), entry=entry, epoch=epoch
        )
        if answer.status == 200:
            self._check_original(entry, answer, path, str(json.loads(answer.body).get("sha256")))

    def conditional(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        epoch, current = entry.snapshot()
        seen = entry.seen_items()
        if seen and rng.random() < 0.6:
            _, remembered = rng.choice(seen)
            headers = {"If-None-Match": remembered.etag}
            if remembered.accept is not None:
                headers["Accept"] = remembered.accept
            path, etag = remembered.path, remembered.etag
        elif current is not None:
            path, etag = f"/original/{entry.image_id}", f'"{current.sha256}"'
            headers = {"If-None-Match": etag}
        else:
            return
        answer = self.call(
            rng,
            "conditional",
            "GET",
            path,
            headers=headers,
            expected=frozenset({304}),
            entry=entry,
            epoch=epoch,
        )
        if answer.status == 304 and answer.header("etag") != etag:
            self.ledger.find("304-with-another-etag", path=path, sent=etag, got=answer.header("etag"))

    # --- derived images -------------------------------------------------------------------------

    def _derived_path(self, rng: random.Random, entry: Entry, extension: str) -> str:
        mode = rng.choice(MODES)
        width, height = rng.randint(16, 640), rng.randint(16, 640)
        if mode == "-fit" and rng.random() < 0.2:
            width, height = (width, 0) if rng.random() < 0.5 else (0, height)
        return f"/derived/{entry.image_id}-{width}x{height}{mode}.{extension}"

    def _derived(self, rng: random.Random, kind: str, entry: Entry, path: str, accept: str | None) -> None:
        epoch, current = entry.snapshot()
        headers = {"Accept": accept} if accept is not None else {}
        expected = frozenset({200 if current else 404})
        answer = self.call(
            rng, kind, "GET", path, headers=headers, expected=expected, entry=entry, epoch=epoch
        )
        if answer.status != 200:
            return
        extension = path.rsplit(".", 1)[1]
        location = answer.header("content-location")
        if extension == "auto":
            if location is None or not location.startswith(path.removesuffix(".auto") + "."):
                self.ledger.find("auto-without-content-location", path=path, content_location=location)
                return
            extension = location.rsplit(".", 1)[1]
        try:
            seen_sample = pictures.sample(answer.body)
        except Exception as exc:  # an undecodable answer is a finding, whatever the error
            self.ledger.find("derived-undecodable", path=path, accept=accept, error=repr(exc))
            return
        wanted = PIL_FORMATS[extension]
        if seen_sample.format != wanted or answer.header("content-type") != CONTENT_TYPES[wanted]:
            self.ledger.find(
                "derived-wrong-format",
                path=path,
                accept=accept,
                decoded=seen_sample.format,
                content_type=answer.header("content-type"),
            )
        live = entry.live_versions(answer.start, answer.end)
        if seen_sample.colour not in {version.colour for version in live}:
            self.ledger.find(
                "derived-of-no-live-version",
                path=path,
                accept=accept,
                colour=seen_sample.colour,
                rgb=seen_sample.rgb,
                live=[(version.number, version.colour) for version in live],
            )
        else:
            self.ledger.count("derived-colours-verified")
        sha = hashlib.sha256(answer.body).hexdigest()
        etag = answer.header("etag") or ""
        key = location or path
        stable = epoch % 2 == 0 and entry.epoch == epoch
        if stable:
            before = entry.remember(epoch, key, Seen(path, accept, sha, etag))
            if before is not None and (before.sha256 != sha or before.etag != etag):
                self.ledger.find(
                    "derived-changed-without-replace",
                    path=path,
                    accept=accept,
                    key=key,
                    before=(before.sha256[:16], before.etag),
                    after=(sha[:16], etag),
                )
            elif before is not None:
                self.ledger.count("derived-repeats-identical")

    def derived_cold(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        self._derived(
            rng, "derived-cold", entry, self._derived_path(rng, entry, rng.choice(EXTENSIONS)), None
        )

    def derived_auto(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        path = self._derived_path(rng, entry, "auto")
        auto_seen = [seen for _, seen in entry.seen_items() if seen.path.endswith(".auto")]
        if auto_seen and rng.random() < 0.5:
            path = rng.choice(auto_seen).path
        self._derived(rng, "derived-auto", entry, path, rng.choice(ACCEPTS))

    def derived_hit(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        seen = entry.seen_items()
        if not seen:
            self.derived_cold(rng)
            return
        _, remembered = rng.choice(seen)
        self._derived(rng, "derived-hit", entry, remembered.path, remembered.accept)

    # --- bad input and the rest -----------------------------------------------------------------

    def hostile_upload(self, rng: random.Random) -> None:
        case = rng.choice(HOSTILE_UPLOADS)
        body, content_type = case.body()
        self.call(
            rng,
            "hostile-upload",
            "POST",
            f"/original/hostile-{case.name}",
            body=body,
            headers={"Content-Type": content_type},
            expected=case.expected,
        )

    def bad_id(self, rng: random.Random) -> None:
        method, path, expected = rng.choice(BAD_IDS)
        self.call(rng, "bad-id", method, path, expected=expected)

    def bad_segment(self, rng: random.Random) -> None:
        entry = rng.choice(self.entries)
        template, expected = rng.choice(BAD_SEGMENTS)
        self.call(rng, "bad-segment", "GET", template.format(id=entry.image_id), expected=expected)

    def listing(self, rng: random.Random) -> None:
        self.call(rng, "listing", "GET", "/original?limit=100", expected=frozenset({200}))

    def health(self, rng: random.Random) -> None:
        self.call(rng, "health", "GET", "/health", expected=frozenset({200}))

    # --- after the load -----------------------------------------------------------------------------

    def final_check(self, rng: random.Random, attempts: int = 5) -> None:
        """With nothing else running: settle what is unsettled, then every id on both servers must be
        exactly its last version (or absent), a few of its derived images as remembered, and no hostile
        upload stored."""
        for entry in self.entries:
            for _ in range(attempts):
                if not entry.unsettled or self.settle(rng, entry):
                    break
            epoch, current = entry.snapshot()
            path = f"/original/{entry.image_id}"
            for target in self.targets:
                expected = frozenset({200 if current else 404})
                answer = self.call(
                    rng,
                    "final-original",
                    "GET",
                    path,
                    expected=expected,
                    entry=entry,
                    epoch=epoch,
                    target=target,
                )
                if answer.status == 200 and current is not None:
                    sha = hashlib.sha256(answer.body).hexdigest()
                    if sha != current.sha256:
                        self.ledger.find(
                            "original-bytes-mismatch", path=path, sha256=sha, expected=current.sha256
                        )
                    else:
                        self.ledger.count("originals-verified")
            for _, remembered in entry.seen_items()[:3]:
                self._derived(rng, "final-derived", entry, remembered.path, remembered.accept)
        for case in HOSTILE_UPLOADS:
            self.call(
                rng, "final-hostile", "GET", f"/original/hostile-{case.name}", expected=frozenset({404})
            )
