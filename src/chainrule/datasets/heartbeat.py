"""The "heartbeat" signal: noisy 1-D sequences holding one heartbeat-shaped pulse, for 1-D CNNs.

Each sequence is Gaussian noise on a slowly wandering baseline; in it sits one beat (a small
P wave, the sharp Q-R-S spike, a broad T wave) of random height at a random place. The labels
say where it is, for three kinds of task:

- segmentation: ``mask`` (n, length), 1.0 on the beat's time steps, else 0.0;
- localisation: ``position`` (n,), the index of the R peak (-1 when there is no beat);
- detection: ``present`` (n,), 1 when the sequence holds a beat (with ``p_beat`` < 1 some do not).

    x, mask, position, present = heartbeat(1000, length=128, seed=0)
    x.shape == (1000, 128, 1)      # (batch, steps, channels), ready for Conv1D
"""
from typing import NamedTuple

import numpy as np

from .toys import rng_for

# (height, centre, width) of the Gaussians that make one beat, on a time axis from -1/2 to 1/2
# of the beat's span; the R spike is about one step wide at the default beat_width=24
_WAVES = ((0.15, -0.30, 0.060),   # P
          (-0.20, -0.08, 0.030),  # Q
          (1.00, 0.00, 0.040),    # R
          (-0.30, 0.08, 0.030),   # S
          (0.35, 0.28, 0.080))    # T


class HeartbeatData(NamedTuple):
    x: np.ndarray         # float32 (n, length, 1)
    mask: np.ndarray      # float32 (n, length)
    position: np.ndarray  # int64 (n,), R-peak index or -1
    present: np.ndarray   # int64 (n,), 0 or 1


def beat_shape(width):
    """One beat sampled on `width` steps: a sum of Gaussians a * exp(-(t - mu)^2 / (2 s^2))."""
    t = (np.arange(width) - (width - 1) / 2) / width
    return sum(a * np.exp(-0.5 * ((t - mu) / s) ** 2) for a, mu, s in _WAVES)


def heartbeat(n_samples=1000, length=128, beat_width=24, noise=0.1, p_beat=1.0, amplitude=(0.6, 1.4),
              wander=0.2, seed=None):
    """`n_samples` sequences of `length` steps with one beat each (with probability `p_beat`).

    noise: std of the white noise; amplitude: (min, max) height of a beat; wander: the largest
    amplitude of the slow baseline sine. Returns HeartbeatData(x, mask, position, present).
    """
    if not 0 < beat_width <= length:
        raise ValueError(f"heartbeat: beat_width must be in 1..length={length}, got {beat_width}")
    rng = rng_for(seed)
    steps = np.arange(length)
    # baseline wander: a slow sine of random phase, 0.5 to 2 cycles per sequence, plus white noise
    cycles = rng.uniform(0.5, 2.0, size=(n_samples, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_samples, 1))
    baseline = rng.uniform(0.0, wander, size=(n_samples, 1)) * np.sin(2 * np.pi * cycles * steps / length + phase)
    x = baseline + rng.normal(0.0, noise, size=(n_samples, length))

    present = (rng.random(n_samples) < p_beat).astype(np.int64)
    start = rng.integers(0, length - beat_width + 1, size=n_samples)
    height = rng.uniform(amplitude[0], amplitude[1], size=n_samples) * present
    shape = beat_shape(beat_width)
    cols = start[:, None] + np.arange(beat_width)          # the steps each beat covers
    rows = np.arange(n_samples)[:, None]
    x[rows, cols] += height[:, None] * shape                # one fancy-indexed add places every beat

    mask = np.zeros((n_samples, length), dtype=np.float32)
    mask[rows, cols] = present[:, None]
    position = np.where(present == 1, start + int(np.argmax(shape)), -1).astype(np.int64)
    return HeartbeatData(x[..., None].astype(np.float32), mask, position, present)
