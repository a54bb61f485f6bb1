"""The measured scenarios. Each returns plain figures (dicts of numbers) for the report."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import corpus, load
from benchmarks.inprocess import Worker
from benchmarks.modes import Mode
from benchmarks.pipelines import BEST_VARIANTS
from benchmarks.servers import Process, RssSampler, process_rss_mb
from benchmarks.stats import metric, ms, percentile, summary

Size = tuple[int, int]
SIZES: dict[str, Size] = {"200": (200, 200), "1024": (1024, 768)}
GENERATED = "pymager_derived_generated_total"
GENERATION_SECONDS = "pymager_derived_generation_seconds"


def _metrics(server: Process) -> str:
    status, body = server.get("/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return body.decode()


def generations(server: Process) -> float:
    return metric(_metrics(server), GENERATED)


def generation_seconds(server: Process) -> tuple[float, float]:
    """(count, sum) of pymager's own generation-time histogram: render, hash, publish, record."""
    text = _metrics(server)
    return metric(text, f"{GENERATION_SECONDS}_count"), metric(text, f"{GENERATION_SECONDS}_sum")


def upload_corpus(server: Process, samples: tuple[corpus.Sample, ...]) -> None:
    for sample in samples:
        status = load.upload(server.port, sample.name, corpus.ensure(sample))
        if status != 201:
            raise RuntimeError(f"uploading {sample.name}: {status}\n{server.log_path.read_text()}")


def tune_best(mode: Mode, image: Path) -> dict[str, Worker]:
    """The fastest best-pipeline variant per size (median of ``tune_runs`` interleaved runs)."""
    workers = [Worker(f"best[{index}]") for index in range(len(BEST_VARIANTS))]
    chosen: dict[str, Worker] = {}
    for label, size in SIZES.items():
        times: dict[int, list[float]] = {index: [] for index in range(len(workers))}
        for worker in workers:
            worker.run(image, size)  # warm-up: imports, page cache
        for _ in range(mode.tune_runs):
            for index, worker in enumerate(workers):
                times[index].append(worker.run(image, size))
        fastest = min(times, key=lambda index: percentile(times[index], 0.5))
        chosen[label] = workers[fastest]
    for worker in workers:
        if worker not in chosen.values():
            worker.close()
    return chosen


def cold_latency(server: Process, mode: Mode, image_id: str, image: Path) -> dict[str, Any]:
    """Distinct cold keys one after another (c=1), interleaved with the in-process pipelines."""
    best = tune_best(mode, image)
    old = Worker("2011")
    draft = Worker("draft_decode")
    figures: dict[str, Any] = {}
    for label, size in SIZES.items():
        old.run(image, size)
        draft.run(image, size)
        service: list[float] = []
        best_times: list[float] = []
        old_times: list[float] = []
        draft_times: list[float] = []
        count_before, sum_before = generation_seconds(server)
        for run in range(mode.cold_runs):
            key = f"/derived/{image_id}-{size[0]}x{size[1] + 1 + run}.jpg"
            service.append(load.timed_get(server.port, key))
            best_times.append(best[label].run(image, size))
            draft_times.append(draft.run(image, size))
            if run < mode.runs_2011:
                old_times.append(old.run(image, size))
        count_after, sum_after = generation_seconds(server)
        figures[label] = {
            "service": summary(service),
            # pymager's own mean generation time (/metrics): the rest of the latency is HTTP and the claim.
            "service_generation_mean_ms": ms((sum_after - sum_before) / max(1.0, count_after - count_before)),
            "inprocess_best": {
                **summary(best_times),
                "variant": BEST_VARIANTS[_index(best[label])].name,
                "pipeline": best[label].pipeline,
            },
            "inprocess_2011": summary(old_times),
            "draft_decode_only": summary(draft_times),
        }
    figures["peak_rss_mb"] = {
        "inprocess_2011": round(old.peak_rss_mb(), 1),
        "inprocess_best": round(max(worker.peak_rss_mb() for worker in best.values()), 1),
    }
    for worker in {*best.values(), old, draft}:
        worker.close()
    return figures


def _index(worker: Worker) -> int:
    return int(worker.pipeline.removeprefix("best[").removesuffix("]"))


def other_cold(server: Process, mode: Mode, samples: tuple[corpus.Sample, ...]) -> dict[str, Any]:
    """Cold c=1 latency of the other corpus images to 200x200 (figures only, no ratio)."""
    figures: dict[str, Any] = {}
    for sample in samples:
        times = [
            load.timed_get(server.port, f"/derived/{sample.name}-200x{210 + run}.jpg")
            for run in range(mode.other_cold_runs)
        ]
        figures[sample.name] = summary(times)
    return figures


def cold_throughput(
    server: Process, mode: Mode, image_id: str, image: Path, best: dict[str, Any]
) -> dict[str, Any]:
    """Distinct cold 24 MP → 200 keys fetched by 1 client, then by 4 at once, ``c4_rounds`` times
    alternately (twice as many keys at c=4): the ratio of each round's two rates says how much of the
    second core the server puts to work, its median the row. For reference, the old ceiling (cores /
    in-process best p50) and the best pipeline itself run by one process per core at once."""
    # Distinct widths over a 3:2 source at a height no other scenario asks: the height sets the scale,
    # so each key is the same work.
    keys = iter(f"/derived/{image_id}-{width}x199.jpg" for width in range(100, 300))
    c1_rates: list[float] = []
    c4_rates: list[float] = []
    for _ in range(mode.c4_rounds):
        for concurrency, count, rates in (
            (1, mode.c4_requests // 2, c1_rates),
            (4, mode.c4_requests, c4_rates),
        ):
            paths = [next(keys) for _ in range(count)]
            rates.append(count / load.concurrent_gets(server.port, paths, concurrency=concurrency))
    cores = os.cpu_count() or 1
    ratios = [c4 / c1 for c1, c4 in zip(c1_rates, c4_rates, strict=True)]
    return {
        "requests_per_round": mode.c4_requests,
        "rounds": mode.c4_rounds,
        "c1_req_per_s": round(percentile(c1_rates, 0.5), 2),
        "req_per_s": round(percentile(c4_rates, 0.5), 2),
        "c4_over_c1": round(percentile(ratios, 0.5), 3),
        "all_c1_req_per_s": [round(rate, 2) for rate in c1_rates],
        "all_c4_req_per_s": [round(rate, 2) for rate in c4_rates],
        "ceiling_req_per_s": round(cores / (best["p50_ms"] / 1000), 2),
        "cores": cores,
        "inprocess_best_parallel_req_per_s": _parallel_rate(best["pipeline"], image, cores, mode.c4_requests),
    }


def _parallel_rate(pipeline: str, image: Path, processes: int, runs: int) -> float:
    """Runs per second of ``pipeline`` on ``image`` → 200x200 in ``processes`` processes at once."""
    workers = [Worker(pipeline) for _ in range(processes)]
    try:
        for worker in workers:
            worker.run(image, SIZES["200"])
        share = max(1, runs // processes)

        def loop(worker: Worker) -> None:
            for _ in range(share):
                worker.run(image, SIZES["200"])

        threads = [threading.Thread(target=loop, args=(worker,)) for worker in workers]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return round(share * processes / (time.perf_counter() - started), 2)
    finally:
        for worker in workers:
            worker.close()


def burst(server: Process, mode: Mode, image_id: str) -> dict[str, Any]:
    """``burst_requests`` simultaneous requests for one cold key, for a 24 MP → ~200x200 and → ~1024x768;
    each against what it should cost: one cold request of the same work alone, plus a burst of as many
    requests for a stored file (the burst's own key, once it is made). All are noisy single figures, so
    each is taken ``burst_runs`` times (a fresh cold key every time, alternating) and the medians are
    compared. Generations are counted from /metrics."""
    figures: dict[str, Any] = {}
    for label, (width, height) in {"200": (290, 200), "1024": (1100, 768)}.items():
        bursts: list[float] = []
        singles: list[float] = []
        hit_bursts: list[float] = []
        generated = 0.0
        non_200 = 0
        for run in range(mode.burst_runs):
            # Widths differ, the height sets the scale: every key is the same work.
            path = f"/derived/{image_id}-{width + 2 * run}x{height}.jpg"
            before = generations(server)
            seconds, statuses = load.burst(server.port, path, mode.burst_requests)
            generated += generations(server) - before
            non_200 += sum(status != 200 for status in statuses)
            bursts.append(seconds)
            singles.append(
                load.timed_get(server.port, f"/derived/{image_id}-{width + 2 * run + 1}x{height}.jpg")
            )
            seconds, statuses = load.burst(server.port, path, mode.burst_requests)
            non_200 += sum(status != 200 for status in statuses)
            hit_bursts.append(seconds)
        figures[label] = {
            "requests": mode.burst_requests,
            "bursts": mode.burst_runs,
            "seconds": round(percentile(bursts, 0.5), 3),
            "single_generation_ms": ms(percentile(singles, 0.5)),
            "hit_burst_ms": ms(percentile(hit_bursts, 0.5)),
            "all_seconds": [round(value, 3) for value in bursts],
            "all_single_ms": [ms(value) for value in singles],
            "all_hit_burst_ms": [ms(value) for value in hit_bursts],
            "generations_per_burst": generated / mode.burst_runs,
            "non_200": non_200,
        }
    return figures


def hits(targets: dict[str, str], mode: Mode, concurrencies: tuple[int, ...] | None = None) -> dict[str, Any]:
    """wrk against each target URL at each concurrency (``mode.hit_connections`` unless given); the
    targets alternate round by round. req/s is over all rounds, p50 the rounds' median, p99 the worst
    round's."""
    rounds: dict[tuple[str, int], list[load.WrkResult]] = {}
    for _ in range(mode.hit_rounds):
        for connections in concurrencies or mode.hit_connections:
            for name, url in targets.items():
                result = load.run_wrk(url, connections, mode.hit_seconds / mode.hit_rounds)
                rounds.setdefault((name, connections), []).append(result)
    figures: dict[str, Any] = {name: {} for name in targets}
    for (name, connections), results in rounds.items():
        figures[name][f"c{connections}"] = {
            "req_per_s": round(sum(r.requests_per_second for r in results) / len(results), 1),
            "p50_ms": round(percentile([r.p50_ms for r in results], 0.5), 2),
            "p99_ms": round(max(r.p99_ms for r in results), 2),
            "requests": sum(r.requests for r in results),
            "errors": sum(r.errors for r in results),
        }
    return figures


def memory(server: Process, mode: Mode, image_id: str, big: Path) -> dict[str, Any]:
    """Peak RSS under ``rss_cold_requests`` concurrent distinct cold 24 MP → 1024x768 derivations, then
    RSS growth while one 30 MB original is uploaded. ``server`` is fresh, with ``image_id`` uploaded."""
    if not server.reset_peak_rss():
        return {"error": "cannot reset the peak RSS mark (/proc/<pid>/clear_refs needs privileges)"}
    idle = server.rss_mb()
    paths = [f"/derived/{image_id}-1024x{800 + run}.jpg" for run in range(mode.rss_cold_requests)]
    load.concurrent_gets(server.port, paths, concurrency=len(paths))
    peak = server.peak_rss_mb()
    before_upload = server.rss_mb()
    server.reset_peak_rss()
    with RssSampler(server) as sampler:
        status = load.upload(server.port, "upload30mb", big)
    if status != 201:
        raise RuntimeError(f"30 MB upload answered {status}")
    upload_peak = server.peak_rss_mb()
    return {
        "idle_rss_mb": round(idle, 1),
        "peak_rss_8_cold_mb": round(peak, 1),
        "upload_bytes": big.stat().st_size,
        "rss_before_upload_mb": round(before_upload, 1),
        "rss_peak_during_upload_mb": round(upload_peak, 1),
        "upload_rss_growth_mb": round(upload_peak - before_upload, 1),
        # Sampled every few ms: anonymous memory vs mapped files (page cache) in that growth.
        "upload_anon_rss_growth_mb": sampler.growth_mb("RssAnon"),
        "upload_file_rss_growth_mb": sampler.growth_mb("RssFile"),
    }


def memory_by_process(server: Process, mode: Mode, image_id: str) -> dict[str, Any]:
    """Each process's peak RSS under ``rss_cold_requests`` concurrent distinct cold 24 MP → 1024x768
    derivations, on a fresh server of several processes (the parent and its workers) with
    ``image_id`` uploaded; and their sum, which counts what the workers share with their parent once
    per process."""
    if not server.reset_peak_rss():
        return {"error": "cannot reset the peak RSS mark (/proc/<pid>/clear_refs needs privileges)"}
    idle = {pid: process_rss_mb(pid) for pid in server.pids()}
    paths = [f"/derived/{image_id}-1024x{800 + run}.jpg" for run in range(mode.rss_cold_requests)]
    load.concurrent_gets(server.port, paths, concurrency=len(paths))
    peaks = server.peak_rss_by_process_mb()
    return {
        "processes": len(peaks),
        "idle_rss_mb": [round(idle[pid], 1) for pid in peaks],
        "peak_rss_mb": [round(peak, 1) for peak in peaks.values()],
        "peak_rss_8_cold_mb": round(max(peaks.values()), 1),
        "peak_rss_8_cold_total_mb": round(sum(peaks.values()), 1),
    }


def cold_flood(server: Process, mode: Mode, image_id: str) -> dict[str, Any]:
    """``flood_requests`` distinct cold 24 MP keys asked at once (each refused one asked again after
    its Retry-After) while a cache hit is asked every 10 ms (every tenth time /health instead), each
    timed from when it was due (``load.cold_flood``). The flood's arrival, as many requests at once,
    holds a request behind it as any burst of as many would: that is ``arrival_stall_ms``, and the hit
    figures are of the hits asked after it, while the cold requests are in flight, being refused and
    coming back."""
    hit_path = f"/derived/{image_id}-200x200.jpg"
    if server.get(hit_path)[0] != 200:
        raise RuntimeError(f"{hit_path} is not served")
    # Widths under 1.5 × the height over a 3:2 source: the height sets the scale, every key is the same
    # work. 100–199 wide is used by no other scenario.
    paths = [f"/derived/{image_id}-{100 + run}x200.jpg" for run in range(mode.flood_requests)]
    before = generations(server)
    result = load.cold_flood(server.port, paths, hit_path)
    hits = [sample.seconds for sample in result.hits] or [result.arrival_seconds]
    health = [sample.seconds for sample in result.health] or [result.arrival_seconds]
    return {
        "requests": len(paths),
        "seconds": round(result.seconds, 2),
        "generations": generations(server) - before,
        "cold_statuses": {str(status): count for status, count in result.cold_statuses.items()},
        "arrival_stall_ms": ms(result.arrival_seconds),
        "hits": {**summary(hits), "max_ms": ms(max(hits))},
        "health": {**summary(health), "max_ms": ms(max(health))},
    }


def slow_clients(shipped_url: str, mode: Mode) -> dict[str, Any]:
    """Normal requests through the shipped Apache site (its cache hit, and /health through the mod_wsgi
    daemons, alternately, one after another) with ``slow_connections`` slowloris connections open,
    and the same requests without them just before. They are timed at once, within the 20 s
    mod_reqtimeout gives a slow client's headers, so every slow connection is still open (counted)."""
    from tests.functional.slowloris import SlowClients  # the functional test's slow client

    url = urlsplit(shipped_url)
    port = url.port or 80
    paths = [url.path, "/health"]
    # Warm: each daemon process loads the application on its first request; more requests at once than
    # one daemon has threads (15) reach them all.
    load.concurrent_gets(port, ["/health"] * 64, concurrency=32)

    def timed() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {path: [] for path in paths}
        for run in range(mode.slow_requests):
            path = paths[run % 2]
            times[path].append(load.timed_get(port, path, timeout=60))
        return times

    alone = timed()
    with SlowClients(port, mode.slow_connections) as slow:
        opened = len(slow.still_open())
        beside = timed()
        still_open = len(slow.still_open())

    def figures(times: dict[str, list[float]]) -> dict[str, Any]:
        return {
            name: {**summary(times[path]), "max_ms": ms(max(times[path]))}
            for name, path in zip(("hit", "health"), paths, strict=True)
        }

    return {
        "slow_connections": mode.slow_connections,
        "open_before": opened,
        "open_after": still_open,
        "requests": mode.slow_requests,
        "with_slow": figures(beside),
        "without_slow": figures(alone),
        "slowest_ms": ms(max(value for values in beside.values() for value in values)),
    }
