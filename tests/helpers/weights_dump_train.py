"""tfqa_train that also writes this process's final weights to an .npz file.

  TFQA_WEIGHTS_OUT=/tmp/w0.npz python -m tests.helpers.weights_dump_train ...

Lets a multi-worker test compare what each worker ends with (only the chief
writes checkpoints).
"""

import os

import numpy as np

from tfqa import training
from tfqa.cli import train


def _patch():
  fit = training._fit  # pylint: disable=protected-access

  def fit_and_dump(state, *args, **kwargs):
    step = fit(state, *args, **kwargs)
    np.savez(os.environ["TFQA_WEIGHTS_OUT"],
             **{w.name: w.numpy() for w in state.model.weights})
    return step

  training._fit = fit_and_dump  # pylint: disable=protected-access


if __name__ == "__main__":
  _patch()
  train.run()
