"""TerminateOnNaN: stop training as soon as the loss becomes NaN or infinite."""
import math

from .callback import Callback


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or Inf (Keras 3's TerminateOnNaN).

    Args:
        raise_error: False sets `model.stop_training` (the loop ends cleanly, `on_train_end`
            runs); True raises RuntimeError at once.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isnan(loss) or math.isinf(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
            self.model.stop_training = True
