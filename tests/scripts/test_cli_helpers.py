"""What the scripts share, one home each: the output-path checks and the cache folder
(stylegan2_tf.files), the flag parsers and usage-error wrapping (stylegan2_tf.cli), the argv
check of cli.run, and --cache_dir in every script that caches (metrics.py, train.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from absl import app

from stylegan2_tf import cli
from stylegan2_tf.files import (
    OutputPathError,
    cache_folder,
    cache_root,
    check_output_file,
    check_output_folder,
    make_output_folder,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path):
    """tmp_path with a file, an empty folder and a folder holding a file."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "saved_model.pb").write_bytes(b"")
    return tmp_path


def test_output_folder_check(tree):
    assert check_output_folder(tree / "new" / "deeper") == tree / "new" / "deeper"
    assert check_output_folder(tree / "full") == tree / "full"  # written into, unless empty=True
    assert check_output_folder(tree / "empty", empty=True) == tree / "empty"
    assert not (tree / "new").exists()  # checking creates nothing
    for path, kwargs, message in [
        ("", {}, "expected a folder, got an empty path"),
        (tree / "a_file", {}, f"{tree / 'a_file'} exists and is not a folder"),
        (tree / "a_file" / "x" / "y", {},
         f"{tree / 'a_file'} is not a folder, so {tree / 'a_file' / 'x' / 'y'} cannot be created"),
        (tree / "full", {"empty": True}, f"{tree / 'full'} exists and is not an empty folder"),
        (tree / "full", {"empty": True, "taken_hint": "use model/2"}, "not an empty folder; use model/2"),
    ]:
        with pytest.raises(OutputPathError) as raised:
            check_output_folder(path, **kwargs)
        assert message in str(raised.value) and isinstance(raised.value, ValueError)


def test_make_output_folder(tree):
    assert make_output_folder(tree / "new" / "deeper").is_dir()
    assert make_output_folder(tree / "full") == tree / "full"
    with pytest.raises(OutputPathError, match="is not a folder"):
        make_output_folder(tree / "a_file" / "x")
    if os.geteuid() != 0:  # root may write anywhere
        (tree / "locked").mkdir(mode=0o500)
        with pytest.raises(OutputPathError, match="cannot create the folder .*locked/x"):
            make_output_folder(tree / "locked" / "x")


def test_output_file_check(tree):
    assert check_output_file(tree / "new.jsonl") == tree / "new.jsonl"
    assert check_output_file(tree / "a_file") == tree / "a_file"  # appended to
    for path, message in [("", "expected a file, got an empty path"),
                          (tree / "empty", "is a folder; expected a file"),
                          (tree / "missing" / "m.jsonl", f"the folder {tree / 'missing'} does not exist")]:
        with pytest.raises(OutputPathError, match=message):
            check_output_file(path)


def test_cache_root_and_folder(tree, monkeypatch):
    monkeypatch.delenv("STYLEGAN2_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == Path.home() / ".cache" / "stylegan2_tf"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tree / "xdg"))
    assert cache_root() == tree / "xdg" / "stylegan2_tf"
    monkeypatch.setenv("STYLEGAN2_CACHE", "~/from_env")
    assert cache_root() == Path.home() / "from_env"
    assert cache_root(tree / "given") == tree / "given"
    assert cache_folder(tree / "given", "metrics") == tree / "given" / "metrics"
    assert not (tree / "given").exists()  # created by whoever writes there
    with pytest.raises(OutputPathError, match="is not a folder"):
        cache_folder(tree / "a_file", "metrics")
    (tree / "empty" / "metrics").write_text("")
    with pytest.raises(OutputPathError, match="metrics exists and is not a folder"):
        cache_folder(tree / "empty", "metrics")


def test_flag_helpers_name_the_flag(tree, monkeypatch):
    assert cli.outdir_flag(str(tree / "out")).is_dir()
    assert cli.output_file_flag(str(tree / "m.jsonl")) == tree / "m.jsonl"
    assert cli.cache_dir_flag(str(tree / "cache")) == tree / "cache"
    monkeypatch.setenv("STYLEGAN2_CACHE", str(tree / "a_file"))
    for call, message in [
        (lambda: cli.outdir_flag(str(tree / "a_file")), f"--outdir: {tree / 'a_file'} exists and is not"),
        (lambda: cli.outdir_flag("", "dest"), "--dest: expected a folder, got an empty path"),
        (lambda: cli.output_file_flag(str(tree)), "--output: "),
        (lambda: cli.cache_dir_flag(str(tree / "a_file")), "--cache_dir: "),
        (lambda: cli.cache_dir_flag(None), "$STYLEGAN2_CACHE: "),  # where the bad value came from
        (lambda: cli.seeds_flag("0-3,x"), "--seeds: expected numbers and ranges like '0-7,42'"),
        (lambda: cli.seeds_flag(str(2**32)), f"--seeds: {2**32} is larger than {2**32 - 1}"),
        (lambda: cli.range_flag("5-3", "styles"), "--styles: range '5-3' runs backwards"),
        (lambda: cli.range_flag("0-1000000", "styles"), "--styles: '0-1000000' gives more than 1000000"),
        (lambda: cli.floats_flag("1,x", "psis"), "--psis: expected comma-separated numbers"),
        (lambda: cli.floats_flag("1,inf", "psis"), "--psis: expected finite numbers"),
    ]:
        with pytest.raises(app.UsageError) as raised:
            call()
        assert str(raised.value).startswith(message), str(raised.value)


def test_parsers():
    assert cli.parse_range("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert cli.parse_floats("-1,0,0.5,1") == [-1.0, 0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="name: "):
        cli.parse_range("a", "name")


@pytest.mark.parametrize("flag,errors,raised,expected,message", [
    ("flag", (ValueError,), ValueError("bad"), app.UsageError, "--flag: bad"),
    (None, (KeyError, ValueError), ValueError("bad"), app.UsageError, "bad"),
    ("flag", (ValueError,), TypeError("bug"), TypeError, "bug"),  # a bug stays a traceback
    ("flag", (Exception,), app.UsageError("one"), app.UsageError, "one"),  # not wrapped twice
])
def test_usage_errors_wraps_only_the_errors_named(flag, errors, raised, expected, message):
    with pytest.raises(expected, match=f"^{message}$"), cli.usage_errors(flag, errors):
        raise raised


def frame(main_source, *args):
    """Runs `cli.run(<main_source>)` as a script named x.py with `args`."""
    code = ("import sys; sys.argv = ['x.py'] + sys.argv[1:]; from stylegan2_tf import cli; "
            f"cli.run({main_source})")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False)


def test_run_refuses_arguments_unless_main_takes_argv():
    refused = frame("lambda: print('ran')", "extra")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines()[-2:] == ["x.py: error: unexpected arguments: ['extra']",
                                                "Run with --help for usage."]
    assert frame("lambda: print('ran')").stdout == "ran\n"
    taken = frame("lambda argv: print(argv[1:])", "extra")
    assert taken.returncode == 0 and taken.stdout == "['extra']\n"


def run_script(script, *args, **env):
    environ = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)], cwd=REPO,
                          env=environ, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("script", ["metrics.py", "train.py"])
def test_cache_dir_is_one_flag_in_every_script_that_caches(script):
    help_text = run_script(script, "--help").stdout
    text = " ".join(help_text.split())
    assert ("--cache_dir: Cache folder: downloaded networks go in its networks/ subfolder, the "
            "metrics' dataset features in metrics/") in text


@pytest.mark.parametrize("flag", ["--cache_dir", "--metric_cache"])
def test_train_checks_the_cache_before_training(tree, flag):
    from stylegan2_tf.data.builtin import digits_dataset

    data = digits_dataset(tree / "data", resolution=16)
    result = run_script("train.py", f"--outdir={tree / 'run'}", f"--data={data}", "--metrics=swd8",
                        f"{flag}={tree / 'a_file'}", "--kimg=0.008", "--fmap_base=64", "--fmap_max=16",
                        "--latent_size=16", "--mapping_layers=1", "--batch=4")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert lines[-2] == f"train.py: error: {tree / 'a_file'} exists and is not a folder"
    deprecated = "train.py: warning: --metric_cache is deprecated; use --cache_dir"
    assert (deprecated in lines) == (flag == "--metric_cache")
    assert not (tree / "run" / "checkpoints").exists()
