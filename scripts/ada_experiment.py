"""Does adaptive augmentation help on few images? Trains tiny networks on a subset of the built-in
digits without augmentation and with ADA for the same number of images, and prints one JSON line
per run and a last one comparing them (training/limited_data.py says what is measured).

  python scripts/ada_experiment.py --count=100 --kimg=24

Takes a few minutes per run on a CPU; the README's numbers come from the defaults.
"""

from _tf_logs import quiet_tensorflow

quiet_tensorflow()  # before anything imports TensorFlow (see _tf_logs.py)

import json
import tempfile
import time

from absl import flags

from stylegan2_tf.cli import require_finite, run
from stylegan2_tf.data.builtin import DIGITS_IMAGES
from stylegan2_tf.training.limited_data import digit_images, image_quality, overfitting, train_on_images
from stylegan2_tf.training.trainer import TrainingConfig

COUNT = flags.DEFINE_integer("count", 100, "Training images: the first N digits.", lower_bound=8,
                             upper_bound=DIGITS_IMAGES // 2)
KIMG = flags.DEFINE_float("kimg", 24, "Thousands of images shown in each run.", lower_bound=0.1)
RESOLUTION = flags.DEFINE_integer("resolution", 16, "Image size (16 or 32).")
BATCH = flags.DEFINE_integer("batch", 8, "Minibatch.", lower_bound=4)
GAMMA = flags.DEFINE_float("gamma", 1.0, "R1 weight.", lower_bound=0)
ADA_KIMG = flags.DEFINE_float("ada_kimg", 10, "ADA's speed: p can go 0 -> 1 in this many kimg "
                              "(stylegan2-ada-pytorch: 500, its cifar config 100; runs here are short).",
                              lower_bound=0.01)
AUGPIPE = flags.DEFINE_string("augpipe", TrainingConfig.augpipe, "The augmentations of the ADA run.")
SEED = flags.DEFINE_integer("seed", 0, "Seed of the networks, the order and every random draw.")
require_finite(KIMG, GAMMA, ADA_KIMG)


def main(argv):
    with tempfile.TemporaryDirectory() as cache:
        digits = digit_images(cache, RESOLUTION.value, DIGITS_IMAGES)
    train, heldout = digits[:COUNT.value], digits[DIGITS_IMAGES // 2:]
    results = {}
    for mode in ("noaug", "ada"):
        config = TrainingConfig(batch=BATCH.value, r1_gamma=GAMMA.value, seed=SEED.value, augment=mode,
                                ada_kimg=ADA_KIMG.value, **({"augpipe": AUGPIPE.value} if mode == "ada" else {}))
        start = time.time()
        trained = train_on_images(train, config, KIMG.value)
        results[mode] = {"mode": mode, "count": COUNT.value, "kimg": KIMG.value,
                         "seconds": round(time.time() - start, 1),
                         **overfitting(trained.trainer.D, train, heldout),
                         **image_quality(trained.trainer.G_ema, digits),
                         **trained.trainer.ada.status()}
        print(json.dumps(results[mode]), flush=True)
    print(json.dumps({"pixel_fd_noaug": results["noaug"]["pixel_fd"], "pixel_fd_ada": results["ada"]["pixel_fd"],
                      "swd_noaug": results["noaug"]["swd"], "swd_ada": results["ada"]["swd"],
                      "final_p": results["ada"]["augment"]}))


if __name__ == "__main__":
    run(main)
