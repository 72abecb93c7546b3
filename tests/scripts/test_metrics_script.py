"""scripts/metrics.py end to end: JSON lines, the feature cache, usage errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.network_io import save_network

REPO = Path(__file__).resolve().parents[2]


def run(*args, **env):
    env = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, str(REPO / "scripts" / "metrics.py"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, check=False)


def test_metrics_script_reports_json_lines_and_caches_the_dataset(tmp_path, tiny_generator,
                                                                  inception_standin):
    G = tiny_generator(c_dim=10, resolution=16, channels=1)  # as the digits
    save_network({"G_ema": G}, tmp_path / "net")
    data = digits_dataset(tmp_path / "data", resolution=16)
    args = [f"--network={tmp_path / 'net'}", f"--data={data}", "--metrics=fid64_full,swd64",
            f"--cache_dir={tmp_path / 'cache'}", f"--output={tmp_path / 'metrics.jsonl'}"]
    result = run(*args, STYLEGAN2_INCEPTION=str(inception_standin))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["metric"] for line in lines] == ["fid64_full", "swd64"]
    assert lines[0]["results"]["fid64_full"] > 0 and lines[1]["results"]["swd64"] > 0
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == result.stdout.splitlines()
    assert len(list((tmp_path / "cache" / "metrics").glob("digits-16-inception-1797-*.npy"))) == 1


def test_metrics_script_usage_errors(tmp_path):
    env = {"STYLEGAN2_INCEPTION": ""}
    for args, message in [
        (["--network=nothing.pkl", "--metrics=swd"], "does not exist"),
        (["--network=x.pkl", "--metrics=fid50k"], "unknown metric"),
        (["--network=x.pkl", "--metrics=fid50k_full"], "STYLEGAN2_INCEPTION"),
        (["--network=x.pkl", f"--inception={tmp_path}", "--metrics=kid50k_full"], "is not a file"),
    ]:
        result = run(*args, **env)
        assert result.returncode != 0 and "Traceback" not in result.stderr, args
        assert message in result.stderr, (args, result.stderr[-500:])
