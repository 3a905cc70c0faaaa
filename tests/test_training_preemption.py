"""Tests for tfqa.training.preemption: training called from Python stops on SIGINT/SIGTERM with the step saved, and resumes."""

import json
import shutil

import pytest

from conftest import run_python, tiny_export, tiny_train_flags, tiny_train_settings

# Both cases in one process (one TensorFlow start): each trains until its
# signal, then resumes in the same call.
_SCRIPT = """
import json, os, signal, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
from tfqa import api

from tfqa.training import trainer
settings, root = json.loads(sys.argv[1]), sys.argv[2]
# What the caller had: Python's own handler, or SIG_IGN where a shell
# started this process in the background.
caller_sigint = signal.getsignal(signal.SIGINT)


class Later(tf.keras.callbacks.Callback):
  # A user callback: sees every step end, the interrupted one included.

  def __init__(self):
    super().__init__()
    self.steps = []

  def on_train_batch_end(self, batch, logs=None):
    self.steps.append(int(self.model.optimizer.iterations.numpy()))


def send(signum, at_step, point):
  def hook(step):
    if step == at_step:
      os.kill(os.getpid(), signum)
  return trainer.TrainingHooks(**{point: hook})


out = {}
for name, (signum, step, point) in {
    "int": (signal.SIGINT, 3, "after_step"),
    "term": (signal.SIGTERM, 5, "before_eval")}.items():
  model_dir = os.path.join(root, name)
  run_config = api.run_config_for(model_dir, **settings)
  later = Later()
  try:
    trainer.train_and_evaluate(run_config, model_dir, verbose=0,
                                callbacks=[later],
                                hooks=send(signum, step, point))
  except KeyboardInterrupt as e:
    out[name] = [type(e).__name__, str(e), e.step, e.exit_code,
                 tf.train.latest_checkpoint(model_dir + "/checkpoints"),
                 os.path.exists(model_dir + "/eval/step-5/eval_results.json")]
  assert signal.getsignal(signal.SIGINT) == caller_sigint
  resumed = trainer.train_and_evaluate(run_config, model_dir, verbose=0)
  out[name] += [resumed.resumed_from, resumed.global_step,
                os.path.exists(model_dir + "/eval/step-5/eval_results.json"),
                later.steps]
print(json.dumps(out))
"""


# (signal, step): the caller gets a KeyboardInterrupt naming the saved step;
# calling again resumes there.
_EXPECTED = {
    # SIGINT after step 3.
    "int": ("SIGINT", 3, 130, [1, 2, 3]),
    # SIGTERM as the evaluation of step 5 starts: step 5 is saved without
    # its evaluation, which the resumed run does first. (User callbacks run
    # after tfqa's: the end of step 5, cut in its evaluation, reaches none.)
    "term": ("SIGTERM", 5, 143, [1, 2, 3, 4]),
}


@pytest.fixture(scope="module")
def stopped_and_resumed(tiny_files, tmp_path_factory):
  """The process that ran both cases: its stdout's result and stderr."""
  root = tmp_path_factory.mktemp("preemption")
  settings = tiny_train_settings(tiny_files, num_train_epochs=2,
                                 save_every_steps=1000, eval_every_steps=5)
  proc = run_python(["-c", _SCRIPT, json.dumps(settings), str(root)])
  return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr, root


@pytest.mark.parametrize("case", sorted(_EXPECTED))
def test_training_from_python_stops_on_a_signal_and_resumes(
    case, stopped_and_resumed):
  out, stderr, root = stopped_and_resumed
  name, step, code, user_steps = _EXPECTED[case]
  checkpoint = str(root / case / "checkpoints" / f"ckpt-{step}")
  assert out[case] == [
      "TrainingInterrupted",
      f"Interrupted by {name} at step {step} of 8; saved ckpt-{step}; run "
      f"the same command to resume.", step, code, checkpoint, False,
      checkpoint, 8, True,
      # User callbacks see the step ends of the interrupted call.
      user_steps]
  assert f"Received {name}: stopping after the current step" in stderr


def test_cli_exits_143_with_one_line_on_sigterm(tiny_files, tmp_path):
  model_dir = tmp_path / "run"
  proc = run_python(
      ["tools/chaos.py", "train", f"--model_dir={model_dir}",
       *tiny_train_flags(tiny_files, num_train_epochs=2,
                         save_every_steps=1000,
                         gradient_accumulation_steps=2)],
      expect_fail=True,
      env={"TFQA_CHAOS": json.dumps({"kill": "micro", "n": 2, "index": 0,
                                     "signal": "SIGTERM"})})
  assert proc.returncode == 143
  lines = [line for line in proc.stderr.splitlines() if "Interrupted" in line]
  assert lines == ["tfqa_train: Interrupted by SIGTERM at step 2 of 8; saved "
                   "ckpt-2; run the same command to resume."]
  assert "Traceback" not in proc.stderr
  assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()
                if p.name.startswith("ckpt-2.index")) == ["ckpt-2.index"]


def _listing(root):
  return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_export_interrupted_publishes_nothing_and_says_so(tmp_path_factory,
                                                         tiny_files,
                                                         tmp_path):
  model_dir, exported = tiny_export(tmp_path_factory, tiny_files)
  export_dir = tmp_path / "export"
  shutil.copytree(exported, export_dir)
  before = _listing(export_dir)
  manifest = (export_dir / "manifest.json").read_text()
  args = ["tools/chaos.py", "export", f"--model_dir={model_dir}",
          f"--export_dir={export_dir}", "--noverify"]
  plan = {"kill": "export", "point": "after_pretrained", "signal": "SIGINT"}
  proc = run_python(args, expect_fail=True,
                    env={"TFQA_CHAOS": json.dumps(plan)})
  assert proc.returncode == 130
  assert "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == (
      f"tfqa_export: Interrupted by SIGINT before publishing: nothing was "
      f"published and the staging files are removed; an earlier export in "
      f"--export_dir={export_dir} is unchanged. Run the same command to "
      f"export.")
  assert _listing(export_dir) == before
  assert (export_dir / "manifest.json").read_text() == manifest
  # A signal while publishing waits for the whole export to be in place.
  plan = {"kill": "export", "point": "after_publish", "signal": "SIGTERM"}
  proc = run_python(args, env={"TFQA_CHAOS": json.dumps(plan)})
  assert json.loads((export_dir / "manifest.json").read_text())[
      "version"] == 2
  assert not [p for p in _listing(export_dir) if "/.tmp" in f"/{p}"]
