"""Inception Score of class probabilities (Salimans et al. 2016, arXiv 1606.03498).

IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the images. As NVIDIA's
is50k (stylegan2 and stylegan2-ada-pytorch, both after OpenAI's improved-gan code), the
N images are cut into `num_splits` contiguous parts, part i holding images
[i N // S, (i + 1) N // S) (so parts differ by one image at most when S does not divide
N, the longer ones spread out), each part has its own p(y) and score, and the result is
the mean and the standard deviation (ddof 0) of the part scores.
"""

import numpy as np
import scipy.special

NUM_SPLITS = 10  # is50k's
SUM_TOLERANCE = 1e-3  # how far from 1 a row of float32 softmax output may sum


def split_bounds(count, num_splits=NUM_SPLITS):
    """[(start, stop)] of the `num_splits` contiguous parts of `count` items: i count // S on."""
    return [(i * count // num_splits, (i + 1) * count // num_splits) for i in range(num_splits)]


def inception_score(probabilities, num_splits=NUM_SPLITS):
    """(mean, std) of the Inception Score over `num_splits` contiguous parts.

    Args:
        probabilities: [N >= num_splits, K] class probabilities p(y|x) of N images, rows
            summing to 1 (the classifier's softmax output).
        num_splits: int >= 1.

    Returns:
        (mean, std) floats: for each part (split_bounds), exp(mean over its images of
        sum_y p(y|x) (log p(y|x) - log p(y))), p(y) the part's mean of p(y|x); a
        probability of 0 contributes 0 (the limit of p log p), where the reference
        formula gives nan. The score is in [1, K]: 1 for identical rows, K for one-hot
        rows spreading evenly over the K classes.
    """
    num_splits = int(num_splits)
    if num_splits < 1:
        raise ValueError(f"num_splits must be >= 1. Received: num_splits={num_splits}")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < num_splits or p.shape[1] < 1:
        raise ValueError(f"probabilities must be [N >= num_splits = {num_splits}, K >= 1]. "
                         f"Received: shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and >= 0")
    sums = p.sum(axis=1)
    if np.any(np.abs(sums - 1) > SUM_TOLERANCE):
        raise ValueError(f"probabilities must sum to 1 in each row (got sums from {sums.min():.4g} "
                         f"to {sums.max():.4g}); pass softmax outputs, not logits")
    scores = []
    for start, stop in split_bounds(len(p), num_splits):
        part = p[start:stop]
        marginal = part.mean(axis=0, keepdims=True)
        kl = scipy.special.xlogy(part, part) - scipy.special.xlogy(part, marginal)  # [n, K]
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
