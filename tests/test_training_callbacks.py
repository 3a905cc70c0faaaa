"""Tests for tfqa.training.callbacks: stock tf_keras callbacks in a tfqa run behave as their documentation says."""

import csv
import glob
import json
import os
import signal

import pytest
import tensorflow as tf

from tfqa.training import callbacks as train_callbacks
from tfqa.training import trainer

from conftest import run_python, tiny_train_settings

pytestmark = pytest.mark.slow

# tests/helpers/callbacks_train.py: 14 windows, batch 4: 4 steps per epoch.
PER_EPOCH = 4
V2_LOG_NAMES = {"val_exact_match", "val_f1", "val_best_f1", "val_has_ans_f1",
                "val_no_ans_f1"}


def _run(spec, *, expect_kill=False):
  spec = dict(spec)
  spec["settings"] = tiny_train_settings(spec.pop("files"),
                                         **spec.get("settings", {}))
  proc = run_python(["-m", "tests.helpers.callbacks_train", json.dumps(spec)],
                    exit_status=-signal.SIGKILL if expect_kill else 0)
  if expect_kill:
    return None, proc.stdout
  return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def _first_non_improvement(values, *, mode):
  """Index of the first value no better than all before it (EarlyStopping's
  patience=1 stops there), or None."""
  best = values[0]
  for i, value in enumerate(values[1:], 1):
    if not (value > best if mode == "max" else value < best):
      return i
    best = value
  return None


def test_keras_logs_names_an_evaluations_metrics():
  v2 = {"exact": 50.0, "f1": 62.5, "best_f1": 70.0, "HasAns_f1": 40.0,
        "NoAns_f1": 85.0, "total": 11, "best_f1_thresh": -1.5}
  assert train_callbacks.keras_logs(v2) == {
      "val_exact_match": 50.0, "val_f1": 62.5, "val_best_f1": 70.0,
      "val_has_ans_f1": 40.0, "val_no_ans_f1": 85.0}
  assert train_callbacks.keras_logs({"exact_match": 3.0, "f1": 4.0}) == {
      "val_exact_match": 3.0, "val_f1": 4.0}


def test_early_stopping_on_val_f1_stops_at_the_first_evaluation_that_does_not_improve(
    tiny_files, tmp_path):
  model_dir = str(tmp_path / "run")
  spec = {"files": tiny_files, "model_dir": model_dir,
          "callbacks": ["early_stopping_val_f1"],
          "settings": {"num_train_epochs": 8,
                       "eval_every_steps": PER_EPOCH}}
  out, _ = _run(spec)
  assert out["train_begin"] == 1
  epochs = [epoch for epoch, _ in out["epochs"]]
  assert epochs == list(range(len(epochs)))
  # Every epoch ends with an evaluation, its results in the logs.
  assert all(V2_LOG_NAMES <= set(logs) for _, logs in out["epochs"])
  f1 = [logs["val_f1"] for _, logs in out["epochs"]]
  stop = _first_non_improvement(f1, mode="max")
  assert stop is not None and stop < 7, f1  # The run must plateau to test.
  assert len(epochs) == stop + 1
  stopped_at = (stop + 1) * PER_EPOCH
  # A complete run at the stop: checkpoint, final evaluation of that step.
  assert out["global_step"] == stopped_at
  assert out["checkpoint"] == f"ckpt-{stopped_at}"
  results = json.load(open(os.path.join(model_dir, "eval",
                                        "eval_results.json")))
  assert results["global_step"] == stopped_at
  assert results["f1"] == out["metrics"]["f1"] == f1[-1]
  # The same call without the callback extends it to the end.
  spec["callbacks"] = []
  extended, _ = _run(spec)
  assert extended["resumed_from"] == f"ckpt-{stopped_at}"
  assert extended["global_step"] == extended["total_steps"] == 8 * PER_EPOCH
  assert [e for e, _ in extended["epochs"]] == list(range(stop + 1, 8))
  steps = [e["step"] for e in trainer.read_train_log(model_dir)]
  assert steps == list(range(1, 8 * PER_EPOCH + 1))


def test_early_stopping_on_loss_sees_each_epochs_mean_loss(tiny_files,
                                                           tmp_path):
  model_dir = str(tmp_path / "run")
  out, _ = _run({"files": tiny_files, "model_dir": model_dir,
                 "callbacks": ["early_stopping_loss"],
                 "settings": {"num_train_epochs": 8,
                              "learning_rate": 3e-2}})
  log = trainer.read_train_log(model_dir)
  losses = [logs["loss"] for _, logs in out["epochs"]]
  for epoch, loss in enumerate(losses):
    steps = [e["loss"] for e in log
             if (e["step"] - 1) // PER_EPOCH == epoch]
    assert loss == sum(steps) / len(steps)
  stop = _first_non_improvement(losses, mode="min")
  assert stop is not None and stop < 7, losses
  assert len(losses) == stop + 1
  assert out["global_step"] == (stop + 1) * PER_EPOCH


def _event_steps(directory, tag):
  """The steps of `tag`'s events, file by file in the order written."""
  steps = []
  for path in sorted(glob.glob(os.path.join(directory, "events.out.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          steps.append(event.step)
  return steps


def test_tensorboard_csv_logger_and_progbar_across_a_kill_and_resume(
    tiny_files, tmp_path):
  model_dir = str(tmp_path / "run")
  spec = {"files": tiny_files, "model_dir": model_dir,
          "callbacks": ["tensorboard", "csv"],
          # Checkpoint every 3 steps; killed after step 6's, inside epoch 1.
          "settings": {"save_every_steps": 3}, "kill_at_step": 6}
  _run(spec, expect_kill=True)
  spec.update(kill_at_step=None, verbose=1,
              callbacks=["tensorboard", "csv", "progbar"])
  out, stdout = _run(spec)
  assert out["resumed_from"] == "ckpt-6" and out["train_begin"] == 1
  assert out["global_step"] == 3 * PER_EPOCH
  # TensorBoard: one step axis; the resumed process continues it at 7.
  train_dir = os.path.join(model_dir, "keras_tb", "train")
  batch_steps = _event_steps(train_dir, "batch_loss")
  assert batch_steps == sorted(set(batch_steps))
  assert batch_steps[-6:] == list(range(7, 13))
  epoch_steps = _event_steps(train_dir, "epoch_loss")
  assert epoch_steps == sorted(set(epoch_steps)) and epoch_steps[-2:] == [1, 2]
  # CSVLogger(append=True): one row per epoch, none twice, one header.
  with open(os.path.join(model_dir, "epochs.csv"), encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
  # ProgbarLogger: the resumed epoch 2 of 3 starts at its 3rd batch of 4
  # (step 7) and ends at its 4th; epoch 3 runs all 4.
  assert "Epoch 1/3" not in stdout
  assert stdout.count("Epoch 2/3") == 1 and stdout.count("Epoch 3/3") == 1
  second, third = stdout.split("Epoch 2/3")[1].split("Epoch 3/3")
  assert second.lstrip().startswith("3/4 [") and "4/4 [" in second
  assert "1/4 [" in third and "4/4 [" in third


def test_terminate_on_nan_stops_at_the_first_nan_loss(tiny_files, tmp_path):
  model_dir = str(tmp_path / "run")
  out, _ = _run({"files": tiny_files, "model_dir": model_dir,
                 "callbacks": ["terminate_on_nan"],
                 "settings": {"learning_rate": 1e12, "warmup_ratio": 0.0,
                              "num_train_epochs": 8,
                              "save_every_steps": 1}})
  log = trainer.read_train_log(model_dir)
  finite = [e["loss"] == e["loss"] for e in log]  # NaN != NaN.
  assert False in finite, [e["loss"] for e in log]
  first_nan = finite.index(False) + 1
  assert out["global_step"] == first_nan == len(log)
  assert out["global_step"] < out["total_steps"]
  # Neither checkpointed nor evaluated: every step before it was saved, the
  # newest checkpoint is the last finite step's.
  assert out["checkpoint"] == (f"ckpt-{first_nan - 1}" if first_nan > 1
                               else None)
  assert out["metrics"] is None


@pytest.mark.parametrize("kind", ["BackupAndRestore", "ModelCheckpoint",
                                  "ReduceLROnPlateau",
                                  "LearningRateScheduler", "EarlyStopping"])
def test_callbacks_that_contradict_tfqa_are_refused_with_the_reason(
    kind, tmp_path):
  import tf_keras
  from tfqa import config
  makers = {
      "BackupAndRestore": lambda: tf_keras.callbacks.BackupAndRestore(
          str(tmp_path / "backup")),
      "ModelCheckpoint": lambda: tf_keras.callbacks.ModelCheckpoint(
          str(tmp_path / "ckpt")),
      "ReduceLROnPlateau": tf_keras.callbacks.ReduceLROnPlateau,
      "LearningRateScheduler": lambda: (
          tf_keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)),
      "EarlyStopping": lambda: tf_keras.callbacks.EarlyStopping(
          restore_best_weights=True),
  }
  reasons = {"BackupAndRestore": "checkpoints and resumes the run itself",
             "ModelCheckpoint": "use --keep_best",
             "ReduceLROnPlateau": "part of tfqa's exact resume",
             "LearningRateScheduler": "part of tfqa's exact resume",
             "EarlyStopping": r"\(restore_best_weights=True\): .*--keep_best"}
  run_config = config.RunConfig(model=config.ModelConfig(model="m"),
                                data=config.DataConfig(train_file="t.json"))
  with pytest.raises(ValueError, match=(
      rf"Invalid value for argument `callbacks`. Received: callbacks\[0\]="
      rf"{kind}.*{reasons[kind]}")):
    trainer.train_and_evaluate(run_config, str(tmp_path / "run"),
                                callbacks=[makers[kind]()])
  assert not os.path.exists(tmp_path / "run")
