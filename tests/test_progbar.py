"""The progress bar: redrawn in place on a terminal, one line per epoch anywhere else,
numbers formatted as Keras prints them; compared with Keras 3's Progbar where it has
the same output (skipped without Keras). Times vary from run to run, so they are
replaced by placeholders before comparing.
"""
import io
import os
import re
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

from chainrule.callbacks import CallbackList, ProgbarLogger
from chainrule.utils.progbar import Progbar, format_eta, format_time_per_unit, format_value


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No notebook or PyCharm here: only the stream decides whether the bar is redrawn."""
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)


def on_tty(fn, *args, **kwargs):
    """What `fn` prints to a terminal (a stream whose isatty() is True)."""
    with redirect_stdout(FakeTTY()) as stream:
        fn(*args, **kwargs)
    return stream.getvalue()


def on_pipe(fn, *args, **kwargs):
    """What `fn` prints to a pipe or a CI log (isatty() is False)."""
    with redirect_stdout(io.StringIO()) as stream:
        fn(*args, **kwargs)
    return stream.getvalue()


@pytest.fixture
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


ANSI = re.compile(r"\x1b\[\d+m")


def normalize(text):
    """Times -> T, backspaces and trailing blanks (which depend on the last line's length) dropped."""
    text = text.replace("\b", "")
    text = re.sub(r"\d+(?:ms|us|s)/step", "T/step", text)
    text = re.sub(r"\x1b\[1m(?:\d+:)*\d+s?\x1b\[0m", "\x1b[1mT\x1b[0m", text)  # ETA / elapsed, in bold
    text = re.sub(r" - \d+s - ", " - T - ", text)                               # elapsed, one-line form
    return re.sub(r" +(?=[\r\n]|$)", "", text)


def final_frames(text):
    """What stays on screen: the last redraw of each line."""
    return [line.split("\r")[-1] for line in normalize(text).split("\n") if line]


def drive(progbar):
    progbar.update(1, [("loss", 0.5), ("acc", 0.00001)])
    progbar.update(3, [("loss", 0.25), ("acc", 0.5)])
    progbar.update(4, [("loss", 0.0), ("acc", 0.75)])
    progbar.update(5, [("loss", 0.125), ("acc", -0.5)])


# ----------------------------------------------------------------------------- number formats
@pytest.mark.parametrize("value, text", [(0.52, "0.5200"), (0.81234, "0.8123"), (1234.5, "1234.5000"),
                                         (-0.5, "-0.5000"), (1e-5, "1.0000e-05"), (0.001, "1.0000e-03"),
                                         (0.0, "0.0000e+00"), (np.float32(0.25), "0.2500"), (float("nan"), "nan"),
                                         ("n/a", "n/a")])
def test_format_value_as_keras(value, text):
    # Keras: 4 decimals when |value| > 1e-3, else scientific with 4 decimals (so 0 is 0.0000e+00).
    assert format_value(value) == text


def test_format_value_matches_keras(keras, monkeypatch):
    for value in (0.52, 0.81234, 1234.5, -0.5, 1e-5, 0.001, 0.0, 7.0, -2e-4):
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stdout", stream)
        keras.utils.Progbar(1).update(1, [("m", value)])
        assert stream.getvalue().split("m: ")[1].strip() == format_value(value)


def test_time_formats():
    assert [format_time_per_unit(t) for t in (0, 2.4, 0.0021, 1.5e-4)] == ["0s/step", "2s/step", "2ms/step",
                                                                           "150us/step"]
    assert format_time_per_unit(0.5, "sample") == "500ms/sample"
    assert [format_eta(t) for t in (3.7, 187, 3723)] == ["3s", "3:07", "1:02:03"]


# ----------------------------------------------------------------------------- on a terminal
def test_terminal_redraws_in_place():
    out = on_tty(drive, Progbar(5, interval=0))
    assert out.count("\r") == 4 and out.count("\n") == 1 and out.endswith("\n")
    frames = [ANSI.sub("", frame) for frame in normalize(out).strip("\n").split("\r")[1:]]
    # Averages weighted by the steps each update covers: loss (0.5*1 + 0.25*2) / 3 = 0.3333 at step 3;
    # the final update shows its values as given.
    assert frames == ["1/5 ━━━━━━━━━━━━━━━━━━━━ T T/step - loss: 0.5000 - acc: 1.0000e-05",
                      "3/5 ━━━━━━━━━━━━━━━━━━━━ T T/step - loss: 0.3333 - acc: 0.3333",
                      "4/5 ━━━━━━━━━━━━━━━━━━━━ T T/step - loss: 0.2500 - acc: 0.4375",
                      "5/5 ━━━━━━━━━━━━━━━━━━━━ T T/step - loss: 0.1250 - acc: -0.5000"]
    # The bar fills in green: 4 of 20 characters at step 1 of 5.
    assert "\x1b[32m" + "━" * 4 + "\x1b[0m\x1b[37m" + "━" * 16 in out


def test_terminal_bar_matches_keras(keras):
    def both(make):
        drive(make(5, interval=0))
        drive(make(5, interval=0, stateful_metrics=["acc"]))

    assert normalize(on_tty(both, Progbar)) == normalize(on_tty(both, keras.utils.Progbar))


def test_terminal_blanks_out_a_longer_previous_line():
    def two_updates():
        bar = Progbar(3, interval=0, stateful_metrics=["note"])
        bar.update(1, [("note", "a long message")])
        bar.update(2, [("note", "short")])

    first, second = on_tty(two_updates).split("\r")[1:]
    # The shorter line is padded with blanks to the old line's width, so no old text stays visible.
    assert len(ANSI.sub("", second)) == len(ANSI.sub("", first)) and second.endswith(" " * 5)


def test_terminal_redraws_at_most_every_interval():
    def hundred_steps():
        bar = Progbar(100, interval=3600)
        for step in range(1, 101):
            bar.update(step, [("loss", 1.0)])

    # The first step draws, then nothing until the final update.
    assert on_tty(hundred_steps).count("\r") == 2


def test_unknown_target():
    def two_steps():
        bar = Progbar(None, interval=0)
        bar.update(1, [("loss", 0.5)])
        bar.update(2, [("loss", 0.5)], finalize=True)

    assert ANSI.sub("", normalize(on_tty(two_steps))) == ("\r      1/Unknown T T/step - loss: 0.5000"
                                                         "\r      2/Unknown T T/step - loss: 0.5000\n")


# ----------------------------------------------------------------------------- not on a terminal
def test_pipe_gets_one_line_when_the_bar_finishes():
    def epoch():
        bar = Progbar(1875)
        for step in range(1, 1876):
            bar.update(step, [("accuracy", 0.81), ("loss", 0.52)])

    out = on_pipe(epoch)
    assert "\r" not in out and "\x1b" not in out
    assert normalize(out) == "1875/1875 - T - T/step - accuracy: 0.8100 - loss: 0.5200\n"


def test_verbose_2_prints_one_line_even_on_a_terminal_and_verbose_0_nothing():
    assert normalize(on_tty(drive, Progbar(5, verbose=2))) == "5/5 - T - T/step - loss: 0.1250 - acc: -0.5000\n"
    assert on_tty(drive, Progbar(5, verbose=0)) == ""


def test_verbose_2_matches_keras(keras):
    def positive(make):
        bar = make(5, verbose=2)
        for step in range(1, 6):
            bar.update(step, [("loss", 0.5 / step), ("acc", 1e-5 * step)])

    assert normalize(on_tty(positive, Progbar)) == normalize(on_tty(positive, keras.utils.Progbar))


def test_stdout_is_looked_up_at_print_time(monkeypatch):
    bar = Progbar(2, verbose=2)
    later = io.StringIO()
    monkeypatch.setattr(sys, "stdout", later)
    bar.update(2, [("loss", 0.5)])
    assert "loss: 0.5000" in later.getvalue()


def test_console_without_utf8_gets_ascii_bar(monkeypatch):
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    stream.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", stream)
    Progbar(2, interval=0).update(2, [("loss", 0.5)])
    assert "2/2" in raw.getvalue().decode() and "=" * 20 in raw.getvalue().decode()


# ----------------------------------------------------------------------------- ProgbarLogger in a loop
def fit_like(callback_list, verbose, epochs=2, steps=50, with_validation=True):
    """The hooks Model.fit calls, with running-average logs, as plain floats."""
    cl = callback_list([], add_history=True, add_progbar=verbose != 0, model=type("M", (), {})(),
                       verbose=verbose, epochs=epochs, steps=steps)
    cl.on_train_begin()
    for epoch in range(epochs):
        cl.on_epoch_begin(epoch)
        for batch in range(steps):
            cl.on_train_batch_begin(batch)
            cl.on_train_batch_end(batch, {"loss": 0.5 - 0.001 * batch, "accuracy": 0.8 + 0.001 * batch})
        cl.on_test_begin()
        for batch in range(3):
            cl.on_test_batch_begin(batch)
            cl.on_test_batch_end(batch, {"loss": 0.6})
        cl.on_test_end({"loss": 0.6})
        cl.on_epoch_end(epoch, {"loss": 0.45, "accuracy": 0.85, "val_loss": 0.6, "val_accuracy": 0.8 + epoch / 100})
    cl.on_train_end()


def test_fit_on_a_pipe_prints_the_header_and_one_line_per_epoch():
    out = on_pipe(fit_like, CallbackList, verbose=1, epochs=2, steps=500)
    assert normalize(out).splitlines() == [
        "Epoch 1/2",
        "500/500 - T - T/step - accuracy: 0.8500 - loss: 0.4500 - val_accuracy: 0.8000 - val_loss: 0.6000",
        "Epoch 2/2",
        "500/500 - T - T/step - accuracy: 0.8500 - loss: 0.4500 - val_accuracy: 0.8100 - val_loss: 0.6000"]


def test_fit_on_a_pipe_matches_keras_verbose_2(keras):
    # Off a terminal our verbose=1 prints what Keras prints with verbose=2.
    ours = on_pipe(fit_like, CallbackList, verbose=1)
    assert normalize(ours) == normalize(on_pipe(fit_like, keras.callbacks.CallbackList, verbose=2))


def test_fit_on_a_terminal_redraws_and_matches_keras(keras):
    ours = on_tty(fit_like, CallbackList, verbose=1)
    assert ours.count("\r") >= 2 and ours.count("\n") == 4  # two headers, two finished bars
    assert final_frames(ours) == final_frames(on_tty(fit_like, keras.callbacks.CallbackList, verbose=1))


def test_single_epoch_has_no_header_and_verbose_0_prints_nothing():
    assert normalize(on_pipe(fit_like, CallbackList, verbose=1, epochs=1)).splitlines() == [
        "50/50 - T - T/step - accuracy: 0.8500 - loss: 0.4500 - val_accuracy: 0.8000 - val_loss: 0.6000"]
    assert on_pipe(fit_like, CallbackList, verbose=0) == ""


def test_evaluate_and_predict_show_their_own_bar():
    def evaluate():
        cl = CallbackList([], add_progbar=True, model=object(), verbose=1, epochs=1, steps=None)
        cl.on_test_begin()
        for batch in range(4):
            cl.on_test_batch_end(batch, {"loss": 0.25})
        cl.on_test_end({"loss": 0.25, "accuracy": 0.5})

    def predict():
        cl = CallbackList([ProgbarLogger()], model=object(), verbose=1, epochs=1, steps=7)
        cl.on_predict_begin()
        for batch in range(7):
            cl.on_predict_batch_end(batch, {"outputs": np.zeros(3)})
        cl.on_predict_end()

    # Steps unknown up front: the bar learns the count (4) from the batches seen. The final logs
    # come sorted from the CallbackList, after the batches' 'loss'.
    assert normalize(on_pipe(evaluate)) == "4/4 - T - T/step - loss: 0.2500 - accuracy: 0.5000\n"
    assert normalize(on_pipe(predict)) == "7/7 - T - T/step\n"


def test_text_values_are_shown_as_given_and_arrays_as_their_mean():
    def update():
        bar = Progbar(2, verbose=2)
        bar.update(1, [("phase", "warm-up"), ("per_class", np.array([0.25, 0.75]))])
        bar.update(2, [("phase", "main"), ("per_class", np.array([0.5, 1.0]))])

    assert normalize(on_pipe(update)) == "2/2 - T - T/step - phase: main - per_class: 0.7500\n"
