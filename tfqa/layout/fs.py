"""Every file operation on a user's path: local paths through `os`, URLs (gs://, ram://, s3://) through `tf.io.gfile`.

The one module under tfqa/ that touches run, export and data paths
(tests/test_architecture.py enforces it). Local paths stay on `os`, without
TensorFlow: the CLIs check their inputs before TensorFlow is imported, and
local atomic writes are fsync'd (TensorFlow's local files are not). A path
with "://" goes to `tf.io.gfile`, imported on first use.

What a URL file system does not give: a rename there is a copy and a
delete (gs:// has no rename, ram:// none for directories), so an "atomic"
write on gs:// is only as atomic as one object upload (a reader sees the
old or the new object, never a part), and a directory rename is not atomic.
Libraries that need local files (tf2onnx, TFLite, the Hugging Face
tokenizer and model files) work in a local temporary directory that is
copied from or to the URL (`local_dir_for`, `local_copy`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import os
import shutil
import tempfile
from typing import IO, Iterator


def is_url(path: str) -> bool:
  """Whether `path` names a file system other than the local one."""
  return "://" in str(path)


def _gfile():
  # Only URL paths (gs://, ram://) need TensorFlow's file systems: local
  # paths use os, so the input checks run before TensorFlow loads.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


def _not_found():
  # For URL paths only, as _gfile.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.errors.NotFoundError


# TensorFlow's in-memory file system matches names as strings: it calls
# any prefix of a name a directory ("ram://r/ckpt-1" for
# "ram://r/ckpt-12.index") and lists "r/assets" with ".extra" when
# "r/assets.extra/" exists. Its answers are checked against listings; other
# file systems (gs:// looks for "NAME/") need no check.
_STRING_PREFIX_SCHEMES = ("ram://",)


def _listed(path: str) -> bool:
  """Whether a URL's parent lists its name (see _STRING_PREFIX_SCHEMES)."""
  if not path.startswith(_STRING_PREFIX_SCHEMES):
    return True
  rest = path.rstrip("/").partition("://")[2]
  if "/" not in rest:
    return True  # the file system's root
  parent, name = os.path.split(path.rstrip("/"))
  try:
    if name in listdir(parent):
      return True
  except FileNotFoundError:
    pass
  try:  # A directory never made, implied by the files written under it.
    return bool(listdir(path))
  except FileNotFoundError:
    return False


def exists(path: str) -> bool:
  if not is_url(path):
    return os.path.exists(path)
  return _gfile().exists(path) and _listed(path)


def isdir(path: str) -> bool:
  if not is_url(path):
    return os.path.isdir(path)
  return _gfile().isdir(path) and _listed(path)


def isfile(path: str) -> bool:
  if not is_url(path):
    return os.path.isfile(path)
  return exists(path) and not _gfile().isdir(path)


def getsize(path: str) -> int:
  if not is_url(path):
    return os.path.getsize(path)
  return _gfile().stat(path).length


def getmtime(path: str) -> float:
  """Seconds since the epoch (0 where the file system keeps no time)."""
  if not is_url(path):
    return os.path.getmtime(path)
  return _gfile().stat(path).mtime_nsec / 1e9


def makedirs(path: str) -> None:
  """Creates `path` and its parents; an existing directory is fine."""
  if not is_url(path):
    os.makedirs(path, exist_ok=True)
  else:
    _gfile().makedirs(path)


def listdir(path: str) -> list[str]:
  """The names in directory `path`, sorted.

  Raises:
    FileNotFoundError: `path` is not a directory (URLs alike).
  """
  if not is_url(path):
    return sorted(os.listdir(path))
  try:
    names = _gfile().listdir(path)
  except _not_found():
    raise FileNotFoundError(f"No such directory: {path}") from None
  # Object stores list "sub/" for a directory.
  names = {name.rstrip("/") for name in names}
  if path.startswith(_STRING_PREFIX_SCHEMES):
    names = {name for name in names
             if _gfile().exists(join(path, name))}
  return sorted(names)


def glob(directory: str, pattern: str) -> list[str]:
  """Paths in `directory` whose name matches `pattern` (fnmatch), sorted.

  The directory is taken literally (no escaping needed); none is [].
  """
  try:
    names = listdir(directory)
  except (FileNotFoundError, NotADirectoryError):
    return []
  return [join(directory, name) for name in names
          if fnmatch.fnmatchcase(name, pattern)]


def walk_files(directory: str) -> list[str]:
  """Every file under `directory`, as sorted "/"-separated relative paths.

  Locally as os.walk finds them (links to directories not followed).
  """
  if not is_url(directory):
    return sorted(
        os.path.relpath(os.path.join(root, name), directory).replace(
            os.sep, "/")
        for root, _, files in os.walk(directory) for name in files)
  found = []
  for name in listdir(directory):
    path = join(directory, name)
    if isdir(path):
      found += [f"{name}/{inner}" for inner in walk_files(path)]
    else:
      found.append(name)
  return sorted(found)


def join(*parts: str) -> str:
  """os.path.join, which keeps "gs://b/x" intact."""
  return os.path.join(*parts)


def abspath(path: str) -> str:
  """The absolute form of a local path; a URL as given."""
  return path if is_url(path) else os.path.abspath(path)


def realpath(path: str) -> str:
  """Symbolic links resolved for a local path; a URL as given (none there)."""
  return path if is_url(path) else os.path.realpath(path)


def remove(path: str, *, missing_ok: bool = False) -> None:
  """Deletes file `path`."""
  if not is_url(path):
    try:
      os.remove(path)
    except FileNotFoundError:
      if not missing_ok:
        raise
    return
  try:
    _gfile().remove(path)
  except _not_found():
    if not missing_ok:
      raise FileNotFoundError(f"No such file: {path}") from None


def rmtree(path: str) -> None:
  """Deletes directory `path` and what it holds; best effort, none is fine.

  Callers clean up staging and leftovers with it, where a failure to delete
  must not hide the error that led there.
  """
  if not is_url(path):
    shutil.rmtree(path, ignore_errors=True)
    return
  with contextlib.suppress(Exception):
    _gfile().rmtree(path)


def rename(source: str, target: str, *, overwrite: bool = False) -> None:
  """Moves file or directory `source` to `target`.

  Local: one os.rename/os.replace (atomic). A URL file is copied and deleted
  by the file system (not atomic on gs://); a URL directory is copied file
  by file, then deleted.

  Raises:
    FileExistsError: `target` exists and not overwrite (a directory target
      is never overwritten).
  """
  if not is_url(source) and not is_url(target):
    if not overwrite and os.path.lexists(target):
      raise FileExistsError(f"{target} exists")
    os.replace(source, target)
    return
  if exists(target) and (not overwrite or isdir(target) or isdir(source)):
    raise FileExistsError(f"{target} exists")
  if isdir(source):
    copytree(source, target)
    rmtree(source)
  else:
    _gfile().rename(source, target, overwrite=overwrite)


def copy(source: str, target: str) -> None:
  """Copies file `source` to `target` (replaced if it exists)."""
  if not is_url(source) and not is_url(target):
    shutil.copyfile(source, target)
  else:
    _gfile().copy(source, target, overwrite=True)


def copytree(source: str, target: str) -> None:
  """Copies directory `source` into `target` (created), file by file."""
  makedirs(target)
  for relative in walk_files(source):
    parent = os.path.dirname(relative)
    if parent:
      makedirs(join(target, parent))
    copy(join(source, relative), join(target, relative))


def open_file(path: str, mode: str = "r") -> IO:
  """A file object for `path` ("r", "rb", "w", "wb", "a"); text is UTF-8."""
  if not is_url(path):
    if "b" in mode:
      return open(path, mode)  # pylint: disable=unspecified-encoding
    return open(path, mode, encoding="utf-8")
  return _gfile().GFile(path, mode)


def flush_to_disk(file: IO) -> None:
  """Flushes a file of open_file; a local one is fsync'd too."""
  file.flush()
  if isinstance(file, io.IOBase):  # not a tf.io.gfile.GFile
    os.fsync(file.fileno())


def read_bytes(path: str) -> bytes:
  """The file's bytes.

  Raises:
    FileNotFoundError: no file there (URLs alike).
  """
  if not is_url(path):
    with open(path, "rb") as f:
      return f.read()
  try:
    with _gfile().GFile(path, "rb") as f:
      return f.read()
  except _not_found():
    raise FileNotFoundError(f"No such file: {path}") from None


def read_text(path: str) -> str:
  return read_bytes(path).decode("utf-8")


def write_text(path: str, text: str) -> None:
  """Replaces `path` with `text` (UTF-8) whole: a reader sees old or new.

  Written to a temporary name beside it, then renamed over it. Locally the
  data is fsync'd first; on gs:// the rename is a copy and a delete, and
  what makes the write whole is that one object upload is.
  """
  if is_url(path):
    _write_url_atomically(path, text.encode("utf-8"))
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
  try:
    # mkstemp makes the file private (0600); give it the mode open() would,
    # so that a server or reader running as another user can read it.
    os.fchmod(fd, _default_file_mode())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def _write_url_atomically(path, data):
  directory, name = os.path.split(path)
  makedirs(directory)
  tmp = join(directory, f".tmp-{name}-{os.getpid()}-{os.urandom(4).hex()}")
  try:
    with _gfile().GFile(tmp, "wb") as f:
      f.write(data)
    _gfile().rename(tmp, path, overwrite=True)
  except BaseException:
    remove(tmp, missing_ok=True)
    raise


def _default_file_mode() -> int:
  umask = os.umask(0)
  os.umask(umask)
  return 0o666 & ~umask


def write_json(path: str, obj) -> None:
  """Writes `obj` as pretty UTF-8 JSON, whole (write_text); refuses NaN/inf."""
  write_text(path, json.dumps(obj, indent=2, ensure_ascii=False,
                              allow_nan=False) + "\n")


@contextlib.contextmanager
def local_dir_for(target: str) -> Iterator[str]:
  """A local directory to write what becomes directory `target`.

  For libraries that write only local files. A local `target` is given as
  is (created); for a URL, a temporary directory whose files are copied to
  `target` when the block ends without an error, then deleted.
  """
  if not is_url(target):
    makedirs(target)
    yield target
    return
  with tempfile.TemporaryDirectory(prefix="tfqa-staging-") as local:
    yield local
    copytree(local, target)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """A local path holding file or directory `path`, for libraries that read
  only local files: `path` itself, or a temporary copy of a URL's."""
  if not is_url(path):
    yield path
    return
  with tempfile.TemporaryDirectory(prefix="tfqa-staging-") as local:
    copied = os.path.join(local, os.path.basename(path.rstrip("/")) or "x")
    if isdir(path):
      copytree(path, copied)
    else:
      copy(path, copied)
    yield copied


def make_local_temp_dir(*, prefix: str) -> str:
  """A new local temporary directory (the caller deletes it: rmtree)."""
  return tempfile.mkdtemp(prefix=prefix)


@contextlib.contextmanager
def local_temp_dir(*, prefix: str = "tfqa-") -> Iterator[str]:
  """A local temporary directory, deleted when the block ends."""
  with tempfile.TemporaryDirectory(prefix=prefix) as local:
    yield local
