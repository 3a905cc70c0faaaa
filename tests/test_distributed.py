"""Multi-worker training on loopback: chief-only writes, same resume point, 2 workers == 1 worker."""

import json
import os
import signal
import socket
import sys
import time

import numpy as np
import pytest

from conftest import run_command, start_command, tiny_bert_config
from conftest import tiny_train_flags

pytestmark = pytest.mark.slow


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.fixture(scope="module")
def no_dropout_files(tiny_files, tmp_path_factory):
  root = tmp_path_factory.mktemp("nodropout")
  config = root / "bert_config.json"
  config.write_text(json.dumps(tiny_bert_config(
      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
  return dict(tiny_files, bert_config=str(config))


def _env(weights_out, tmp_dir):
  return {"TF_CPP_MIN_LOG_LEVEL": "2", "TFQA_WEIGHTS_OUT": str(weights_out),
          "TMPDIR": str(tmp_dir)}


def _command(model_dir, flags):
  return [sys.executable, "-m", "tests.helpers.weights_dump_train",
          f"--model_dir={model_dir}", *flags]


def _start_workers(model_dir, flags, tmp_path, tag, *, output_to_file=False):
  """Two loopback workers; output_to_file: stdout and stderr together to
  tmp_path/TAG-outN.txt, readable while they run."""
  ports = _free_ports(2)
  cluster = {"worker": [f"localhost:{p}" for p in ports]}
  procs = []
  for index in range(2):
    scratch = tmp_path / f"{tag}-tmp{index}"
    scratch.mkdir()
    env = _env(tmp_path / f"{tag}-w{index}.npz", scratch)
    env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {
        "type": "worker", "index": index}})
    if output_to_file:
      env["PYTHONUNBUFFERED"] = "1"  # progress lines as they are printed
    procs.append(start_command(
        _command(model_dir, [*flags,
                             "--distribution_strategy=multi_worker_mirrored"]),
        env=env, output_file=(tmp_path / f"{tag}-out{index}.txt"
                              if output_to_file else None)))
  return procs


def _wait_all(procs, timeout=600):
  outputs = []
  for proc in procs:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    outputs.append(err)
  return outputs


def _weights(path):
  with np.load(path) as archive:
    return {name: archive[name] for name in archive.files}


def test_two_workers_match_one_worker_and_only_the_chief_writes(
    no_dropout_files, tmp_path):
  # Clipping on: the norm over merged embedding rows must be the same on
  # 1 and 2 workers.
  flags = tiny_train_flags(no_dropout_files, max_steps=6, save_every_steps=3,
                           train_batch_size=4, eval_file=None, clip_norm=1.0)
  single_dir = tmp_path / "single"
  scratch = tmp_path / "single-tmp"
  scratch.mkdir()
  run_command(_command(single_dir, flags),
              env=_env(tmp_path / "single.npz", scratch), unset=("TF_CONFIG",))

  model_dir = tmp_path / "two"
  logs = _wait_all(_start_workers(model_dir, flags, tmp_path, "two"))
  assert all("2 replicas on CPU: no GPU found, global batch 4" in log for log in logs)
  chief, worker = (_weights(tmp_path / f"two-w{i}.npz") for i in range(2))
  one = _weights(tmp_path / "single.npz")
  assert sorted(chief) == sorted(worker) == sorted(one)
  for name in one:
    np.testing.assert_array_equal(chief[name], worker[name])
    np.testing.assert_allclose(chief[name], one[name], rtol=1e-4, atol=1e-5,
                               err_msg=name)
  # Only the chief wrote to model_dir (saves at 3, epoch end 4, 6); the
  # worker's scratch checkpoints are gone.
  assert sorted(os.listdir(model_dir / "checkpoints")) == [
      "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index",
      "ckpt-4.data-00000-of-00001", "ckpt-4.index",
      "ckpt-6.data-00000-of-00001", "ckpt-6.index"]
  # (PyTorch, imported by transformers where it is installed, keeps its
  # compile cache in TMPDIR: not the worker's.)
  assert [n for n in os.listdir(tmp_path / "two-tmp1")
          if not n.startswith("torchinductor_")] == []
  # The logged loss is the global batch mean, as on one worker.
  two_log = [json.loads(l) for l in open(model_dir / "train_log.jsonl")]
  one_log = [json.loads(l) for l in open(single_dir / "train_log.jsonl")]
  assert [e["step"] for e in two_log] == [1, 2, 3, 4, 5, 6]
  np.testing.assert_allclose([e["loss"] for e in two_log],
                             [e["loss"] for e in one_log], rtol=1e-5)


def test_killed_worker_then_both_restart_from_the_same_checkpoint(
    tiny_files, tmp_path):
  flags = tiny_train_flags(tiny_files, max_steps=12, save_every_steps=3,
                           train_batch_size=4, eval_file=None)
  model_dir = tmp_path / "run"
  go = tmp_path / "go"
  # The workers wait after step 3 (its checkpoint written) until the worker
  # is dead: the 9 steps after it take about a second, a loaded machine's
  # poll for the checkpoint could see it too late.
  procs = _start_workers(
      model_dir, [*flags, "--pause_after_step=3", f"--resume_when={go}"],
      tmp_path, "first")
  deadline = time.time() + 300
  while not os.path.exists(f"{go}.paused"):
    assert time.time() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.2)
  procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-run...
  procs[1].wait()
  go.write_text("")
  time.sleep(2)
  procs[0].send_signal(signal.SIGKILL)  # ...and the chief, stuck, is killed
  procs[0].wait()
  for p in procs:
    p.stdout.close()
    p.stderr.close()
  saved = sorted(int(n.split("-")[1].split(".")[0]) for n in
                 os.listdir(model_dir / "checkpoints") if n.endswith(".index"))
  assert saved == [3]

  logs = _wait_all(_start_workers(model_dir, flags, tmp_path, "second"))
  restored = [line.split("Restored ")[1].split(" ")[0] for log in logs
              for line in log.splitlines() if "Restored " in line]
  assert len(restored) == 2 and restored[0] == restored[1]
  assert restored[0].endswith(f"ckpt-{saved[-1]}")
  chief, worker = (_weights(tmp_path / f"second-w{i}.npz") for i in range(2))
  for name in chief:
    np.testing.assert_array_equal(chief[name], worker[name])
  assert os.path.exists(model_dir / "checkpoints" / "ckpt-12.index")


def test_accumulated_micro_batches_on_two_workers_match_one_large_batch(
    no_dropout_files, tmp_path):
  # Batch 4 on 2 workers with 2 micro-batches: 1 window per replica at a
  # time. The update must equal one batch of 4 on one worker.
  flags = tiny_train_flags(no_dropout_files, max_steps=4, save_every_steps=4,
                           train_batch_size=4, eval_file=None)
  scratch = tmp_path / "single-tmp"
  scratch.mkdir()
  run_command(_command(tmp_path / "single", flags),
              env=_env(tmp_path / "single.npz", scratch), unset=("TF_CONFIG",))
  logs = _wait_all(_start_workers(
      tmp_path / "two", [*flags, "--gradient_accumulation_steps=2"],
      tmp_path, "two"))
  assert all("2 replicas on CPU: no GPU found, global batch 4 = 2 "
             "micro-batches x 1 windows x 2 replica(s)" in log for log in logs)
  chief, worker = (_weights(tmp_path / f"two-w{i}.npz") for i in range(2))
  one = _weights(tmp_path / "single.npz")
  assert sorted(chief) == sorted(one)
  for name in one:
    np.testing.assert_array_equal(chief[name], worker[name])
    np.testing.assert_allclose(chief[name], one[name], rtol=1e-4, atol=1e-5,
                               err_msg=name)
  two_log = [json.loads(l) for l in open(tmp_path / "two" /
                                         "train_log.jsonl")]
  one_log = [json.loads(l) for l in open(tmp_path / "single" /
                                         "train_log.jsonl")]
  np.testing.assert_allclose([e["loss"] for e in two_log],
                             [e["loss"] for e in one_log], rtol=1e-5)


def test_sigterm_to_one_worker_stops_both_at_one_saved_step_then_resume(
    tiny_files, tmp_path):
  flags = tiny_train_flags(tiny_files, max_steps=12, save_every_steps=1000,
                           train_batch_size=4, eval_file=None,
                           deterministic=True)
  model_dir = tmp_path / "run"
  go = tmp_path / "go"
  procs = _start_workers(
      model_dir, [*flags, "--pause_after_step=3",
                  f"--resume_when={go}"], tmp_path, "first",
      output_to_file=True)
  deadline = time.time() + 600
  # The workers wait after step 3 until the signal has landed: the 9 steps
  # after it take about a second, and on a loaded machine (CI) they all ran
  # before this process, waiting for a progress line, got to send it.
  while not os.path.exists(f"{go}.paused"):
    assert time.time() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.1)
  sent = time.monotonic()
  procs[1].send_signal(signal.SIGTERM)  # the worker's VM is preempted
  # The handler's watcher sees the signal within 2 s (a 1 s wait, then a
  # 1 s sleep); then the workers go on and stop at the step they agree on.
  time.sleep(3)
  go.write_text("")
  for p in procs:
    p.communicate(timeout=300)
  exited = time.monotonic() - sent
  errs = [(tmp_path / f"first-out{i}.txt").read_text() for i in range(2)]
  assert [p.returncode for p in procs] == [143, 143], errs[0][-3000:]
  lines = [[l for l in err.splitlines() if "Interrupted by" in l][-1]
           for err in errs]
  step = int(lines[1].split(" at step ")[1].split(" ")[0])
  assert lines == [
      f"tfqa_train: Interrupted by SIGTERM to another worker at step {step} "
      f"of 12; saved ckpt-{step}; run the same command to resume.",
      f"tfqa_train: Interrupted by SIGTERM at step {step} of 12; saved "
      f"ckpt-{step}; run the same command to resume."]
  assert 3 <= step < 12
  print(f"both workers stopped at step {step}, {exited:.1f} s after the "
        "SIGTERM")
  # No step lost: the chief's checkpoint is at the last step it logged.
  log = model_dir / "train_log.jsonl"
  logged = [json.loads(l)["step"] for l in log.read_text().splitlines()]
  assert logged == list(range(1, step + 1))
  assert (model_dir / "checkpoints" / f"ckpt-{step}.index").exists()
  _wait_all(_start_workers(model_dir, flags, tmp_path, "second"))
  logged = [json.loads(l)["step"] for l in log.read_text().splitlines()]
  assert logged == list(range(1, 13))
  chief, worker = (_weights(tmp_path / f"second-w{i}.npz") for i in range(2))
  for name in chief:
    np.testing.assert_array_equal(chief[name], worker[name])
