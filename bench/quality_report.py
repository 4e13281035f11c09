"""Markdown for the membership quality figures: one table per language and an all-language
summary, each figure beside its target."""

from __future__ import annotations

from typing import Any

# kind -> (metric, target): the targets, in every language and both query modes.
TARGETS: dict[str, list[tuple[str, float]]] = {
    "verbatim": [("attributed", 0.98)],
    "reindented": [("attributed", 0.97)],
    "renamed": [("attributed", 0.90)],
    "comment_stripped": [("attributed", 0.95)],
    "embedded": [("attributed", 0.98), ("located", 0.95)],
    "edited": [],
    "negative": [("detected", 0.01)],  # a ceiling: the false-positive rate
}
LABELS = {
    "verbatim": "verbatim",
    "reindented": "re-indented",
    "renamed": "renamed",
    "comment_stripped": "comments removed, line deleted",
    "embedded": "embedded in unseen code",
    "edited": "scattered edits",
    "negative": "**negatives: false-positive rate**",
}


def met(kind: str, metric: str, value: float, target: float) -> bool:
    return value <= target if kind == "negative" else value >= target


def _target_text(kind: str) -> str:
    if kind == "negative":
        return "≤ 0.01"
    return ", ".join(f"{m[:3]}. ≥ {t:.2f}" for m, t in TARGETS[kind]) or "—"


def _cell(row: dict[str, Any], kind: str, metric: str) -> str:
    a, b = row["path"][metric], row["guess"][metric]
    text = f"{a:.3f} / {b:.3f}"
    target = next((t for m, t in TARGETS[kind] if m == metric), None)
    worst = max(a, b) if kind == "negative" else min(a, b)
    bad = target is not None and not met(kind, metric, worst, target)
    return text + (" ✗" if bad else "")


def language_table(lang: str, data: dict[str, Any]) -> str:
    c = data["corpus"]
    lines = [
        f"#### {lang}",
        "",
        f"{c['indexed_files']} files ({c['indexed_mb']:.1f} MB) indexed, {c['held_out_files']} "
        f"({c['held_out_mb']:.1f} MB) held out; from "
        + ", ".join(f"{p['package']} {p['version']}".strip() for p in c["packages"])
        + ". Each figure: with a file name / without a language; ✗ where either misses the target.",
        "",
        "| case | n | detected | attributed | located | target | Moss det. / att. / loc. | DP detected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, row in data["rows"].items():
        moss = row["moss"]
        if kind == "negative":
            figures = f"{_cell(row, kind, 'detected')} | — | —"
            moss_text = f"{moss['detected']:.3f}"
        else:
            figures = " | ".join(_cell(row, kind, m) for m in ("detected", "attributed", "located"))
            moss_text = f"{moss['detected']:.3f} / {moss['attributed']:.3f} / {moss['located']:.3f}"
        lines.append(
            f"| {LABELS[kind]} | {row['n']} | {figures} | {_target_text(kind)} | {moss_text} | "
            f"{row['dataportraits_detected']:.3f} |"
        )
    excluded = sum(data["excluded_cases"].values())
    lenient = ", ".join(
        f"{LABELS[k]} {r['path']['attributed_or_holder']:.3f}"
        for k, r in data["rows"].items()
        if k != "negative" and r["path"]["attributed_or_holder"] > r["path"]["attributed"]
    )
    lines += [
        "",
        f"Comment-stripped cases left out (under 150 characters of code left): {excluded}. Of the "
        f"{data['misses_with_path']} cases missed with a file name, {data['shared_span_misses']} copy "
        "text that two or more indexed files hold (licence headers, boilerplate)"
        + (f"; counting a top match that holds the copied text as right: {lenient}." if lenient else "."),
        "",
    ]
    return "\n".join(lines)


def _pooled(langs: dict[str, Any], kind: str, key: str, metric: str) -> float:
    total = sum(d["rows"][kind]["n"] for d in langs.values()) or 1
    return sum(d["rows"][kind][key][metric] * d["rows"][kind]["n"] for d in langs.values()) / total


def summary_table(langs: dict[str, Any]) -> str:
    names = list(langs)
    head = "| case | target | " + " | ".join(names) + " | all | Moss (all) | DP detected (all) |"
    lines = [head, "|" + "---|" * (len(names) + 5)]
    for kind in LABELS:
        metrics = [m for m, _ in TARGETS[kind]] or ["attributed"]
        for metric in metrics:
            label = LABELS[kind] if metric in ("attributed", "detected") else f"{LABELS[kind]}: located"
            cells = [_cell(langs[n]["rows"][kind], kind, metric) for n in names]
            ours = f"{_pooled(langs, kind, 'path', metric):.3f} / {_pooled(langs, kind, 'guess', metric):.3f}"
            target = next((t for m, t in TARGETS[kind] if m == metric), None)
            shown = "—" if target is None else ("≤ " if kind == "negative" else "≥ ") + f"{target:.2f}"
            lines.append(
                f"| {label} | {shown} | " + " | ".join(cells) + f" | {ours} | "
                f"{_pooled(langs, kind, 'moss', metric):.3f} | "
                + (f"{_pooled_dp(langs, kind):.3f} |" if metric != "located" else "— |")
            )
    return "\n".join(lines)


def _pooled_dp(langs: dict[str, Any], kind: str) -> float:
    total = sum(d["rows"][kind]["n"] for d in langs.values()) or 1
    return (
        sum(d["rows"][kind]["dataportraits_detected"] * d["rows"][kind]["n"] for d in langs.values()) / total
    )


def markdown(report: dict[str, Any], commit: str, quick: bool) -> str:
    langs = report["languages"]
    idx = report["index"]
    parts = [
        f"### Membership quality ({'quick' if quick else 'full'} run, commit {commit})",
        "",
        f"One index of every language's indexed half: {idx['files']} files, {idx['corpus_mb']:.1f} MB, "
        f"index {idx['index_mb']:.1f} MB. Figures: with a file name / without a language.",
        "",
        summary_table(langs),
        "",
    ]
    parts += [language_table(lang, data) for lang, data in langs.items()]
    return "\n".join(parts)
