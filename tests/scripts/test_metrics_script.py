"""scripts/metrics.py end to end: JSON lines, the feature cache, the Inception Score, usage errors."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stylegan2_tf.data.builtin import digits_dataset
from stylegan2_tf.network_io import save_network

REPO = Path(__file__).resolve().parents[2]


def _softmax_standin_module():
    """tests/metrics/softmax_standin.py: the Inception stand-in with the real file's classifier."""
    spec = importlib.util.spec_from_file_location(
        "softmax_standin", Path(__file__).resolve().parents[1] / "metrics" / "softmax_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def softmax_standin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("softmax")
    return _softmax_standin_module().make_softmax_standin(folder / "classify_image_graph_def.pb")


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


def test_metrics_script_reports_the_inception_score(tmp_path, tiny_generator, softmax_standin):
    G = tiny_generator(c_dim=10, resolution=16, channels=1)
    save_network({"G_ema": G}, tmp_path / "net")
    data = digits_dataset(tmp_path / "data", resolution=16)
    result = run(f"--network={tmp_path / 'net'}", f"--data={data}", "--metrics=is20",
                 f"--cache_dir={tmp_path / 'cache'}", f"--inception={softmax_standin}")
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert line["metric"] == "is20" and set(line["results"]) == {"is20_mean", "is20_std"}
    assert 1 <= line["results"]["is20_mean"] <= _softmax_standin_module().CLASSES


def test_metrics_script_usage_errors(tmp_path, tiny_generator, inception_standin, rgb_dataset):
    save_network({"G_ema": tiny_generator(resolution=32)}, tmp_path / "net")
    lying = tmp_path / "lying"
    shutil.copytree(rgb_dataset, lying)
    metadata = json.loads((lying / "metadata.json").read_text())
    metadata["image_count"] += 1
    metadata["shards"][0]["records"] += 1
    (lying / "metadata.json").write_text(json.dumps(metadata))
    env = {"STYLEGAN2_INCEPTION": ""}
    for args, message in [
        (["--network=nothing.pkl", "--metrics=swd"], "does not exist"),
        (["--network=x.pkl", "--metrics=fid50k"], "unknown metric"),
        (["--network=x.pkl", "--metrics=fid50k_full"], "STYLEGAN2_INCEPTION"),
        (["--network=x.pkl", f"--inception={tmp_path}", "--metrics=kid50k_full"], "is not a file"),
        ([f"--network={tmp_path / 'net'}", f"--data={rgb_dataset}", "--metrics=is10",
          f"--inception={inception_standin}"], "no classifier softmax/logits/MatMul"),
        ([f"--network={tmp_path / 'net'}", f"--data={lying}", "--metrics=swd8"],
         f"dataset {lying}: metadata.json claims 9 images but its shards hold 8 records"),
    ]:
        result = run(*args, **env)
        assert result.returncode != 0 and "Traceback" not in result.stderr, args
        assert message in result.stderr, (args, result.stderr[-500:])
