"""bench/gpu/report.py: the docs/gpu.md table from bench_decode.py's JSON, with verdicts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report():  # bench/ is not a package: load the script as a module
    spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "bench" / "gpu" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = {
    "device": "NVIDIA H100 80GB HBM3",
    "config": "qwen2.5-coder-1.5b",
    "dtype": "torch.bfloat16",
    "bandwidth_gbs": 3000.0,
    "weights_bytes": 3.09e9,
    "kv_bytes": 60e6,
    "roofline_tps": 952.0,
    "fast_tps": 600.0,
    "plain_tps": 40.0,
    "roofline_fraction": 600 / 952,
    "speedup": 15.0,
    "ttft_cold_ms": 30.0,
    "ttft_reuse_append_ms": 20.0,
    "ttft_reuse_mid_edit_ms": 25.0,
    "warmup_s": 4.0,
    "prompt_tokens": 2048,
    "new_tokens": 128,
}


def test_table_has_a_column_per_run_and_the_verdicts() -> None:
    report = _report()
    slow = {**RUN, "device": "other", "fast_tps": 300.0, "roofline_fraction": 300 / 952, "speedup": 4.0}
    text = report.table([RUN, slow])
    lines = text.splitlines()
    assert lines[0].count("|") == 4 and "NVIDIA H100 80GB HBM3" in lines[0]
    fast = next(line for line in lines if line.startswith("| fast path decode"))
    assert "600 tok/s = 63%: met" in fast and "300 tok/s = 32%: **not met**" in fast
    ttft = next(line for line in lines if "one token appended" in line)
    assert "20.0 ms: **not met**" in ttft  # above the 15 ms target
    assert any("512 recomputed" in line for line in lines)


def test_update_replaces_only_the_marked_table(tmp_path: Path) -> None:
    report = _report()
    doc = tmp_path / "gpu.md"
    doc.write_text(f"before\n{report.START}\n| old |\n{report.END}\nafter\n", encoding="utf-8")
    data = tmp_path / "run.json"
    data.write_text(json.dumps(RUN), encoding="utf-8")
    report.update(doc, report.table([json.loads(data.read_text())]))
    body = doc.read_text(encoding="utf-8")
    assert body.startswith("before\n<!-- gpu-figures:start -->\n| figure |")
    assert body.endswith("<!-- gpu-figures:end -->\nafter\n") and "| old |" not in body


def test_docs_carry_the_markers() -> None:
    body = (ROOT / "docs" / "gpu.md").read_text(encoding="utf-8")
    assert body.count(_report().START) == 1 and body.count(_report().END) == 1
