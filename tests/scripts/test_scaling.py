"""scripts/scaling.py on a tiny subset: a CSV row per configuration (each measured in a process
of its own), a PNG plot, and one JSON line saying where they are."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def scaling(*args):
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "scripts" / "scaling.py"), *map(str, args)],
                          cwd=REPO, env=environ, capture_output=True, text=True, check=False)


def test_quick_subset_writes_csv_and_png(tmp_path):
    result = scaling(f"--outdir={tmp_path / 'out'}", "--quick", "--resolutions=8", "--batches=1",
                     "--modes=generate,train")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["configurations"] == 2 and summary["ok"] == 1 and summary["skipped"] == 1
    assert summary["best_batch"] == {"generate": {"8px_1t": 1}}
    with open(summary["csv"], newline="") as file:
        rows = list(csv.DictReader(file))
    generate, train = rows
    assert (generate["mode"], generate["resolution"], generate["batch"], generate["threads"]) == (
        "generate", "8", "1", "1")
    assert generate["status"] == "ok"
    assert float(generate["ms_per_img"]) > 0 and float(generate["gflop"]) > 0
    # The child's own peak (os.wait4): at least its peak during the timed calls.
    assert float(generate["peak_rss_mb"]) >= float(generate["run_peak_rss_mb"]) > 0
    assert float(generate["mb_per_img"]) == pytest.approx(max(
        float(generate["run_peak_rss_mb"]) - float(generate["rss_built_mb"]), 0), abs=0.01)
    assert train["mode"] == "train" and train["status"].startswith("skipped: train needs an even batch")
    with Image.open(summary["png"]) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 300
    assert "[1/2] generate 8px batch 1 threads 1: ok" in result.stderr


def test_unknown_mode_is_a_usage_error(tmp_path):
    result = scaling(f"--outdir={tmp_path / 'out'}", "--modes=generate,nope")
    assert result.returncode == 2
    assert "--modes: expected some of generate, train" in result.stderr
    assert not (tmp_path / "out").exists()
