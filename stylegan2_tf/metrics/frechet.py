"""Fréchet distance between two Gaussians fitted to feature sets (the distance behind FID)."""

import numpy as np
import scipy.linalg


def feature_statistics(features):
    """(mean [D], covariance [D, D]) of features [N, D], float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), >= 0."""
    covmean = np.real(scipy.linalg.sqrtm(np.dot(sigma1, sigma2)))
    distance = np.sum(np.square(mu1 - mu2)) + np.trace(sigma1 + sigma2 - 2 * covmean)
    return float(max(distance, 0.0))
