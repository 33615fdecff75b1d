"""CSVLogger: one CSV row per epoch with every logged value."""
import collections.abc
import csv

import numpy as np

from .callback import Callback


def _cell(value):
    """Strings and numbers as they are; a 1-D iterable (an array) as '"[a, b, c]"', as Keras writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Streams epoch results to a CSV file (Keras 3's CSVLogger).

    Columns: 'epoch' (from 0), then the log keys sorted; when the first epoch has no
    validation keys, 'val_<key>' columns are added too (as Keras does), filled with 'NA'.

    Args:
        filename: the CSV file, e.g. 'run/log.csv'.
        separator: the column separator.
        append: True appends to an existing file (no second header); False overwrites it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = str(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        mode = "w"
        if self.append:
            mode = "a"
            try:
                with open(self.filename, "r", encoding="utf-8") as f:
                    self.append_header = not f.readline()
            except FileNotFoundError:
                self.append_header = True
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        # newline="": the csv module writes its own line endings.
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:
            dialect = type("CustomDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
