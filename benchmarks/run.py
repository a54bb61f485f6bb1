"""The benchmark run: corpus, servers, every scenario in one run, then the report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import (
    apache,
    corpus,
    formats,
    load,
    machine,
    nginx,
    pipeline_costs,
    reduced,
    report,
    s3,
    scenarios,
    servers,
)
from benchmarks.modes import FULL, QUICK, Mode

RESULTS = Path(__file__).resolve().parent / "results"
MAIN_IMAGE = corpus.PHOTO_24MP


def _log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def _hit_targets(pymager: servers.Process, bare: servers.Process) -> dict[str, str]:
    return {
        "pymager": f"{pymager.base_url}/derived/{MAIN_IMAGE.name}-200x200.jpg",
        "bare_cherrypy": f"{bare.base_url}/file",
    }


def _measure(mode: Mode, work: Path, notes: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    _log("generating the corpus (cached after the first run)")
    for sample in (*mode.corpus, corpus.UPLOAD_30MB):
        corpus.ensure(sample)
    main_path = corpus.ensure(MAIN_IMAGE)
    server = servers.start_pymager(work / "pymager", mode.thread_pool)
    bare: servers.Process | None = None
    try:
        scenarios.upload_corpus(server, mode.corpus)
        server.get(f"/derived/{corpus.PHOTO_SMALL.name}-100x100.jpg")  # warm the generation path
        _log("cold derive latency at c=1, interleaved with the in-process pipelines")
        figures["cold_24mp"] = scenarios.cold_latency(server, mode, MAIN_IMAGE.name, main_path)
        others = tuple(sample for sample in mode.corpus if sample is not MAIN_IMAGE)
        figures["cold_other"] = scenarios.other_cold(server, mode, others)
        _log("cold throughput at c=4")
        best = figures["cold_24mp"]["200"]["inprocess_best"]
        figures["cold_c4_24mp_200"] = scenarios.cold_throughput(
            server, mode, MAIN_IMAGE.name, main_path, best
        )
        _log(f"burst of {mode.burst_requests} requests for one cold key, and of as many hits")
        figures["burst"] = scenarios.burst(server, mode, MAIN_IMAGE.name)
        _log(f"cache hits while {mode.flood_requests} distinct cold requests flood the server")
        figures["cold_flood"] = scenarios.cold_flood(server, mode, MAIN_IMAGE.name)
        _log("cache hits with wrk")
        server.get(f"/derived/{MAIN_IMAGE.name}-200x200.jpg")
        hit_file = work / "pymager" / "data" / "derived" / MAIN_IMAGE.name / "200x200.jpg"
        bare = servers.start_bare(work / "bare", hit_file, mode.thread_pool)
        targets = _hit_targets(server, bare)
        hit_path = f"/derived/{MAIN_IMAGE.name}-200x200.jpg"
        started = apache.start(work / "apache", work / "pymager" / "pymager.ini", hit_path, hit_file)
        if isinstance(started, str):
            notes.append(f"hit_apache_over_static not measured: {started}")
            figures["hits"] = scenarios.hits(targets, mode)
        else:
            with started:
                targets |= {"apache_pymager": started.shipped_url, "apache_static": started.static_url}
                figures["hits"] = scenarios.hits(targets, mode)
                _log(
                    f"normal requests through the shipped Apache site, {mode.slow_connections} slow ones open"
                )
                figures["apache_slow_clients"] = scenarios.slow_clients(started.shipped_url, mode)
        _log("cache hits through the shipped nginx site and static nginx")
        figures["nginx_hits"] = _nginx_hits(work, mode, hit_path, hit_file, notes)
    finally:
        server.stop()
        if bare is not None:
            bare.stop()
    figures |= _several_processes(work, mode, main_path, best, notes)
    _log("the S3 store (SeaweedFS) against the filesystem store: cold derivations, then hits with wrk")
    stores = s3.measure(work / "stores", mode, MAIN_IMAGE)
    if isinstance(stores, str):
        notes.append(f"hit_s3_over_filesystem, cold_200_s3_over_filesystem not measured: {stores}")
    else:
        figures["stores"] = stores
    _log("memory: a fresh server, concurrent cold derivations, then a 30 MB upload")
    fresh = servers.start_pymager(work / "pymager-memory", mode.thread_pool)
    try:
        scenarios.upload_corpus(fresh, (MAIN_IMAGE,))
        figures["memory"] = scenarios.memory(fresh, mode, MAIN_IMAGE.name, corpus.ensure(corpus.UPLOAD_30MB))
        figures["memory_cold_requests"] = mode.rss_cold_requests
    finally:
        fresh.stop()
    if "error" in figures["memory"]:
        notes.append(f"memory not measured: {figures['memory']['error']}")
    _log("pipeline costs in-process: modes, colour profile, focus detection")
    figures["pipeline"] = pipeline_costs.measure(mode.pipeline_runs)
    longest = mode is not QUICK  # the longest animation takes about a minute
    _log(
        "derived formats at the defaults, animation memory"
        + (" and the longest animation" if longest else "")
    )
    figures["formats"] = formats.measure(mode.corpus, mode.pipeline_runs, longest=longest)
    _log("reduced copies: cold PNG with alpha, uploads with and without copies")
    figures["reduced"] = reduced.measure(mode.pipeline_runs, work / "reduced")
    return figures


def _nginx_hits(work: Path, mode: Mode, hit_path: str, hit_file: Path, notes: list[str]) -> dict[str, Any]:
    started = nginx.start(work / "nginx", work / "pymager" / "pymager.ini", hit_path, hit_file)
    if isinstance(started, str):
        notes.append(f"hit_nginx_over_static not measured: {started}")
        return {}
    with started:
        targets = {"nginx_pymager": started.shipped_url, "nginx_static": started.static_url}
        return scenarios.hits(targets, mode, mode.nginx_connections)


def _several_processes(
    work: Path, mode: Mode, main_path: Path, best: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """The scenarios of a standalone server of ``mode.processes`` processes: cold throughput at c=1 and
    c=4, the burst; then, on a fresh one, each process's memory under concurrent cold derivations."""
    figures: dict[str, Any] = {}
    _log(f"a server of {mode.processes} processes: cold throughput at c=1 and c=4, bursts")
    server = servers.start_pymager(work / "pymager-workers", mode.thread_pool, processes=mode.processes)
    try:
        scenarios.upload_corpus(server, (MAIN_IMAGE,))
        # Warm every worker's generation path: as many distinct keys at once as there are workers.
        warm = [f"/derived/{MAIN_IMAGE.name}-150x{150 + index}.jpg" for index in range(mode.processes)]
        load.concurrent_gets(server.port, warm, concurrency=len(warm))
        figures["workers_cold_c4_24mp_200"] = scenarios.cold_throughput(
            server, mode, MAIN_IMAGE.name, main_path, best
        )
        figures["workers_burst"] = scenarios.burst(server, mode, MAIN_IMAGE.name)
    finally:
        server.stop()
    _log(f"memory: a fresh server of {mode.processes} processes, concurrent cold derivations")
    fresh = servers.start_pymager(work / "pymager-workers-memory", mode.thread_pool, processes=mode.processes)
    try:
        scenarios.upload_corpus(fresh, (MAIN_IMAGE,))
        figures["workers_memory"] = scenarios.memory_by_process(fresh, mode, MAIN_IMAGE.name)
    finally:
        fresh.stop()
    if "error" in figures["workers_memory"]:
        notes.append(f"memory by process not measured: {figures['workers_memory']['error']}")
    return figures


def run(quick: bool) -> int:
    mode = QUICK if quick else FULL
    notes: list[str] = []
    described = machine.describe(mode.name)
    times_before = machine.cpu_times()
    with tempfile.TemporaryDirectory(prefix="pymager-bench-") as directory:
        figures = _measure(mode, Path(directory), notes)
    described["loadavg_after"] = machine.loadavg()
    described["steal_percent"] = machine.steal_percent(times_before, machine.cpu_times())
    described["cpu_probe_after"] = machine.cpu_probe()
    result: dict[str, Any] = {
        "ratios": report.ratios(figures),
        "figures": figures,
        "machine": described,
        "targets": {t.key: {"bound": t.bound, "at_most": t.at_most} for t in report.TARGETS},
        "notes": notes,
    }
    paths = report.write(result, RESULTS, mode.results_stem)
    print(report.markdown(result))
    _log("wrote " + ", ".join(str(path.relative_to(RESULTS.parent.parent)) for path in paths))
    failed = [t.key for t in report.TARGETS if t.holds(result["ratios"][t.key]) is False]
    if failed:
        _log(f"{len(failed)} ratio(s) do not hold: {', '.join(failed)}")
    return 0
