"""tfqa_train that SIGKILLs itself at a chosen moment (for resume tests).

  python -m tests.helpers.killable_train --kill_at_step=7 [tfqa_train flags]
  python -m tests.helpers.killable_train --kill_in_save_at_step=10 [...]

--kill_at_step kills right after that step ends (after its log line and, on a
save step, after its checkpoint); --kill_in_save_at_step kills after the checkpoint
files of that step are written but before the `checkpoint` state file names
them, i.e. in the middle of a save.
"""

import os
import signal

from absl import flags
from tensorflow.python.checkpoint import checkpoint_management

from tfqa import training
from tfqa.cli import train

_KILL_AT = flags.DEFINE_integer("kill_at_step", 0, "Step to die after.")
_KILL_IN_SAVE = flags.DEFINE_integer("kill_in_save_at_step", 0,
                                     "Step whose save is interrupted.")


def _die():
  os.kill(os.getpid(), signal.SIGKILL)


def _patch():
  end_step = training._PeriodicSave.on_train_batch_end  # pylint: disable=protected-access

  def on_train_batch_end(self, batch, logs=None):
    end_step(self, batch, logs)
    if self._saver.step == _KILL_AT.value:  # pylint: disable=protected-access
      _die()

  training._PeriodicSave.on_train_batch_end = on_train_batch_end  # pylint: disable=protected-access
  update_state = checkpoint_management.update_checkpoint_state_internal

  def update_checkpoint_state_internal(save_dir, model_checkpoint_path, *args,
                                       **kwargs):
    if model_checkpoint_path.endswith(f"-{_KILL_IN_SAVE.value}"):
      _die()
    return update_state(save_dir, model_checkpoint_path, *args, **kwargs)

  checkpoint_management.update_checkpoint_state_internal = (
      update_checkpoint_state_internal)


if __name__ == "__main__":
  _patch()
  train.run()
