"""Training: the loop, its building blocks, checkpoints and the events it reports."""
