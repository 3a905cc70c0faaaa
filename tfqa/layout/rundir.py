"""The run directory's `run_config.json`: written once, read strictly, guarding resumed runs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import socket
import threading
import time

import filelock

import tfqa
from tfqa import config as config_lib
from tfqa import errors
from tfqa import pins
from tfqa.layout import fs
from tfqa.layout import json_files

# The layout of a run directory (--model_dir).
RUN_CONFIG_FILE = "run_config.json"
TRAIN_LOG_FILE = "train_log.jsonl"  # one JSON line per step: loss, LR
TOKENIZER_SUBDIR = "tokenizer"  # save_pretrained tokenizer of the run
BERT_CONFIG_FILE = "bert_config.json"  # the architecture, for eval/export
EVAL_SUBDIR = "eval"  # outputs of the end-of-training evaluation
EVAL_STEP_SUBDIR = "step-{step}"  # eval/step-N: evaluation during training
BEST_SUBDIR = "best"  # --keep_best's checkpoint, outside the rotation
BEST_RECORD_FILE = "best_checkpoint.json"  # which one it is, step, metrics
LOGS_SUBDIR = "logs"  # TensorBoard
CHECKPOINT_SUBDIR = "checkpoints"  # CHECKPOINT_NAME-<step>.index/.data-*
CHECKPOINT_NAME = "ckpt"
# One trainer per run directory (TrainerLock). Local: LOCK_FILE is flock'd
# (filelock), and the kernel drops the lock when its process dies;
# OWNER_FILE says who holds it. Elsewhere (gs://): LEASE_FILE names the
# owner and its last heartbeat.
LOCK_FILE = ".tfqa-train.lock"
OWNER_FILE = ".tfqa-train.owner.json"
LEASE_FILE = ".tfqa-train.lease.json"
# A lease not renewed for this long is free: a trainer killed on another
# host blocks its directory this long at most (on the same host, not at all).
LEASE_SECONDS = 120.0
HEARTBEAT_SECONDS = 30.0  # how often a live trainer renews its lease
# run_config.json's SHA-256 of its settings (not of "versions"): a damaged
# file that still parses (a flipped digit) is refused, not resumed from.
SETTINGS_DIGEST_KEY = "settings_sha256"
# Settings a resumed run may change. Everything else would make the resumed
# run a different run (other data order, model or schedule shape);
# model.init_checkpoint only matters at the start and may not change.
SAFE_TO_CHANGE = frozenset({
    "train.num_train_epochs",  # extend a run; the LR schedule is re-spanned
    "train.max_steps",
    "train.eval_batch_size",
    "train.save_every_steps",
    "train.keep_checkpoints",
    # Evaluations and the best checkpoint do not touch the training state.
    # A best kept by another metric is replaced at the next evaluation.
    "train.eval_every_steps",
    "train.keep_best",
    # Same windows per step, same schedule: only float rounding changes
    # (as with the distribution strategy), e.g. to fit a smaller GPU.
    "train.gradient_accumulation_steps",
    "train.distribution_strategy",
    "train.tpu",
    "train.jit_compile",
    "train.require_gpu",
    "data.eval_file",
    "decode.n_best_size",
    "decode.max_answer_length",
    "decode.null_score_diff_threshold",
    "decode.span_scoring",
})


def versions() -> dict:
  """Versions of the software a run used (recorded, never compared).

  The installed distributions' versions (what tf.__version__ and
  transformers.__version__ say), read without importing them: this module
  reads run directories before TensorFlow loads.
  """
  return {"tfqa": tfqa.__version__,
          "tensorflow": pins.installed_version("tensorflow"),
          "transformers": pins.installed_version("transformers"),
          "python": platform.python_version()}


def run_config_path(model_dir: str) -> str:
  return os.path.join(model_dir, RUN_CONFIG_FILE)


def checkpoints_on_disk(model_dir: str) -> list[str]:
  """Prefixes of the run's checkpoints whose index file exists, oldest first.

  A listing for messages: whether each is readable is checkpointing's job.
  """
  prefixes = [path[:-len(".index")] for path in fs.glob(
      os.path.join(model_dir, CHECKPOINT_SUBDIR),
      CHECKPOINT_NAME + "-*.index")]
  return sorted(prefixes, key=checkpoint_step)


def checkpoint_step(prefix: str) -> int:
  """The step in a checkpoint prefix (".../ckpt-12" -> 12), or -1."""
  step = prefix.rsplit("-", 1)[-1]
  return int(step) if step.isdigit() else -1


def read_run_config(model_dir: str) -> config_lib.RunConfig | None:
  """The saved config, or None when the directory has none yet.

  Raises:
    ValueError: the file is damaged (invalid JSON, unknown or ill-typed
      fields, settings that do not match their recorded SHA-256).
  """
  path = run_config_path(model_dir)
  if not fs.exists(path):
    return None
  obj = json_files.read_json(path, what="the run config")
  recorded = obj.pop(SETTINGS_DIGEST_KEY, None) if isinstance(obj,
                                                              dict) else None
  run_config = config_lib.RunConfig.from_dict(obj, source=path)
  # Files written before the digest existed have none; they are trusted.
  if recorded is not None and recorded != settings_digest(run_config):
    raise ValueError(
        f"{path}: the run config is damaged: its settings do not match the "
        f"SHA-256 recorded in it ({SETTINGS_DIGEST_KEY}={recorded!r}), so "
        f"resuming could silently change the run. Restore the file from a "
        f"backup; if you edited it on purpose, delete its "
        f"{SETTINGS_DIGEST_KEY!r} field.")
  return run_config


def settings_digest(run_config: config_lib.RunConfig) -> str:
  """SHA-256 (hex) of the settings as canonical JSON."""
  canonical = json.dumps(run_config.to_dict(), sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False)
  return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_run_config(model_dir: str, run_config: config_lib.RunConfig) -> None:
  obj = run_config.to_dict()
  obj["versions"] = versions()
  obj[SETTINGS_DIGEST_KEY] = settings_digest(run_config)
  json_files.atomic_write_json(run_config_path(model_dir), obj)


def record_run_config(model_dir: str,
                      run_config: config_lib.RunConfig) -> None:
  """Writes run_config.json unless it holds these settings already (its
  recorded versions stay those the run started with)."""
  try:
    saved = read_run_config(model_dir)
  except ValueError:
    saved = None  # Damaged: replaced (reconcile found no progress to guard).
  if saved is None or saved.changed_fields(run_config):
    write_run_config(model_dir, run_config)


def with_overrides(run_config: config_lib.RunConfig,
                   overrides: dict) -> config_lib.RunConfig:
  """Copy of `run_config` with dotted-name overrides ("train.seed": 3)."""
  sections = {}
  for dotted, value in overrides.items():
    section, _, name = dotted.partition(".")
    if not hasattr(run_config, section) or not hasattr(
        getattr(run_config, section), name):
      raise ValueError(f"Unknown setting {dotted!r}.")
    sections.setdefault(section, {})[name] = value
  return dataclasses.replace(run_config, **{
      section: dataclasses.replace(getattr(run_config, section), **values)
      for section, values in sections.items()})


def reconcile(model_dir: str, run_config: config_lib.RunConfig, *,
              write: bool = True,
              has_progress: bool = True) -> config_lib.RunConfig:
  """Checks `run_config` against the directory's saved one and records it.

  A new directory gets `run_config` written. In a directory of an earlier
  run, only SAFE_TO_CHANGE settings may differ; the updated config is saved.
  With write=False (a non-chief worker) nothing is written. With
  has_progress=False (no checkpoint yet: an earlier start failed before
  training, e.g. on a wrong flag), the saved config guards nothing and is
  replaced.

  Raises:
    ValueError: naming every setting that differs and may not change.
  """
  saved = read_run_config(model_dir) if has_progress else None
  if saved is not None:
    changed = saved.changed_fields(run_config)
    unsafe = [name for name in changed if name not in SAFE_TO_CHANGE]
    if unsafe:
      saved_dict, new_dict = saved.to_dict(), run_config.to_dict()
      fields = [name.split(".")[1] for name in unsafe]
      lines = [f"  {{{field}}}: " + errors.literal(
          f"this run {_get(new_dict, name)!r}, saved "
          f"{_get(saved_dict, name)!r}") for field, name in zip(fields, unsafe)]
      safe = ", ".join(sorted(s.split(".")[1] for s in SAFE_TO_CHANGE))
      raise errors.ArgumentNamingError(
          errors.literal(f"{run_config_path(model_dir)} belongs to a run with "
                         f"other settings; resuming would silently change "
                         f"them:\n") + "\n".join(lines) +
          "\nRe-run with only {model_dir}=" + errors.literal(model_dir) +
          " to resume as saved, or use a new {model_dir}. Settings that may "
          "change on resume: " + errors.literal(safe) + ".",
          [*fields, "model_dir"])
    if not changed:
      return saved
  if write:
    write_run_config(model_dir, run_config)
  return run_config


def _get(obj, dotted):
  section, name = dotted.split(".")
  return obj[section][name]


class RunLockedError(ValueError):
  """Another live trainer holds the run directory."""


class TrainerLock:
  """Holds a run directory for one trainer: a second one is refused.

  A context manager (the chief's, in training.train_and_evaluate). On a
  local path, filelock's OS lock on LOCK_FILE: a killed owner's lock goes
  with its process. On a URL, a lease file renewed every
  `heartbeat_seconds` by a daemon thread: it is free once it is
  `lease_seconds` old, or at once when its owner was on this host and that
  process is gone. An object store has no compare-and-swap, so two trainers
  started within the same moment on gs:// can both pass; the lease is read
  back after it is written, which narrows that to the store's latency.
  Readers (tfqa_eval, tfqa_export) take no lock.
  """

  def __init__(self, model_dir: str, *, lease_seconds: float = LEASE_SECONDS,
               heartbeat_seconds: float = HEARTBEAT_SECONDS,
               clock=time.time):
    self._model_dir = model_dir
    self._lease_seconds, self._heartbeat_seconds = (lease_seconds,
                                                    heartbeat_seconds)
    self._clock = clock
    self._owner = {"host": socket.gethostname(), "pid": os.getpid(),
                   "since": _utc(clock()), "token": os.urandom(8).hex()}
    self._file_lock = None
    self._stop = threading.Event()
    self._heartbeat = None

  def __enter__(self) -> "TrainerLock":
    self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()

  def acquire(self) -> None:
    """Takes the directory (created beforehand).

    Raises:
      RunLockedError: a live trainer holds it (naming host, pid and since
        when). Nothing was written.
    """
    if fs.is_url(self._model_dir):
      self._take_lease()
      return
    lock = filelock.FileLock(os.path.join(self._model_dir, LOCK_FILE),
                             timeout=0)
    try:
      lock.acquire()
    except filelock.Timeout:
      raise RunLockedError(self._refusal(_read_owner(
          os.path.join(self._model_dir, OWNER_FILE)))) from None
    self._file_lock = lock
    try:
      fs.write_json(os.path.join(self._model_dir, OWNER_FILE), self._owner)
    except BaseException:  # e.g. a full disk: the error is the caller's
      self.release()
      raise

  def release(self) -> None:
    if self._file_lock is not None:
      fs.remove(os.path.join(self._model_dir, OWNER_FILE), missing_ok=True)
      self._file_lock.release()
      self._file_lock = None
    if self._heartbeat is not None:
      self._stop.set()
      self._heartbeat.join()
      self._heartbeat = None
      path = os.path.join(self._model_dir, LEASE_FILE)
      if (_read_owner(path) or {}).get("token") == self._owner["token"]:
        fs.remove(path, missing_ok=True)

  def _take_lease(self):
    path = os.path.join(self._model_dir, LEASE_FILE)
    holder = _read_owner(path)
    if holder is not None and self._is_live(holder):
      raise RunLockedError(self._refusal(holder))
    self._renew()
    holder = _read_owner(path)
    if (holder or {}).get("token") != self._owner["token"]:
      raise RunLockedError(self._refusal(holder))  # lost a race
    self._stop.clear()
    self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                       name="tfqa-lease-heartbeat")
    self._heartbeat.start()

  def _is_live(self, holder):
    if holder.get("host") == self._owner["host"]:
      return process_alive(holder.get("pid"))
    heartbeat = holder.get("heartbeat")
    return (isinstance(heartbeat, (int, float)) and
            self._clock() < heartbeat + holder.get("lease_seconds", 0))

  def _renew(self):
    fs.write_json(os.path.join(self._model_dir, LEASE_FILE), {
        **self._owner, "heartbeat": self._clock(),
        "lease_seconds": self._lease_seconds})

  def _beat(self):
    while not self._stop.wait(self._heartbeat_seconds):
      try:
        self._renew()
      except Exception:  # pylint: disable=broad-except
        pass  # the next beat tries again; the lease outlives a few misses

  def _refusal(self, holder):
    who = ("another process" if not holder else
           f"another process (host {holder.get('host')}, pid "
           f"{holder.get('pid')}, since {holder.get('since')})")
    return (f"{self._model_dir} is being trained by {who}; a second trainer "
            f"would overwrite its checkpoints, so this one did not start "
            f"and wrote nothing. Wait for it to end (or stop it), or use "
            f"another --model_dir.")


def _read_owner(path):
  """The owner record at `path`; None when there is none or it is damaged."""
  try:
    owner = json.loads(fs.read_text(path))
  except (OSError, ValueError):
    return None
  return owner if isinstance(owner, dict) else None


def process_alive(pid) -> bool:
  """Whether process `pid` of this host is running (this one is)."""
  if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # another user's live process
  return True


def _utc(seconds: float) -> str:
  return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
