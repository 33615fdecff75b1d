"""Data: batching for the training loop (datasets and augmentation come later)."""
