"""Helpers shared by the absl scripts: flag values to library objects, errors as usage errors."""

from absl import app, flags

from stylegan2_tf.inference import parse_range
from stylegan2_tf.network_io import load_network


def range_flag(value, flag):
    """'0-7,42' -> [0, ..., 7, 42], or a usage error naming the flag."""
    try:
        return parse_range(value, f"--{flag}")
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def generator_flag(value, flag="network"):
    """The generator to draw with (G_ema) from an official pickle, network folder or .keras."""
    try:
        return load_network(value)["G_ema"]
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"--{flag}: {error}") from error


def define_weights_flags():
    """Defines --inception, --vgg16 and --lpips; returns fn() -> {flag: path} of those given."""
    from stylegan2_tf.metrics.feature_nets import INCEPTION, LPIPS, VGG16

    defined = {weights.flag: flags.DEFINE_string(
        weights.flag, None, f"{weights.name} weights, {weights.file_name} from {weights.url} "
                            f"(default: ${weights.env}).") for weights in (INCEPTION, VGG16, LPIPS)}
    return lambda: {name: flag.value for name, flag in defined.items() if flag.value}
