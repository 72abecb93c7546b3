"""Helpers shared by the absl scripts: flag values to library objects, errors as usage errors."""

import math
import signal
import sys
from pathlib import Path

from absl import app, flags

from stylegan2_tf.inference import parse_range

MAX_SEED = 2**32 - 1  # np.random.RandomState takes seeds in [0, 2**32)


def run(main):
    """app.run(main), with SIGTERM ending the script as an exception does (exit code 143).

    Python's default SIGTERM action kills the process on the spot; as an
    exception, the `finally` blocks that remove files written aside run first.
    Ctrl-C (SIGINT) ends it the same way, with "interrupted" and exit code 130.
    """
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app.run(main)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def range_flag(value, flag, max_value=None):
    """'0-7,42' -> [0, ..., 7, 42], or a usage error naming the flag."""
    try:
        return parse_range(value, f"--{flag}", max_value=max_value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error


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
                                 f"--{holder.name}: expected a finite number")


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
