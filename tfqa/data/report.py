"""What loading SQuAD kept, realigned and dropped: the LoadReport and the builder the parser fills."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
import dataclasses

from tfqa.data import json_checks

# How many question ids a report keeps per reason.
MAX_REPORTED_IDS = 5


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """What loading did to the raw answers and questions."""

  # File path, "<memory>", or "tfds:NAME[SPLIT]".
  source: str
  # Examples kept.
  num_examples: int
  # Answers kept, over all examples.
  num_answers: int
  # Answers moved to the nearest exact occurrence of their text.
  num_realigned: int
  # First question ids with a realigned answer.
  realigned_ids: tuple[str, ...]
  # Reason -> number of answers dropped for it.
  dropped_answers: dict[str, int]
  # Reason -> first question ids that lost an answer for it.
  dropped_answer_ids: dict[str, tuple[str, ...]]
  # Reason -> number of questions dropped for it.
  dropped_examples: dict[str, int]
  # Reason -> first question ids dropped for it.
  dropped_example_ids: dict[str, tuple[str, ...]]

  def summary(self) -> str:
    """Returns a multi-line, human-readable account of the load."""
    realigned = f"Realigned {json_checks.plural(self.num_realigned, 'answer')}"
    if self.num_realigned:
      realigned += (" to the nearest exact occurrence of their text "
                    f"(ids: {', '.join(self.realigned_ids)})")
    lines = [
        f"Loaded {json_checks.plural(self.num_examples, 'example')} with "
        f"{json_checks.plural(self.num_answers, 'answer')} from {self.source}.",
        realigned + ".",
        _dropped_line("answer", self.dropped_answers,
                      self.dropped_answer_ids),
        _dropped_line("example", self.dropped_examples,
                      self.dropped_example_ids),
    ]
    return "\n".join(lines)


class ReportBuilder:
  """Accumulates realignments and drops into a `LoadReport`."""

  def __init__(self, source: str):
    self._source = source
    self._num_answers = 0
    self._realigned_ids: list[str] = []
    self._dropped_answers = _ReasonCounter()
    self._dropped_examples = _ReasonCounter()

  def kept_answer(self, qid: str, *, realigned: bool) -> None:
    self._num_answers += 1
    if realigned:
      self._realigned_ids.append(qid)

  def dropped_answer(self, reason: str, qid: str) -> None:
    self._dropped_answers.add(reason, qid)

  def dropped_example(self, reason: str, qid: str) -> None:
    self._dropped_examples.add(reason, qid)

  def build(self, num_examples: int) -> LoadReport:
    return LoadReport(
        source=self._source,
        num_examples=num_examples,
        num_answers=self._num_answers,
        num_realigned=len(self._realigned_ids),
        realigned_ids=_first_unique(self._realigned_ids),
        dropped_answers=self._dropped_answers.counts(),
        dropped_answer_ids=self._dropped_answers.ids(),
        dropped_examples=self._dropped_examples.counts(),
        dropped_example_ids=self._dropped_examples.ids(),
    )


class _ReasonCounter:
  """Counts drops per reason and remembers the question ids involved."""

  def __init__(self):
    self._ids: dict[str, list[str]] = collections.defaultdict(list)

  def add(self, reason: str, qid: str) -> None:
    self._ids[reason].append(qid)

  def counts(self) -> dict[str, int]:
    return {reason: len(ids) for reason, ids in self._ids.items()}

  def ids(self) -> dict[str, tuple[str, ...]]:
    return {reason: _first_unique(ids) for reason, ids in self._ids.items()}


def changed_anything(report: LoadReport) -> bool:
  """Whether loading realigned or dropped anything (then the report is logged)."""
  return bool(report.num_realigned or report.dropped_answers or
              report.dropped_examples)


def _first_unique(ids: Iterable[str]) -> tuple[str, ...]:
  return tuple(dict.fromkeys(ids))[:MAX_REPORTED_IDS]


def _dropped_line(noun: str, counts: Mapping[str, int],
                  ids: Mapping[str, tuple[str, ...]]) -> str:
  if not counts:
    return f"Dropped 0 {noun}s."
  details = "; ".join(f"{reason}={count} (ids: {', '.join(ids[reason])})"
                      for reason, count in counts.items())
  return f"Dropped {json_checks.plural(sum(counts.values()), noun)}: {details}."
