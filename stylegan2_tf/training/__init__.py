"""Training: losses, lazy regularization, G EMA, the distributed training step."""
