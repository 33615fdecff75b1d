"""Batching for the training loop (datasets live in chainrule.datasets, augmentation in layers)."""
