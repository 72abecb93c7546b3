"""Helpers shared by the absl scripts: the frame every script runs in (usage errors, log
levels, signals) and flag values to library objects, errors as usage errors."""

import logging
import math
import os
import re
import signal
import sys
from pathlib import Path

from absl import app, flags
from absl import logging as absl_logging

from stylegan2_tf.inference import class_labels, parse_range
from stylegan2_tf.ops.native import IMPL_ENV, IMPLS, set_impl

MAX_SEED = 2**32 - 1  # np.random.RandomState takes seeds in [0, 2**32)
USAGE_EXIT_CODE = 2  # as argparse and most command-line tools; other failures exit with 1

# Every script has these; listed by its --help (absl lists the flags of the module named argv[0]).
_SCRIPT = sys.argv[0] if sys.argv else None
VERBOSE = flags.DEFINE_boolean(
    "verbose", False, "Show TensorFlow's logs: its C++ lines (below fatal) and Python warnings "
    "and info are hidden by default.", module_name=_SCRIPT)
IMPL = flags.DEFINE_enum(
    "impl", None, list(IMPLS), f"Op implementation: custom (the compiled ops), ref (pure TensorFlow) "
    f"or auto (custom when built, else ref). Default: ${IMPL_ENV}, else auto.", module_name=_SCRIPT)


def run(main):
    """app.run(main) in the frame every script shares; call it from `if __name__ == "__main__"`.

    1. A usage error (a flag that does not parse or validate, a missing required
       flag, an app.UsageError from main) prints `<script>: error: <message>` and
       `Run with --help for usage.` on stderr, no help text, and exits with 2.
    2. --impl sets the op implementation of the process (stylegan2_tf.ops.set_impl).
       Unless --verbose, TensorFlow's Python loggers ("tensorflow", absl's) show
       errors only (absl's --verbosity, when given, sets absl's). Its C++ logs
       are quieted before it is imported, by quiet_tensorflow() in scripts/_tf_logs.py.
    3. SIGTERM ends the script as an exception does (exit code 143): Python's
       default SIGTERM action kills the process on the spot; as an exception,
       the `finally` blocks that remove files written aside run first. Ctrl-C
       (SIGINT) ends it the same way, with "interrupted" and exit code 130.
    """
    signal.signal(signal.SIGTERM, _terminated)

    def framed_main(argv):
        _quiet_python_logs()
        set_impl(IMPL.value)
        try:
            return main(argv)
        except app.UsageError as error:
            usage_error(str(error))

    try:
        app.run(framed_main, flags_parser=_parse_flags)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def usage_error(*messages):
    """Prints each message as `<script>: error: <message>`, then where help is; exits with 2."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "stylegan2_tf"
    for message in messages:
        print(f"{script}: error: {message}", file=sys.stderr)
    print("Run with --help for usage.", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _parse_flags(argv):
    """absl's flag parsing, its errors as usage errors (all of them, one line each)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        usage_error(*flag_error_messages(str(error)))


_REQUIRED = re.compile(r"flag --(\w+)=None: Flag --\1 must have a value other than None\.")
_REWORDED = [(re.compile(r"invalid literal for int\(\) with base \d+: .*"), "expected an integer"),
             (re.compile(r"could not convert string to float: .*"), "expected a number"),
             (re.compile(r"\('Non-boolean argument to boolean flag', .*\)"), "expected true or false"),
             (re.compile(r"Unknown command line flag '([^']*)'\. Did you mean: (.*) \?"),
              lambda m: f"unknown flag --{m[1]} (did you mean --{', --'.join(m[2].split(', '))}?)"),
             (re.compile(r"Unknown command line flag '([^']*)'"), r"unknown flag --\1")]


def flag_error_messages(text):
    """absl's flag error `text` (a line per failed flag) as messages naming the flags, e.g.

    - "flag --batch=abc: invalid literal for int() ..." -> "--batch=abc: expected an integer";
    - "Unknown command line flag 'outdr'. Did you mean: outdir ?" ->
      "unknown flag --outdr (did you mean --outdir?)";
    - the "must have a value other than None" lines of required flags -> one message first,
      "--network and --outdir are required".
    """
    missing, messages = [], []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        required = _REQUIRED.fullmatch(line)
        if required:
            missing.append(f"--{required[1]}")
            continue
        line = line.removeprefix("flag ")
        for pattern, wording in _REWORDED:
            line = pattern.sub(wording, line)
        messages.append(line)
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        messages.insert(0, f"{names} {'is' if len(missing) == 1 else 'are'} required")
    return messages


def _quiet_python_logs():
    """TensorFlow's Python loggers down to errors, unless --verbose (after absl set its levels)."""
    if VERBOSE.value:
        return
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if not flags.FLAGS["verbosity"].present:  # absl's own flag, when given, decides absl's level
        absl_logging.set_verbosity(absl_logging.ERROR)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def range_flag(value, flag, max_value=None):
    """'0-7,42' -> [0, ..., 7, 42], or a usage error naming the flag."""
    try:
        return parse_range(value, f"--{flag}", max_value=max_value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def class_flag(G, value, flag="class_idx"):
    """`value` of --class_idx checked against G: a class of a conditional network, none for another."""
    try:
        class_labels(G, 1, value, f"--{flag}")
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    return value


def seeds_flag(value, flag="seeds"):
    """Seeds from '0-7,42': numbers and ranges in [0, 2**32), as RandomState takes them."""
    return range_flag(value, flag, max_value=MAX_SEED)


def generator_flag(value, flag="network"):
    """The generator to draw with (G_ema) from an official pickle, network folder or .keras."""
    from stylegan2_tf.network_io import load_network
    from stylegan2_tf.networks.generator import Generator

    if not value:
        raise app.UsageError(f"--{flag}: expected an official .pkl, a .keras file or a network "
                             "folder, got an empty path")
    try:
        G = load_network(value)["G_ema"]
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"--{flag}: {error}") from error
    if not isinstance(G, Generator):
        raise app.UsageError(f"--{flag}: {value} holds a {type(G).__name__}, not a generator")
    return G


def outdir_flag(value, flag="outdir"):
    """The output folder `value` as a Path, created if missing, or a usage error naming the flag."""
    if not value:
        raise app.UsageError(f"--{flag}: expected a folder, got an empty path")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise app.UsageError(f"--{flag}: {value} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise app.UsageError(f"--{flag}: cannot create the folder {value} "
                             f"({error.strerror or error})") from error
    return path


def require_finite(*float_flags):
    """Refuses nan and infinite values of the given DEFINE_float flags when flags are parsed."""
    for holder in float_flags:
        flags.register_validator(holder, lambda value: value is None or math.isfinite(value),
                                 "expected a finite number")


def define_weights_flags(*names):
    """Defines --inception, --vgg16 and --lpips (only `names`, when given); returns
    fn() -> {flag: path} of those given."""
    from stylegan2_tf.metrics.feature_nets import INCEPTION, LPIPS, VGG16

    chosen = [weights for weights in (INCEPTION, VGG16, LPIPS) if not names or weights.flag in names]
    # Defined in the caller's name (absl names __main__ after argv[0]): its --help lists them.
    script = sys._getframe(1).f_globals["__name__"]
    script = sys.argv[0] if script == "__main__" else script
    defined = {weights.flag: flags.DEFINE_string(
        weights.flag, None, f"{weights.name} weights, {weights.file_name} from {weights.url} "
                            f"(default: ${weights.env}).", module_name=script) for weights in chosen}
    return lambda: {name: flag.value for name, flag in defined.items() if flag.value}
