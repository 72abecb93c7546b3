"""TensorFlow's start-up lines, quieted for the scripts unless --verbose. Not a script.

Each script starts with

    from _tf_logs import quiet_tensorflow

    quiet_tensorflow()

before anything imports TensorFlow (importing stylegan2_tf does, so this module
lives beside the scripts, outside the package). Unless the command line has
--verbose:

1. TF_CPP_MIN_LOG_LEVEL defaults to 3: TensorFlow's C++ logs show fatal errors
   only (on a machine without a GPU, "failed call to cuInit" is an error line).
2. TensorFlow is imported with file descriptor 2 sent to a temporary file: its
   libraries log while they load, before their logging reads the level (the
   oneDNN notice and "Could not find cuda drivers", each twice, after absl's
   "All log messages before absl::InitializeLog()" banner). Of what was written
   then, the log lines below that level and the banner are dropped; every other
   line (Python warnings, errors) is written to stderr afterwards.

stylegan2_tf.cli.run quiets the Python loggers once the flags are parsed and
defines --verbose. With --verbose nothing is changed: TensorFlow logs as it
does by itself. A TF_CPP_MIN_LOG_LEVEL set in the environment is kept.
"""

import os
import re
import sys
import tempfile

SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0..3 hides the severities left of it
# absl ("I0000 00:00:1700000000.123456    42 port.cc:153] ...") or TSL
# ("2024-01-01 12:00:00.123456: I tensorflow/core/util/port.cc:113] ...") log lines.
_LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
                       r"|\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def verbose_requested(argv):
    """Whether the command line `argv` sets the boolean flag --verbose, read as absl reads it
    (--verbose, --verbose=true|false|t|f|1|0, --noverbose, one or two dashes; the last wins;
    nothing after --)."""
    verbose = False
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name == "verbose":
            verbose = not has_value or value.lower() in ("true", "t", "1")
        elif name == "noverbose" and not has_value:
            verbose = False
    return verbose


def min_log_level():
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0 when unset or not a number)."""
    try:
        return min(max(int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")), 0), 3)
    except ValueError:
        return 0


def kept(line, level):
    """Whether a line written while TensorFlow loaded is shown at TF_CPP_MIN_LOG_LEVEL `level`."""
    if level == 0:
        return True
    text = line.decode(errors="replace").rstrip("\r\n")
    if text == _ABSL_BANNER:
        return False
    match = _LOG_LINE.match(text)
    return not match or SEVERITIES.index(match[1] or match[2]) >= level


def quiet_tensorflow(argv=None):
    """Quiets TensorFlow's C++ logs and imports it, unless `argv` (default sys.argv) has --verbose."""
    if verbose_requested(sys.argv if argv is None else argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401 - its libraries log while they load
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            level = min_log_level()
            shown = b"".join(line for line in captured.read().splitlines(keepends=True)
                             if kept(line, level))
            while shown:
                shown = shown[os.write(2, shown):]
