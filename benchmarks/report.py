"""Ratios from the figures, the Markdown table, the JSON file and the chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import formats, reduced
from benchmarks.machine import PROBE_RUNS


@dataclass(frozen=True)
class Target:
    key: str
    description: str
    bound: float
    at_most: bool  # True: value ≤ bound holds; False: value ≥ bound

    def holds(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.bound if self.at_most else value >= self.bound

    @property
    def text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.bound:g}"


TARGETS = (
    Target(
        "cold_200_service_over_inprocess_best",
        "24 MP → 200x200, service p50 / in-process best p50",
        0.35,  # from a reduced copy (benchmarks/reduced.py)
        True,
    ),
    Target("cold_200_speedup_over_2011", "24 MP → 200x200, 2011 pipeline p50 / service p50", 10, False),
    Target(
        "cold_200_c4_over_c1",
        "cold 24 MP → 200 req/s, 4 clients / 1 client, distinct keys (standalone, 1 process a core)",
        1.8,
        False,
    ),
    Target(
        "cold_1024_service_over_inprocess_best",
        "24 MP → 1024x768, service p50 / in-process best p50",
        0.6,
        True,
    ),
    Target(
        "cold_png_alpha_200_service_over_inprocess_best",
        "2 MP PNG with alpha → 200x200 PNG, service p50 / in-process best p50 (from the original)",
        0.3,
        True,
    ),
    Target(
        "upload_24mp_with_copy_over_without",
        "24 MP upload p50, reduced copies on / reduced_copy = off",
        1.25,
        True,
    ),
    Target(
        "hit_standalone_over_bare_cherrypy",
        "hit req/s, pymager / bare serve_file (worst of c=1, 8, 64)",
        0.9,
        False,
    ),
    Target(
        "hit_apache_over_static", "hit req/s, shipped Apache config / static Apache (worst c)", 0.5, False
    ),
    Target(
        "hit_nginx_over_static", "hit req/s, shipped nginx site / static nginx (worst of c=8, 64)", 0.8, False
    ),
    Target(
        "hit_s3_over_filesystem",
        "hit req/s, standalone on the S3 store (local cache) / on the filesystem store (worst of c=1, 8, 64)",
        0.8,
        False,
    ),
    Target(
        "cold_200_s3_over_filesystem",
        "24 MP → 200x200 p50, standalone on the S3 store / on the filesystem store",
        1.3,
        True,
    ),
    Target(
        "burst100_over_generation_plus_hits",
        "100 requests, one cold 24 MP → ~200 key / (one generation + 100 hits at once), medians "
        "(1 process a core)",
        1.2,
        True,
    ),
    Target(
        "peak_rss_8_cold_mb",
        "peak RSS of one server process, 8 concurrent cold 24 MP → 1024x768, worst process (MB)",
        150,
        True,
    ),
    Target(
        "peak_rss_8_cold_total_mb",
        "the same, summed over the processes of the standalone server of 1 process a core (MB)",
        300,
        True,
    ),
    Target("upload_30mb_rss_growth_mb", "server RSS growth while a 30 MB original uploads (MB)", 10, True),
    Target("fit_200_over_fill", "24 MP → 200x200 fit / fill, in-process pipeline (medians)", 1.1, True),
    Target("pad_200_over_fill", "24 MP → 200x200 pad / fill, in-process pipeline (medians)", 1.1, True),
    Target("fit_1024_over_fill", "24 MP → 1024x768 fit / fill, in-process pipeline (medians)", 1.1, True),
    Target("pad_1024_over_fill", "24 MP → 1024x768 pad / fill, in-process pipeline (medians)", 1.1, True),
    Target(
        "adobe_rgb_200_over_untagged", "24 MP → 200x200, Adobe RGB / untagged source (medians)", 1.1, True
    ),
    Target("adobe_rgb_1024_over_untagged", "24 MP → 1024x768, Adobe RGB / untagged (medians)", 1.1, True),
    Target("upload_check_focus_over_without", "24 MP upload check, focus detection on / off", 1.05, True),
    Target(
        "hit_p99_during_cold_flood_ms",
        "hit p99 while 100 distinct cold 24 MP requests flood the standalone server (ms)",
        50,
        True,
    ),
    Target(
        "cold_flood_arrival_stall_ms",
        "one hit asked right behind those 100 cold requests' arrival (ms)",
        1000,
        True,
    ),
    Target(
        "apache_request_with_200_slow_clients_ms",
        "slowest normal request, shipped Apache site, 200 slowloris connections open (ms)",
        1000,
        True,
    ),
    Target(
        "avif_1024_encode_over_jpeg",
        "encode a 1024x768 photo at the defaults, AVIF / JPEG (medians, median over photos)",
        10,
        True,
    ),
    Target(
        "avif_bytes_over_jpeg_at_defaults",
        "AVIF / JPEG bytes at the defaults, worst corpus photo at 1024x768 and 200x200",
        0.8,
        True,
    ),
    Target(
        "avif_ssim_over_jpeg_at_defaults",
        "AVIF / JPEG SSIM against the un-encoded picture at the defaults, worst photo and size",
        1.0,
        False,
    ),
    Target(
        "webp_ssim_over_jpeg_at_defaults",
        "WebP / JPEG SSIM against the un-encoded picture at the defaults, worst photo and size",
        1.0,
        False,
    ),
    Target(
        "animation_300f_rss_mb",
        "peak RSS above idle, 300-frame 500x500 GIF → 200x200 WebP, own process (MB)",
        60,
        True,
    ),
)


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3)


def _worst_hit_ratio(hits: dict[str, Any], name: str, baseline: str) -> float | None:
    if name not in hits or baseline not in hits:
        return None
    return min(_ratio(hits[name][c]["req_per_s"], hits[baseline][c]["req_per_s"]) for c in hits[name])


def ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    cold = figures["cold_24mp"]
    c4 = figures.get("workers_cold_c4_24mp_200", {})
    burst = figures.get("workers_burst", {}).get("200")
    memory = figures["memory"]
    by_process = figures.get("workers_memory", {})
    peaks = [
        value for value in (memory.get("peak_rss_8_cold_mb"), by_process.get("peak_rss_8_cold_mb")) if value
    ]
    return {
        "cold_200_service_over_inprocess_best": _ratio(
            cold["200"]["service"]["p50_ms"], cold["200"]["inprocess_best"]["p50_ms"]
        ),
        "cold_200_speedup_over_2011": _ratio(
            cold["200"]["inprocess_2011"]["p50_ms"], cold["200"]["service"]["p50_ms"]
        ),
        "cold_200_c4_over_c1": c4.get("c4_over_c1"),
        "cold_1024_service_over_inprocess_best": _ratio(
            cold["1024"]["service"]["p50_ms"], cold["1024"]["inprocess_best"]["p50_ms"]
        ),
        "hit_standalone_over_bare_cherrypy": _worst_hit_ratio(figures["hits"], "pymager", "bare_cherrypy"),
        "hit_apache_over_static": _worst_hit_ratio(figures["hits"], "apache_pymager", "apache_static"),
        "hit_nginx_over_static": _worst_hit_ratio(
            figures.get("nginx_hits", {}), "nginx_pymager", "nginx_static"
        ),
        **_store_ratios(figures.get("stores")),
        "burst100_over_generation_plus_hits": _burst_ratio(burst),
        "peak_rss_8_cold_mb": max(peaks) if peaks else None,
        "peak_rss_8_cold_total_mb": by_process.get("peak_rss_8_cold_total_mb"),
        "upload_30mb_rss_growth_mb": memory.get("upload_rss_growth_mb"),
        **_pipeline_ratios(figures["pipeline"]),
        "hit_p99_during_cold_flood_ms": figures["cold_flood"]["hits"]["p99_ms"],
        "cold_flood_arrival_stall_ms": figures["cold_flood"]["arrival_stall_ms"],
        "apache_request_with_200_slow_clients_ms": figures.get("apache_slow_clients", {}).get("slowest_ms"),
        **formats.ratios(figures.get("formats", {}).get("quality", {})),
        "animation_300f_rss_mb": figures.get("formats", {}).get("animation_rss", {}).get("rss_above_idle_mb"),
        **_reduced_ratios(figures.get("reduced", {})),
    }


def _store_ratios(stores: dict[str, Any] | None) -> dict[str, float | None]:
    """The S3 store over the filesystem store (``benchmarks/s3.py``), hits and a cold derivation."""
    if stores is None:
        return {"hit_s3_over_filesystem": None, "cold_200_s3_over_filesystem": None}
    cold = stores["cold_200"]
    return {
        "hit_s3_over_filesystem": _worst_hit_ratio(stores["hits"], "s3", "filesystem"),
        "cold_200_s3_over_filesystem": _ratio(cold["s3"]["p50_ms"], cold["filesystem"]["p50_ms"]),
    }


def _burst_ratio(burst: dict[str, Any] | None) -> float | None:
    """A cold burst's wall time against what its requests should cost: one generation, then a hit each."""
    if burst is None:
        return None
    return _ratio(burst["seconds"] * 1000, burst["single_generation_ms"] + burst["hit_burst_ms"])


def _reduced_ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    """The rows only ``benchmarks/reduced.py`` measures (the cold ones come from the main cold run)."""
    measured = reduced.ratios(figures)
    keys = ("cold_png_alpha_200_service_over_inprocess_best", "upload_24mp_with_copy_over_without")
    return {key: measured.get(key) for key in keys}


def _pipeline_ratios(pipeline: dict[str, Any]) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for label in ("200", "1024"):
        modes = pipeline[f"modes_{label}_ms"]
        for mode in ("fit", "pad"):
            ratios[f"{mode}_{label}_over_fill"] = _ratio(modes[mode], modes["fill"])
        colour = pipeline[f"colour_{label}_ms"]
        ratios[f"adobe_rgb_{label}_over_untagged"] = _ratio(colour["adobe_rgb"], colour["untagged"])
    check = pipeline["upload_check_ms"]
    ratios["upload_check_focus_over_without"] = _ratio(check["with_focus"], check["without_focus"])
    return ratios


def _cell(value: float | None) -> str:
    return "not measured" if value is None else f"{value:g}"


def _steadiness(machine: dict[str, Any]) -> str:
    """How steady the CPU was: stolen time, and the CPU probe (median, slowest) before and after."""
    parts = []
    if machine.get("steal_percent") is not None:
        parts.append(f"CPU time stolen by the hypervisor: {machine['steal_percent']:g}%.")
    before, after = machine.get("cpu_probe_before"), machine.get("cpu_probe_after")
    if before and after:
        parts.append(
            f"CPU probe (ms, median/slowest of {PROBE_RUNS}): {before['median_ms']:g}/{before['max_ms']:g} "
            f"before, {after['median_ms']:g}/{after['max_ms']:g} after."
        )
    return " ".join(parts)


def markdown(result: dict[str, Any]) -> str:
    figures, machine, notes = result["figures"], result["machine"], result["notes"]
    lines = [
        f"# pymager benchmark ({machine['mode']} mode, {machine['date']})",
        "",
        f"{machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, Pillow {machine['pillow']} "
        f"(libjpeg {machine['libjpeg']}), CherryPy {machine['cherrypy']}, {machine['wrk']}. "
        f"Load average before/after: {machine['loadavg_before']} / {machine['loadavg_after']}. "
        f"{_steadiness(machine)}",
        "",
        "| ratio | measures | target | value | holds |",
        "|---|---|---|---|---|",
    ]
    for target in TARGETS:
        value = result["ratios"][target.key]
        holds = target.holds(value)
        mark = "–" if holds is None else ("yes" if holds else "**no**")
        lines.append(f"| `{target.key}` | {target.description} | {target.text} | {_cell(value)} | {mark} |")
    lines += ["", "## Cold derive, 24 MP JPEG (ms)", "", "| target size | pipeline | p50 | p99 | runs |"]
    lines.append("|---|---|---|---|---|")
    for label in ("200", "1024"):
        for name, row in figures["cold_24mp"][label].items():
            if not isinstance(row, dict):
                continue
            extra = f" ({row['variant']})" if "variant" in row else ""
            lines.append(f"| {label} | {name}{extra} | {row['p50_ms']} | {row['p99_ms']} | {row['runs']} |")
    generation = {
        label: figures["cold_24mp"][label]["service_generation_mean_ms"] for label in ("200", "1024")
    }
    peak = figures["cold_24mp"]["peak_rss_mb"]
    c4 = {
        name: figures[key]
        for name, key in (("1 process", "cold_c4_24mp_200"), ("1 process a core", "workers_cold_c4_24mp_200"))
        if key in figures
    }
    lines += [
        "",
        f"pymager's own mean generation time (/metrics, excludes HTTP and the claim): "
        f"{generation['200']} ms (200), {generation['1024']} ms (1024).",
        f"In-process peak RSS (own process): 2011 pipeline {peak['inprocess_2011']} MB, "
        f"best pipeline {peak['inprocess_best']} MB.",
        *(_throughput(name, row) for name, row in c4.items()),
        "",
        "Other corpus images, cold → 200x2xx at c=1 (ms): "
        + ", ".join(
            f"{name} p50 {row['p50_ms']} / p99 {row['p99_ms']}" for name, row in figures["cold_other"].items()
        ),
        "",
        "## Cache hits (wrk, same derived file)",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for server, by_c in figures["hits"].items():
        for connections, row in by_c.items():
            lines.append(
                f"| {server} | {connections.removeprefix('c')} | {row['req_per_s']} | {row['p50_ms']} | "
                f"{row['p99_ms']} | {row['errors']} |"
            )
    for server, by_c in figures.get("nginx_hits", {}).items():
        for connections, row in by_c.items():
            lines.append(
                f"| {server} | {connections.removeprefix('c')} | {row['req_per_s']} | {row['p50_ms']} | "
                f"{row['p99_ms']} | {row['errors']} |"
            )
    stores = figures.get("stores", {})
    for store, by_c in stores.get("hits", {}).items():
        for connections, row in by_c.items():
            lines.append(
                f"| {store} store ({stores['registry']}) | {connections.removeprefix('c')} | "
                f"{row['req_per_s']} | {row['p50_ms']} | {row['p99_ms']} | {row['errors']} |"
            )
    if stores:
        lines += ["", _stores_cold(stores)]
    memory = figures["memory"]
    lines += ["", "## Burst and memory", ""]
    for server, key in (("1 process", "burst"), ("1 process a core", "workers_burst")):
        lines += [
            f"- {server}: {row['requests']} simultaneous requests for one cold 24 MP → ~{label} key "
            f"(median of {row['bursts']} bursts, each a fresh key): {row['seconds'] * 1000:.0f} ms wall, "
            f"{row['generations_per_burst']:g} generation(s) per burst, {row['non_200']} non-200; one cold "
            f"request of the same work alone: {row['single_generation_ms']} ms; as many requests at once "
            f"for a stored file: {row.get('hit_burst_ms')} ms (medians of as many)."
            for label, row in figures.get(key, {}).items()
        ]
    by_process = figures.get("workers_memory", {})
    lines += [
        f"- Server RSS idle {memory.get('idle_rss_mb')} MB; peak under {figures['memory_cold_requests']} "
        f"concurrent cold 24 MP → 1024x768: {memory.get('peak_rss_8_cold_mb')} MB. With "
        f"{by_process.get('processes')} processes (parent first): idle {by_process.get('idle_rss_mb')} MB, "
        f"peaks {by_process.get('peak_rss_mb')} MB, {by_process.get('peak_rss_8_cold_total_mb')} MB in all.",
        f"- 30 MB upload ({memory.get('upload_bytes')} bytes): RSS {memory.get('rss_before_upload_mb')} MB "
        f"before, peak {memory.get('rss_peak_during_upload_mb')} MB during; sampled growth: anonymous "
        f"{memory.get('upload_anon_rss_growth_mb')} MB, "
        f"mapped files {memory.get('upload_file_rss_growth_mb')} MB.",
    ]
    pipeline = figures["pipeline"]
    lines += ["", f"## Pipeline costs, in-process (24 MP JPEG, medians of {pipeline['runs']}, ms)", ""]
    lines += ["| comparison | contenders |", "|---|---|"]
    for key, row in pipeline.items():
        if isinstance(row, dict):
            lines.append(
                f"| {key.removesuffix('_ms')} | " + ", ".join(f"{k} {v}" for k, v in row.items()) + " |"
            )
    lines += ["", "## Cold flood and slow clients", "", *_flood_and_slow(figures)]
    if "formats" in figures:
        lines += ["", "## Derived formats and animations", "", *_formats(figures["formats"])]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _stores_cold(stores: dict[str, Any]) -> str:
    rows = "; ".join(
        f"{store} p50 {row['p50_ms']} / p99 {row['p99_ms']} ms ({row['runs']} runs), its first "
        f"{row['first_ms']} ms, mean generation {row['generation_mean_ms']} ms"
        for store, row in stores["cold_200"].items()
    )
    return (
        f"Cold 24 MP → 200x2xx at c=1, the two stores taking turns ({stores['registry']} registry): {rows}."
    )


def _throughput(server: str, row: dict[str, Any]) -> str:
    return (
        f"Cold 24 MP → ~200, {server}: {row['c1_req_per_s']} req/s at c=1, {row['req_per_s']} at c=4 "
        f"(medians of {row['rounds']} rounds of {row['requests_per_round'] // 2} and "
        f"{row['requests_per_round']} distinct keys), c=4 / c=1 {row['c4_over_c1']}; the old ceiling, "
        f"{row['cores']} cores / best p50: {row['ceiling_req_per_s']} req/s; the best pipeline itself in "
        f"{row['cores']} processes at once: {row['inprocess_best_parallel_req_per_s']} req/s."
    )


def _formats(figures: dict[str, Any]) -> list[str]:
    quality = figures["quality"]
    settings = ", ".join(f"{key} {value}" for key, value in quality["defaults"].items())
    lines = [
        f"At the defaults ({settings}); SSIM against the un-encoded resized picture; encode ms the median "
        f"of {quality['runs']} interleaved runs.",
        "",
        "| picture | format | bytes | SSIM | encode ms |",
        "|---|---|---|---|---|",
    ]
    for picture, row in quality["pictures"].items():
        for name, cell in row.items():
            lines.append(f"| {picture} | {name} | {cell['bytes']} | {cell['ssim']} | {cell['encode_ms']} |")
    rss = figures["animation_rss"]
    lines += [
        "",
        f"- {rss['frames']}-frame {rss['side']}x{rss['side']} GIF → {rss['out_side']}x{rss['out_side']} "
        f"WebP in its own process: RSS {rss['idle_rss_mb']} MB idle, peak {rss['peak_rss_mb']} MB "
        f"({rss['rss_above_idle_mb']} MB above idle), {rss['seconds']} s.",
    ]
    longest = figures.get("longest_animation")
    if longest:
        lines.append(
            f"- The longest animation an upload may be ({longest['frames']} x {longest['side']}x"
            f"{longest['side']}) → {longest['out_side']}x{longest['out_side']}: "
            f"GIF {longest['gif_seconds']} s, "
            f"WebP {longest['webp_seconds']} s, AVIF {longest['avif_seconds']} s "
            f"(wait_timeout {longest['wait_timeout_seconds']:g} s, "
            f"generation_timeout {longest['generation_timeout_seconds']:g} s)."
        )
    return lines


def _flood_and_slow(figures: dict[str, Any]) -> list[str]:
    flood = figures["cold_flood"]
    hits, health = flood["hits"], flood["health"]
    statuses = ", ".join(f"{count} × {status}" for status, count in flood["cold_statuses"].items())
    lines = [
        f"- {flood['requests']} distinct cold 24 MP → ~200 requests at once, each 503 asked again after its "
        f"Retry-After: all generated in {flood['seconds']} s ({flood['generations']:g} generations; "
        f"answers {statuses}). A hit asked right behind the flood's arrival took "
        f"{flood['arrival_stall_ms']} ms; after it, a hit every 10 ms, timed from when it was due: p50 "
        f"{hits['p50_ms']} / p99 {hits['p99_ms']} / max {hits['max_ms']} ms ({hits['runs']} hits); /health "
        f"p50 {health['p50_ms']} / p99 {health['p99_ms']} / max {health['max_ms']} ms.",
    ]
    slow = figures.get("apache_slow_clients")
    if slow is not None:
        beside, alone = slow["with_slow"], slow["without_slow"]
        lines.append(
            f"- Shipped Apache site with {slow['slow_connections']} slowloris connections open "
            f"({slow['open_before']} open before, {slow['open_after']} after): {slow['requests']} normal "
            f"requests, hit p50 {beside['hit']['p50_ms']} / max {beside['hit']['max_ms']} ms, "
            f"/health (mod_wsgi) p50 {beside['health']['p50_ms']} / max {beside['health']['max_ms']} ms; "
            f"without them just before: hit max {alone['hit']['max_ms']} ms, "
            f"/health max {alone['health']['max_ms']} ms."
        )
    return lines


def write(result: dict[str, Any], directory: Path, stem: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md_path, json_path, png_path = (directory / f"{stem}.{ext}" for ext in ("md", "json", "png"))
    md_path.write_text(markdown(result), encoding="utf-8")
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    from benchmarks.chart import draw  # matplotlib is a bench extra, imported only here

    draw(result, png_path)
    return [md_path, json_path, png_path]
