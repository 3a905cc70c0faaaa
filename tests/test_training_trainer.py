"""Tests for tfqa.training.trainer and tfqa_train: exact resume after SIGKILL, outputs, config guards."""

import json
import os
import re
import signal

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa.data import squad
from tfqa.evaluation import metrics
from tfqa.training import trainer

from conftest import assert_same_checkpoint, checkpoint_tensors
from conftest import run_python, tiny_train_flags, tiny_train_settings

pytestmark = pytest.mark.slow

# 14 windows, batch 4: 4 steps per epoch, 12 steps in 3 epochs; periodic saves
# at 5 and 10, epoch-end saves at 4, 8 and 12.
STEPS = 12


def _run(module, args, *, expect_kill=False, expect_fail=False):
  return run_python(["-m", module, *args], expect_fail=expect_fail,
                    exit_status=-signal.SIGKILL if expect_kill else 0)


def _train(files, model_dir, **overrides):
  return _run("tfqa.cli.train",
              [f"--model_dir={model_dir}",
               *tiny_train_flags(files, save_every_steps=5, **overrides)])


@pytest.fixture(scope="module")
def uninterrupted(tiny_files, tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("uninterrupted"))
  _train(tiny_files, model_dir)
  return model_dir


# A kill right after a checkpoint: the next test (killed at step 6, saving
# every 3 steps).
@pytest.mark.parametrize("kill", [
    "--kill_at_step=7",  # between checkpoints (last one: step 5)
    "--kill_in_save_at_step=8",  # checkpoint files written, state not updated
])
def test_sigkill_and_resume_is_bit_identical(tiny_files, uninterrupted,
                                             tmp_path, kill):
  model_dir = str(tmp_path / "run")
  _run("tests.helpers.killable_train",
       [kill, f"--model_dir={model_dir}",
        *tiny_train_flags(tiny_files, save_every_steps=5)], expect_kill=True)
  killed_at = int(kill.split("=")[1])
  # The log is durable up to the last checkpoint (it is flushed before each
  # save); whatever came after is re-run and re-logged.
  steps_before = [e["step"] for e in trainer.read_train_log(model_dir)]
  assert steps_before == list(range(1, len(steps_before) + 1))
  assert 4 <= len(steps_before) <= killed_at
  # The same command resumes; here with no flags but --model_dir.
  proc = _run("tfqa.cli.train", [f"--model_dir={model_dir}"])
  assert "Restored" in proc.stderr

  assert_same_checkpoint(model_dir, uninterrupted, STEPS)
  expected_log = trainer.read_train_log(uninterrupted)
  actual_log = trainer.read_train_log(model_dir)
  assert [e["step"] for e in actual_log] == list(range(1, STEPS + 1))
  assert actual_log == expected_log


def test_resume_inside_an_epoch_with_max_steps_inside_the_next(tiny_files,
                                                              tmp_path):
  # 4 steps per epoch, max_steps=10: killed right after the save of step 6,
  # resumed there, the 4 steps left span epochs 1 and 2 (one fit, two Keras
  # epochs of 2 steps each).
  flags = tiny_train_flags(tiny_files, save_every_steps=3, max_steps=10)
  full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
  _run("tfqa.cli.train", [f"--model_dir={full}", *flags])
  _run("tests.helpers.killable_train",
       ["--kill_at_step=6", f"--model_dir={killed}", *flags],
       expect_kill=True)
  _run("tfqa.cli.train", [f"--model_dir={killed}"])
  assert_same_checkpoint(killed, full, 10)
  assert trainer.read_train_log(killed) == trainer.read_train_log(full)


def test_end_to_end_run_writes_every_output(uninterrupted):
  names = set(os.listdir(uninterrupted))
  assert {"run_config.json", "train_log.jsonl", "checkpoints", "logs",
          "tokenizer", "bert_config.json", "eval"} <= names
  assert sorted(os.listdir(os.path.join(uninterrupted, "eval"))) == [
      "eval_results.json", "nbest_predictions.json", "null_odds.json",
      "predictions.json"]
  results = json.load(open(os.path.join(uninterrupted, "eval",
                                        "eval_results.json")))
  assert results["total"] == 11 and results["global_step"] == STEPS
  assert {"exact", "f1", "HasAns_exact", "NoAns_exact", "best_f1"} <= set(
      results)
  predictions = json.load(open(os.path.join(uninterrupted, "eval",
                                            "predictions.json")))
  assert len(predictions) == 11
  checkpoints = sorted(os.listdir(os.path.join(uninterrupted, "checkpoints")))
  # keep_checkpoints=3 (default): the newest three of 4, 5, 8, 10, 12.
  assert [c for c in checkpoints if c.endswith(".index")] == [
      "ckpt-10.index", "ckpt-12.index", "ckpt-8.index"]
  saved = json.load(open(os.path.join(uninterrupted, "run_config.json")))
  assert saved["train"]["seed"] == 7
  assert set(saved["versions"]) == {"tfqa", "tensorflow", "transformers",
                                    "python"}
  events = os.listdir(os.path.join(uninterrupted, "logs", "train"))
  assert any(name.startswith("events.out.tfevents") for name in events)


def test_learning_rate_log_follows_warmup_and_decay(uninterrupted):
  log = trainer.read_train_log(uninterrupted)
  # warmup_ratio 0.1 of 12 steps -> round(1.2) = 1 warmup step; the logged
  # LR is the one for the next step: lr(s) = 3e-3 * (12 - s) / 11.
  for entry in log:
    assert entry["learning_rate"] == pytest.approx(
        3e-3 * (12 - entry["step"]) / 11, rel=1e-5)


def test_eval_cli_scores_a_checkpoint(uninterrupted, tiny_files, tmp_path):
  proc = _run("tfqa.cli.evaluate",
              [f"--model_dir={uninterrupted}",
               f"--checkpoint={uninterrupted}/checkpoints/ckpt-8",
               f"--output_dir={tmp_path}/out"])
  result = json.loads(proc.stdout)
  assert result["output_dir"] == f"{tmp_path}/out"
  written = json.load(open(tmp_path / "out" / "eval_results.json"))
  assert written["checkpoint"].endswith("ckpt-8")
  assert written["exact"] == result["metrics"]["exact"]


def test_contradicting_flags_are_refused(uninterrupted, tiny_files):
  proc = _run("tfqa.cli.train",
              [f"--model_dir={uninterrupted}", "--learning_rate=0.5",
               "--seed=8"], expect_fail=True)
  assert "--learning_rate: this run 0.5, saved 0.003" in proc.stderr
  assert "--seed: this run 8, saved 7" in proc.stderr
  assert "use a new --model_dir" in proc.stderr


def test_extending_a_finished_run_trains_only_the_new_epoch(
    uninterrupted, tmp_path):
  import shutil
  model_dir = str(tmp_path / "extended")
  shutil.copytree(uninterrupted, model_dir)
  _run("tfqa.cli.train", [f"--model_dir={model_dir}",
                          "--num_train_epochs=4"])
  log = trainer.read_train_log(model_dir)
  assert [e["step"] for e in log] == list(range(1, 17))
  assert json.load(open(os.path.join(model_dir, "run_config.json")))[
      "train"]["num_train_epochs"] == 4


def test_new_model_dir_without_model_flags_is_a_usage_error(tmp_path):
  proc = _run("tfqa.cli.train", [f"--model_dir={tmp_path}/new"],
              expect_fail=True)
  assert "holds no earlier run to resume: pass --model" in proc.stderr


def test_help_is_grouped():
  proc = _run("tfqa.cli.train", ["--help"])
  groups = [line for line in proc.stdout.splitlines()
            if line and not line.startswith(" ") and line.endswith(":")]
  assert groups == ["Run:", "Data:", "Model:", "Windows and answers:",
                    "Optimisation:", "Checkpoints:",
                    "Longer runs:", "Runtime:",
                    "Output:"]
  longer = proc.stdout.split("Longer runs:\n")[1]
  longer = longer.split("\nRuntime:")[0]
  assert [line.split()[0] for line in longer.splitlines()
          if line.startswith("  --")] == [
              "--init_checkpoint", "--gradient_accumulation_steps",
              "--eval_every_steps", "--keep_best"]
  assert "--keep_best (default: 'none')" in longer
  assert "--save_every_steps (default: 500)" in proc.stdout
  # --span_scoring's help names the values it takes, and only those.
  span_help = proc.stdout.split("--span_scoring")[1].split("\n  --")[0]
  assert "logits:" in span_help and "pipeline:" in span_help
  assert "none" not in span_help and "softmax (" not in span_help
  assert "--verbosity=0 (info) or 1 (debug)" in proc.stdout


_CALLBACKS_SCRIPT = """
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the project's Keras setup
import tensorflow as tf
import tf_keras
from tfqa import api

from tfqa.training import trainer
assert tf.keras.callbacks.Callback is tf_keras.callbacks.Callback
settings, root = json.loads(sys.argv[1]), sys.argv[2]
run_config = api.run_config_for(root, **settings)


class Record(tf.keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.events = []

  def on_train_begin(self, logs=None):
    self.events.append("begin")

  def on_epoch_begin(self, epoch, logs=None):
    self.events.append(f"epoch {epoch}")

  def on_train_batch_end(self, batch, logs=None):
    assert logs["loss"] > 0
    self.events.append(int(self.model.optimizer.iterations.numpy()))


class StopAt(tf.keras.callbacks.Callback):

  def on_train_batch_end(self, batch, logs=None):
    if self.model.optimizer.iterations.numpy() == 3:
      self.model.stop_training = True


record = Record()
full = trainer.train_and_evaluate(run_config, root + "/full", verbose=0,
                                   callbacks=[record])
stopped = trainer.train_and_evaluate(run_config, root + "/stop", verbose=0,
                                      callbacks=[StopAt()])
resumed = trainer.train_and_evaluate(run_config, root + "/stop", verbose=0)
print(json.dumps({
    "events": record.events, "full": full.global_step,
    "stopped": [stopped.global_step, os.path.basename(stopped.checkpoint),
                sorted(stopped.metrics)[:2]],
    "resumed": [os.path.basename(resumed.resumed_from), resumed.steps_run,
                resumed.global_step]}))
"""


def test_user_keras_callbacks_run_and_may_stop_training(tiny_files, tmp_path):
  settings = tiny_train_settings(tiny_files, num_train_epochs=2,
                                 save_every_steps=500)
  proc = run_python(["-c", _CALLBACKS_SCRIPT, json.dumps(settings),
                     str(tmp_path)])
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  # One fit over the run (4 steps per epoch), absolute epochs and steps.
  assert out["events"] == ["begin", "epoch 0", 1, 2, 3, 4,
                           "epoch 1", 5, 6, 7, 8]
  assert out["full"] == 8
  # Stopped at step 3 with a checkpoint there, then evaluated; the same
  # call without the callback resumes from it and finishes the run.
  assert out["stopped"] == [3, "ckpt-3", ["HasAns_exact", "HasAns_f1"]]
  assert out["resumed"] == ["ckpt-3", 5, 8]


def test_bad_callbacks_and_arguments_are_refused_before_any_work(tmp_path):
  import keras  # Keras 3: what tf.keras is without TF_USE_LEGACY_KERAS=1.
  import tf_keras
  run_config = config.RunConfig(model=config.ModelConfig(model="m"),
                                data=config.DataConfig(train_file="t.json"))
  for bad in (object(), keras.callbacks.Callback()):
    with pytest.raises(ValueError, match=(
        r"Invalid value for argument `callbacks`. Received: callbacks\[1\]="
        r".*Expected tf_keras.callbacks.Callback instances.*"
        r"TF_USE_LEGACY_KERAS=1")):
      trainer.train_and_evaluate(
          run_config, str(tmp_path / "run"),
          callbacks=[tf_keras.callbacks.Callback(), bad])
  for kwargs, match in (({"verbose": "loud"}, r"verbose='loud'. Expected "
                                              r"'auto', 0, 1 or 2"),
                        ({"progress_every_steps": 0},
                         r"progress_every_steps=0. Expected a positive"),
                        ({"hooks": {"after_step": print}},
                         r"Invalid value for argument `hooks`. Received: "
                         r"hooks=\{'after_step'.*Expected a "
                         r"training.TrainingHooks")):
    with pytest.raises(ValueError, match=match):
      trainer.train_and_evaluate(run_config, str(tmp_path / "run"), **kwargs)
  assert not os.path.exists(tmp_path / "run")


def test_mirrored_bf16_xla_run_trains_and_checkpoints(tiny_files, tmp_path):
  model_dir = str(tmp_path / "runtime")
  _run("tfqa.cli.train",
       [f"--model_dir={model_dir}",
        *tiny_train_flags(tiny_files, max_steps=4, save_every_steps=2,
                          distribution_strategy="mirrored",
                          mixed_precision="mixed_bfloat16", jit_compile=True,
                          eval_file=None)])
  log = trainer.read_train_log(model_dir)
  assert [e["step"] for e in log] == [1, 2, 3, 4]
  assert all(np.isfinite(e["loss"]) for e in log)
  assert os.path.exists(os.path.join(model_dir, "checkpoints",
                                     "ckpt-4.index"))


def test_float16_run_checkpoints_its_loss_scale(tiny_files, tmp_path):
  model_dir = str(tmp_path / "fp16")
  _run("tfqa.cli.train",
       [f"--model_dir={model_dir}",
        *tiny_train_flags(tiny_files, max_steps=2, save_every_steps=2,
                          mixed_precision="mixed_float16", eval_file=None)])
  names = {name for name, _ in tf.train.list_variables(
      os.path.join(model_dir, "checkpoints", "ckpt-2"))}
  assert {"optimizer/loss_scale/current_loss_scale/.ATTRIBUTES/"
          "VARIABLE_VALUE",
          "optimizer/loss_scale/good_steps/.ATTRIBUTES/VARIABLE_VALUE"} <= names
  # Resuming restores the loss scale along with everything else.
  proc = _run("tfqa.cli.train", [f"--model_dir={model_dir}",
                                 "--max_steps=4"])
  assert "Restored" in proc.stderr
  assert [e["step"] for e in trainer.read_train_log(model_dir)] == [1, 2, 3,
                                                                      4]


def test_unknown_flag_is_a_one_line_error_not_a_traceback(tmp_path):
  proc = _run("tfqa.cli.train", [f"--model_dir={tmp_path}", "--modle=x"],
              expect_fail=True)
  assert "tfqa_train: error: Unknown command line flag 'modle'" in proc.stderr
  assert proc.stderr.strip().splitlines() == [
      "tfqa_train: error: Unknown command line flag 'modle'. Did you mean: "
      "model, model_dir ? (`tfqa_train --help` lists the flags)"]
  assert "Traceback" not in proc.stderr


def _no_file_writes():
  import resource  # pylint: disable=import-outside-toplevel
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  # Python and TF probe temp dirs with a few bytes; run_config.json is more.
  resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))


def test_unwritable_model_dir_is_a_one_line_error(tiny_files, tmp_path):
  model_dir = tmp_path / "run"
  proc = run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
                     *tiny_train_flags(tiny_files)], exit_status=1,
                    preexec_fn=_no_file_writes)
  assert "Traceback" not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert re.fullmatch(
      rf"tfqa_train: error: cannot write in --model_dir={model_dir}: "
      rf"\[Errno 27\] File too large.*Files written before are untouched; "
      rf"free disk space or make the directory writable, then re-run the "
      rf"same command to resume\.", last), last


# --- Longer runs: evaluation during training, best checkpoint, warm start,
# gradient accumulation.

_EVAL_FLAGS = {"eval_every_steps": 4, "keep_best": "f1",
               "keep_checkpoints": 1}


def _tensorboard_scalars(directory):
  """{tag: [(step, value), ...]} of the TensorBoard event files there."""
  from tensorflow.core.util import event_pb2
  scalars = {}
  for name in sorted(os.listdir(directory)):
    for record in tf.data.TFRecordDataset(os.path.join(directory, name)):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append(
            (event.step, float(tf.make_ndarray(value.tensor))))
  return scalars


@pytest.fixture(scope="module")
def evaluated(tiny_files, tmp_path_factory):
  """The uninterrupted run, evaluated every 4 steps, keeping the best."""
  model_dir = str(tmp_path_factory.mktemp("evaluated"))
  proc = _train(tiny_files, model_dir, **_EVAL_FLAGS)
  return model_dir, proc.stderr


def _eval_results(model_dir, subdir):
  return json.load(open(os.path.join(model_dir, "eval", subdir,
                                     "eval_results.json")))


def test_evaluation_during_training_logs_writes_and_changes_nothing(
    evaluated, uninterrupted):
  model_dir, stderr = evaluated
  # Evaluations at 4 and 8 during training, 12 at the end: one line each.
  logged = re.findall(r"Eval at step (\d+): (.*)", stderr)
  assert [int(step) for step, _ in logged] == [4, 8, 12]
  for step in (4, 8):
    results = _eval_results(model_dir, f"step-{step}")
    assert results["global_step"] == step
    out_dir = os.path.join(model_dir, "eval", f"step-{step}")
    assert dict(logged)[str(step)] == (
        f"{metrics.headline(results)} ({out_dir})")
  assert sorted(os.listdir(os.path.join(model_dir, "eval", "step-4"))) == [
      "eval_results.json", "nbest_predictions.json", "null_odds.json",
      "predictions.json"]
  assert sorted(n for n in os.listdir(os.path.join(model_dir, "eval"))
                if n.startswith("step-")) == ["step-4", "step-8"]
  assert _eval_results(model_dir, "")["global_step"] == STEPS
  scalars = _tensorboard_scalars(os.path.join(model_dir, "logs", "eval"))
  for tag in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
              "NoAns_f1", "best_exact", "best_exact_thresh", "best_f1",
              "best_f1_thresh"):
    assert [step for step, _ in scalars[tag]] == [4, 8, 12], tag
  assert [v for _, v in scalars["f1"]] == pytest.approx(
      [_eval_results(model_dir, d)["f1"] for d in ("step-4", "step-8", "")])
  # Evaluating reads the weights only: training is bit-identical to the
  # run without evaluations (whose checkpoints came at other steps).
  assert_same_checkpoint(model_dir, uninterrupted, STEPS)
  assert trainer.read_train_log(model_dir) == trainer.read_train_log(
      uninterrupted)


def test_best_checkpoint_survives_rotation_and_is_recorded(evaluated):
  model_dir, _ = evaluated
  f1 = {step: _eval_results(model_dir, d)["f1"]
        for step, d in ((4, "step-4"), (8, "step-8"), (12, ""))}
  best_step = max(f1, key=lambda s: (f1[s], -s))  # ties: the earlier
  record = json.load(open(os.path.join(model_dir, "best_checkpoint.json")))
  assert record["metric"] == "f1" and record["step"] == best_step
  assert record["value"] == f1[best_step]
  assert record["checkpoint"] == f"best/ckpt-{best_step}"
  assert record["metrics"]["exact"] == (_eval_results(
      model_dir, f"step-{best_step}" if best_step < STEPS else "")["exact"])
  # --keep_checkpoints=1 rotated every other checkpoint away; best/ has
  # exactly the best one.
  assert [n for n in os.listdir(os.path.join(model_dir, "checkpoints"))
          if n.endswith(".index")] == ["ckpt-12.index"]
  assert sorted(os.listdir(os.path.join(model_dir, "best"))) == [
      f"ckpt-{best_step}.data-00000-of-00001", f"ckpt-{best_step}.index"]
  names = {n for n, _ in tf.train.list_variables(
      os.path.join(model_dir, "best", f"ckpt-{best_step}"))}
  assert "model_signature/.ATTRIBUTES/VARIABLE_VALUE" in names
  assert not any(n.startswith("optimizer/") for n in names)


def test_export_of_the_best_checkpoint_says_so(evaluated, tmp_path):
  model_dir, _ = evaluated
  record = json.load(open(os.path.join(model_dir, "best_checkpoint.json")))
  _run("tfqa.cli.export", [f"--model_dir={model_dir}",
                           f"--export_dir={tmp_path}/export",
                           "--checkpoint=best", "--noverify"])
  manifest = json.load(open(tmp_path / "export" / "manifest.json"))
  assert manifest["checkpoint"] == os.path.join(model_dir, record[
      "checkpoint"])
  card = (tmp_path / "export" / "pretrained" / "README.md").read_text()
  assert (f"This is the run's best checkpoint by f1 (--keep_best), from "
          f"step {record['step']} (exact ") in card
  # The Evaluation table is that step's, not the end of training's.
  step = record["step"]
  results = ("eval/eval_results.json" if step == STEPS else
             f"eval/step-{step}/eval_results.json")
  assert f"(`{results}` of the run)" in card
  assert f"| f1 | {record['metrics']['f1']:.4g} |" in card


def test_eval_and_predict_take_the_best_checkpoint(evaluated, tiny_files,
                                                  tmp_path):
  model_dir, _ = evaluated
  record = json.load(open(os.path.join(model_dir, "best_checkpoint.json")))
  best = os.path.join(model_dir, record["checkpoint"])
  proc = _run("tfqa.cli.evaluate", [f"--model_dir={model_dir}",
                                    "--checkpoint=best",
                                    f"--output_dir={tmp_path}/eval"])
  evaluated_best = json.loads(proc.stdout)["metrics"]
  # The run's own evaluation of that step, on the same file.
  assert {k: evaluated_best[k] for k in ("exact", "f1")} == {
      k: record["metrics"][k] for k in ("exact", "f1")}
  question = ["--question=what is the capital of france ?",
              "--context=paris is the capital city of france ."]
  by_name, by_prefix = (
      _run("tfqa.cli.predict", [f"--model={model_dir}",
                                f"--checkpoint={checkpoint}", *question])
      .stdout for checkpoint in ("best", best))
  assert by_name == by_prefix


def test_export_best_of_a_run_without_one_is_refused(uninterrupted,
                                                     tmp_path):
  proc = _run("tfqa.cli.export", [f"--model_dir={uninterrupted}",
                                  f"--export_dir={tmp_path}/export",
                                  "--checkpoint=best"], expect_fail=True)
  assert proc.stderr.strip().splitlines()[-1] == (
      f"tfqa_export: error: --checkpoint=best: {uninterrupted} has no best "
      f"checkpoint (no best_checkpoint.json); expected a run trained with "
      f"--keep_best=f1 or --keep_best=exact and evaluated at least once. "
      f"Resume it with --keep_best=f1 --eval_every_steps=N, or pass a "
      f"checkpoint prefix.")
  assert not os.path.exists(tmp_path / "export")


def test_sigkill_during_an_evaluation_in_training_resumes_bit_identical(
    tiny_files, evaluated, tmp_path):
  reference, _ = evaluated
  model_dir = str(tmp_path / "run")
  # Killed after the first output file of the evaluation at step 8, before
  # step 8's checkpoint: the resume redoes steps 6-8 and that evaluation.
  _run("tests.helpers.killable_train",
       ["--kill_in_eval_at_step=8", f"--model_dir={model_dir}",
        *tiny_train_flags(tiny_files, save_every_steps=5, **_EVAL_FLAGS)],
       expect_kill=True)
  assert os.listdir(os.path.join(model_dir, "eval", "step-8")) == [
      "predictions.json"]
  proc = _run("tfqa.cli.train", [f"--model_dir={model_dir}"])
  assert re.search(r"Restored \S+ckpt-5 ", proc.stderr)
  assert re.findall(r"Eval at step (\d+)", proc.stderr) == ["8", "12"]
  assert_same_checkpoint(model_dir, reference, STEPS)
  for subdir in ("step-4", "step-8", ""):
    for name in ("predictions.json", "nbest_predictions.json",
                 "null_odds.json"):
      path = os.path.join("eval", subdir, name)
      assert (open(os.path.join(model_dir, path)).read() ==
              open(os.path.join(reference, path)).read()), path
  assert (json.load(open(os.path.join(model_dir, "best_checkpoint.json"))) ==
          json.load(open(os.path.join(reference, "best_checkpoint.json"))))


def _model_tensors(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith("model/") and "_random_generator" not in name}


def test_warm_start_loads_weights_but_not_optimizer_or_step(
    tiny_files, uninterrupted, tmp_path):
  model_dir = str(tmp_path / "warm")
  # LR 0: the one step leaves the weights as loaded.
  proc = _run("tfqa.cli.train",
              [f"--model_dir={model_dir}", f"--init_checkpoint={uninterrupted}",
               *tiny_train_flags(tiny_files, max_steps=1, save_every_steps=1,
                                 learning_rate=0.0, eval_file=None)])
  source = os.path.join(uninterrupted, "checkpoints", f"ckpt-{STEPS}")
  assert (f"Warm start: model weights from {source}; the optimizer, step (0) "
          f"and LR schedule start fresh") in proc.stderr
  assert "Restored" not in proc.stderr
  # One model is reported: the run's (the one holding the loaded weights is not).
  assert proc.stderr.count("Built model from ") == 1
  assert json.loads(proc.stdout[proc.stdout.index("{"):])[
      "initialized_from"] == source
  assert [e["step"] for e in trainer.read_train_log(model_dir)] == [1]
  expected = _model_tensors(source)
  actual = _model_tensors(os.path.join(model_dir, "checkpoints", "ckpt-1"))
  assert sorted(actual) == sorted(expected) and expected
  assert [n for n in expected
          if not np.array_equal(expected[n], actual[n])] == []
  reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints",
                                                 "ckpt-1"))
  source_reader = tf.train.load_checkpoint(source)
  assert reader.get_tensor(
      "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 1
  # Adam's moments are fresh: one step's, not the source run's twelve.
  slots = [n for n in reader.get_variable_to_shape_map()
           if n.startswith("optimizer/_variables/")]
  assert len(slots) > 40
  assert [n for n in slots if np.array_equal(
      reader.get_tensor(n), source_reader.get_tensor(n))] == []
  saved = json.load(open(os.path.join(model_dir, "run_config.json")))
  assert saved["model"]["init_checkpoint"] == uninterrupted
  # Re-running resumes the new run; the init checkpoint is not read again.
  proc = _run("tfqa.cli.train", [f"--model_dir={model_dir}", "--max_steps=2"])
  assert "Restored" in proc.stderr and "Warm start:" not in proc.stderr
  assert "served only the run's start" in proc.stderr


def test_warm_start_refuses_another_architecture(tiny_files, uninterrupted,
                                                 tmp_path):
  from conftest import tiny_bert_config
  config = tmp_path / "bert16.json"
  config.write_text(json.dumps(tiny_bert_config(hidden_size=16,
                                                intermediate_size=32)))
  prefix = os.path.join(uninterrupted, "checkpoints", "ckpt-8")
  proc = _run("tfqa.cli.train",
              [f"--model_dir={tmp_path}/warm", f"--init_checkpoint={prefix}",
               *tiny_train_flags(tiny_files, bert_config_file=str(config),
                                 max_steps=1, eval_file=None)],
              expect_fail=True)
  assert "Traceback" not in proc.stderr
  assert (f"tfqa_train: error: --init_checkpoint={prefix}: Checkpoint "
          f"{prefix} was written for a different architecture; ") in proc.stderr
  assert ("bert/embeddings/LayerNorm/beta:0: checkpoint (32,), model (16,)"
          in proc.stderr)
  assert "pass the --model or --bert_config_file that run used" in proc.stderr
  assert not os.path.exists(tmp_path / "warm" / "checkpoints")


@pytest.fixture(scope="module")
def no_dropout(tiny_files, tmp_path_factory):
  from conftest import tiny_bert_config
  root = tmp_path_factory.mktemp("nodropout")
  (root / "bert.json").write_text(json.dumps(tiny_bert_config(
      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
  return dict(tiny_files, bert_config=str(root / "bert.json"))


def test_accumulated_micro_batches_equal_one_large_batch(no_dropout,
                                                         tmp_path):
  # Through tfqa_train, K=2; test_training_accumulation.py compares K=4 in one
  # process.
  runs = {}
  for k in (1, 2):
    model_dir = str(tmp_path / f"k{k}")
    proc = _run("tfqa.cli.train",
                [f"--model_dir={model_dir}",
                 *tiny_train_flags(no_dropout, max_steps=4,
                                   save_every_steps=4, eval_file=None,
                                   clip_norm=1.0,
                                   gradient_accumulation_steps=k)])
    if k > 1:
      assert (f"global batch 4 = {k} micro-batches x {4 // k} windows x 1 "
              f"replica(s)") in proc.stderr
    runs[k] = model_dir
  one = checkpoint_tensors(runs[1], 4)
  for k in (2,):
    accumulated = checkpoint_tensors(runs[k], 4)
    assert sorted(accumulated) == sorted(one)
    floats = [n for n, v in one.items() if np.asarray(v).dtype.kind == "f"]
    assert len(floats) > 60  # weights and Adam moments
    for name in floats:
      np.testing.assert_allclose(accumulated[name], one[name], rtol=1e-4,
                                 atol=1e-5, err_msg=name)
    # One optimizer step per global batch, whatever K.
    iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert accumulated[iterations] == one[iterations] == 4
    log, one_log = (trainer.read_train_log(runs[k]),
                    trainer.read_train_log(runs[1]))
    np.testing.assert_allclose([e["loss"] for e in log],
                               [e["loss"] for e in one_log], rtol=1e-5)
    np.testing.assert_allclose([e["gradient_norm"] for e in log],
                               [e["gradient_norm"] for e in one_log],
                               rtol=1e-5)


def test_sigkill_between_micro_batches_resumes_bit_identical(tiny_files,
                                                             tmp_path):
  flags = tiny_train_flags(tiny_files, save_every_steps=5, eval_file=None,
                           gradient_accumulation_steps=2)
  reference = str(tmp_path / "reference")
  _run("tfqa.cli.train", [f"--model_dir={reference}", *flags])
  model_dir = str(tmp_path / "run")
  # Step 7's first micro-batch has its gradients; the second has not run.
  _run("tests.helpers.killable_train",
       ["--kill_at_micro_batch=7:0", f"--model_dir={model_dir}", *flags],
       expect_kill=True)
  # The log is durable up to the last checkpoint (5); step 6 may be lost.
  steps_before = [e["step"] for e in trainer.read_train_log(model_dir)]
  assert steps_before in (list(range(1, 6)), list(range(1, 7)))
  proc = _run("tfqa.cli.train", [f"--model_dir={model_dir}"])
  assert re.search(r"Restored \S+ckpt-5 ", proc.stderr)
  assert_same_checkpoint(model_dir, reference, STEPS)
  assert trainer.read_train_log(model_dir) == trainer.read_train_log(
      reference)


def test_a_data_file_that_cannot_be_used_leaves_no_run_behind(tiny_files,
                                                             tmp_path):
  from tfqa import api
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"data": "oops"}))
  model_dir = tmp_path / "run"
  with pytest.raises(ValueError, match=(
      rf"^{re.escape(str(bad))}: data: expected a list of articles, got "
      rf"'oops'$")):
    api.train(model_dir=str(model_dir),
              **tiny_train_settings(tiny_files, train_file=str(bad)))
  assert not (model_dir / "run_config.json").exists()
