"""Tests for tfqa.layout.paths: one check of a path's kind, the same for relative and absolute paths."""

import os
import re

import pytest

from tfqa.layout import paths


@pytest.fixture
def tree(tmp_path, monkeypatch):
  """A working directory with one of each kind of thing."""
  monkeypatch.chdir(tmp_path)
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "dev.json").write_text('{"data": []}')
  (tmp_path / "data" / "train.json").write_text('{"data": []}')
  (tmp_path / "empty.json").write_text("")
  (tmp_path / "blank.json").write_text(" \n\t ")
  (tmp_path / "list.json").write_text("[1, 2]")
  (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf\n {}")
  (tmp_path / "binary.json").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
  (tmp_path / "afile").write_text("x")
  (tmp_path / "runs" / "a" / "checkpoints").mkdir(parents=True)
  (tmp_path / "runs" / "a" / "run_config.json").write_text("{}")
  for step in (10, 9):
    (tmp_path / "runs" / "a" / "checkpoints" / f"ckpt-{step}.index").write_text("")
  os.mkfifo(tmp_path / "fifo")
  return tmp_path


def _check(path, kind, **kwargs):
  paths.check_path(path, kind, argument="x", what="WHAT", **kwargs)


def _fails(path, kind, found, **kwargs):
  with pytest.raises(paths.PathError,
                     match=rf"^x={re.escape(path)} {found}; expected WHAT\."):
    _check(path, kind, **kwargs)


@pytest.mark.parametrize("path", ["data/dev.json", "./data/dev.json",
                                  "data/../data/dev.json", "bom.json"])
def test_a_json_file_passes_relative_or_absolute(tree, path):
  _check(path, paths.JSON_FILE)
  _check(str(tree / path), paths.JSON_FILE)


@pytest.mark.parametrize("path, found", [
    ("data", r"is a directory \(holding data/dev\.json, data/train\.json\)"),
    ("runs", r"is a directory"),
    ("missing.json", r"does not exist \(relative to the working directory "
                     r"{cwd}\)"),
    ("afile/dev.json", r"does not exist: afile is a file, not a directory"),
    ("empty.json", r"is empty \(0 bytes\)"),
    ("blank.json", r"holds only blank space"),
    ("list.json", r"is not a JSON object: it starts with '\[1, 2\]'"),
    ("binary.json", r"is not JSON text: it starts with the bytes 89 50 4e 47 "
                    r"0d 0a 1a 0a"),
    ("fifo", r"is not a regular file"),
])
def test_a_json_file_of_the_wrong_kind_is_named(tree, path, found):
  _fails(path, paths.JSON_FILE, found.format(cwd=re.escape(str(tree))))


def test_an_absolute_missing_path_does_not_mention_the_working_directory(tree):
  _fails(str(tree / "missing.json"), paths.JSON_FILE, r"does not exist")


def test_a_huge_file_of_zeros_fails_on_its_first_bytes(tree):
  huge = tree / "huge.json"
  with open(huge, "wb") as f:
    f.truncate(8 << 30)  # sparse: 8 GiB that take no disk space
  _fails("huge.json", paths.JSON_FILE,
         r"is not JSON text: it starts with the bytes 00 00 00 00 00 00 00 00")


def test_a_file_need_not_be_json(tree):
  _check("afile", paths.FILE)
  _fails("data", paths.FILE, r"is a directory")


@pytest.mark.parametrize("path", ["afile", "data", "data/"])
def test_file_or_directory_takes_either(tree, path):
  _check(path, paths.FILE_OR_DIRECTORY)


@pytest.mark.parametrize("kind", [paths.DIRECTORY, paths.OUTPUT_DIRECTORY])
def test_a_file_is_not_a_directory(tree, kind):
  _check("data", kind)
  _fails("afile", kind, r"is a file")
  _fails("fifo", kind, r"is not a directory")


def test_an_output_directory_may_not_exist_yet_unless_under_a_file(tree):
  _check("runs/new/deeper", paths.OUTPUT_DIRECTORY)
  _fails("afile/run", paths.OUTPUT_DIRECTORY,
         r"cannot be created: afile is a file, not a directory")
  _fails("afile/run/deeper", paths.OUTPUT_DIRECTORY,
         r"cannot be created: afile is a file, not a directory")


def test_an_output_file_may_not_be_a_directory(tree):
  _check("preds.json", paths.OUTPUT_FILE)
  _check("afile", paths.OUTPUT_FILE)
  _fails("data", paths.OUTPUT_FILE, r"is a directory")
  _fails("afile/preds.json", paths.OUTPUT_FILE,
         r"cannot be created: afile is a file, not a directory")


def test_a_run_directory_holds_run_config(tree):
  _check("runs/a", paths.RUN_DIRECTORY)
  _fails("runs", paths.RUN_DIRECTORY,
         r"holds no run_config\.json \(runs inside it: runs/a\)")
  _fails("data", paths.RUN_DIRECTORY, r"holds no run_config\.json")
  _fails("afile", paths.RUN_DIRECTORY, r"is a file")


def test_a_checkpoint_is_a_prefix_with_an_index(tree):
  _check("runs/a/checkpoints/ckpt-9", paths.CHECKPOINT)
  _fails("runs/a/checkpoints", paths.CHECKPOINT,
         r"is a directory, not a checkpoint prefix")
  _fails("runs/a/checkpoints/ckpt-9.index", paths.CHECKPOINT,
         r"is one file of the checkpoint runs/a/checkpoints/ckpt-9 \(pass "
         r"that prefix\)")
  _fails("runs/a/checkpoints/ckpt-500", paths.CHECKPOINT,
         r"does not exist \(there is no runs/a/checkpoints/ckpt-500\.index\)")
  _fails("afile", paths.CHECKPOINT, r"is not a checkpoint \(there is no "
                                    r"afile\.index\)")


def test_choices_are_listed(tree):
  with pytest.raises(paths.PathError, match=(
      r"^x=ckpt-5 does not exist \(there is no ckpt-5\.index\); expected "
      r"WHAT\. Existing ones: a, b\.$")):
    _check("ckpt-5", paths.CHECKPOINT, choices=["a", "b"])


@pytest.mark.parametrize("kind", paths.KINDS)
def test_an_empty_path_is_refused(tree, kind):
  _fails("", kind, "is empty")


@pytest.mark.parametrize("kind", paths.KINDS)
def test_urls_are_left_to_their_reader(kind):
  _check("gs://bucket/no/such/thing", kind)


def test_an_unknown_kind_is_a_programming_error():
  with pytest.raises(ValueError, match=(
      r"^Invalid value for argument `kind`\. Received: kind='json'\. Expected "
      r"one of \('file', ")):
    _check("x", "json")


@pytest.mark.parametrize("kind, found", [
    (paths.JSON_FILE, "does not exist"),
    (paths.OUTPUT_DIRECTORY, "would be created in a directory named '~'"),
    (paths.OUTPUT_FILE, "would be created in a directory named '~'")])
def test_an_unexpanded_tilde_is_named(tree, kind, found):
  # `--model_dir=~/runs/a`: the shell expands no ~ after "=".
  _fails("~/runs/a", kind, rf"{found}: the shell does not expand ~ after "
                           rf"'=' \(write \$HOME/runs/a, or the flag and the "
                           rf"path apart\)")
  assert not (tree / "~").exists()



def test_the_error_names_the_argument_and_a_tool_words_it_as_its_flag(tree):
  with pytest.raises(paths.PathError) as caught:
    paths.check_path("data/{x}.json", paths.JSON_FILE, argument="eval_file",
                     what="a SQuAD JSON file (pass {probe_file})",
                     refers_to=["probe_file"])
  error = caught.value
  tail = "does not exist (relative to the working directory "
  assert str(error).startswith(f"eval_file=data/{{x}}.json {tail}")
  assert str(error).endswith("; expected a SQuAD JSON file (pass probe_file).")
  worded = error.worded({"eval_file": "--eval_file",
                         "probe_file": "--probe_file"})
  assert worded.startswith(f"--eval_file=data/{{x}}.json {tail}")
  assert worded.endswith("; expected a SQuAD JSON file (pass --probe_file).")


def test_words_name_a_path_no_argument_gave():
  error = paths.path_error("the run's data.eval_file", "dev.json",
                           "does not exist.")
  assert str(error) == error.worded({"eval_file": "--eval_file"}) == (
      "the run's data.eval_file=dev.json does not exist.")
