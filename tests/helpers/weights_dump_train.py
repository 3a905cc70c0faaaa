"""tfqa_train that also writes this process's final weights to an .npz file.

  TFQA_WEIGHTS_OUT=/tmp/w0.npz python -m tests.helpers.weights_dump_train ...

Lets a multi-worker test compare what each worker ends with (only the chief
writes checkpoints). The weights come through training.TrainingHooks. It takes
paused_train's --pause_after_step and --resume_when too, so a test can hold
the workers at a step (to signal one of them there).
"""

import os

import numpy as np

from tests.helpers import paused_train
from tfqa.cli import train
from tfqa.training import trainer


def _dump(model):
  np.savez(os.environ["TFQA_WEIGHTS_OUT"],
           **{w.name: w.numpy() for w in model.weights})


if __name__ == "__main__":
  train.run(hooks=trainer.TrainingHooks(
      after_step=paused_train.pause_after_step, training_done=_dump))
