"""The training loop and what it keeps: the step, CUDA graphs, EMA weights, scalars and checkpoints."""
