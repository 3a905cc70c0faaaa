"""Loads SQuAD JSON files or TFDS splits into validated `SquadExample`s."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import dataclasses
import json
from typing import Any

from absl import logging

from tfqa import config
from tfqa.data import json_checks
from tfqa.data import report as squad_report
from tfqa.layout import fs

# Path used in error messages for the top-level JSON value.
_ROOT_PATH = "<root>"


@dataclasses.dataclass(frozen=True)
class SquadExample:
  """One SQuAD question with its context and validated gold answers."""

  # Question id, unique within a dataset.
  id: str
  # Title of the article the context comes from ("" when the file has none).
  title: str
  # Question text.
  question: str
  # Paragraph the answers are spans of.
  context: str
  # Gold answers that survived validation; () for impossible questions.
  answer_texts: tuple[str, ...]
  # Character offsets into `context`, one per entry of `answer_texts`.
  answer_starts: tuple[int, ...]
  # SQuAD v2.0: the context does not answer the question.
  is_impossible: bool = False

  def __post_init__(self):
    if len(self.answer_texts) != len(self.answer_starts):
      raise ValueError(
          f"Invalid SquadExample {self.id!r}. Received: "
          f"{len(self.answer_texts)} answer_texts and "
          f"{len(self.answer_starts)} answer_starts. Expected one start per "
          f"answer text. Pass tuples of equal length.")
    if self.is_impossible and self.answer_texts:
      raise ValueError(
          f"Invalid SquadExample {self.id!r}. Received: is_impossible=True "
          f"with answer_texts={json_checks.short_repr(self.answer_texts)}. "
          f"Expected no "
          f"answers for an impossible question. Pass answer_texts=() and "
          f"answer_starts=(), or is_impossible=False.")


class SquadFormatError(ValueError):
  """A SQuAD file or record that does not follow the official format."""


@dataclasses.dataclass(frozen=True)
class SquadData:
  """Validated examples together with the report of how they were loaded."""

  # Examples in file (or TFDS) order.
  examples: tuple[SquadExample, ...]
  # What validation kept, realigned and dropped.
  report: squad_report.LoadReport

  @property
  def has_impossible(self) -> bool:
    """Whether any example is an impossible (SQuAD v2.0) question."""
    return any(example.is_impossible for example in self.examples)


def parse_squad(obj: Any, *, source: str = "<memory>") -> SquadData:
  """Validates an already-parsed SQuAD JSON object.

  Args:
    obj: The value of `json.load` on an official SQuAD v1.1 or v2.0 file.
    source: Name used for the data in error messages and the report.

  Returns:
    The examples that survived validation, and the load report.

  Raises:
    SquadFormatError: If `obj` does not follow the official SQuAD format.
  """
  parser = _Parser(source)
  parser.parse_root(obj)
  return parser.finish()


def load_squad_json(path: str) -> SquadData:
  """Reads and validates a SQuAD JSON file (local path or any tf.io.gfile URL).

  Args:
    path: Path of an official SQuAD v1.1 or v2.0 JSON file.

  Returns:
    The examples that survived validation, and the load report.

  Raises:
    FileNotFoundError: If `path` does not exist.
    SquadFormatError: If the file is not UTF-8, not JSON, or not SQuAD.
  """
  if not fs.exists(path):
    raise FileNotFoundError(
        f"SQuAD file not found. Received: path={path!r}. Expected an existing "
        f"SQuAD JSON file. Check the path, or download the official file "
        f"from https://rajpurkar.github.io/SQuAD-explorer/.")
  raw = fs.read_bytes(path)
  return parse_squad(_decode_json(raw, path), source=path)


def load_tfds_squad(name: str, *, split: str, data_dir: str | None = None,
                    download: bool = False) -> SquadData:
  """Loads a prepared TFDS SQuAD split and validates it like a JSON file.

  Args:
    name: "squad/v1.1" or "squad/v2.0".
    split: TFDS split, e.g. "train" or "validation".
    data_dir: TFDS data directory; None for the TFDS default.
    download: Whether TFDS may download and prepare missing data.

  Returns:
    The examples that survived validation, and the load report.

  Raises:
    ValueError: If `name` is not supported, or the data is absent and
      `download` is False.
    SquadFormatError: If a record is not valid SQuAD.
  """
  if name not in config.TFDS_NAMES:
    raise ValueError(
        f"Unsupported TFDS SQuAD dataset. Received: name={name!r}. Expected "
        f"one of {', '.join(config.TFDS_NAMES)}. Pass one of those names.")
  # Only --tfds_dataset needs tensorflow_datasets (which imports TensorFlow):
  # parsing SQuAD JSON, as tfqa_score and the input checks do, stays
  # TensorFlow-free (tests/test_evaluation_scoring.py).
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  try:
    dataset = tfds.load(name, split=split, data_dir=data_dir,
                        download=download)
  except (AssertionError, tfds.core.DatasetNotFoundError) as e:
    if download:
      raise
    raise _tfds_absent_error(name, split, data_dir, e) from e
  parser = _Parser(f"tfds:{name}[{split}]")
  for index, record in enumerate(tfds.as_numpy(dataset)):
    path = f"examples[{index}]"
    parser.parse_record(_tfds_record_to_json(record, parser.fail, path), path)
  return parser.finish()


def answerable_only(data: SquadData) -> SquadData:
  """Keeps the answerable questions (a SQuAD v1.1-style subset).

  Args:
    data: Loaded examples.

  Returns:
    The answerable examples; the report counts the removed ones under the
    dropped-example reason "is_impossible".
  """
  kept = tuple(ex for ex in data.examples if not ex.is_impossible)
  removed = [ex.id for ex in data.examples if ex.is_impossible]
  if not removed:
    return data
  report = data.report
  report = dataclasses.replace(
      report,
      num_examples=len(kept),
      dropped_examples={**report.dropped_examples,
                        "is_impossible": len(removed)},
      dropped_example_ids={
          **report.dropped_example_ids,
          "is_impossible": tuple(removed[:squad_report.MAX_REPORTED_IDS])},
  )
  return SquadData(examples=kept, report=report)


def gold_answers(examples: Iterable[SquadExample]) -> dict[str, list[str]]:
  """Maps question ids to gold answer texts, as SQuAD metrics expect.

  Args:
    examples: Validated examples.

  Returns:
    id -> answer texts; [] for impossible questions.
  """
  return {example.id: list(example.answer_texts) for example in examples}


def examples_from_text(questions: Sequence[str],
                       contexts: Sequence[str]) -> list[SquadExample]:
  """Unlabelled examples "0", "1", ... of question/context pairs."""
  return [SquadExample(id=str(i), title="", question=q, context=c,
                       answer_texts=(), answer_starts=())
          for i, (q, c) in enumerate(zip(questions, contexts))]


class _Parser:
  """Walks SQuAD JSON (or TFDS records), validating and collecting examples."""

  def __init__(self, source: str):
    self._source = source
    self._report = squad_report.ReportBuilder(source)
    self._id_paths: dict[str, str] = {}
    self._examples: list[SquadExample] = []

  def fail(self, path: str, expected: str, value: Any,
           fix: str = "") -> SquadFormatError:
    """Returns (for the caller to raise) an error naming source and path."""
    message = (f"{self._source}: {path}: expected {expected}, "
               f"got {json_checks.short_repr(value)}")
    return SquadFormatError(f"{message}. {fix}" if fix else message)

  def finish(self) -> SquadData:
    report = self._report.build(len(self._examples))
    if squad_report.changed_anything(report):
      logging.info("SQuAD load report:\n%s", report.summary())
    return SquadData(examples=tuple(self._examples), report=report)

  def parse_root(self, obj: Any) -> None:
    if not isinstance(obj, dict):
      raise self.fail(
          _ROOT_PATH, 'a JSON object with a "data" list', obj,
          "Pass an official SQuAD v1.1 or v2.0 file.")
    data = self._field(obj, "data", "", "a list of articles",
                       json_checks.is_list)
    for i, article in enumerate(data):
      self._parse_article(article, f"data[{i}]")

  def parse_record(self, record: Mapping[str, Any], path: str) -> None:
    """Parses one flat record: a qa object that also holds context, title."""
    title = self._field(record, "title", path, "a string",
                        json_checks.is_str, "")
    context = self._field(record, "context", path, "a non-empty string",
                          json_checks.is_nonempty_str)
    self._parse_qa(record, path, title=title, context=context)

  def _field(self, obj: Mapping[str, Any], key: str, path: str,
             expected: str, check: Callable[[Any], bool],
             default: Any = json_checks.MISSING) -> Any:
    value = obj.get(key, default)
    if value is json_checks.MISSING or not check(value):
      raise self.fail(json_checks.join(path, key), expected, value)
    if isinstance(value, str) and not json_checks.is_encodable(value):
      # JSON's "\ud800" escapes decode to lone surrogates, which no
      # tokenizer or tf.string can take.
      raise self.fail(json_checks.join(path, key), "Unicode text without lone "
                      "surrogates (\\ud800-\\udfff escapes)", value,
                      "Fix the text's escapes.")
    return value

  def _require_object(self, value: Any, path: str) -> None:
    if not isinstance(value, dict):
      raise self.fail(path, "a JSON object", value)

  def _parse_article(self, article: Any, path: str) -> None:
    self._require_object(article, path)
    title = self._field(article, "title", path, "a string",
                        json_checks.is_str, "")
    paragraphs = self._field(article, "paragraphs", path,
                             "a list of paragraphs", json_checks.is_list)
    for i, paragraph in enumerate(paragraphs):
      self._parse_paragraph(paragraph, f"{path}.paragraphs[{i}]", title)

  def _parse_paragraph(self, paragraph: Any, path: str, title: str) -> None:
    self._require_object(paragraph, path)
    context = self._field(paragraph, "context", path, "a non-empty string",
                          json_checks.is_nonempty_str)
    qas = self._field(paragraph, "qas", path, "a list of questions",
                      json_checks.is_list)
    for i, qa in enumerate(qas):
      self._parse_qa(qa, f"{path}.qas[{i}]", title=title, context=context)

  def _parse_qa(self, qa: Any, path: str, *, title: str, context: str) -> None:
    self._require_object(qa, path)
    qid = self._parse_id(qa, path)
    question = self._field(qa, "question", path, "a non-blank string",
                           json_checks.is_nonblank_str)
    is_impossible = self._field(qa, "is_impossible", path, "true or false",
                                json_checks.is_bool, False)
    answers = self._parse_answers(qa, "answers", path)
    if "plausible_answers" in qa:
      self._parse_answers(qa, "plausible_answers", path)
    if is_impossible and answers:
      raise self.fail(
          json_checks.join(path, "answers"), "[] because is_impossible is true",
          qa["answers"], 'Move these answers to "plausible_answers" or set '
          '"is_impossible" to false.')
    kept = [] if is_impossible else self._align_answers(answers, qid, context)
    if is_impossible or kept:
      self._examples.append(SquadExample(
          id=qid, title=title, question=question, context=context,
          answer_texts=tuple(text for text, _ in kept),
          answer_starts=tuple(start for _, start in kept),
          is_impossible=is_impossible))
    else:
      reason = "no_valid_answer" if answers else "no_answers"
      self._report.dropped_example(reason, qid)

  def _parse_id(self, qa: Mapping[str, Any], path: str) -> str:
    qid = self._field(qa, "id", path, "a non-empty string",
                      json_checks.is_nonempty_str)
    id_path = json_checks.join(path, "id")
    if qid in self._id_paths:
      raise self.fail(
          id_path, f"a question id not already used at "
          f"{self._id_paths[qid]}", qid, "Give every question its own id.")
    self._id_paths[qid] = id_path
    return qid

  def _parse_answers(self, qa: Mapping[str, Any], key: str,
                     path: str) -> list[tuple[str, int]]:
    answers = self._field(qa, key, path,
                          'a list of {"text", "answer_start"} objects',
                          json_checks.is_list)
    parsed = []
    for i, answer in enumerate(answers):
      answer_path = f"{json_checks.join(path, key)}[{i}]"
      self._require_object(answer, answer_path)
      text = self._field(answer, "text", answer_path, "a string",
                         json_checks.is_str)
      start = self._field(answer, "answer_start", answer_path,
                          "a non-negative integer", json_checks.is_offset)
      parsed.append((text, start))
    return parsed

  def _align_answers(self, answers: list[tuple[str, int]], qid: str,
                     context: str) -> list[tuple[str, int]]:
    kept = []
    for text, start in answers:
      if not text.strip():
        self._report.dropped_answer("empty_answer_text", qid)
        continue
      aligned = _nearest_occurrence(context, text, start)
      if aligned is None:
        self._report.dropped_answer("text_not_in_context", qid)
        continue
      self._report.kept_answer(qid, realigned=aligned != start)
      kept.append((text, aligned))
    return kept


def _nearest_occurrence(context: str, text: str, start: int) -> int | None:
  """Returns the start of the exact occurrence of `text` nearest `start`.

  Ties go to the earlier occurrence; None when `text` is not in `context`.
  """
  if context.startswith(text, start):
    return start
  best = None
  position = context.find(text)
  while position != -1:
    if best is None or abs(position - start) < abs(best - start):
      best = position
    if position >= start:  # Later occurrences are only farther away.
      break
    position = context.find(text, position + 1)
  return best


def _decode_json(raw: bytes, path: str) -> Any:
  """Decodes UTF-8 bytes and parses them as JSON, naming `path` on errors."""
  try:
    # utf-8-sig also accepts (and drops) a byte-order mark.
    text = raw.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise SquadFormatError(
        f"{path}: byte {e.start}: expected UTF-8 text, got "
        f"{raw[e.start:e.start + 8]!r} ({e.reason}). Re-encode the file as "
        f"UTF-8, e.g. `iconv -t UTF-8`.") from e
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise SquadFormatError(
        f"{path}: line {e.lineno} column {e.colno}: expected JSON, got "
        f"{json_checks.short_repr(text[e.pos:e.pos + 20])} ({e.msg}). Pass an "
        f"official "
        f"SQuAD JSON file.") from e
  except RecursionError:
    # SQuAD nests 5 levels deep; thousands of brackets are not SQuAD.
    raise SquadFormatError(
        f"{path}: expected SQuAD JSON, got arrays/objects nested too deeply "
        f"to parse. Pass an official SQuAD JSON file.") from None


def _tfds_record_to_json(record: Mapping[str, Any],
                         fail: Callable[..., SquadFormatError],
                         path: str) -> dict[str, Any]:
  """Turns a TFDS numpy record into a flat SQuAD qa object (str, int)."""
  out = {key: _decode_utf8(record[key], fail, json_checks.join(path, key))
         for key in ("id", "title", "context", "question")}
  for key in ("answers", "plausible_answers"):
    if key in record:
      out[key] = _tfds_answers_to_json(record[key], fail,
                                       json_checks.join(path, key))
  if "is_impossible" in record:
    out["is_impossible"] = bool(record["is_impossible"])
  return out


def _tfds_answers_to_json(answers: Mapping[str, Any],
                          fail: Callable[..., SquadFormatError],
                          path: str) -> list[dict[str, Any]]:
  """Turns TFDS columnar answers into a list of SQuAD answer objects."""
  texts, starts = answers["text"], answers["answer_start"]
  if len(texts) != len(starts):
    raise fail(
        path, "as many answer_start values as texts",
        f"{len(texts)} texts and {len(starts)} answer_start values")
  return [{"text": _decode_utf8(text, fail, f"{path}[{i}].text"),
           "answer_start": int(start)}
          for i, (text, start) in enumerate(zip(texts, starts))]


def _decode_utf8(value: bytes, fail: Callable[..., SquadFormatError],
                 path: str) -> str:
  try:
    return value.decode("utf-8")
  except UnicodeDecodeError as e:
    raise fail(path, "UTF-8 text", value) from e


def _tfds_absent_error(name: str, split: str, data_dir: str | None,
                       cause: Exception) -> ValueError:
  where = (f"data_dir={data_dir!r}" if data_dir else "the default TFDS "
           "data_dir ($TFDS_DATA_DIR or ~/tensorflow_datasets)")
  build_dir = data_dir or "DIR"
  return ValueError(
      f"TFDS dataset {name} (split {split!r}) is not prepared in {where}, and "
      f"download=False. Expected a prepared copy. To fix: run "
      f"`tfds build {name} --data_dir={build_dir}` on a machine with "
      f"network, or pass --tfds_data_dir pointing at a prepared copy, or use "
      f"--train_file with a local SQuAD JSON. (TFDS said: {cause})")
