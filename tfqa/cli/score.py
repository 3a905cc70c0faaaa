"""tfqa_score: official SQuAD v1.1/v2.0 EM and F1 of a predictions file.

  tfqa_score DATA_FILE PREDICTIONS_FILE [--na_prob_file=FILE]
      [--na_prob_thresh=1.0]

Prints one JSON object with the official scripts' keys, values in percent.
"""

from __future__ import annotations

import json
import sys

from tfqa.cli import common  # pylint: disable=unused-import

from absl import app
from absl import flags

from tfqa import preflight
from tfqa.evaluation import scoring

_NA_PROB_FILE = flags.DEFINE_string(
    "na_prob_file", None,
    "JSON of question id -> no-answer probability (e.g. null_odds.json).")
_NA_PROB_THRESH = flags.DEFINE_float(
    "na_prob_thresh", 1.0,
    "Predict no answer when the no-answer probability exceeds this.")

HELP_GROUPS = {"Options": ["na_prob_file", "na_prob_thresh"]}
# Library arguments named by this tool's positional arguments.
ARGUMENT_LABELS = {"data_file": "DATA_FILE",
                   "predictions_file": "PREDICTIONS_FILE"}


def main(argv):
  if len(argv) != 3:
    raise app.UsageError(
        "Expected two arguments: DATA_FILE PREDICTIONS_FILE; got "
        f"{argv[1:]}.")
  checked = preflight.check_score(argv[1], argv[2],
                                  na_prob_file=_NA_PROB_FILE.value)
  result = scoring.score_files(argv[1], argv[2],
                               na_prob_file=_NA_PROB_FILE.value,
                               na_prob_thresh=_NA_PROB_THRESH.value,
                               checked=checked)
  if result["missing"]:
    print(f"tfqa_score: {result['missing']} question(s) of {argv[1]} have no "
          f"prediction in {argv[2]}; they are scored as wrong.",
          file=sys.stderr)
  if result["unknown_ids"]:
    print(f"tfqa_score: {result['unknown_ids']} prediction id(s) are not in "
          f"{argv[1]}; they are ignored.", file=sys.stderr)
  print(json.dumps(result))


def run():
  common.run_tool(main, __doc__, HELP_GROUPS, labels=ARGUMENT_LABELS)


if __name__ == "__main__":
  run()
