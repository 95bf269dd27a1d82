"""Scoring a model: metrics, multi-label thresholds, pictures, the TF-IDF baseline."""
