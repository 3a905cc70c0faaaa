"""A tiny tfqa.train run with stock tf_keras callbacks, killable at a step (for tests/test_training_callbacks.py).

  python -m tests.helpers.callbacks_train '{"model_dir": ...,
      "callbacks": ["csv", ...], "settings": {tfqa.train settings},
      "kill_at_step": 6}'

Prints one JSON line: the TrainResult's steps and checkpoints, how often
on_train_begin ran, and each epoch end's (epoch, logs) as a LambdaCallback
placed after the stock callbacks saw them. The kill (SIGKILL) comes through
training.TrainingHooks after the step's checkpoint, when one is due.
"""

import json
import os
import signal
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # The project's Keras setup.

import tf_keras  # pylint: disable=g-import-not-at-top

import tfqa  # pylint: disable=g-import-not-at-top
from tfqa.training import trainer  # pylint: disable=g-import-not-at-top


def stock_callback(name, model_dir):
  """The stock callback a test names."""
  if name == "early_stopping_val_f1":
    return tf_keras.callbacks.EarlyStopping(monitor="val_f1", mode="max",
                                            patience=1)
  if name == "early_stopping_loss":
    return tf_keras.callbacks.EarlyStopping(monitor="loss", patience=1)
  if name == "tensorboard":
    return tf_keras.callbacks.TensorBoard(
        log_dir=os.path.join(model_dir, "keras_tb"), update_freq=1)
  if name == "csv":
    return tf_keras.callbacks.CSVLogger(os.path.join(model_dir, "epochs.csv"),
                                        append=True)
  if name == "terminate_on_nan":
    return tf_keras.callbacks.TerminateOnNaN()
  if name == "progbar":
    return tf_keras.callbacks.ProgbarLogger(count_mode="steps")
  raise ValueError(f"unknown callback {name!r}")


def main(spec):
  model_dir = spec["model_dir"]
  seen = {"train_begin": 0, "epochs": []}
  record = tf_keras.callbacks.LambdaCallback(
      on_train_begin=lambda logs: seen.__setitem__(
          "train_begin", seen["train_begin"] + 1),
      on_epoch_end=lambda epoch, logs: seen["epochs"].append(
          [epoch, {k: float(v) for k, v in logs.items()}]))
  callbacks = [stock_callback(name, model_dir)
               for name in spec.get("callbacks", [])] + [record]

  def after_step(step):
    if step == spec.get("kill_at_step"):
      os.kill(os.getpid(), signal.SIGKILL)

  result = tfqa.train(
      model_dir=model_dir, callbacks=callbacks,
      verbose=spec.get("verbose", 0),
      hooks=trainer.TrainingHooks(after_step=after_step),
      **spec["settings"])
  print(json.dumps({
      "global_step": result.global_step, "total_steps": result.total_steps,
      "resumed_from": result.resumed_from and os.path.basename(
          result.resumed_from),
      "checkpoint": result.checkpoint and os.path.basename(
          result.checkpoint),
      "metrics": result.metrics, **seen}))


if __name__ == "__main__":
  main(json.loads(sys.argv[1]))
