"""tfqa_train that waits after a chosen step until a file exists (run-lock tests).

  python -m tests.helpers.paused_train --pause_after_step=2 \\
      --resume_when=/tmp/go [tfqa_train flags]

After step N it writes RESUME_WHEN + ".paused" (so a test knows it holds the
run directory mid-training) and waits until RESUME_WHEN exists, then goes on.
The pause goes in through training.TrainingHooks.
"""

import os
import time

from absl import flags

from tfqa.cli import train
from tfqa.training import trainer

_PAUSE_AFTER = flags.DEFINE_integer("pause_after_step", 0,
                                    "Step after which to wait.")
_RESUME_WHEN = flags.DEFINE_string("resume_when", "",
                                   "File whose existence ends the wait.")


def pause_after_step(step):
  """The after_step hook: waits after --pause_after_step (0: never)."""
  if step != _PAUSE_AFTER.value:
    return
  with open(_RESUME_WHEN.value + ".paused", "w", encoding="utf-8") as f:
    f.write(str(step))
  while not os.path.exists(_RESUME_WHEN.value):
    time.sleep(0.1)


if __name__ == "__main__":
  train.run(hooks=trainer.TrainingHooks(after_step=pause_after_step))
