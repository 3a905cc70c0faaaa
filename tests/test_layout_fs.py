"""Tests for tfqa.layout.fs: the same answers on a local path and a URL (ram://), and a whole run on ram://."""

import json
import os
import re

import pytest

from tfqa.layout import fs

from conftest import REPO_ROOT, run_python, tiny_train_flags, tiny_train_settings


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
  """An empty directory: local, or on TensorFlow's in-memory file system."""
  if request.param == "local":
    return str(tmp_path / "root")
  return f"ram://test-fs/{request.node.name}-{os.urandom(4).hex()}"


def test_is_url():
  assert fs.is_url("gs://bucket/run") and fs.is_url("ram://a")
  assert not fs.is_url("runs/a") and not fs.is_url("/tmp/a:b")


def test_write_text_replaces_the_file_whole_and_leaves_no_temp(root):
  path = fs.join(root, "sub", "state.json")
  fs.write_text(path, "old")
  fs.write_text(path, "new\n")
  assert fs.read_text(path) == "new\n"
  assert fs.listdir(fs.join(root, "sub")) == ["state.json"]


def test_write_json_refuses_nan_and_writes_nothing(root):
  with pytest.raises(ValueError, match="Out of range float values are not "
                                       "JSON compliant"):
    fs.write_json(fs.join(root, "r.json"), {"f1": float("nan")})
  assert not fs.exists(fs.join(root, "r.json"))


def test_kinds_sizes_and_listings(root):
  fs.makedirs(fs.join(root, "d", "e"))
  fs.write_text(fs.join(root, "d", "f.txt"), "four")
  assert fs.isdir(fs.join(root, "d")) and not fs.isfile(fs.join(root, "d"))
  assert fs.isfile(fs.join(root, "d", "f.txt"))
  assert not fs.isdir(fs.join(root, "d", "f.txt"))
  assert fs.getsize(fs.join(root, "d", "f.txt")) == 4
  assert fs.listdir(fs.join(root, "d")) == ["e", "f.txt"]
  assert fs.walk_files(root) == ["d/f.txt"]
  assert not fs.exists(fs.join(root, "nothing"))
  with pytest.raises(FileNotFoundError):
    fs.listdir(fs.join(root, "nothing"))
  with pytest.raises(FileNotFoundError):
    fs.read_bytes(fs.join(root, "nothing"))


def test_names_sharing_a_prefix_are_told_apart(root):
  # ram:// calls any string prefix of a name a directory; fs does not.
  fs.makedirs(fs.join(root, "assets.extra"))
  fs.makedirs(fs.join(root, "assets"))
  fs.write_text(fs.join(root, "assets.extra", "warmup"), "w")
  fs.write_text(fs.join(root, "ckpt-12.index"), "i")
  assert not fs.exists(fs.join(root, "ckpt-1"))
  assert not fs.isdir(fs.join(root, "ckpt-12"))
  assert fs.listdir(fs.join(root, "assets")) == []
  assert fs.walk_files(root) == ["assets.extra/warmup", "ckpt-12.index"]


def test_a_ram_directory_implied_by_its_files_is_one():
  import tensorflow as tf
  root = f"ram://test-fs/implied-{os.urandom(4).hex()}"
  with tf.io.gfile.GFile(f"{root}/a/b/f.txt", "w") as f:  # no makedirs
    f.write("f")
  # (ram:// lists no "b" in "a" then: its own listdir shows only files.)
  assert fs.isdir(f"{root}/a/b")
  assert fs.isfile(f"{root}/a/b/f.txt") and not fs.exists(f"{root}/a/b/f")


def test_glob_takes_the_directory_literally(root):
  directory = fs.join(root, "runs", "a[1]")
  for name in ("ckpt-3.index", "ckpt-12.index", "ckpt-3.data-00000-of-00001"):
    fs.write_text(fs.join(directory, name), "x")
  assert fs.glob(directory, "ckpt-*.index") == [
      fs.join(directory, "ckpt-12.index"), fs.join(directory, "ckpt-3.index")]
  assert fs.glob(fs.join(root, "none"), "*") == []


def test_rename_moves_a_directory_and_refuses_an_existing_target(root):
  fs.write_text(fs.join(root, "staged", "x", "y.txt"), "y")
  fs.makedirs(fs.join(root, "taken"))
  with pytest.raises(FileExistsError, match="taken exists"):
    fs.rename(fs.join(root, "staged"), fs.join(root, "taken"))
  fs.rename(fs.join(root, "staged"), fs.join(root, "final"))
  assert not fs.exists(fs.join(root, "staged"))
  assert fs.read_text(fs.join(root, "final", "x", "y.txt")) == "y"


def test_remove_and_rmtree(root):
  fs.write_text(fs.join(root, "d", "f"), "f")
  fs.remove(fs.join(root, "d", "f"))
  fs.remove(fs.join(root, "d", "f"), missing_ok=True)
  with pytest.raises(FileNotFoundError):
    fs.remove(fs.join(root, "d", "f"))
  fs.write_text(fs.join(root, "d", "g"), "g")
  fs.rmtree(fs.join(root, "d"))
  fs.rmtree(fs.join(root, "d"))  # none is fine
  assert not fs.exists(fs.join(root, "d"))


def test_append_and_flush(root):
  path = fs.join(root, "log.jsonl")
  fs.makedirs(root)
  for line in ("1\n", "2\n"):
    with fs.open_file(path, "a") as f:
      f.write(line)
      fs.flush_to_disk(f)
  assert fs.read_text(path) == "1\n2\n"


def test_local_dir_for_copies_to_the_target_only_on_success(root):
  target = fs.join(root, "pretrained")
  with pytest.raises(RuntimeError, match="converter failed"):
    with fs.local_dir_for(target) as local:
      with open(os.path.join(local, "half.h5"), "w", encoding="utf-8") as f:
        f.write("half")
      raise RuntimeError("converter failed")
  if fs.is_url(root):
    assert not fs.exists(target)
  with fs.local_dir_for(target) as local:
    assert not fs.is_url(local)
    os.makedirs(os.path.join(local, "sub"))
    with open(os.path.join(local, "sub", "m.h5"), "w", encoding="utf-8") as f:
      f.write("model")
  assert fs.read_text(fs.join(target, "sub", "m.h5")) == "model"


def test_local_copy_gives_a_local_path_to_read(root):
  fs.write_text(fs.join(root, "tok", "vocab.txt"), "[PAD]\n")
  with fs.local_copy(fs.join(root, "tok")) as local:
    assert not fs.is_url(local)
    with open(os.path.join(local, "vocab.txt"), encoding="utf-8") as f:
      assert f.read() == "[PAD]\n"


# One process: train, extend, evaluate, export, answer, all on ram://; the
# working directory must stay empty (temporary staging is allowed).
_RAM_RUN_SCRIPT = """
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
from tfqa import api
from tfqa.export import pipeline
from tfqa.inference import predictor
from tfqa.inference import run_evaluation
from tfqa.training import trainer

settings, root = json.loads(sys.argv[1]), "ram://run-on-ram"
tf.io.gfile.makedirs(root + "/in")
for key in ("vocab_file", "bert_config_file", "train_file", "eval_file"):
  remote = root + "/in/" + os.path.basename(settings[key])
  if not tf.io.gfile.exists(remote):
    tf.io.gfile.copy(settings[key], remote)
  settings[key] = remote
model_dir, export_dir = root + "/runs/a", root + "/export"


def run_config(epochs):
  return api.run_config_for(model_dir, **settings, num_train_epochs=epochs)


first = trainer.train_and_evaluate(run_config(1), model_dir, verbose=0)
extended = trainer.train_and_evaluate(run_config(2), model_dir, verbose=0)
metrics, eval_dir = run_evaluation.evaluate_run(model_dir)
result = pipeline.export_model(model_dir=model_dir, export_dir=export_dir)
answer = predictor.load_predictor(export_dir, verify_manifest=True).answer(
    ["what is the capital of france ?"],
    ["paris is the capital city of france ."])[0]
print(json.dumps({
    "steps": [first.global_step, extended.global_step],
    "resumed_from": extended.resumed_from, "eval_dir": eval_dir,
    "eval_files": sorted(tf.io.gfile.listdir(eval_dir)),
    "saved_model_dir": result.saved_model_dir,
    "manifest_path": result.manifest_path,
    "export": sorted(tf.io.gfile.listdir(export_dir)),
    "pretrained": sorted(tf.io.gfile.listdir(result.pretrained_dir)),
    "answer_is_text": isinstance(answer.text, str),
    "metrics_keys": sorted(metrics)[:2]}))
"""


@pytest.mark.slow
def test_a_whole_run_on_ram_writes_nothing_locally(tiny_files, tmp_path):
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  settings = tiny_train_settings(tiny_files, save_every_steps=500)
  del settings["num_train_epochs"]  # the script's two calls set it
  proc = run_python(["-c", _RAM_RUN_SCRIPT, json.dumps(settings)], cwd=cwd)
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  root = "ram://run-on-ram"
  assert out == {
      "steps": [4, 8],
      "resumed_from": f"{root}/runs/a/checkpoints/ckpt-4",
      "eval_dir": f"{root}/runs/a/eval/ckpt-8",
      "eval_files": ["eval_results.json", "nbest_predictions.json",
                     "null_odds.json", "predictions.json"],
      "saved_model_dir": f"{root}/export/saved_model/tfqa/1",
      "manifest_path": f"{root}/export/manifest.json",
      "export": [".tfqa-export", "manifest.json", "pretrained",
                 "saved_model"],
      "pretrained": ["README.md", "config.json", "model.safetensors",
                     "special_tokens_map.json",
                     "tf_model.h5", "tokenizer.json", "tokenizer_config.json",
                     "vocab.txt"],
      "answer_is_text": True,
      "metrics_keys": ["HasAns_exact", "HasAns_f1"]}
  assert os.listdir(cwd) == []
  assert "ram:" not in os.listdir(REPO_ROOT)


@pytest.mark.slow
def test_tfqa_train_on_ram_ends_without_a_warning(tiny_files, tmp_path):
  # ram:// lives as long as its process: one run of the CLI is what can be
  # checked (before fs, it called its own checkpoints damaged and failed).
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  proc = run_python(["-m", "tfqa.cli.train", "--model_dir=ram://cli/a",
                     *tiny_train_flags(tiny_files)], cwd=cwd)
  result = json.loads(proc.stdout[proc.stdout.index("{"):])
  assert (result["global_step"], result["checkpoint"]) == (
      12, "ram://cli/a/checkpoints/ckpt-12")
  warnings = [line for line in proc.stderr.splitlines()
              if re.match(r"(W\d{4} |WARNING|E\d{4} |ERROR)", line) or
              "arning" in line or "damaged" in line]
  assert warnings == []
  assert os.listdir(cwd) == []
