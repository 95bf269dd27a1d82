"""Shipping a model: the raw-text SavedModel export, its fast LSTM path, TF Serving's loader check, predict, explain."""
