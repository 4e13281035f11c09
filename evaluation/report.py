"""The report of a run, computed from its per-task records: report.json, report.md and the
quality/latency plot."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .passk import ks_for, mean_pass_at_k
from .plot import quality_latency_svg
from .runner import TASKS_FILE, read_records

PLOT_FILE = "quality-latency.svg"


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def summarise(records: list[dict[str, Any]], samples: int, memorisation: bool) -> dict[str, Any]:
    """The figures of one setting from its records."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_task[r["task_id"]].append(r)
    executed = [r for r in records if r.get("passed") is not None]
    pass_k: dict[str, float | None] = {}
    if executed:
        for k in ks_for(samples):
            counts = [
                (len(rs), sum(bool(r["passed"]) for r in rs)) for rs in by_task.values() if len(rs) >= k
            ]
            value = mean_pass_at_k(counts, k)
            pass_k[f"pass@{k}"] = None if value is None else round(value, 4)
    latencies = [r["latency_ms"] for r in records if r.get("latency_ms") is not None]
    ttft = [r["ttft_ms"] for r in records if r.get("ttft_ms") is not None]
    timed = [r for r in records if r.get("tokens") is not None and r.get("generation_ms")]
    gen_s = sum(r["generation_ms"] for r in timed) / 1000
    checked = [r for r in records if r.get("completion", "").strip() and r.get("matches") is not None]
    hits = [r for r in checked if r.get("matches")]
    sources: Counter[tuple[str, str | None, str | None]] = Counter()
    licences: Counter[str] = Counter()
    for r in hits:
        seen = {(m.get("repo") or "") + "/" + m["path"]: m for m in r["matches"]}
        for where, m in seen.items():
            sources[(where.lstrip("/"), m.get("license"), m.get("url"))] += 1
        for lic in {m.get("license") or "unknown" for m in r["matches"]}:
            licences[lic] += 1
    verdicts = Counter(r.get("verdict", "") for r in records)
    return {
        "tasks": len(by_task),
        "samples": len(records),
        "pass@1": pass_k.get("pass@1"),
        **{k: v for k, v in pass_k.items() if k != "pass@1"},
        "exact_match": _mean([float(r["exact_match"]) for r in records]),
        "edit_similarity": _mean([float(r["edit_similarity"]) for r in records]),
        "latency_p50_ms": _pct(latencies, 50),
        "latency_p99_ms": _pct(latencies, 99),
        "ttft_p50_ms": _pct(ttft, 50),
        "ttft_p99_ms": _pct(ttft, 99),
        "tokens_per_s": round(sum(r["tokens"] for r in timed) / gen_s, 1) if gen_s > 0 else None,
        "memorization_rate": round(len(hits) / len(checked), 4) if memorisation and checked else None,
        "memorized_completions": len(hits) if memorisation else None,
        "top_sources": [
            {"source": s, "license": lic, "url": url, "completions": n}
            for (s, lic, url), n in sources.most_common(5)
        ],
        "licenses": dict(licences.most_common()),
        "verdicts": dict(verdicts),
        "errors": verdicts.get("error", 0),
        "first_error": next((r["error"] for r in records if r.get("verdict") == "error"), None),
        "membership_errors": sum(1 for r in records if r.get("membership_error")),
    }


def _cell(v: Any, pct: bool = False) -> str:
    if v is None:
        return "—"
    if pct:
        return f"{100 * v:.1f} %"
    return f"{v:,.1f}" if isinstance(v, float) else str(v)


def markdown(report: dict[str, Any]) -> str:
    settings: dict[str, dict[str, Any]] = report["settings"]
    ks = sorted({k for s in settings.values() for k in s if k.startswith("pass@") and k != "pass@1"})
    head = ["setting", "tasks", "pass@1", *ks, "exact match", "edit sim.", "p50 ms", "p99 ms",
            "TTFT p50 ms", "tok/s", "memorised"]  # fmt: skip
    lines = [
        f"# stacklens eval: {report['benchmark']}",
        "",
        f"{report['tasks']} tasks × {report['samples']} sample(s)"
        + ("" if report["complete"] else " — **incomplete run** (resume with the same --out)")
        + (f"; membership: {report['membership']}" if report.get("membership") else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(" --- " for _ in head) + "|",
    ]
    for name, s in settings.items():
        row = [name, str(s["tasks"]), _cell(s["pass@1"], True), *(_cell(s.get(k), True) for k in ks)]
        row += [_cell(s["exact_match"], True), _cell(s["edit_similarity"]), _cell(s["latency_p50_ms"])]
        row += [_cell(s["latency_p99_ms"]), _cell(s["ttft_p50_ms"]), _cell(s["tokens_per_s"])]
        row += [_cell(s["memorization_rate"], True)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"![quality against latency]({PLOT_FILE})", ""]
    for name, s in settings.items():
        if s["errors"]:
            lines += [f"{name}: {s['errors']} request(s) failed, the first with: {s['first_error']}", ""]
        if s["membership_errors"]:
            n = s["membership_errors"]
            lines += [f"{name}: {n} completion(s) could not be checked (see tasks.jsonl)", ""]
        if s["top_sources"]:
            lines.append(f"Sources of memorised completions ({name}):")
            lines += [
                f"- {t['source']} ({t['license'] or 'licence unknown'}): {t['completions']} completion(s)"
                for t in s["top_sources"]
            ]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_report(out: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Build report.json, report.md and the plot in ``out`` from its records; returns the report.
    ``run``: benchmark, tasks, samples, settings (names in order), executes, membership."""
    records = read_records(out / TASKS_FILE)
    per: dict[str, list[dict[str, Any]]] = {name: [] for name in run["settings"]}
    for r in records:
        if r.get("setting") in per:
            per[r["setting"]].append(r)
    settings = {
        name: {**summarise(rs, run["samples"], bool(run.get("membership"))), "config": run["settings"][name]}
        for name, rs in per.items()
    }
    expected = run["tasks"] * run["samples"]
    report = {
        "benchmark": run["benchmark"],
        "tasks": run["tasks"],
        "samples": run["samples"],
        "complete": all(len(rs) >= expected for rs in per.values()),
        "membership": run.get("membership"),
        "settings": settings,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    quality = "pass@1" if run["executes"] else "exact_match"
    points = [
        (name, s["latency_p50_ms"] or 0.0, s[quality] or 0.0) for name, s in settings.items() if s["samples"]
    ]
    label = "pass@1" if run["executes"] else "exact match"
    svg = quality_latency_svg(points, label, f"{run['benchmark']}: {label} against latency")
    (out / PLOT_FILE).write_text(svg, encoding="utf-8")
    return report
