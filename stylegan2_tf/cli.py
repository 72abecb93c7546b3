"""The frame every absl script runs in, and the flags they share.

- `run(main)`: usage errors as one line (exit 2), no positional arguments unless
  main takes argv, TensorFlow's Python logs, --verbose, --impl, SIGTERM and Ctrl-C.
- `usage_errors(flag)`: a block whose ValueErrors are usage errors naming the flag.
- Flags several scripts define, defined here once: `define_network_flag`,
  `define_noise_mode_flag`, `define_class_idx_flag`, `define_cache_dir_flag`,
  `define_weights_flags`; every script gets --verbose and --impl on import.
- Flag values to library objects, errors naming the flag: `generator_flag`,
  `seeds_flag`, `range_flag`, `floats_flag`, `class_flag`, `outdir_flag`,
  `output_file_flag`, `cache_dir_flag`; and the text parsers `parse_range`, `parse_floats`.
"""

import contextlib
import inspect
import logging
import math
import os
import re
import signal
import sys

from absl import app, flags
from absl import logging as absl_logging

from stylegan2_tf.files import CACHE_ENV, cache_folder, check_output_file, make_output_folder
from stylegan2_tf.inference import class_labels
from stylegan2_tf.networks.generator import NOISE_MODES, Generator
from stylegan2_tf.ops.native import IMPL_ENV, IMPLS, check_settings, set_impl

MAX_SEED = 2**32 - 1  # np.random.RandomState takes seeds in [0, 2**32)
MAX_RANGE_VALUES = 1_000_000
USAGE_EXIT_CODE = 2  # as argparse and most command-line tools; other failures exit with 1

# Every script has these; listed by its --help (absl lists the flags of the module named argv[0]).
_SCRIPT = sys.argv[0] if sys.argv else None
VERBOSE = flags.DEFINE_boolean(
    "verbose", False, "Show TensorFlow's logs: its C++ lines (below fatal) and Python warnings "
    "and info are hidden by default.", module_name=_SCRIPT)
IMPL = flags.DEFINE_enum(
    "impl", None, list(IMPLS), f"Op implementation: custom (the compiled ops), ref (pure TensorFlow) "
    f"or auto (custom when built, else ref). Default: ${IMPL_ENV}, else auto.", module_name=_SCRIPT)
_DEPRECATED_ALIASES = {}  # old flag name -> the flag it sets now


def run(main):
    """app.run(main) in the frame every script shares; call it from `if __name__ == "__main__"`.

    1. A usage error (a flag that does not parse or validate, a missing required
       flag, an app.UsageError from main) prints `<script>: error: <message>` and
       `Run with --help for usage.` on stderr, no help text, and exits with 2.
       A `main()` without parameters takes no positional arguments (any is the
       usage error "unexpected arguments: [...]"); a `main(argv)` gets them.
       A deprecated flag name (define_cache_dir_flag's old names) still works,
       with a warning line on stderr.
    2. --impl sets the op implementation of the process (stylegan2_tf.ops.set_impl); a
       malformed $STYLEGAN2_TF_IMPL or $STYLEGAN2_TF_CPU_ISA is a usage error before main runs.
       Unless --verbose, TensorFlow's Python loggers ("tensorflow", absl's) show
       errors only (absl's --verbosity, when given, sets absl's). Its C++ logs
       are quieted before it is imported, by quiet_tensorflow() in scripts/_tf_logs.py.
    3. SIGTERM ends the script as an exception does (exit code 143): Python's
       default SIGTERM action kills the process on the spot; as an exception,
       the `finally` blocks that remove files written aside run first. Ctrl-C
       (SIGINT) ends it the same way, with "interrupted" and exit code 130.
    """
    signal.signal(signal.SIGTERM, _terminated)
    takes_argv = bool(inspect.signature(main).parameters)

    def framed_main(argv):
        _quiet_python_logs()
        _warn_deprecated_aliases()
        set_impl(IMPL.value)
        try:
            with usage_errors():
                check_settings()
            if takes_argv:
                return main(argv)
            if len(argv) > 1:
                raise app.UsageError(f"unexpected arguments: {argv[1:]}")
            return main()
        except app.UsageError as error:
            usage_error(str(error))

    try:
        app.run(framed_main, flags_parser=_parse_flags)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def usage_error(*messages):
    """Prints each message as `<script>: error: <message>`, then where help is; exits with 2."""
    for message in messages:
        print(f"{_script_name()}: error: {message}", file=sys.stderr)
    print("Run with --help for usage.", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


@contextlib.contextmanager
def usage_errors(flag=None, errors=(ValueError,)):
    """Within the block, an exception of `errors` becomes an app.UsageError with its message,
    after `--<flag>: ` when a flag is named (run() prints it as a usage error)."""
    try:
        yield
    except app.UsageError:
        raise
    except errors as error:
        raise app.UsageError(f"--{flag}: {error}" if flag else str(error)) from error


def _script_name():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "stylegan2_tf"


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


def _warn_deprecated_aliases():
    """One stderr line for each old flag name given, naming the flag to use instead."""
    for old, new in _DEPRECATED_ALIASES.items():
        if flags.FLAGS[old].present:
            print(f"{_script_name()}: warning: --{old} is deprecated; use --{new}", file=sys.stderr)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


# Flags several scripts share. Each is defined in the running script's name, so
# its --help lists it (absl lists the flags of the module named argv[0]).

def define_network_flag():
    """--network: the network to read (see generator_flag), and --cache_dir for downloads."""
    define_cache_dir_flag()
    return flags.DEFINE_string("network", None, "NVIDIA pickle (TF1, stylegan2-ada TF or PyTorch, "
                               "stylegan3's StyleGAN2), URL or known network name (downloaded once "
                               "into --cache_dir), network folder or generator .keras.",
                               module_name=_SCRIPT)


def define_noise_mode_flag(what="Per-pixel noise"):
    """--noise_mode, one of the generator's NOISE_MODES, default "const"; `what` begins its help."""
    return flags.DEFINE_enum("noise_mode", "const", list(NOISE_MODES),
                             f"{what}: const (the network's stored noise), random (fresh noise) or none.",
                             module_name=_SCRIPT)


def define_class_idx_flag():
    """--class_idx: the class of a conditional network (see class_flag)."""
    return flags.DEFINE_integer("class_idx", None, "Class of a conditional network.",
                                module_name=_SCRIPT)


def define_cache_dir_flag(*old_names):
    """--cache_dir, the folder for files kept between runs (see cache_dir_flag); `old_names`
    are deprecated aliases that still set it, each with a warning when given."""
    from stylegan2_tf.metrics.evaluate import FEATURE_CACHE

    if "cache_dir" in flags.FLAGS:  # --network defined it already
        holder = flags.FlagHolder(flags.FLAGS, flags.FLAGS["cache_dir"])
    else:
        holder = flags.DEFINE_string(
            "cache_dir", None, f"Cache folder: downloaded networks go in its networks/ subfolder, "
            f"the metrics' dataset features in {FEATURE_CACHE}/ (default: ${CACHE_ENV}, else "
            "$XDG_CACHE_HOME/stylegan2_tf or ~/.cache/stylegan2_tf).", module_name=_SCRIPT)
    for name in old_names:
        flags.DEFINE_alias(name, holder.name, module_name=_SCRIPT)
        _DEPRECATED_ALIASES[name] = holder.name
    return holder


def define_weights_flags(*names):
    """Defines --inception, --vgg16 and --lpips (only `names`, when given); returns
    fn() -> {flag: path} of those given."""
    from stylegan2_tf.metrics.feature_nets import INCEPTION, LPIPS, VGG16

    chosen = [weights for weights in (INCEPTION, VGG16, LPIPS) if not names or weights.flag in names]
    defined = {weights.flag: flags.DEFINE_string(
        weights.flag, None, f"{weights.name} weights, {weights.file_name} from {weights.url} "
                            f"(default: ${weights.env}).", module_name=_SCRIPT) for weights in chosen}
    return lambda: {name: flag.value for name, flag in defined.items() if flag.value}


def require_finite(*float_flags):
    """Refuses nan and infinite values of the given DEFINE_float flags when flags are parsed."""
    for holder in float_flags:
        flags.register_validator(holder, lambda value: value is None or math.isfinite(value),
                                 "expected a finite number")


# Flag values to library objects; what is wrong is a usage error naming the flag.

def parse_range(text, name="value", max_value=None):
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; raises ValueError naming `name`.

    Values above `max_value` (when given) and more than MAX_RANGE_VALUES values are refused.
    """
    values = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"{name}: expected numbers and ranges like '0-7,42', got {text!r}")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ValueError(f"{name}: range {part!r} runs backwards")
        if max_value is not None and last > max_value:
            raise ValueError(f"{name}: {last} is larger than {max_value}, the largest allowed")
        if len(values) + last - first + 1 > MAX_RANGE_VALUES:
            raise ValueError(f"{name}: {text!r} gives more than {MAX_RANGE_VALUES} values")
        values.extend(range(first, last + 1))
    return values


def parse_floats(text, name="value"):
    """'-1,0,0.5,1' -> [-1.0, 0.0, 0.5, 1.0]; raises ValueError naming `name`."""
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError as error:
        raise ValueError(f"{name}: expected comma-separated numbers, got {text!r}") from error
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"{name}: expected finite numbers, got {text!r}")
    return values


def range_flag(value, flag, max_value=None):
    """'0-7,42' -> [0, ..., 7, 42], or a usage error naming the flag."""
    with usage_errors():
        return parse_range(value, f"--{flag}", max_value=max_value)


def floats_flag(value, flag):
    """'1,0.7,-0.5' -> [1.0, 0.7, -0.5], or a usage error naming the flag."""
    with usage_errors():
        return parse_floats(value, f"--{flag}")


def class_flag(G, value, flag="class_idx"):
    """`value` of --class_idx checked against G: a class of a conditional network, none for another."""
    with usage_errors():
        class_labels(G, 1, value, f"--{flag}")
    return value


def seeds_flag(value, flag="seeds"):
    """Seeds from '0-7,42': numbers and ranges in [0, 2**32), as RandomState takes them."""
    return range_flag(value, flag, max_value=MAX_SEED)


def generator_flag(value, flag="network"):
    """The generator to draw with (G_ema) from anything load_network takes (a URL or known name
    is downloaded into --cache_dir)."""
    from stylegan2_tf.network_io import load_network

    if not value:
        raise app.UsageError(f"--{flag}: expected a network pickle, URL, network folder or .keras "
                             "file, got an empty path")
    cache_dir = flags.FLAGS["cache_dir"].value if "cache_dir" in flags.FLAGS else None
    cache_dir = cache_dir_flag(cache_dir)
    with usage_errors(flag, (FileNotFoundError, ValueError)):
        G = load_network(value, cache_dir=cache_dir)["G_ema"]
    if not isinstance(G, Generator):
        raise app.UsageError(f"--{flag}: {value} holds a {type(G).__name__}, not a generator")
    return G


def outdir_flag(value, flag="outdir"):
    """The output folder `value` as a Path, created if missing, or a usage error naming the flag
    (files.make_output_folder)."""
    with usage_errors(flag):
        return make_output_folder(value)


def output_file_flag(value, flag="output"):
    """The file `value` to create or append to as a Path (files.check_output_file), or a usage
    error naming the flag."""
    with usage_errors(flag):
        return check_output_file(value)


def cache_dir_flag(value, flag="cache_dir"):
    """The cache folder from --cache_dir (files.cache_folder: default $STYLEGAN2_CACHE, else
    $XDG_CACHE_HOME/stylegan2_tf or ~/.cache/stylegan2_tf), checked; a usage error names the
    flag or the variable it came from."""
    where = f"--{flag}" if value else f"${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "the cache"
    try:
        return cache_folder(value)
    except ValueError as error:
        raise app.UsageError(f"{where}: {error}") from error
