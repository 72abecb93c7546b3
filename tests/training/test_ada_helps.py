"""Adaptive augmentation does what it is for: on 100 digits a D trained without augmentation
overfits (it scores its training images above unseen ones), and ADA raises p in answer
(training/limited_data.py; scripts/ada_experiment.py runs the longer comparison)."""

import numpy as np

from stylegan2_tf.training.limited_data import digit_images, overfitting, train_on_images
from stylegan2_tf.training.trainer import TrainingConfig

KIMG = 4  # 500 minibatches of 8: each of the 100 images seen 40 times


def test_d_overfits_few_images_and_ada_raises_p(tmp_path):
    digits = digit_images(tmp_path, 16, 1797)
    train, heldout = digits[:100], digits[1000:]
    noaug = train_on_images(train, TrainingConfig(batch=8, r1_gamma=1.0, augment="noaug"), KIMG)
    fit = overfitting(noaug.trainer.D, train, heldout)
    print("noaug:", fit)
    assert fit["r_t_train"] > 0.6  # ADA's target: above it, D is taken to overfit
    assert fit["r_t_train"] - fit["r_t_heldout"] > 0.05 and fit["logit_gap"] > 0

    ada = train_on_images(train, TrainingConfig(batch=8, r1_gamma=1.0, augment="ada", ada_kimg=2), KIMG)
    p = np.array([row["augment"] for row in ada.history])
    r_t = np.array([row["r_t"] for row in ada.history])
    print("ada: p", p.round(3), "r_t", r_t.round(2))
    assert p.max() >= 0.05 and (r_t > 0.6).any()
    assert float(ada.trainer.ada.p.numpy()) == p[-1]
