"""Judging a soak: each check a name, whether it held and what shows it; the summary printed and the
same as JSON.

How answers are classified: a request *overlapping* a window (sent before it ended, answered after it
began) on a server the window concerns is in that window. The PostgreSQL restart concerns both servers
(they stay up, so a lost connection there is still a failure); the SIGKILL concerns the killed server
only, from the kill until its successor answers /health, and there a refused or cut connection is the
window. Everywhere, a 5xx outside a window fails, and inside one it must be a 503 with Retry-After.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from benchmarks.soak.ledger import Ledger, Record
from benchmarks.soak.probes import Series

RSS_GROWTH_LIMIT = 0.10
FD_GROWTH_LIMIT = 5  # a descriptor or two may open lazily (a pool connection, a log); a leak is many
# What a byte check that failed is called in the ledger's findings.
BYTE_FINDINGS = frozenset(
    {
        "original-bytes-mismatch",
        "original-etag-not-its-sha256",
        "range-of-unknown-version",
        "range-bytes-mismatch",
        "derived-of-no-live-version",
        "derived-changed-without-replace",
        "derived-undecodable",
        "derived-wrong-format",
        "auto-without-content-location",
        "304-with-another-etag",
        "settle-found-foreign-original",
    }
)
# `pymager check` findings that are facts, not damage (Finding.damage is False for them).
INFORMATION_PROBLEMS = ("not yet backfilled",)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    examples: list[dict[str, object]] = field(default_factory=list)


def _describe(ledger: Ledger, record: Record) -> dict[str, object]:
    return {
        "kind": record.kind,
        "server": record.server,
        "request": f"{record.method} {record.path[:160]}",
        "at_s": round(record.start - ledger.started, 2),
        "took_s": round(record.end - record.start, 3),
        "status": record.status,
        "error": record.error,
        "retry_after": record.retry_after,
        "expected": sorted(record.expected),
        "problem": record.problem,
    }


def judge_requests(ledger: Ledger) -> list[Check]:
    outside_5xx: list[Record] = []
    races: list[Record] = []
    bad_in_window: list[Record] = []
    lost: list[Record] = []
    unexpected: list[Record] = []
    for record in ledger.records:
        window = ledger.window_for(record)
        if record.status is None:
            refused_window = any(w.refusals_expected and w.covers(record) for w in ledger.windows)
            if not refused_window:
                lost.append(record)
        elif record.status >= 500:
            if window is None and _documented_race(record):
                races.append(record)
            elif window is None:
                outside_5xx.append(record)
            elif record.status != 503 or not record.retry_after:
                bad_in_window.append(record)
        elif record.status not in record.expected:
            unexpected.append(record)

    def check(name: str, found: list[Record], what: str) -> Check:
        return Check(name, not found, f"{len(found)} {what}", [_describe(ledger, r) for r in found[:10]])

    return [
        check("no 5xx outside the outage windows", outside_5xx, "5xx answers outside every window"),
        check("5xx in a window is 503 with Retry-After", bad_in_window, "other 5xx in a window"),
        check("no connection lost outside the SIGKILL window", lost, "requests without an answer"),
        check("every status as expected", unexpected, "answers with a status the request must not get"),
        Check(
            "503 of a derivation racing a replace of its original (documented; not a failure)",
            True,
            f"{len(races)} answers",
            [_describe(ledger, r) for r in races[:10]],
        ),
    ]


def _documented_race(record: Record) -> bool:
    """The README's "503 … the original was replaced while it was generated" (Retry-After), for a
    derived request that a replace of its id overlapped: the one 5xx a steady load may get by design."""
    return (
        record.status == 503
        and record.retry_after
        and not record.stable
        and record.path.startswith("/derived/")
        and "changed while" in (record.problem or "")
    )


def judge_findings(ledger: Ledger) -> list[Check]:
    byte_findings = [f for f in ledger.findings if f["check"] in BYTE_FINDINGS]
    others = [f for f in ledger.findings if f["check"] not in BYTE_FINDINGS]
    verified = sum(
        ledger.counters[name]
        for name in (
            "originals-verified",
            "ranges-verified",
            "derived-colours-verified",
            "derived-repeats-identical",
        )
    )
    return [
        Check(
            "every byte served matched what was stored",
            not byte_findings,
            f"{len(byte_findings)} mismatches; {verified} answers verified",
            byte_findings[:20],
        ),
        Check("no other finding while loading", not others, f"{len(others)} findings", others[:20]),
    ]


def judge_series(all_series: list[tuple[str, int, Series | None]]) -> list[Check]:
    rss_failures: list[dict[str, object]] = []
    fd_failures: list[dict[str, object]] = []
    for server, pid, found in all_series:
        if found is None:
            rss_failures.append({"server": server, "pid": pid, "problem": "too few samples after warm-up"})
            continue
        if found.rss_growth >= RSS_GROWTH_LIMIT:
            rss_failures.append(series_json(found))
        if found.fd_growth > FD_GROWTH_LIMIT:
            fd_failures.append(series_json(found))
    count = len(all_series)
    return [
        Check(
            f"RSS flat after warm-up (growth < {RSS_GROWTH_LIMIT:.0%})",
            not rss_failures,
            f"{len(rss_failures)} of {count} processes over it",
            rss_failures,
        ),
        Check(
            f"no file-descriptor growth (at most {FD_GROWTH_LIMIT})",
            not fd_failures,
            f"{len(fd_failures)} of {count} processes over it",
            fd_failures,
        ),
    ]


def series_json(found: Series) -> dict[str, object]:
    return {
        "server": found.server,
        "pid": found.pid,
        "samples": found.samples,
        "rss_start_mb": round(found.rss_start_kib / 1024, 1),
        "rss_end_mb": round(found.rss_end_kib / 1024, 1),
        "rss_max_mb": round(found.rss_max_kib / 1024, 1),
        "rss_growth_percent": round(100 * found.rss_growth, 1),
        "fds_start": found.fds_start,
        "fds_end": found.fds_end,
        "fds_max": found.fds_max,
        "cpu_percent_of_a_core": round(100 * found.cpu_share, 1),
    }


@dataclass(frozen=True)
class CheckOutput:
    """``pymager check``'s lines, sorted: damage, facts (not damage), and what the SIGKILL left (a
    claim or temporary file of the killed pid: expected of a crash, and what ``pymager repair`` is for)."""

    returncode: int
    damage: list[str]
    information: list[str]
    crash_residue: list[str]
    summary: str


def classify_check(returncode: int, stdout: str, killed_pids: list[int]) -> CheckOutput:
    lines = [line for line in stdout.splitlines() if line.strip()]
    summary = lines.pop() if lines and lines[-1].startswith("pymager:") else ""
    damage, information, residue = [], [], []
    for line in lines:
        if line.startswith(INFORMATION_PROBLEMS):
            information.append(line)
        elif any(f"~{pid}~" in line or f":{pid}:" in line for pid in killed_pids):
            residue.append(line)
        else:
            damage.append(line)
    return CheckOutput(returncode, damage, information, residue, summary)


def judge_check(output: CheckOutput) -> Check:
    # `pymager check` exits 1 on any line, facts included; damage is what counts here.
    detail = (
        f"exit {output.returncode}; {output.summary!r}; damage {len(output.damage)}, "
        f"information {len(output.information)}, residue of the SIGKILLed process {len(output.crash_residue)}"
    )
    examples: list[dict[str, object]] = [
        {"kind": kind, "line": line}
        for kind, lines in (
            ("damage", output.damage),
            ("information", output.information),
            ("crash-residue", output.crash_residue),
        )
        for line in lines[:10]
    ]
    ran = output.summary.startswith("pymager:")
    return Check("pymager check reports no damage", ran and not output.damage, detail, examples)


def requests_table(ledger: Ledger) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for record in ledger.records:
        table[record.kind][str(record.status) if record.status is not None else record.error or "?"] += 1
    return {kind: dict(sorted(counts.items())) for kind, counts in sorted(table.items())}


def latencies(ledger: Ledger) -> dict[str, dict[str, float]]:
    """Per kind, answered requests only: p50, p99 and max in ms."""
    times: dict[str, list[float]] = defaultdict(list)
    for record in ledger.records:
        if record.status is not None:
            times[record.kind].append(1000 * (record.end - record.start))
    table = {}
    for kind, values in sorted(times.items()):
        values.sort()
        table[kind] = {
            "p50": round(values[len(values) // 2], 1),
            "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 1),
            "max": round(values[-1], 1),
        }
    return table


def window_counts(ledger: Ledger) -> list[dict[str, object]]:
    rows = []
    for window in ledger.windows:
        inside = [record for record in ledger.records if window.covers(record)]
        statuses = Counter(str(r.status) if r.status is not None else r.error or "?" for r in inside)
        rows.append(
            {
                "name": window.name,
                "servers": sorted(window.servers),
                "start_s": round(window.start - ledger.started, 2),
                "end_s": round(window.end - ledger.started, 2) if window.end is not None else None,
                "length_s": round(window.end - window.start, 2) if window.end is not None else None,
                "requests": len(inside),
                "statuses": dict(sorted(statuses.items())),
            }
        )
    return rows


def print_summary(document: dict[str, object]) -> None:
    print(
        f"\n== soak {document['started_utc']}: {document['duration_s']} s of load, "
        f"{document['operations']} operations "
        f"({document['operations_per_s']}/s), {document['requests']} requests"
    )
    print("\nrequests by kind and status:")
    table = document["requests_by_kind"]
    assert isinstance(table, dict)
    latency = document["latency_ms"]
    assert isinstance(latency, dict)
    for kind, counts in table.items():
        statuses = "  ".join(f"{status}: {count}" for status, count in counts.items())
        timing = latency.get(kind)
        took = f"   (p50 {timing['p50']} ms, p99 {timing['p99']}, max {timing['max']})" if timing else ""
        print(f"  {kind:<16} {statuses}{took}")
    print("\nwindows:")
    for window in document["windows"]:  # type: ignore[attr-defined]
        print(
            f"  {window['name']:<18} {window['servers']} {window['start_s']} s – {window['end_s']} s "
            f"({window['length_s']} s): {window['requests']} requests {window['statuses']}"
        )
    print("\nprocesses (after warm-up):")
    for row in document["processes"]:  # type: ignore[attr-defined]
        print(f"  {row}")
    print("\ncheck output:")
    for line in document["check_output"]:  # type: ignore[attr-defined]
        print(f"  {line}")
    print("\nchecks:")
    for check in document["checks"]:  # type: ignore[attr-defined]
        print(f"  [{'ok' if check['passed'] else 'FAILED'}] {check['name']}: {check['detail']}")
        if not check["passed"]:
            for example in check["examples"][:5]:
                print(f"        {example}")
    print(f"\nverdict: {'PASSED' if document['passed'] else 'FAILED'}")
