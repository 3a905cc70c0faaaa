"""Today's transformers (5.x) and PyTorch load what tfqa_export writes: pretrained/ through model.safetensors.

tfqa itself runs on transformers 4.57 (the last line with TensorFlow
classes), so this runs in a second environment with `transformers>=5,<6` and
the CPU torch wheel, built once and cached (see transformers5_python). There,
AutoModelForQuestionAnswering and AutoTokenizer load a fresh export's
pretrained/, its logits equal the SavedModel's predict_logits on every real
token of the probe windows, the model card's transformers-5 snippet runs as
written, and pipeline("question-answering") answers where that version still
has it (upstream removed it in 5.3).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfqa import config
from tfqa.data import windows as features
from tfqa.export import card
from tfqa.export import verify
from tfqa.inference import answering
from tfqa.inference import logits as logits_lib
from tfqa.inference import trained_model

from conftest import REPO_ROOT, code_block, run_command, run_python
from conftest import torch_pythons

# What the environment holds besides torch (pinned: constraints.txt).
TRANSFORMERS5 = "transformers>=5,<6"
# Where the environment is kept between runs ($TFQA_TEST_CACHE overrides).
CACHE_VARIABLE = "TFQA_TEST_CACHE"
_DEFAULT_CACHE = os.path.join("~", ".cache", "tfqa-tests")
_READY = "ready.json"
_INSTALL_TIMEOUT_S = 1800
# The second environment sees nothing of this checkout.
_NOT_THIS_CHECKOUT = ("PYTHONPATH", "TF_USE_LEGACY_KERAS")


def torch_requirement():
  """torch's pin of constraints.txt ("torch==2.13.0"): the CPU wheel here."""
  text = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
  return re.search(r"^torch==\S+", text, re.M).group(0)


def environment_dir():
  """The cache directory, keyed by Python version and requirements."""
  python = "%d.%d" % sys.version_info[:2]
  key = hashlib.sha256(
      "\n".join((python, TRANSFORMERS5, torch_requirement())).encode()
  ).hexdigest()[:12]
  root = os.path.expanduser(os.environ.get(CACHE_VARIABLE) or _DEFAULT_CACHE)
  return os.path.join(root, f"transformers5-py{python}-{key}")


def _skip_or_fail(reason):
  """A skip with the reason; under CI on a torch Python, a failure."""
  python = "%d.%d" % sys.version_info[:2]
  if os.environ.get("CI") == "true" and python in torch_pythons():
    pytest.fail(reason)
  pytest.skip(reason)


def _build(directory):
  """Creates the venv at `directory` (atomically); returns (ok, message)."""
  staging = f"{directory}.tmp-{os.getpid()}"
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  started = time.monotonic()
  python = os.path.join(staging, "bin", "python")
  for argv, timeout in (
      ([sys.executable, "-m", "venv", staging], 300),
      ([python, "-m", "pip", "install", "--quiet", TRANSFORMERS5,
        torch_requirement()], _INSTALL_TIMEOUT_S),
      ([python, "-c", "import json, torch, transformers; print(json.dumps("
        "{'torch': torch.__version__, 'transformers': "
        "transformers.__version__}))"], 300)):
    proc = run_command(argv, exit_status=None, timeout=timeout,
                       unset=_NOT_THIS_CHECKOUT)
    if proc.returncode != 0:
      shutil.rmtree(staging, ignore_errors=True)
      errors = [line for line in proc.stderr.splitlines()
                if line.startswith("ERROR")] or proc.stderr.splitlines()[-3:]
      return False, " ".join(errors)[:600]
  ready = {**json.loads(proc.stdout),
           "build_seconds": round(time.monotonic() - started)}
  with open(os.path.join(staging, _READY), "w", encoding="utf-8") as f:
    json.dump(ready, f)
  shutil.rmtree(directory, ignore_errors=True)
  os.rename(staging, directory)
  return True, ""


@pytest.fixture(scope="module")
def transformers5_python():
  """The python of a venv with transformers 5 and CPU torch (cached).

  Built on the first run (about 5 minutes here: the torch wheel is local)
  under $TFQA_TEST_CACHE or ~/.cache/tfqa-tests, in a directory named by
  the Python version and the requirements, and reused while they are the
  same. Skipped, with the reason, where it cannot be built: a Python other
  than those of the Makefile's TORCH_PYTHONS (pip would fetch torch's CUDA
  build there), or pip failing (no registry); under CI on a TORCH_PYTHON
  that is a failure instead.
  """
  python = "%d.%d" % sys.version_info[:2]
  if python not in torch_pythons():
    _skip_or_fail(f"needs the CPU torch wheel, kept for Python "
                  f"{' '.join(torch_pythons())} (the Makefile's "
                  f"TORCH_PYTHONS); this is {python}")
  directory = environment_dir()
  if not os.path.isfile(os.path.join(directory, _READY)):
    try:
      ok, message = _build(directory)
    except (subprocess.SubprocessError, OSError) as e:
      ok, message = False, f"{type(e).__name__}: {e}"
    if not ok:
      _skip_or_fail(f"could not build the transformers 5 environment "
                    f"({TRANSFORMERS5}, {torch_requirement()}) in "
                    f"{directory}: {message}")
  return os.path.join(directory, "bin", "python")


def _run(python, code, *args, cwd):
  """Runs `code` in the transformers 5 venv, offline; its stdout."""
  return run_python(["-c", code, *args], python=python, cwd=cwd,
                    env={"HF_HUB_OFFLINE": "1",
                         "TRANSFORMERS_VERBOSITY": "error"},
                    unset=_NOT_THIS_CHECKOUT).stdout


@pytest.fixture(scope="module")
def probe(exported):
  """The export's probe windows, and predict_logits over them."""
  model_dir, export_dir = exported
  trained = trained_model.load(model_dir)
  run_config = trained.run_config
  _, examples = verify.probe_examples(None, run_config)
  windows = features.build_features(examples, trained.tokenizer,
                                    run_config.features)
  loaded = tf.saved_model.load(
      os.path.join(export_dir, "saved_model", "tfqa", "1"))
  starts, ends = answering.logits_of(
      logits_lib.signature_logits_fn(loaded), windows, run_config,
      batch_size=8)
  questions = [e.question for e in examples]
  return {"examples": examples, "windows": windows, "starts": starts,
          "ends": ends,
          "question_ids": [trained.tokenizer(q)["input_ids"]
                           for q in questions]}


_LOGITS = """
import json, sys
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer
import transformers

request = json.load(open(sys.argv[1]))
model = AutoModelForQuestionAnswering.from_pretrained("pretrained")
model.eval()
tokenizer = AutoTokenizer.from_pretrained("pretrained")
out = {"transformers": transformers.__version__, "class": type(model).__name__,
       "devices": sorted({p.device.type for p in model.parameters()}),
       "question_ids": [tokenizer(q)["input_ids"] for q in request["questions"]],
       "starts": [], "ends": []}
with torch.no_grad():
  for ids, types in zip(request["input_ids"], request["token_type_ids"]):
    logits = model(input_ids=torch.tensor([ids]),
                   token_type_ids=torch.tensor([types]),
                   attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    out["starts"].append(logits.start_logits[0].tolist())
    out["ends"].append(logits.end_logits[0].tolist())
print(json.dumps(out))
"""


@pytest.mark.slow
def test_transformers5_and_pytorch_give_the_saved_model_logits(
    transformers5_python, exported, probe, tmp_path):
  _, export_dir = exported
  windows = probe["windows"]
  assert len(probe["examples"]) >= 8
  request = {"questions": [e.question for e in probe["examples"]],
             "input_ids": [list(map(int, w)) for w in windows.input_ids],
             "token_type_ids": [list(map(int, t))
                                for t in windows.token_type_ids]}
  request_file = tmp_path / "request.json"
  request_file.write_text(json.dumps(request), encoding="utf-8")
  got = json.loads(_run(transformers5_python, _LOGITS, request_file,
                        cwd=export_dir))
  assert got["transformers"].startswith("5.")
  assert got["class"] == "BertForQuestionAnswering"
  assert got["devices"] == ["cpu"]
  # The tokenizer files load and tokenize as tfqa's tokenizer does.
  assert got["question_ids"] == probe["question_ids"]
  tolerance = config.ExportConfig().logits_tolerance
  for i in range(len(windows)):
    for side, want in (("starts", probe["starts"][i]),
                       ("ends", probe["ends"][i])):
      np.testing.assert_allclose(got[side][i], want, atol=tolerance, rtol=0,
                                 err_msg=f"window {i} {side}")


_PIPELINE = """
import json, sys
from transformers import pipeline

try:
  qa = pipeline("question-answering", model="pretrained")
except KeyError as e:
  print(json.dumps({"removed": str(e)}))
else:
  print(json.dumps(qa(question=sys.argv[1], context=sys.argv[2])))
"""


@pytest.mark.slow
def test_transformers5_question_answering_pipeline(transformers5_python,
                                                   exported, probe):
  # transformers 5.3 removed the extractive pipeline("question-answering")
  # (5.0-5.2 have it): the model card's snippet decodes the logits itself.
  # Where the pipeline exists, it answers from the export.
  _, export_dir = exported
  example = probe["examples"][0]
  answer = json.loads(_run(transformers5_python, _PIPELINE, example.question,
                           example.context, cwd=export_dir))
  if "removed" in answer:
    assert "The task question-answering has been removed" in answer[
        "removed"], answer
    return
  assert set(answer) == {"answer", "score", "start", "end"}
  assert answer["answer"] == example.context[answer["start"]:answer["end"]]
  assert 0.0 <= answer["score"] <= 1.0


@pytest.mark.slow
def test_model_card_transformers5_snippet_runs_as_written(
    transformers5_python, exported):
  _, export_dir = exported
  with open(os.path.join(export_dir, "pretrained", "README.md"),
            encoding="utf-8") as f:
    snippet = code_block(f.read(), card.TRANSFORMERS_USAGE_HEADING)
  [answer] = _run(transformers5_python, snippet, cwd=export_dir).splitlines()
  assert answer == "(no answer)" or answer in card.EXAMPLE_CONTEXT, answer
