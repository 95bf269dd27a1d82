"""A training run: prepare the data, the one training loop (any tf.distribute strategy), checkpoints, the run folder."""
