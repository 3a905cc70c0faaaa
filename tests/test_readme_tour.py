"""The README's 5-minute tour, run as written from a scratch directory with its relative paths, on a tiny model.

Two substitutions, because the tour names things a tiny offline run does not
have: `--model=minilm-l6` becomes `--model=tiny-bert` (a save_pretrained
directory of a 1-layer BERT in the working directory) and the checkpoint
`ckpt-500` becomes one the tiny run wrote. The first `tfqa_train` is
SIGKILLed mid-run (as tests/helpers/killable_train.py does), so the second
one resumes it. No line any command prints may read as damage.
"""

import json
import os
import pathlib
import re
import shlex
import signal

import pytest

from conftest import (REPO_ROOT, run_python, tiny_bert_config, tiny_squad,
                      tiny_vocab)

pytestmark = pytest.mark.slow

README = REPO_ROOT / "README.md"
_MODULES = {"tfqa_train": "tfqa.cli.train", "tfqa_eval": "tfqa.cli.evaluate",
            "tfqa_score": "tfqa.cli.score", "tfqa_export": "tfqa.cli.export",
            "tfqa_predict": "tfqa.cli.predict"}
# What RELIABILITY.md teaches users to read as a damaged run.
_ALARMS = re.compile(r"damaged|unreadable|falling back|traceback", re.I)
# The tiny run: 11 one-window questions in batches of 32, so one step per
# epoch and a checkpoint at each epoch end; killed in step 2, after ckpt-1.
_KILL_AT_STEP = 2
_EVAL_CHECKPOINT = "ckpt-2"


def tour_commands(readme=README):
  """The shell commands of the README's tour, one argv per command."""
  text = pathlib.Path(readme).read_text(encoding="utf-8")
  section = text.split("## A 5-minute tour", 1)[1]
  block = section.split("```sh\n", 1)[1].split("```", 1)[0]
  commands = []
  for line in block.replace("\\\n", " ").splitlines():
    line = line.strip()
    if line and not line.startswith(("#", ". ")):
      commands.append(shlex.split(line))
  return commands


def test_the_tour_is_what_this_test_expects():
  assert [argv[0] for argv in tour_commands()] == [
      "tfqa_train", "tfqa_train", "tfqa_train", "tfqa_eval", "tfqa_score",
      "tfqa_export", "tfqa_predict", "tfqa_predict"]
  assert "--model=minilm-l6" in tour_commands()[0]


@pytest.fixture
def workdir(tmp_path):
  """The files the tour names, with a tiny model in place of MiniLM."""
  import transformers
  for name in ("train.json", "dev.json"):
    (tmp_path / name).write_text(json.dumps(tiny_squad(True)))
  model_dir = tmp_path / "tiny-bert"
  # Windows of the default --max_seq_length=384 must fit.
  model = transformers.TFBertForQuestionAnswering(transformers.BertConfig(
      **tiny_bert_config(max_position_embeddings=512)))
  model(model.dummy_inputs, training=False)
  model.save_pretrained(str(model_dir))
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(tiny_vocab()) + "\n")
  transformers.BertTokenizerFast(vocab_file=str(vocab),
                                 do_lower_case=True).save_pretrained(
                                     str(model_dir))
  vocab.unlink()
  return tmp_path


def _run(argv, cwd, *, module=None, extra=()):
  module = module or _MODULES[argv[0]]
  return run_python(["-m", module, *extra, *argv[1:]], cwd=cwd,
                    exit_status=None, timeout=900)


def _alarms(proc):
  return [line for line in (proc.stdout + proc.stderr).splitlines()
          if _ALARMS.search(line)]


def test_the_readme_tour_runs_as_written(workdir):
  commands = [[arg.replace("--model=minilm-l6", "--model=tiny-bert")
               .replace("ckpt-500", _EVAL_CHECKPOINT) for arg in argv]
              for argv in tour_commands()]
  # Killed? Pre-empted? The first command dies in step 2, after ckpt-1.
  killed = _run(commands[0], workdir, module="tests.helpers.killable_train",
                extra=[f"--kill_at_step={_KILL_AT_STEP}"])
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
  assert _alarms(killed) == []
  assert sorted(os.listdir(workdir / "runs" / "a" / "checkpoints")) == [
      "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
  for argv in commands[1:]:
    proc = _run(argv, workdir)
    assert proc.returncode == 0, (argv, proc.stderr[-3000:])
    assert _alarms(proc) == [], argv
    if argv[0] == "tfqa_train":
      # The result's JSON ends the output (after Keras' progress lines).
      step = re.findall(r'"global_step": (\d+)', proc.stdout)[-1]
      assert re.findall(r'"checkpoint": "(.*)"', proc.stdout)[-1] == (
          f"runs/a/checkpoints/ckpt-{step}")
  steps = [json.loads(line)["step"] for line in
           (workdir / "runs" / "a" / "train_log.jsonl").read_text()
           .splitlines()]
  assert steps == [1, 2, 3]  # resumed, then extended by an epoch
  assert json.loads((workdir / "preds.json").read_text()).keys() == {
      qa["id"] for article in tiny_squad(True)["data"]
      for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
  assert os.path.isdir(workdir / "runs" / "a" / "eval" / _EVAL_CHECKPOINT)
