"""Saving and loading (weights as .npz for now)."""
