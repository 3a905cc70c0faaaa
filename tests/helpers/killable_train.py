"""tfqa_train that SIGKILLs itself at a chosen moment (for resume tests).

  python -m tests.helpers.killable_train --kill_at_step=7 [tfqa_train flags]
  python -m tests.helpers.killable_train --kill_in_save_at_step=10 [...]
  python -m tests.helpers.killable_train --kill_in_eval_at_step=4 [...]
  python -m tests.helpers.killable_train --kill_at_micro_batch=7:0 [...]

--kill_at_step kills right after that step ends (after its log line and, on a
save step, after its checkpoint); --kill_in_save_at_step kills after the
checkpoint files of that step are written but before the `checkpoint` state
file names them, i.e. in the middle of a save; --kill_in_eval_at_step kills
during the evaluation of that step (after its predictions file is written,
before the rest); --kill_at_micro_batch=STEP:INDEX kills when micro-batch
INDEX of step STEP has its gradients (--gradient_accumulation_steps > 1).
Faults go in through training.TrainingHooks; the in-save kill also wraps
TensorFlow's checkpoint state update, which no tfqa hook reaches.
"""

import os
import signal

from absl import flags
from tensorflow.python.checkpoint import checkpoint_management

from tfqa.cli import train
from tfqa.layout import json_files
from tfqa.training import trainer

_KILL_AT = flags.DEFINE_integer("kill_at_step", 0, "Step to die after.")
_KILL_IN_SAVE = flags.DEFINE_integer("kill_in_save_at_step", 0,
                                     "Step whose save is interrupted.")
_KILL_IN_EVAL = flags.DEFINE_integer("kill_in_eval_at_step", 0,
                                     "Step whose evaluation is interrupted.")
_KILL_AT_MICRO = flags.DEFINE_string("kill_at_micro_batch", "",
                                     "STEP:INDEX of the micro-batch to die "
                                     "after.")


def _die(*_):
  os.kill(os.getpid(), signal.SIGKILL)


def _hooks():
  in_eval = {"step": None}

  def before_eval(step):
    in_eval["step"] = step

  def after_step(step):
    if step == _KILL_AT.value:
      _die()

  def after_micro_batch(step, index):
    if _KILL_AT_MICRO.value == f"{step}:{index}":
      _die()

  write_json = json_files.atomic_write_json

  def write_then_maybe_die(path, obj):
    write_json(path, obj)
    if in_eval["step"] and in_eval["step"] == _KILL_IN_EVAL.value:
      _die()

  # The evaluation's first output file, then death: a half-written eval.
  json_files.atomic_write_json = write_then_maybe_die
  update_state = checkpoint_management.update_checkpoint_state_internal

  def update_checkpoint_state_internal(save_dir, model_checkpoint_path, *args,
                                       **kwargs):
    if model_checkpoint_path.endswith(f"-{_KILL_IN_SAVE.value}"):
      _die()
    return update_state(save_dir, model_checkpoint_path, *args, **kwargs)

  checkpoint_management.update_checkpoint_state_internal = (
      update_checkpoint_state_internal)
  return trainer.TrainingHooks(
      after_step=after_step, before_eval=before_eval,
      after_eval=lambda step: in_eval.update(step=None),
      after_micro_batch=after_micro_batch)


if __name__ == "__main__":
  train.run(hooks=_hooks())
