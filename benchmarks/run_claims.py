"""Claims on a study's runs, so that several processes can share one results file.

Before a process trains a run it writes `<results>.claims/<key>` (its host
and pid), under a lock of the claims directory (filelock, as tfqa's run
lock) so that two processes cannot both take one run; another process
finding the claim skips the run.
A claim whose process has died on this host (killed with the session, say)
is stale: the next process takes it over, so an interrupted run is trained
again. A claim from another host cannot be checked and is left alone
(delete its file to take it over). The lock needs a local filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket

import filelock

from tfqa.layout import rundir


def claims_dir(results: str) -> str:
  """Where the claims on the runs of `results` live."""
  return results + ".claims"


def holder(directory: str, key: str) -> dict | None:
  """{"host", "pid"} of the live claim on `key`, or None when it is free."""
  with locked(directory):
    return _live_holder(os.path.join(directory, key))


def claim(directory: str, key: str) -> bool:
  """Claims `key` for this process; False when a live process holds it."""
  with locked(directory):
    path = os.path.join(directory, key)
    if _live_holder(path) is not None:
      return False
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
    return True


def release(directory: str, key: str) -> None:
  """Drops this process's claim on `key`."""
  with locked(directory):
    try:
      os.remove(os.path.join(directory, key))
    except FileNotFoundError:
      pass


def append_line(path: str, line: str) -> None:
  """Appends one line to the results file `path`, whole, under its claims
  lock (so that a rewrite of the file under that lock loses no row)."""
  with locked(claims_dir(path)):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      os.write(fd, (line + "\n").encode("utf-8"))
    finally:
      os.close(fd)


@contextlib.contextmanager
def locked(directory: str):
  """The claims directory's lock (an OS lock: dropped when its process
  dies), which claims, releases and appends take."""
  os.makedirs(directory, exist_ok=True)
  with filelock.FileLock(os.path.join(directory, ".lock")):
    yield


def _live_holder(path):
  try:
    with open(path, encoding="utf-8") as f:
      found = json.load(f)
  except FileNotFoundError:
    return None
  except ValueError:
    return None  # cut by a kill while written: its writer is gone
  if (found.get("host") == socket.gethostname() and
      not rundir.process_alive(found.get("pid"))):
    return None  # stale: its process has died
  return found
