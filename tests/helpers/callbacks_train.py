"""A tiny tfqa.train run with stock tf_keras callbacks, killable at a step (for tests/test_train_callbacks.py).

  python -m tests.helpers.callbacks_train '{"files": ..., "model_dir": ...,
      "callbacks": ["csv", ...], "settings": {...}, "kill_at_step": 6}'

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
from tfqa import training  # pylint: disable=g-import-not-at-top


def tiny_settings(files):
  """tfqa.train settings of a fast tiny v2.0 run (conftest.tiny_train_flags)."""
  return {"bert_config_file": files["bert_config"],
          "vocab_file": files["vocab"], "do_lower_case": True,
          "train_file": files["train_v2"], "eval_file": files["train_v2"],
          "version_2_with_negative": True, "max_seq_length": 32,
          "doc_stride": 8, "max_query_length": 12, "train_batch_size": 4,
          "num_train_epochs": 3, "save_every_steps": 4,
          "learning_rate": 3e-3, "warmup_ratio": 0.1, "seed": 7,
          "deterministic": True}


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
      hooks=training.TrainingHooks(after_step=after_step),
      **{**tiny_settings(spec["files"]), **spec.get("settings", {})})
  print(json.dumps({
      "global_step": result.global_step, "total_steps": result.total_steps,
      "resumed_from": result.resumed_from and os.path.basename(
          result.resumed_from),
      "checkpoint": result.checkpoint and os.path.basename(
          result.checkpoint),
      "metrics": result.metrics, **seen}))


if __name__ == "__main__":
  main(json.loads(sys.argv[1]))
