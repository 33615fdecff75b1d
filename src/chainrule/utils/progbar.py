"""Progbar: the Keras 3 progress bar, as `fit`, `evaluate` and `predict` print it.

On a terminal or in a notebook the bar is redrawn in place with '\\r'::

      12/1875 ━━━━━━━━━━━━━━━━━━━━ 3s 2ms/step - accuracy: 0.8100 - loss: 0.5200

(ETA while running, total time once finished). Anywhere else (a pipe, a CI log) a
redrawn bar would become thousands of lines, so it prints a single line when the
bar finishes, in Keras's `verbose=2` form::

    1875/1875 - 3s - 2ms/step - accuracy: 0.8100 - loss: 0.5200

Output goes to `sys.stdout`, looked up at each print so that tests can capture it.
"""
import math
import numbers
import os
import sys
import time

import numpy as np

# ANSI styles, as Keras draws them; they only reach a terminal or a notebook.
_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"
_BAR_CHAR = "━"


def _is_dynamic_display():
    """True when '\\r' redraws a line in place: a terminal, a notebook, PyCharm's console."""
    stdout = sys.stdout
    isatty = getattr(stdout, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        tty = False
    return tty or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def _write(message):
    stream = sys.stdout
    try:
        stream.write(message)
    except UnicodeEncodeError:
        # A console without UTF-8 (old Windows code pages) cannot print '━'.
        stream.write(message.replace(_BAR_CHAR, "=").encode("ascii", "replace").decode("ascii"))
    stream.flush()


def format_value(value):
    """A metric as Keras prints it: '0.5200' (4 decimals), or '1.2300e-05' when |value| <= 1e-3."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"
    return str(value)


def format_time_per_unit(seconds, unit_name="step"):
    """'3s/step', '2ms/step' or '150us/step', as Keras picks the unit."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds):
    """'42s', '3:07' or '1:02:03'."""
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Progbar:
    """Displays a progress bar (Keras 3's `keras.utils.Progbar`).

    Args:
        target: total number of steps expected, None if unknown.
        width: width of the bar in characters.
        verbose: 0 silent, 1 the bar (one line at the end when not on a terminal),
            2 one line when the bar finishes.
        interval: minimum seconds between two redraws of the bar.
        stateful_metrics: names of metrics shown as given; all others are averaged
            over the steps since the bar started (mean = sum(value * steps) / steps).
        stateless_metrics: the other way round: names of metrics to average, all
            others shown as given. Give at most one of the two.
        unit_name: the unit of `current` ('step' or 'sample'), as in '2ms/step'.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step"):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: give `stateful_metrics` (names shown as given, all others averaged) or "
                             "`stateless_metrics` (names averaged, all others shown as given), not both.")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics) if stateful_metrics is not None else None
        self.stateless_metrics = set(stateless_metrics) if stateless_metrics is not None else None
        if self.stateful_metrics is None and self.stateless_metrics is None:
            self.stateful_metrics = set()
        self._seen_so_far = 0
        self._values = {}           # name -> [weighted sum, count]; shown as sum / count
        self._values_order = []     # names in first-seen order, the order they are printed
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    # ------------------------------------------------------------------ public
    def update(self, current, values=None, finalize=None):
        """Move the bar to step `current` and record `values`, a list of (name, value) pairs.

        `finalize` (default: `current >= target`) marks the last update: the bar shows
        the total time instead of the ETA and ends its line.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        self._seen_so_far = current
        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)

        # Asked at each update, of the stream the line goes to (it may have been redirected).
        if self.verbose == 1 and _is_dynamic_display():
            if now - self._last_update < self.interval and not finalize:
                return
            self._redraw(current, now, time_per_unit, finalize)
        elif self.verbose in (1, 2) and finalize:
            _write(self._summary_line(current, now, time_per_unit) + "\n")
        self._last_update = now

    def add(self, n, values=None):
        """Advance the bar by `n` steps."""
        self.update(self._seen_so_far + n, values)

    # ------------------------------------------------------------------ values
    def _is_averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _record(self, current, values, finalize):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            if isinstance(value, np.ndarray):
                value = float(np.mean(value))  # an array metric is shown as its mean, as in Keras
            if not self._is_averaged(name) or finalize or not isinstance(value, numbers.Number):
                # The final update carries whole-epoch values: shown as given (as Keras does).
                self._values[name] = [value, 1]
                continue
            # Weight by the steps since the last update, so averages stay per step
            # however often the bar is updated.
            steps = max(current - self._seen_so_far, 1)
            if name not in self._values:
                self._values[name] = [value * steps, steps]
            else:
                self._values[name][0] += value * steps
                self._values[name][1] += steps

    def _metrics_text(self):
        parts = []
        for name in self._values_order:
            total, count = self._values[name]
            value = total / max(1, count) if isinstance(total, numbers.Number) else total
            parts.append(f" - {name}: {format_value(value)}")
        return "".join(parts)

    # ------------------------------------------------------------------ drawing
    def _count_text(self, current):
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            return f"%{digits}d/%d" % (current, self.target)
        return None

    def _redraw(self, current, now, time_per_unit, finalize):
        """One in-place redraw on a terminal: '\\r', the bar, blanks over any longer old line."""
        count = self._count_text(current)
        if count is not None:
            filled = int(self.width * current / self.target)
            filled = min(max(filled, 0), self.width)
            bar_plain = f"{count} {_BAR_CHAR * self.width}"
            bar = (f"{_BOLD}{count}{_RESET} " + (f"{_GREEN}{_BAR_CHAR * filled}{_RESET}" if filled else "")
                   + f"{_GREY}{_BAR_CHAR * (self.width - filled)}{_RESET}")
        else:
            bar = bar_plain = "%7d/Unknown" % current
        if count is not None and not finalize:
            clock = format_eta(time_per_unit * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        info_plain = f" {clock} {format_time_per_unit(time_per_unit, self.unit_name)}{self._metrics_text()}"
        info = f" {_BOLD}{clock}{_RESET}" + info_plain[len(clock) + 1:]

        total_width = len(bar_plain) + len(info_plain)
        message = "\r" + bar + info
        if self._prev_total_width > total_width:
            message += " " * (self._prev_total_width - total_width)
        if finalize:
            message += "\n"
        _write(message)
        self._prev_total_width = total_width

    def _summary_line(self, current, now, time_per_unit):
        """The one-line form: '1875/1875 - 3s - 2ms/step - loss: 0.5200'."""
        count = self._count_text(current) or str(current)
        return (f"{count} - {now - self._start:.0f}s - {format_time_per_unit(time_per_unit, self.unit_name)}"
                f"{self._metrics_text()}")

    def _estimate_step_duration(self, current, now):
        """Seconds per step; once past step 1, the first step (often slow: warm-up) is left out."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step
