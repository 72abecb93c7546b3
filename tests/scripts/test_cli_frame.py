"""The frame every script runs in (stylegan2_tf.cli.run, scripts/_tf_logs.py), as a user runs them:
usage errors as one line each, TensorFlow's logs hidden unless --verbose, messages naming the flags."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan2_tf.cli import flag_error_messages

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "official"
PICKLE = FIXTURES / "stylegan2_config_f_tiny.pkl"  # unconditional, 32x32 RGB
COND_PICKLE = FIXTURES / "stylegan2_config_e_cond_tiny.pkl"  # 4 classes
HELP_LINE = "Run with --help for usage."
# A line of TensorFlow's C++ logging (absl: "I0000 00:00:17.. 42 port.cc:153] ...", TSL:
# "2024-01-01 12:00:00.1: I tensorflow/core/util/port.cc:113] ...") or absl's pre-init banner.
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|\d{4}-\d\d-\d\d [\d:.]+: [IWEF] "
                         r"|WARNING: All log messages before absl::InitializeLog)", re.MULTILINE)


def _load_tf_logs():
    """scripts/_tf_logs.py, the scripts' sibling module (outside the package)."""
    spec = importlib.util.spec_from_file_location("_tf_logs", REPO / "scripts" / "_tf_logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tf_logs = _load_tf_logs()


def run(script, *args, **env):
    """Runs a script as a user does: no TF_CPP_MIN_LOG_LEVEL of ours (conftest sets one)."""
    environ = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)],
                          cwd=REPO, env=environ, capture_output=True, text=True, check=False)


def assert_usage_error(result, pattern):
    """Exit code 2; stderr is the message line and where help is, nothing else."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 2 and lines[1] == HELP_LINE, result.stderr[-2000:]
    assert re.fullmatch(pattern, lines[0]), lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("script,args,message", [
    ("generate.py", [], "--network, --seeds and --outdir are required"),
    ("project.py", ["--steps=3"], "--network, --target and --outdir are required"),
    ("train.py", ["--outdir=x", "--cfg=nope"], r"--cfg=nope: value should be one of <auto\|.*>"),
    ("metrics.py", ["--network=x", "--batch=abc"], "--batch=abc: expected an integer"),
    ("export.py", ["--network=x", "--export_dir=y", "--trunc=nan"], "--trunc=nan: expected a finite number"),
    ("style_mixing.py", ["--network=x", "--rows=1", "--cols=2", "--outdr=o"],
     r"unknown flag --outdr \(did you mean --outdir\?\)"),
    ("convert.py", ["--source=x", "--dest=y", "--force_fp32=maybe"], "--force_fp32=maybe: expected true or false"),
    ("truncation_sweep.py", ["--network=x", "--outdir=o", "--psis=1,x"], "--psis: expected .*"),
    ("dataset_tool.py", ["--source=x", "--dest=y", "extra"], r"unexpected arguments: \['extra'\]"),
    ("benchmark.py", [], "expected one MODE .*ops, generate, train; got none"),
])
def test_usage_errors_are_one_line_without_the_help_text(script, args, message):
    assert_usage_error(run(script, *args), f"{re.escape(script)}: error: {message}")


def test_help_lists_verbose_and_no_tensorflow_logs():
    result = run("generate.py", "--help")
    assert "--[no]verbose: Show TensorFlow's logs" in result.stdout
    assert "--seeds: Seeds" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("script,args,message", [
    ("generate.py", [f"--network={COND_PICKLE}", "--seeds=0"],
     r"the network is conditional: give --class_idx, a class in \[0, 4\)"),
    ("truncation_sweep.py", [f"--network={COND_PICKLE}", "--class_idx=4"],
     r"--class_idx=4 is outside \[0, 4\), the network's classes"),
    ("style_mixing.py", [f"--network={PICKLE}", "--rows=1", "--cols=2", "--class_idx=1"],
     "--class_idx is given but the network is unconditional"),
    ("project.py", [f"--network={COND_PICKLE}", "--target={target}", "--distance=pixel"],
     r"the network is conditional: give --class_idx, a class in \[0, 4\)"),
])
def test_class_errors_name_class_idx(tmp_path, script, args, message):
    target = tmp_path / "target.png"
    Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(target)
    args = [arg.format(target=target) for arg in args]
    assert_usage_error(run(script, *args, f"--outdir={tmp_path / 'out'}"),
                       f"{re.escape(script)}: error: {message}")
    assert not (tmp_path / "out").exists()


def test_missing_weights_are_named_at_once():
    no_weights = {"STYLEGAN2_INCEPTION": "", "STYLEGAN2_VGG16": "", "STYLEGAN2_LPIPS": ""}
    result = run("metrics.py", "--network=x.pkl", "--metrics=fid50k_full,pr50k3_full,ppl_wend,swd",
                 **no_weights)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert lines[0] == "metrics.py: error: 3 weights files are missing:"
    assert lines[-1] == HELP_LINE and len(lines) == 5
    for line, metric, flag, env, url in zip(lines[1:4], ["fid50k_full", "pr50k3_full", "ppl_wend"], [
            "--inception=PATH", "--vgg16=PATH", "--lpips=PATH"], [
            "STYLEGAN2_INCEPTION", "STYLEGAN2_VGG16", "STYLEGAN2_LPIPS"], [
            "inception-2015-12-05.tgz", "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "net-lin_vgg_v0.1.pb"]):
        assert line.startswith(f"  {metric}: ") and flag in line and env in line and url in line


def test_tensorflow_logs_are_hidden_but_not_our_warnings(tmp_path):
    # Without the compiled ops, "auto" falls back to the reference ops with one RuntimeWarning.
    (tmp_path / "no_ops").mkdir()
    result = run("generate.py", f"--network={PICKLE}", "--seeds=0", f"--outdir={tmp_path / 'out'}",
                 STYLEGAN2_TF_OPS_DIR=str(tmp_path / "no_ops"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RuntimeWarning: stylegan2_tf: using the slower pure-TensorFlow" in result.stderr
    assert not TF_LOG_LINE.search(result.stderr), result.stderr[-2000:]
    for noise in ("oneDNN", "cuInit", "cuda drivers", "cpu_feature_guard"):
        assert noise not in result.stderr


def test_verbose_brings_tensorflow_logs_back(tmp_path):
    result = run("export.py", f"--network={PICKLE}", f"--export_dir={tmp_path / '1'}", "--verbose",
                 TF_ENABLE_ONEDNN_OPTS="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert TF_LOG_LINE.search(result.stderr)  # C++: the lines written while TensorFlow loads
    assert "oneDNN custom operations are on" in result.stderr
    assert "fingerprinting_utils.py" in result.stderr  # Python (absl) INFO: "Writing fingerprint to"
    assert "signature_serialization.py" in result.stderr


def test_flag_error_messages_name_each_flag():
    text = ("flag --network=None: Flag --network must have a value other than None.\n"
            "flag --trunc=nan: expected a finite number\n"
            "flag --outdir=None: Flag --outdir must have a value other than None.")
    assert flag_error_messages(text) == ["--network and --outdir are required",
                                         "--trunc=nan: expected a finite number"]
    assert flag_error_messages("Unknown command line flag 'sed'. Did you mean: seed, seeds ?") == [
        "unknown flag --sed (did you mean --seed, --seeds?)"]


@pytest.mark.parametrize("argv,verbose", [
    ([], False), (["--verbose"], True), (["-verbose"], True), (["--verbose=false"], False),
    (["--verbose", "--noverbose"], False), (["--verbose=1", "x"], True), (["--", "--verbose"], False),
    (["--verbosity=0"], False),
])
def test_verbose_is_read_before_the_flags_are_parsed(argv, verbose):
    assert _tf_logs.verbose_requested(["script.py", *argv]) is verbose


def test_lines_written_while_tensorflow_loads_are_filtered_by_level():
    banner = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    info = b"I0000 00:00:1796181012.627533    4912 port.cc:153] oneDNN custom operations are on.\n"
    error = b"E0000 00:00:1796181082.204072    6468 cuda_platform.cc:52] failed call to cuInit\n"
    tsl_warning = b"2024-01-01 12:00:00.123456: W tensorflow/core/x.cc:10] a warning\n"
    ours = b"script.py:3: RuntimeWarning: stylegan2_tf: using the slower pure-TensorFlow upfirdn2d\n"
    lines = [banner, info, error, tsl_warning, ours]
    assert [line for line in lines if _tf_logs.kept(line, 3)] == [ours]
    assert [line for line in lines if _tf_logs.kept(line, 2)] == [error, ours]
    assert [line for line in lines if _tf_logs.kept(line, 0)] == lines
