"""``python -m benchmarks.soak [--minutes 20]``: run the soak, print its summary, write it as JSON
(``benchmarks/results/soak-latest.json``) and exit 1 if any check failed."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.servers import REPO
from benchmarks.soak import cluster, pictures, prime, probes, verdict
from benchmarks.soak.ledger import Entry, Ledger, Window
from benchmarks.soak.load import Load, Target

RESULTS = REPO / "benchmarks" / "results"
# Events, as fractions of the load's duration: the restart in the middle, the kill after it, so that
# the restarted server still has a warm-up and a measured stretch before the end.
POSTGRES_RESTART_AT = 0.40
KILL_AT = 0.55


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the load (default 20)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument(
        "--rate", type=float, default=15.0, help="operations per second, all threads (default 15)"
    )
    parser.add_argument(
        "--ids", type=int, default=40, help="image ids the load writes and reads (default 40)"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.2, help="warm-up, a fraction of the duration (default 0.2)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PYMAGER_TEST_POSTGRES") or cluster.DEFAULT_POSTGRES,
        help="admin URL of the PostgreSQL server to create the soak's database on",
    )
    parser.add_argument(
        "--postgres-restart",
        default=None,
        help="command that restarts PostgreSQL (default: pg_ctlcluster for the cluster on its port)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the directory")
    parser.add_argument("--output", type=Path, default=RESULTS / "soak-latest.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    duration = args.minutes * 60
    warmup = args.warmup * duration
    restart_command = (
        cluster.split_command(args.postgres_restart)
        if args.postgres_restart
        else cluster.postgres_restart_command(args.postgres)
    )
    directory = Path(tempfile.mkdtemp(prefix="pymager-soak-"))
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    system = cluster.build(directory, args.postgres)
    print(f"soak: {args.minutes:g} min in {directory}, database {system.database_name}", flush=True)
    passed = False
    try:
        document = soak(args, system, duration, warmup, restart_command)
        document.update(
            started_utc=started_utc,
            load_average_before=load_before,
            load_average_after=os.getloadavg(),
            directory=str(directory),
            database=system.database_name,
            machine=f"{os.cpu_count()} cores, shared with other engineers' work",
        )
        passed = bool(document["passed"])
        verdict.print_summary(document)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"written to {args.output}")
    finally:
        for server in system.servers:
            server.stop()
        if args.keep or not passed:
            print(
                f"kept {directory} and database {system.database_name} (drop it with "
                f'DROP DATABASE "{system.database_name}" WITH (FORCE))'
            )
        else:
            cluster.drop_database(args.postgres, system.database_name)
            shutil.rmtree(directory)
    return 0 if passed else 1


def soak(
    args: argparse.Namespace,
    system: cluster.Cluster,
    duration: float,
    warmup: float,
    restart_command: list[str],
) -> dict[str, object]:
    ledger = Ledger()
    for server in system.servers:
        server.start()
    targets = [Target(server.name, server.port) for server in system.servers]
    entries = [Entry(f"soak-{index:03d}") for index in range(args.ids)]
    load = Load(ledger, targets, entries, pictures.PictureFactory(), args.seed)
    interval = min(5.0, max(1.0, duration / 240))
    prober = probes.Prober(lambda: {server.name: server.pid for server in system.servers}, interval)
    prober.start()

    prime.prime(targets, args.threads, load.factory)
    load.seed_all(args.threads)
    start = time.monotonic()
    period = args.threads / args.rate
    workers = [
        threading.Thread(target=load.run_worker, args=(index, period, start + index * period / args.threads))
        for index in range(args.threads)
    ]
    for worker in workers:
        worker.start()
    events: list[dict[str, object]] = []
    try:
        _wait_until(load, start + POSTGRES_RESTART_AT * duration)
        events.append(_restart_postgres(ledger, system, restart_command))
        _wait_until(load, start + KILL_AT * duration)
        events.append(_kill_and_restart(ledger, system.servers[1]))
        _wait_until(load, start + duration)
    finally:
        load.stop.set()
        for worker in workers:
            worker.join()
    loaded = time.monotonic() - start
    load.final_check(random.Random(args.seed))  # noqa: S311 - reproducible, not secret
    prober.stop()

    stopped_cleanly = {server.name: server.stop() for server in system.servers}
    checked = cluster.run_command(cluster.pymager(system.check_config, "--check"))
    killed_pids = [server.pids[0] for server in system.servers if len(server.pids) > 1]
    check_output = verdict.classify_check(checked.returncode, checked.stdout, killed_pids)
    tracebacks = {
        server.name: server.log_path.read_text(errors="replace").count("Traceback")
        for server in system.servers
    }

    all_series = []
    for server in system.servers:
        for pid, ready_at in zip(server.pids, server.started_at, strict=True):
            # The first processes warm up from the start of the load, a restarted one from its restart.
            warm_end = max(start, ready_at) + warmup
            all_series.append(
                (server.name, pid, probes.series(prober.samples, server.name, pid, ready_at, warm_end))
            )

    checks = [
        *verdict.judge_requests(ledger),
        *verdict.judge_findings(ledger),
        *verdict.judge_series(all_series),
        verdict.judge_check(check_output),
        verdict.Check("servers stop on SIGTERM", all(stopped_cleanly.values()), str(stopped_cleanly)),
        verdict.Check("no traceback in the server logs", not any(tracebacks.values()), str(tracebacks)),
        verdict.Check(
            "the outages happened",
            all(bool(event["ok"]) for event in events) and len(events) == 2,
            "; ".join(str(event) for event in events),
        ),
    ]
    operations = sum(
        1
        for record in ledger.records
        if record.kind not in ("settle", "final-original", "final-derived", "final-hostile")
    )
    return {
        "arguments": {key: str(value) for key, value in vars(args).items()},
        "duration_s": round(loaded, 1),
        "operations": operations,
        "operations_per_s": round(operations / loaded, 2),
        "requests": len(ledger.records),
        "requests_by_kind": verdict.requests_table(ledger),
        "latency_ms": verdict.latencies(ledger),
        "soak_cpu_percent_of_a_core": round(100 * _own_cpu() / (time.monotonic() - ledger.started), 1),
        "windows": verdict.window_counts(ledger),
        "events": events,
        "processes": [
            verdict.series_json(found)
            if found
            else {"server": name, "pid": pid, "problem": "too few samples"}
            for name, pid, found in all_series
        ],
        "samples": [
            {
                "t_s": round(s.at - ledger.started, 1),
                "server": s.server,
                "pid": s.pid,
                "rss_kib": s.rss_kib,
                "fds": s.fds,
                "cpu_s": round(s.cpu_s, 2),
            }
            for s in prober.samples
        ],
        "check_output": [
            *check_output.damage,
            *check_output.information,
            *check_output.crash_residue,
            check_output.summary,
        ],
        "counters": dict(ledger.counters),
        "findings": ledger.findings[:200],
        "checks": [vars(check) for check in checks],
        "passed": all(check.passed for check in checks),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wait_until(load: Load, when: float) -> None:
    load.stop.wait(max(0.0, when - time.monotonic()))


def _restart_postgres(ledger: Ledger, system: cluster.Cluster, command: list[str]) -> dict[str, object]:
    """The planned outage: from just before the restart until both servers' /health say the registry
    is back."""
    window = Window("postgres-restart", frozenset(server.name for server in system.servers), time.monotonic())
    ledger.windows.append(window)
    result = cluster.run_command(command)
    returned = time.monotonic()
    ok = result.returncode == 0
    try:
        for server in system.servers:
            server.wait_healthy()
    except RuntimeError as exc:
        ok = False
        print(f"soak: {exc}", file=sys.stderr)
    window.end = time.monotonic()
    print(
        f"soak: PostgreSQL restarted ({' '.join(command)}: {result.returncode}), "
        f"outage {window.end - window.start:.1f} s",
        flush=True,
    )
    return {
        "event": "postgres-restart",
        "command": " ".join(command),
        "returncode": result.returncode,
        "output": (result.stdout + result.stderr).strip()[-500:],
        "command_s": round(returned - window.start, 2),
        "ok": ok,
    }


def _kill_and_restart(ledger: Ledger, server: cluster.Server) -> dict[str, object]:
    """SIGKILL one server, start it again at once on its port: the window ends when it answers."""
    pid = server.pid
    window = Window(
        f"sigkill-{server.name}", frozenset({server.name}), time.monotonic(), refusals_expected=True
    )
    ledger.windows.append(window)
    server.kill()
    ok = True
    try:
        server.start()
    except RuntimeError as exc:
        ok = False
        print(f"soak: {exc}", file=sys.stderr)
    window.end = time.monotonic()
    print(
        f"soak: server {server.name} (pid {pid}) killed and restarted as pid {server.pid}, "
        f"outage {window.end - window.start:.1f} s",
        flush=True,
    )
    return {"event": f"sigkill-{server.name}", "killed_pid": pid, "new_pid": server.pid, "ok": ok}


if __name__ == "__main__":
    sys.exit(main())
