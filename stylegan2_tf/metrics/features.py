"""Checks of the feature matrices the metrics compare."""

import numpy as np


def feature_pair(real_features, fake_features, min_rows, dtype):
    """(real, fake) as numpy arrays [N >= min_rows, D >= 1] of `dtype` with the same D.

    Raises ValueError naming the argument that does not fit.
    """
    pair = []
    for name, features in (("real_features", real_features), ("fake_features", fake_features)):
        features = np.asarray(features, dtype=dtype)
        if features.ndim != 2 or features.shape[0] < min_rows or features.shape[1] < 1:
            raise ValueError(f"{name} must be [N >= {min_rows}, D >= 1]. "
                             f"Received: shape {features.shape}")
        pair.append(features)
    real, fake = pair
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: {real.shape[1]} != "
                         f"{fake.shape[1]}")
    return real, fake
