"""Claims on a study's runs, so that several processes can share one results file.

Before a process trains a run it writes `<results>.claims/<key>` (its host
and pid), under an flock of the claims directory so that two processes
cannot both take one run; another process finding the claim skips the run.
A claim whose process has died on this host (killed with the session, say)
is stale: the next process takes it over, so an interrupted run is trained
again. A claim from another host cannot be checked and is left alone
(delete its file to take it over). The flock needs a local filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket


def claims_dir(results: str) -> str:
  """Where the claims on the runs of `results` live."""
  return results + ".claims"


def holder(directory: str, key: str) -> dict | None:
  """{"host", "pid"} of the live claim on `key`, or None when it is free."""
  with _locked(directory):
    return _live_holder(os.path.join(directory, key))


def claim(directory: str, key: str) -> bool:
  """Claims `key` for this process; False when a live process holds it."""
  with _locked(directory):
    path = os.path.join(directory, key)
    if _live_holder(path) is not None:
      return False
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
    return True


def release(directory: str, key: str) -> None:
  """Drops this process's claim on `key`."""
  with _locked(directory):
    try:
      os.remove(os.path.join(directory, key))
    except FileNotFoundError:
      pass


def append_line(path: str, line: str) -> None:
  """Appends one line in a single write, whole beside other appenders."""
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(fd, (line + "\n").encode("utf-8"))
  finally:
    os.close(fd)


@contextlib.contextmanager
def _locked(directory):
  """The claims directory's lock (flock: dropped when its process dies)."""
  os.makedirs(directory, exist_ok=True)
  fd = os.open(os.path.join(directory, ".lock"), os.O_CREAT | os.O_RDWR,
               0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


def _live_holder(path):
  try:
    with open(path, encoding="utf-8") as f:
      found = json.load(f)
  except FileNotFoundError:
    return None
  except ValueError:
    return None  # cut by a kill while written: its writer is gone
  if found.get("host") == socket.gethostname() and not _alive(found["pid"]):
    return None  # stale: its process has died
  return found


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's live process
  return True
