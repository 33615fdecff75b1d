"""matplotlib, imported only when a picture is drawn, always through the Agg canvas.

Figures are made with `matplotlib.figure.Figure`, never `pyplot`: no global backend is switched,
no window opens, and a notebook still shows a returned figure (Jupyter renders Figure objects).
"""
import os

import numpy as np

_HINT = "pip install chainrule[viz]"


def require_matplotlib(what):
    """The matplotlib module, or an ImportError that says how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"{what} draws with matplotlib, which is not installed: {_HINT} "
                          f"(or pip install matplotlib)") from None
    return matplotlib


def figure(what, figsize, dpi=100):
    """A new Figure with an Agg canvas attached."""
    require_matplotlib(what)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig, to_file, dpi=None):
    """Write the figure (format from the extension) and return the path; folders are created."""
    if to_file is None:
        return None
    folder = os.path.dirname(os.fspath(to_file))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(to_file, dpi=dpi or fig.dpi)
    return to_file


def to_rgb(fig):
    """The rendered figure as an (H, W, 3) uint8 array (a GIF frame)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _pillow():
    """PIL.Image, or None when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def write_gif(frames, to_file, fps=4):
    """Frames (H, W, 3 uint8 arrays) as an animated GIF with Pillow; without Pillow, one PNG per
    frame in a folder next to it. Returns (path written, message)."""
    Image = _pillow()
    if Image is None:
        folder = os.path.splitext(os.fspath(to_file))[0] + "_frames"
        os.makedirs(folder, exist_ok=True)
        import matplotlib.image as mpimg
        for i, frame in enumerate(frames):
            mpimg.imsave(os.path.join(folder, f"frame_{i:04d}.png"), frame)
        return folder, (f"Pillow is not installed, so no GIF: wrote {len(frames)} PNG frames to {folder} "
                        f"(pip install pillow for the animation)")
    folder = os.path.dirname(os.fspath(to_file))
    if folder:
        os.makedirs(folder, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(to_file, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return to_file, f"wrote {len(frames)} frames to {to_file}"


def image_grid(fig, images, titles=None, cmap="gray", columns=None, top=0.0, bottom=0.0, rows_of=None):
    """Lay `images` (2-D gray or (H, W, 3) RGB arrays in [0, 1]) out in a square-ish grid of axes."""
    n = len(images)
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    axes = []
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(img, cmap=None if img.ndim == 3 else cmap, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
        axes.append(ax)
    return axes


def normalize(a):
    """Scaled to [0, 1] (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = a.min(), a.max()
    return np.full_like(a, 0.5) if hi - lo < 1e-12 else (a - lo) / (hi - lo)
