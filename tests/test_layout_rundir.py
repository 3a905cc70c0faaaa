"""Tests for tfqa.layout.rundir: run_config.json written once, read strictly, guarding resumes."""

import json
import os
import re
import signal
import socket
import sys
import time

import numpy as np
import pytest

from tfqa import config
from tfqa import errors
from tfqa.layout import rundir

from conftest import run_python, start_command, tiny_train_flags

RUN_CONFIG = config.RunConfig(
    model=config.ModelConfig(model="minilm-l6"),
    data=config.DataConfig(train_file="train.json", eval_file="dev.json"))


def _with_train(**kwargs):
  return rundir.with_overrides(
      RUN_CONFIG, {f"train.{name}": value for name, value in kwargs.items()})


def _saved_json(model_dir):
  with open(rundir.run_config_path(model_dir), encoding="utf-8") as f:
    return json.load(f)


def _rewrite(model_dir, change):
  """Rewrites the saved run_config.json after `change(obj)` of its JSON object."""
  obj = _saved_json(model_dir)
  change(obj)
  with open(rundir.run_config_path(model_dir), "w", encoding="utf-8") as f:
    json.dump(obj, f)


def _mark_saved_file(model_dir):
  """Rewrites the saved versions so a later rewrite of the file shows."""
  _rewrite(model_dir, lambda obj: obj.update(versions={"marker": "untouched"}))


def test_run_config_path(tmp_path):
  assert rundir.run_config_path(str(tmp_path)) == str(
      tmp_path / "run_config.json")


def test_read_of_empty_dir_is_none(tmp_path):
  assert rundir.read_run_config(str(tmp_path)) is None


def test_write_then_read_round_trips(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  assert rundir.read_run_config(str(tmp_path)) == RUN_CONFIG


def test_write_records_versions(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  import tfqa  # pylint: disable=import-outside-toplevel

  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  obj = _saved_json(str(tmp_path))
  assert obj["versions"]["tfqa"] == tfqa.__version__
  assert obj["versions"]["tensorflow"] == tf.__version__
  assert obj["versions"]["transformers"] == transformers.__version__
  assert sorted(obj["versions"]) == ["python", "tensorflow", "tfqa",
                                     "transformers"]
  del obj["versions"]
  assert obj.pop("settings_sha256") == rundir.settings_digest(RUN_CONFIG)
  assert obj == RUN_CONFIG.to_dict()


def test_read_ignores_versions(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  _rewrite(str(tmp_path), lambda obj: obj.update(versions={
      "tfqa": "999", "tensorflow": "0.1", "extra": [1]}))
  assert rundir.read_run_config(str(tmp_path)) == RUN_CONFIG


# reconcile


def test_reconcile_new_dir_writes_the_config(tmp_path):
  model_dir = str(tmp_path / "run")  # the directory does not exist yet
  assert rundir.reconcile(model_dir, RUN_CONFIG) == RUN_CONFIG
  assert rundir.read_run_config(model_dir) == RUN_CONFIG


def test_reconcile_identical_config_returns_saved_without_rewriting(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  _mark_saved_file(str(tmp_path))
  assert rundir.reconcile(str(tmp_path), RUN_CONFIG) == RUN_CONFIG
  assert _saved_json(str(tmp_path))["versions"] == {"marker": "untouched"}


def test_record_run_config_writes_new_or_changed_settings_only(tmp_path):
  model_dir = str(tmp_path / "run")
  rundir.record_run_config(model_dir, RUN_CONFIG)
  assert rundir.read_run_config(model_dir) == RUN_CONFIG
  _mark_saved_file(model_dir)
  rundir.record_run_config(model_dir, RUN_CONFIG)
  assert _saved_json(model_dir)["versions"] == {"marker": "untouched"}
  extended = rundir.with_overrides(RUN_CONFIG, {"train.num_train_epochs": 5})
  rundir.record_run_config(model_dir, extended)
  assert rundir.read_run_config(model_dir) == extended
  assert _saved_json(model_dir)["versions"] == rundir.versions()


def test_reconcile_saves_safe_changes(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  _mark_saved_file(str(tmp_path))
  extended = rundir.with_overrides(RUN_CONFIG, {
      "train.num_train_epochs": 5, "data.eval_file": "other_dev.json",
      "decode.n_best_size": 7, "train.eval_every_steps": 100,
      "train.keep_best": "exact", "train.gradient_accumulation_steps": 2})
  assert rundir.reconcile(str(tmp_path), extended) == extended
  assert rundir.read_run_config(str(tmp_path)) == extended
  assert "marker" not in _saved_json(str(tmp_path))["versions"]


def test_safe_to_change_names_real_fields():
  fields = RUN_CONFIG.to_dict()
  for dotted in rundir.SAFE_TO_CHANGE:
    section, name = dotted.split(".")
    assert name in fields[section], dotted


def test_reconcile_refuses_unsafe_changes(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  changed = rundir.with_overrides(RUN_CONFIG, {
      "train.learning_rate": 1e-4, "train.seed": 7,
      "features.max_seq_length": 256,
      "train.num_train_epochs": 3})  # safe, so not named
  path = rundir.run_config_path(str(tmp_path))
  with pytest.raises(ValueError) as info:
    rundir.reconcile(str(tmp_path), changed)
  message = str(info.value)
  assert message.startswith(
      f"{path} belongs to a run with other settings; resuming would silently "
      f"change them:\n"
      f"  max_seq_length: this run 256, saved 384\n"
      f"  learning_rate: this run 0.0001, saved 5e-05\n"
      f"  seed: this run 7, saved 42\n"
      f"Re-run with only model_dir={tmp_path} to resume as saved, or use a "
      f"new model_dir. Settings that may change on resume: ")
  assert "num_train_epochs: this run" not in message
  allowed = message.rsplit("Settings that may change on resume: ", 1)[1]
  assert allowed == ", ".join(sorted(
      name.split(".")[1] for name in rundir.SAFE_TO_CHANGE)) + "."
  # The saved run is left as it was.
  assert rundir.read_run_config(str(tmp_path)) == RUN_CONFIG


@pytest.mark.parametrize("override, line", [
    ({"train.learning_rate": 1e-4},
     "--learning_rate: this run 0.0001, saved 5e-05"),
    ({"train.seed": 7}, "--seed: this run 7, saved 42"),
    ({"features.max_seq_length": 256},
     "--max_seq_length: this run 256, saved 384"),
    ({"model.vocab_file": "v.txt"},
     "--vocab_file: this run 'v.txt', saved None"),
    ({"data.train_file": "b.json"},
     "--train_file: this run 'b.json', saved 'train.json'"),
    # A warm start only matters at the start: another one would be a new run.
    ({"model.init_checkpoint": "runs/b"},
     "--init_checkpoint: this run 'runs/b', saved None"),
])
def test_reconcile_names_each_unsafe_setting_as_the_caller_does(
    tmp_path, override, line):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  with pytest.raises(errors.ArgumentNamingError) as caught:
    rundir.reconcile(str(tmp_path), rundir.with_overrides(RUN_CONFIG, override))
  name = line.split(":")[0].removeprefix("--")
  def expected(flag):
    return (rf"change them:\n  {re.escape(line.replace('--', flag, 1))}\n"
            rf"Re-run with only {flag}model_dir={re.escape(str(tmp_path))} to "
            rf"resume as saved, or use a new {flag}model_dir\.")
  assert re.search(expected(""), str(caught.value))
  # A tool names them by its flags (tfqa_train: every setting is one).
  worded = caught.value.worded({name: f"--{name}", "model_dir": "--model_dir"})
  assert re.search(expected("--"), worded)


def test_reconcile_refuses_invalid_json(tmp_path):
  (tmp_path / "run_config.json").write_text('{"model": {', encoding="utf-8")
  with pytest.raises(ValueError, match=(
      rf"^{re.escape(rundir.run_config_path(str(tmp_path)))}: the run config "
      rf"is not valid JSON: .* at line 1 column 12\.$")):
    rundir.reconcile(str(tmp_path), RUN_CONFIG)


def test_reconcile_refuses_invalid_utf8(tmp_path):
  (tmp_path / "run_config.json").write_bytes(b'{"model": "\xff"}')
  with pytest.raises(ValueError, match=(
      rf"^{re.escape(rundir.run_config_path(str(tmp_path)))}: the run config "
      rf"is not valid UTF-8 \(byte 11\)\.$")):
    rundir.reconcile(str(tmp_path), RUN_CONFIG)


@pytest.mark.parametrize("field, value, expected", [
    ("lr", 0.1, r"train: unknown field\(s\) \['lr'\]; expected some of \["),
    ("seed", "42", r"train\.seed: expected int, got '42'\.$")])
def test_read_and_reconcile_refuse_a_field_that_does_not_fit(
    tmp_path, field, value, expected):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  _rewrite(str(tmp_path), lambda obj: obj["train"].update({field: value}))
  pattern = rf"^{re.escape(rundir.run_config_path(str(tmp_path)))}: {expected}"
  with pytest.raises(ValueError, match=pattern):
    rundir.read_run_config(str(tmp_path))
  with pytest.raises(ValueError, match=pattern):
    rundir.reconcile(str(tmp_path), RUN_CONFIG)


# with_overrides


def test_with_overrides_replaces_only_named_fields():
  new = rundir.with_overrides(RUN_CONFIG, {
      "train.seed": 3, "train.learning_rate": 1e-3,
      "decode.version_2_with_negative": True})
  assert RUN_CONFIG.changed_fields(new) == [
      "decode.version_2_with_negative", "train.learning_rate", "train.seed"]
  assert (new.train.seed, new.train.learning_rate) == (3, 1e-3)
  assert RUN_CONFIG.train.seed == 42  # the original is untouched


def test_with_no_overrides_is_equal():
  assert rundir.with_overrides(RUN_CONFIG, {}) == RUN_CONFIG


@pytest.mark.parametrize("dotted", ["train.nope", "optimizer.seed", "seed",
                                    "train."])
def test_with_overrides_refuses_unknown_setting(dotted):
  with pytest.raises(ValueError, match=(
      rf"^Unknown setting {re.escape(repr(dotted))}\.$")):
    rundir.with_overrides(RUN_CONFIG, {dotted: 1})


def test_with_overrides_validates_new_values():
  with pytest.raises(ValueError, match=(
      r"Invalid value for argument `max_steps`\. Received: max_steps=-1\.")):
    rundir.with_overrides(RUN_CONFIG, {"train.max_steps": -1})


def test_saved_file_is_written_atomically(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  assert os.listdir(tmp_path) == ["run_config.json"]  # no temp file left


def test_a_start_without_progress_does_not_lock_the_settings(tmp_path):
  # A first start wrote run_config.json, then failed before any checkpoint
  # (say, on a wrong flag): the corrected command must not be refused.
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  fixed = rundir.with_overrides(RUN_CONFIG, {"train.learning_rate": 1e-3,
                                             "train.seed": 99})
  with pytest.raises(ValueError, match="resuming would silently change"):
    rundir.reconcile(str(tmp_path), fixed)
  assert rundir.reconcile(str(tmp_path), fixed, has_progress=False) == fixed
  assert rundir.read_run_config(str(tmp_path)) == fixed


def test_non_chief_reconcile_writes_nothing(tmp_path):
  assert rundir.reconcile(str(tmp_path), RUN_CONFIG, write=False) == RUN_CONFIG
  assert not os.path.exists(rundir.run_config_path(str(tmp_path)))


# Damage that still parses (the corruption campaign's bit flips).


def test_a_changed_setting_that_still_parses_is_refused(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  seed = RUN_CONFIG.train.seed
  _rewrite(str(tmp_path), lambda obj: obj["train"].update(seed=seed ^ 2))
  with pytest.raises(ValueError,
                     match=r"run_config.json: the run config is damaged: its "
                           r"settings do not match the SHA-256 recorded in it "
                           r"\(settings_sha256='[0-9a-f]{64}'\).*delete its "
                           r"'settings_sha256' field"):
    rundir.read_run_config(str(tmp_path))
  with pytest.raises(ValueError, match="the run config is damaged"):
    rundir.reconcile(str(tmp_path), RUN_CONFIG)


def test_a_hand_edit_without_the_digest_is_accepted(tmp_path):
  rundir.write_run_config(str(tmp_path), RUN_CONFIG)
  seed = RUN_CONFIG.train.seed + 1
  _rewrite(str(tmp_path), lambda obj: (obj["train"].update(seed=seed),
                                       obj.pop("settings_sha256")))
  assert rundir.read_run_config(str(tmp_path)).train.seed == seed


def test_deeply_nested_run_config_is_a_clear_error(tmp_path):
  (tmp_path / "run_config.json").write_text("[" * 100000 + "]" * 100000,
                                            encoding="utf-8")
  with pytest.raises(ValueError, match=r"run_config.json: the run config is "
                                       r"not valid: arrays/objects nested too "
                                       r"deeply"):
    rundir.read_run_config(str(tmp_path))


def test_checkpoints_on_disk_are_listed_oldest_first(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  checkpoints = tmp_path / "runs" / "a[1]" / "checkpoints"
  checkpoints.mkdir(parents=True)
  for name in ("ckpt-10.index", "ckpt-9.index", "ckpt-9.data-00000-of-00001",
               "ckpt-11.data-00000-of-00001", "checkpoint"):
    (checkpoints / name).write_text("")
  assert rundir.checkpoints_on_disk("runs/a[1]") == [
      "runs/a[1]/checkpoints/ckpt-9", "runs/a[1]/checkpoints/ckpt-10"]
  assert rundir.checkpoints_on_disk(str(tmp_path / "runs" / "a[1]")) == [
      str(checkpoints / "ckpt-9"), str(checkpoints / "ckpt-10")]
  assert rundir.checkpoints_on_disk("runs/none") == []


# One trainer per run directory: rundir.TrainerLock.

def _tree(directory):
  """Every file under `directory` with its size and mtime (what a write changes)."""
  return {os.path.relpath(os.path.join(root, name), directory):
          (os.stat(os.path.join(root, name)).st_size,
           os.stat(os.path.join(root, name)).st_mtime_ns)
          for root, _, files in os.walk(directory) for name in files}


_OWNER = re.escape(f"(host {socket.gethostname()}, pid {os.getpid()}, since ")


def test_a_second_lock_on_a_local_run_is_refused_naming_the_owner(tmp_path):
  with rundir.TrainerLock(str(tmp_path)):
    before = _tree(tmp_path)
    with pytest.raises(rundir.RunLockedError,
                       match=rf"^{re.escape(str(tmp_path))} is being trained "
                             rf"by another process {_OWNER}\d{{4}}-\d\d-\d\d "
                             rf"\d\d:\d\d:\d\d UTC\); a second trainer would "
                             rf".* wrote nothing\. .*another --model_dir\.$"):
      rundir.TrainerLock(str(tmp_path)).acquire()
    assert _tree(tmp_path) == before
  # Released: the next trainer takes it, and the owner record is gone.
  assert not os.path.exists(tmp_path / rundir.OWNER_FILE)
  with rundir.TrainerLock(str(tmp_path)):
    owner = json.loads((tmp_path / rundir.OWNER_FILE).read_text())
    assert (owner["host"], owner["pid"]) == (socket.gethostname(),
                                             os.getpid())


def test_a_local_lock_of_a_dead_process_does_not_block(tmp_path):
  # The OS lock dies with its process; the owner record it leaves is stale.
  (tmp_path / rundir.OWNER_FILE).write_text(json.dumps(
      {"host": socket.gethostname(), "pid": 999999999, "since": "then"}))
  (tmp_path / rundir.LOCK_FILE).write_text("")
  with rundir.TrainerLock(str(tmp_path)):
    pass


class _Clock:

  def __init__(self, now):
    self.now = now

  def __call__(self):
    return self.now


def _lease_dir(name):
  return f"ram://rundir-lock/{name}-{os.urandom(4).hex()}"


def _write_lease(model_dir, **owner):
  import tensorflow as tf
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(f"{model_dir}/{rundir.LEASE_FILE}", "w") as f:
    f.write(json.dumps({"since": "2026-12-06 09:00:00 UTC",
                        "lease_seconds": 120.0, "token": "other", **owner}))


def test_a_second_lease_on_a_url_is_refused_then_freed_on_release():
  model_dir = _lease_dir("live")
  with rundir.TrainerLock(model_dir):
    with pytest.raises(rundir.RunLockedError,
                       match=rf"^{re.escape(model_dir)} is being trained by "
                             rf"another process {_OWNER}"):
      rundir.TrainerLock(model_dir).acquire()
  with rundir.TrainerLock(model_dir):
    pass


def test_a_lease_from_another_host_blocks_until_it_expires():
  model_dir = _lease_dir("remote")
  _write_lease(model_dir, host="worker-7", pid=12, heartbeat=1000.0)
  with pytest.raises(rundir.RunLockedError,
                     match=r"another process \(host worker-7, pid 12, since "
                           r"2026-12-06 09:00:00 UTC\)"):
    rundir.TrainerLock(model_dir, clock=_Clock(1119.0)).acquire()
  with rundir.TrainerLock(model_dir, clock=_Clock(1121.0)):
    pass  # 121 s after its last heartbeat: expired


def test_a_lease_of_a_dead_process_on_this_host_is_free_at_once():
  model_dir = _lease_dir("dead")
  _write_lease(model_dir, host=socket.gethostname(), pid=999999999,
               heartbeat=1000.0)
  with rundir.TrainerLock(model_dir, clock=_Clock(1001.0)):
    pass


def test_a_held_lease_is_renewed_by_its_heartbeat():
  import time
  import tensorflow as tf
  model_dir = _lease_dir("beat")
  clock = _Clock(1000.0)
  path = f"{model_dir}/{rundir.LEASE_FILE}"
  with rundir.TrainerLock(model_dir, heartbeat_seconds=0.05, clock=clock):
    clock.now = 1500.0
    deadline = time.monotonic() + 30
    while json.loads(tf.io.gfile.GFile(path).read())["heartbeat"] != 1500.0:
      assert time.monotonic() < deadline, "the lease was never renewed"
      time.sleep(0.05)
  assert not tf.io.gfile.exists(path)


def _start_paused_train(files, model_dir, go):
  """tfqa_train that holds `model_dir` after step 2 until `go` exists."""
  process = start_command(
      [sys.executable, "-m", "tests.helpers.paused_train",
       "--pause_after_step=2", f"--resume_when={go}",
       f"--model_dir={model_dir}", *tiny_train_flags(files)])
  deadline = time.monotonic() + 600
  while not os.path.exists(f"{go}.paused"):
    assert process.poll() is None, process.communicate()[1][-3000:]
    assert time.monotonic() < deadline, "the first trainer never paused"
    time.sleep(0.2)
  return process


def _final_tensors(model_dir):
  import tensorflow as tf
  reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints",
                                                 "ckpt-12"))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


@pytest.mark.slow
def test_a_second_tfqa_train_on_a_live_run_is_refused_in_one_line(
    tiny_files, tmp_path):
  model_dir, go = tmp_path / "run", tmp_path / "go"
  first = _start_paused_train(tiny_files, model_dir, go)
  # The first one's TensorBoard writer flushes on its own timer: logs/ aside.
  before = {k: v for k, v in _tree(model_dir).items()
            if not k.startswith("logs")}
  second = run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}",
                       *tiny_train_flags(tiny_files)], expect_fail=True)
  assert second.returncode == 1
  assert re.fullmatch(
      rf"tfqa_train: error: {re.escape(str(model_dir))} is being trained by "
      rf"another process \(host {re.escape(socket.gethostname())}, pid "
      rf"{first.pid}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); a second "
      rf"trainer would overwrite its checkpoints, so this one did not start "
      rf"and wrote nothing\. Wait for it to end \(or stop it\), or use "
      rf"another --model_dir\.\n", second.stderr), second.stderr
  assert second.stdout == ""
  assert {k: v for k, v in _tree(model_dir).items()
          if not k.startswith("logs")} == before
  go.touch()
  _, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr[-3000:]
  lone = tmp_path / "lone"
  run_python(["-m", "tfqa.cli.train", f"--model_dir={lone}",
              *tiny_train_flags(tiny_files)])
  expected, actual = _final_tensors(lone), _final_tensors(model_dir)
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)


@pytest.mark.slow
def test_a_lock_left_by_a_sigkilled_trainer_does_not_block(tiny_files,
                                                           tmp_path):
  model_dir, go = tmp_path / "run", tmp_path / "go"
  first = _start_paused_train(tiny_files, model_dir, go)
  first.send_signal(signal.SIGKILL)
  first.communicate(timeout=60)
  # It left its owner record; the OS lock went with the process.
  assert json.loads((model_dir / rundir.OWNER_FILE).read_text())["pid"] == (
      first.pid)
  proc = run_python(["-m", "tfqa.cli.train", f"--model_dir={model_dir}"])
  result = json.loads(proc.stdout[proc.stdout.index("{"):])
  assert result["global_step"] == 12
  assert not (model_dir / rundir.OWNER_FILE).exists()
