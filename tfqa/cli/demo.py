"""`make demo`: fine-tune the bundled encoder on the embedded sample, survive a kill, export, answer.

Everything runs offline on the CPU, as separate processes, the way a user
would run the tools:
  1. split the embedded sample's answerable questions into train and
     held-out articles;
  2. start tfqa_train, SIGKILL it once midway (after its first checkpoint);
  3. run tfqa_train again with only --model_dir: it resumes and evaluates;
  4. tfqa_export the run (SavedModel + save_pretrained + verification);
  5. answer a handful of held-out questions (articles it never trained on)
     from the SavedModel in a fresh process that imports only tensorflow and
     tensorflow_text, each beside its gold answers and marked right or wrong,
     next to the held-out EM/F1: what the model learned, shown honestly.

--workdir (default demo_run) starts empty each time: a previous demo's
directory is emptied; any other non-empty one is refused, untouched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags

from tfqa.data import sample
from tfqa.evaluation import metrics
from tfqa.layout import fs
from tfqa.layout import paths

_WORKDIR = flags.DEFINE_string("workdir", "demo_run",
                               "Where the demo writes data, run and export.")
_EPOCHS = flags.DEFINE_integer("num_train_epochs", 3, "Training epochs.")
_HELD_OUT = flags.DEFINE_integer("held_out_articles", 2,
                                 "Last articles of the sample kept for eval.")

# Written into --workdir: only a directory holding it (or a new or empty one)
# is emptied by the next demo.
_MARKER = ".tfqa-demo"
# What demos before the marker left in --workdir (train.json and eval.json
# always): such a directory is a previous demo's too.
_DEMO_ENTRIES = frozenset({"train.json", "eval.json", "run", "export",
                           "shown_questions.json"})
# Held-out questions shown with their answers (spread over the eval file).
_SHOWN_QUESTIONS = 8
_FRESH_PROCESS_ANSWERS = r"""
import json, sys, tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
rows = json.load(open(sys.argv[2], encoding="utf-8"))
out = model.signatures["serving_default"](
    question=tf.constant([r["question"] for r in rows]),
    context=tf.constant([r["context"] for r in rows]))
assert "tfqa" not in sys.modules and "transformers" not in sys.modules
print(json.dumps([a.decode("utf-8") for a in out["answer"].numpy()]))
"""


class DemoError(Exception):
  """A mistake the demo reports in one line (exit 1), naming flag or step."""


def fresh_workdir(workdir: str) -> str:
  """Creates --workdir empty (with the marker) and returns its absolute path.

  The demo starts from nothing each time, so it empties a previous demo's
  directory; any other non-empty directory is refused, untouched: --workdir
  may name a directory the user cares about.
  """
  try:
    # A file, a path through a file, a '~' the shell left alone.
    paths.check_path(workdir, paths.OUTPUT_DIRECTORY, argument="workdir",
                     what="a directory (new, empty, or a previous demo's)")
  except paths.PathError as e:
    raise DemoError(e.worded({"workdir": "--workdir"})) from None
  path = fs.abspath(workdir)
  if fs.exists(path):
    entries = set(fs.listdir(path))
    earlier_demo = {"train.json", "eval.json"} <= entries <= _DEMO_ENTRIES
    if entries and _MARKER not in entries and not earlier_demo:
      shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3
                                                else "")
      count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
      raise DemoError(
          f"--workdir={workdir} holds {count} the demo did not write "
          f"({shown}); expected a new or empty directory, or a previous "
          f"demo's (with {_MARKER}). Nothing was deleted.")
    fs.rmtree(path)
  fs.makedirs(path)
  fs.write_text(os.path.join(path, _MARKER),
                "Written by `python -m tfqa.cli.demo`: the next demo empties "
                "this directory.\n")
  return path


def split_sample(sample_path: str, out_dir: str, held_out: int):
  """Writes train.json (all but the last `held_out` articles) and eval.json.

  Only answerable questions are kept: a few minutes of CPU training on ~200
  questions is enough to learn spans, not also when to abstain.
  """
  squad = json.loads(fs.read_text(sample_path))
  for article in squad["data"]:
    for paragraph in article["paragraphs"]:
      paragraph["qas"] = [qa for qa in paragraph["qas"]
                          if not qa.get("is_impossible")]
  train = dict(squad, data=squad["data"][:-held_out])
  heldout = dict(squad, data=squad["data"][-held_out:])
  paths = []
  for name, obj in (("train.json", train), ("eval.json", heldout)):
    path = os.path.join(out_dir, name)
    fs.write_text(path, json.dumps(obj, ensure_ascii=False))
    paths.append(path)
  return paths


def shown_questions(eval_file: str, count: int) -> list[dict]:
  """`count` questions spread evenly over the eval file, with their golds."""
  squad = json.loads(fs.read_text(eval_file))
  rows = [{"question": qa["question"], "context": paragraph["context"],
           "gold": [a["text"] for a in qa["answers"]]}
          for article in squad["data"] for paragraph in article["paragraphs"]
          for qa in paragraph["qas"]]
  step = max(1, len(rows) // count)
  return rows[::step][:count]


def answer_lines(rows: list[dict], answers: list[str]) -> list[str]:
  """One block per question: the question, the answer marked, the golds.

  "right" is an exact match with a gold answer after SQuAD normalization,
  "partly" shares words with one (F1 > 0), else "wrong".
  """
  lines = []
  for row, answer in zip(rows, answers):
    exact = max(metrics.exact_match_score(answer, g) for g in row["gold"])
    f1 = max(metrics.f1_score(answer, g) for g in row["gold"])
    mark = "right" if exact else ("partly" if f1 > 0 else "wrong")
    lines.append(f"Q: {row['question']}\n   tfqa: {answer or '(no answer)'}"
                 f"  [{mark}]\n   gold: {' | '.join(row['gold'])}")
  return lines


def _tool(module, *args):
  return [sys.executable, "-m", module, *args]


def _run_step(command):
  """Runs one tool; its failure ends the demo in one line (the tool's own
  message is just above it)."""
  code = subprocess.run(command, check=False).returncode
  if code:
    raise DemoError(f"{command[2]} {' '.join(command[3:])} failed "
                    f"(exit {code}); its message is above")


def _banner(text):
  print(f"\n=== {text} ===", flush=True)


def _train_and_kill_once(command, model_dir):
  """Starts training, SIGKILLs it two steps after its first checkpoint."""
  process = subprocess.Popen(command)
  log = os.path.join(model_dir, "train_log.jsonl")
  state = os.path.join(model_dir, "checkpoints", "checkpoint")
  while process.poll() is None:
    if fs.exists(state):
      first_line = fs.read_text(state).splitlines()[0]
      saved_step = int(first_line.rsplit("-", 1)[1].strip().strip('"'))
      time.sleep(4)  # a few more steps run, and are lost to the kill
      process.send_signal(signal.SIGKILL)
      process.wait()
      lines = len(fs.read_text(log).splitlines())
      print(f"\n*** demo: killed tfqa_train with SIGKILL after step "
            f"{saved_step}'s checkpoint ({lines} logged steps on disk) ***",
            flush=True)
      return saved_step
    time.sleep(0.5)
  raise DemoError(f"{command[2]} ended (exit {process.returncode}) before "
                  f"the demo could interrupt it")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    _demo()
  except DemoError as e:
    sys.exit(f"demo: error: {e}")


def _demo():
  workdir = fresh_workdir(_WORKDIR.value)
  train_file, eval_file = split_sample(sample.sample_path(), workdir,
                                       _HELD_OUT.value)
  model_dir = os.path.join(workdir, "run")
  export_dir = os.path.join(workdir, "export")
  _banner("1/4 fine-tuning the bundled MiniLM encoder (will be killed once)")
  _train_and_kill_once(_tool(
      "tfqa.cli.train", "--model=minilm-l6", f"--train_file={train_file}",
      f"--eval_file={eval_file}", f"--model_dir={model_dir}",
      f"--num_train_epochs={_EPOCHS.value}",
      "--train_batch_size=16", "--learning_rate=3e-4", "--save_every_steps=10",
      "--seed=1"), model_dir)
  _banner("2/4 resuming with only --model_dir")
  _run_step(_tool("tfqa.cli.train", f"--model_dir={model_dir}"))
  results = json.loads(fs.read_text(
      os.path.join(model_dir, "eval", "eval_results.json")))
  _banner("3/4 exporting (SavedModel for TF Serving + save_pretrained)")
  _run_step(_tool("tfqa.cli.export", f"--model_dir={model_dir}",
                  f"--export_dir={export_dir}"))
  _banner("4/4 answering held-out questions from the SavedModel in a fresh "
          "process")
  rows = shown_questions(eval_file, _SHOWN_QUESTIONS)
  rows_file = os.path.join(workdir, "shown_questions.json")
  fs.write_text(rows_file, json.dumps(rows, ensure_ascii=False))
  version_dir = os.path.join(export_dir, "saved_model", "tfqa", "1")
  # A plain TensorFlow process: its C++ startup lines go to stderr, shown
  # only if it fails (the tools themselves are quiet, see tfqa/cli/quiet.py).
  served = subprocess.run(
      [sys.executable, "-c", _FRESH_PROCESS_ANSWERS, version_dir, rows_file],
      capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if served.returncode:
    raise DemoError(f"the fresh process answering from the SavedModel "
                    f"failed (exit {served.returncode}):\n{served.stderr}")
  answers = json.loads(served.stdout.strip().splitlines()[-1])
  for line in answer_lines(rows, answers):
    print(line)
  print(f"\nHeld-out ({_HELD_OUT.value} unseen articles): "
        f"{metrics.headline(results)}")
  print(f"Run: {model_dir}\nExport: {export_dir}")


if __name__ == "__main__":
  app.run(main)
