"""tfqa_train / tfqa_export that SIGKILL themselves at a planned moment (for the campaigns).

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
  {"kill": "eval", "point": P}              evaluation: "start", "after_logits",
                                            "mid_write" (after its first file)
  {"kill": "export", "point": P}            export: "after_saved_model",
                                            "after_pretrained", "after_verify",
                                            "publish_aside" (pretrained/ renamed
                                            aside, new one not yet in),
                                            "after_publish" (before manifest)

Every moment that matters is appended to `TFQA_CHAOS_LOG` (one line each:
"fit_begin STEP", "step STEP", "save_begin STEP", "save_end STEP",
"eval_begin", "eval_end", "export_begin", "export_end", ...), unbuffered, so
the campaign knows where a kill landed and what a resume redid.
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


def _die(reason: str) -> None:
  _mark(f"kill {reason}")
  os.kill(os.getpid(), signal.SIGKILL)


def _die_later(seconds: float, reason: str) -> None:
  timer = threading.Timer(seconds, _die, args=(reason,))
  timer.daemon = True
  timer.start()


def _patch_training(plan):
  from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=import-outside-toplevel

  from tfqa import checkpointing  # pylint: disable=import-outside-toplevel
  from tfqa import evaluation  # pylint: disable=import-outside-toplevel
  from tfqa import io_utils  # pylint: disable=import-outside-toplevel
  from tfqa import training  # pylint: disable=import-outside-toplevel

  kill = plan["kill"]
  counts = {"step": 0, "save": 0, "fit": 0}
  saver_cls = training._PeriodicSave  # pylint: disable=protected-access
  end_step = saver_cls.on_train_batch_end

  def on_train_begin(self, logs=None):
    counts["fit"] += 1
    _mark(f"fit_begin {self._saver.step}")  # pylint: disable=protected-access
    if kill == "timer" and counts["fit"] == 1:
      _die_later(plan["seconds"], "timer")

  def on_train_batch_end(self, batch, logs=None):
    # The step has run (its save, if any, comes next).
    _mark(f"step {self._saver.step}")  # pylint: disable=protected-access
    end_step(self, batch, logs)
    counts["step"] += 1
    if kill == "step" and counts["step"] == plan["n"]:
      _die("step")

  saver_cls.on_train_begin = on_train_begin
  saver_cls.on_train_batch_end = on_train_batch_end

  save = checkpointing.save

  def chaos_save(manager, state):
    counts["save"] += 1
    step = int(state.step.numpy())
    _mark(f"save_begin {step}")
    if kill == "in_save" and counts["save"] == plan["n"]:
      _die_later(plan["ms"] / 1000.0, "in_save")
    path = save(manager, state)
    _mark(f"save_end {step}")
    return path

  checkpointing.save = chaos_save
  update_state = checkpoint_management.update_checkpoint_state_internal

  def update_checkpoint_state_internal(*args, **kwargs):
    if kill == "before_state" and counts["save"] == plan["n"]:
      _die("before_state")
    return update_state(*args, **kwargs)

  checkpoint_management.update_checkpoint_state_internal = (
      update_checkpoint_state_internal)
  _patch_evaluation(plan, training, evaluation, io_utils)


def _patch_evaluation(plan, training, evaluation, io_utils):
  point = plan.get("point") if plan["kill"] == "eval" else None
  evaluate = evaluation.evaluate
  window_logits = evaluation.model_logits
  write_json = io_utils.atomic_write_json
  in_eval = {"writes": 0, "on": False}

  def chaos_evaluate(*args, **kwargs):
    _mark("eval_begin")
    in_eval["on"] = True
    if point == "start":
      _die("eval_start")
    return evaluate(*args, **kwargs)

  def chaos_window_logits(*args, **kwargs):
    result = window_logits(*args, **kwargs)
    if point == "after_logits" and in_eval["on"]:
      _die("eval_after_logits")
    return result

  def chaos_write_json(path, obj):
    write_json(path, obj)
    if in_eval["on"]:
      in_eval["writes"] += 1
      if point == "mid_write" and in_eval["writes"] == 1:
        _die("eval_mid_write")

  evaluation.evaluate = chaos_evaluate
  evaluation.model_logits = chaos_window_logits
  io_utils.atomic_write_json = chaos_write_json
  end = training._evaluate_at_end  # pylint: disable=protected-access

  def evaluate_at_end(*args, **kwargs):
    metrics = end(*args, **kwargs)
    _mark("eval_end")
    return metrics

  training._evaluate_at_end = evaluate_at_end  # pylint: disable=protected-access


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
    _patch_training(plan)
    sys.argv = ["tfqa_train", *args[1:]]
    train.run()
  elif tool == "export":
    from tfqa.cli import export as export_cli  # pylint: disable=import-outside-toplevel
    _patch_export(plan)
    sys.argv = ["tfqa_export", *args[1:]]
    export_cli.run()
  else:
    sys.exit(f"chaos.py: unknown tool {tool!r}; expected train or export.")


if __name__ == "__main__":
  main()
