"""tfqa_train / tfqa_export that SIGKILL (or SIGTERM/SIGINT) themselves at a planned moment (for the campaigns).

  TFQA_CHAOS='{"kill": "step", "n": 3}' TFQA_CHAOS_LOG=/tmp/p \\
      python tools/chaos.py train --model_dir=... [tfqa_train flags]
  TFQA_CHAOS='{"kill": "timer", "seconds": 0.4}' python tools/chaos.py export ...

Plans (`TFQA_CHAOS`, JSON; counts are of this process only):
  {"kill": "none"}                          run to the end
  {"kill": "step", "n": N}                  after the N-th train step ends
  {"kill": "in_save", "n": N, "ms": D}      D ms into the N-th checkpoint save
  {"kill": "before_state", "n": N}          N-th save: files written, `checkpoint`
                                            state file not yet updated
  {"kill": "timer", "seconds": T}           T s after training (or export) starts
  {"kill": "eval", "point": P}              end-of-training evaluation: "start",
                                            "after_logits", "mid_write" (after
                                            its first file)
  {"kill": "mid_eval", "n": N, "point": P}  the same points of the N-th
                                            evaluation during training
  {"kill": "micro", "n": N, "index": I}     after micro-batch I of the N-th step
                                            (--gradient_accumulation_steps > 1)
  {"kill": "export", "point": P}            export: "after_saved_model",
                                            "after_pretrained", "after_verify",
                                            "publish_aside" (pretrained/ renamed
                                            aside, new one not yet in),
                                            "after_publish" (before manifest)

A plan with "signal": "SIGTERM" or "SIGINT" sends that signal instead of
SIGKILL (once: the process goes on to stop as tfqa does on a preemption),
marking "signal NAME" in the log.

Every moment that matters is appended to `TFQA_CHAOS_LOG` (one line each:
"fit_begin STEP", "step STEP", "save_begin STEP", "save_end STEP",
"eval_begin STEP", "eval_end STEP", "export_begin", "export_end", ...),
unbuffered, so the campaign knows where a kill landed and what a resume
redid. Training faults go in through training.TrainingHooks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
  sys.path.insert(0, _REPO)


def _plan():
  return json.loads(os.environ.get("TFQA_CHAOS", '{"kill": "none"}'))


def _mark(event: str) -> None:
  path = os.environ.get("TFQA_CHAOS_LOG")
  if not path:
    return
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(fd, f"{event} {time.monotonic():.6f}\n".encode())
  finally:
    os.close(fd)


_SENT = []


def _die(reason: str) -> None:
  name = _plan().get("signal", "SIGKILL")
  if _SENT:  # A signal plan fires once.
    return
  _SENT.append(name)
  _mark(f"kill {reason}")
  if name != "SIGKILL":
    _mark(f"signal {name}")
  os.kill(os.getpid(), getattr(signal, name))


def _die_later(seconds: float, reason: str) -> None:
  timer = threading.Timer(seconds, _die, args=(reason,))
  timer.daemon = True
  timer.start()


def _training_hooks(plan):
  """training.TrainingHooks that log each moment and kill as planned.

  Two finer points have no tfqa hook and are wrapped here instead: TF's
  update of the `checkpoint` state file (between a save's files and its
  state file) and, for "after_logits"/"mid_write", the public
  inference.answering.logits_of and io_utils.atomic_write_json.
  """
  from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=import-outside-toplevel

  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel

  kill = plan["kill"]
  counts = {"step": 0, "save": 0, "fit": 0, "eval": 0}

  def fit_begin(step):
    counts["fit"] += 1
    _mark(f"fit_begin {step}")
    if kill == "timer" and counts["fit"] == 1:
      _die_later(plan["seconds"], "timer")

  def after_step(step):
    # The step has run, with its evaluation and save if due.
    _mark(f"step {step}")
    counts["step"] += 1
    if kill == "step" and counts["step"] == plan["n"]:
      _die("step")

  def before_save(step):
    counts["save"] += 1
    _mark(f"save_begin {step}")
    if kill == "in_save" and counts["save"] == plan["n"]:
      _die_later(plan["ms"] / 1000.0, "in_save")

  def after_save(step):
    _mark(f"save_end {step}")

  def after_micro_batch(step, index):
    if (kill == "micro" and counts["step"] + 1 == plan["n"] and
        index == plan["index"]):
      _die("micro")

  update_state = checkpoint_management.update_checkpoint_state_internal

  def update_checkpoint_state_internal(*args, **kwargs):
    if kill == "before_state" and counts["save"] == plan["n"]:
      _die("before_state")
    return update_state(*args, **kwargs)

  checkpoint_management.update_checkpoint_state_internal = (
      update_checkpoint_state_internal)
  eval_point = _EvalKills(plan, counts)
  return trainer.TrainingHooks(
      fit_begin=fit_begin, after_step=after_step, before_save=before_save,
      after_save=after_save, after_micro_batch=after_micro_batch,
      before_eval=eval_point.begin,
      after_eval=eval_point.end,
      training_done=lambda model: counts.update(trained=True))


class _EvalKills:
  """Marks evaluations and kills inside the planned one.

  {"kill": "eval", "point": P}: the evaluation at the end of training;
  {"kill": "mid_eval", "n": N, "point": P}: the N-th evaluation during
  training of this process.
  """

  def __init__(self, plan, counts):
    from tfqa.inference import answering  # pylint: disable=import-outside-toplevel
    from tfqa.layout import json_files  # pylint: disable=import-outside-toplevel

    self._plan, self._counts = plan, counts
    self._armed = False
    self._writes = 0
    window_logits = answering.logits_of
    write_json = json_files.atomic_write_json

    def chaos_window_logits(*args, **kwargs):
      result = window_logits(*args, **kwargs)
      if self._armed and self._plan["point"] == "after_logits":
        _die(self._reason("after_logits"))
      return result

    def chaos_write_json(path, obj):
      write_json(path, obj)
      if self._armed:
        self._writes += 1
        if self._plan["point"] == "mid_write" and self._writes == 1:
          _die(self._reason("mid_write"))

    answering.logits_of = chaos_window_logits
    json_files.atomic_write_json = chaos_write_json

  def _reason(self, point):
    return f"{'mid_' if self._plan['kill'] == 'mid_eval' else ''}eval_{point}"

  def begin(self, step):
    _mark(f"eval_begin {step}")
    kill = self._plan["kill"]
    if kill == "mid_eval" and not self._counts.get("trained"):
      self._counts["eval"] += 1
      self._armed = self._counts["eval"] == self._plan["n"]
    else:
      self._armed = kill == "eval" and self._counts.get("trained", False)
    self._writes = 0
    if self._armed and self._plan["point"] == "start":
      _die(self._reason("start"))

  def end(self, step):
    self._armed = False
    _mark(f"eval_end {step}")


def _patch_export(plan):
  """Wraps export_model to pass ExportHooks that mark stages and kill at one."""
  from tfqa import export  # pylint: disable=import-outside-toplevel

  kill = plan["kill"]
  point = plan.get("point") if kill == "export" else None
  model = export.export_model
  # ExportHooks stages -> the events (and kill points) of this tool.
  events = {"saved_model": "after_saved_model",
            "pretrained": "after_pretrained", "verify": "after_verify",
            "published_pretrained": "after_publish"}

  def after_stage(stage, path):  # pylint: disable=unused-argument
    event = events.get(stage)
    if event is None:
      return
    _mark(event)
    if point == event:
      _die(event)

  def rename(source, destination):
    os.rename(source, destination)
    if point == "publish_aside" and os.path.basename(destination).startswith(
        ".old-"):
      _die("publish_aside")

  hooks = export.ExportHooks(after_stage=after_stage,
                             publisher=export.Publisher(rename=rename))

  def export_model(**kwargs):
    _mark("export_begin")
    if kill == "timer":
      _die_later(plan["seconds"], "timer")
    result = model(**kwargs, hooks=hooks)
    _mark("export_end")
    return result

  # The CLI calls export.export_model: give it the hooks.
  export.export_model = export_model


def main():
  tool, args = sys.argv[1], sys.argv[1:]
  plan = _plan()
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  if tool == "train":
    from tfqa.cli import train  # pylint: disable=import-outside-toplevel
    hooks = _training_hooks(plan)
    sys.argv = ["tfqa_train", *args[1:]]
    train.run(hooks=hooks)
  elif tool == "export":
    from tfqa.cli import export as export_cli  # pylint: disable=import-outside-toplevel
    _patch_export(plan)
    sys.argv = ["tfqa_export", *args[1:]]
    export_cli.run()
  else:
    sys.exit(f"chaos.py: unknown tool {tool!r}; expected train or export.")


if __name__ == "__main__":
  main()
