"""Wrong inputs to the five CLIs, as a user types them: one error line, exit 1, fast, nothing written.

Every case runs in one scratch working directory with relative paths, next
to one tiny trained run (runs/a) shared by all cases. For each: exit status
1; exactly one `tfqa_<tool>: error:` line, last on stderr, naming the flag or
file; no traceback; done within 30 s; and nothing in the working directory
(the run, exports, data) written or changed.
"""

import json
import os
import re
import time

import pytest

from conftest import run_python, tiny_bert_config, tiny_squad, tiny_train_flags
from conftest import tiny_vocab

_MODULES = {"tfqa_train": "tfqa.cli.train", "tfqa_eval": "tfqa.cli.evaluate",
            "tfqa_score": "tfqa.cli.score", "tfqa_export": "tfqa.cli.export",
            "tfqa_predict": "tfqa.cli.predict"}
_TIME_LIMIT_S = 30
_NO_HUB_MODEL = "tfqa-no-such-org/no-such-model"


def _cli(module, *args, cwd, env=None, **kwargs):
  """`python -m MODULE ARGS` in `cwd`: offline only where `env` says so."""
  env = env or {}
  unset = (() if "HF_HUB_OFFLINE" in env else
           ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
  return run_python(["-m", module, *args], cwd=cwd, env=env, unset=unset,
                    **kwargs)


def _tiny_flags(**overrides):
  """tfqa_train flags of a tiny run, with paths relative to the workdir."""
  files = {"bert_config": "bert_config.json", "vocab": "vocab.txt",
           "train_v2": "train.json"}
  return tiny_train_flags(files, **{"eval_file": "dev.json",
                                    "num_train_epochs": 1, **overrides})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A scratch working directory holding a tiny trained run, runs/a."""
  root = tmp_path_factory.mktemp("cli_errors")
  for name in ("train.json", "dev.json"):
    (root / name).write_text(json.dumps(tiny_squad(True)))
  (root / "bert_config.json").write_text(json.dumps(tiny_bert_config()))
  (root / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
  (root / "adir").mkdir()
  (root / "adir" / "train.json").write_text(json.dumps(tiny_squad(True)))
  (root / "afile").write_text("not a directory\n")
  # A RoBERTa checkpoint directory: tfqa builds BERT only.
  (root / "roberta").mkdir()
  (root / "roberta" / "config.json").write_text(json.dumps(
      {"model_type": "roberta", "architectures": ["RobertaForMaskedLM"],
       "vocab_size": 50265, "hidden_size": 768}))
  (root / "roberta" / "model.safetensors").write_bytes(b"weights")
  (root / "empty.json").write_text("")
  (root / "list.json").write_text('["p0q0", "paris"]')
  (root / "binary.json").write_bytes(bytes(range(256)) * 8)
  with open(root / "huge.json", "wb") as f:
    f.truncate(4 << 30)  # 4 GiB of zeros, sparse: no disk space used
  _cli("tfqa.cli.train", "--model_dir=runs/a", *_tiny_flags(), cwd=root)
  assert os.path.isfile(root / "runs" / "a" / "eval" / "predictions.json")
  return root


def _snapshot(root):
  """Every path under `root` with its size and modification time."""
  found = {}
  for directory, dirs, files in os.walk(root):
    for name in dirs + files:
      path = os.path.join(directory, name)
      info = os.lstat(path)
      found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
  return found


_Q = ["--question=Who built it?", "--context=The keeper built it."]
_CKPT_LIST = (r"Existing ones: runs/a/checkpoints/ckpt-\d+(, "
              r"runs/a/checkpoints/ckpt-\d+)*\.$")
_TRAIN = _tiny_flags()


def _train(*args, **overrides):
  return ["tfqa_train", "--model_dir=runs/new", *_tiny_flags(**overrides),
          *args]


# (argv, regex the error line must match after "tfqa_<tool>: error: ",
# extra environment).
CASES = {
    # Usage mistakes: one line, not absl's full usage text.
    "score_one_argument": (
        ["tfqa_score", "dev.json"],
        r"Expected two arguments: DATA_FILE PREDICTIONS_FILE; got "
        r"\['dev\.json'\]\. \(`tfqa_score --help` lists the flags\)$"),
    "train_without_model_dir": (
        ["tfqa_train", "--model=minilm-l6"], r"--model_dir is required\."),
    "train_stray_argument": (
        ["tfqa_train", "--model_dir=runs/a", "train.json"],
        r"Unexpected arguments: \['train\.json'\] \(`tfqa_train --help`"),
    "eval_without_model_dir": (["tfqa_eval"], r"--model_dir is required\."),
    "export_without_export_dir": (
        ["tfqa_export", "--model_dir=runs/a"], r"--export_dir is required\."),
    "predict_question_without_context": (
        ["tfqa_predict", "--model=runs/a", "--question=Who?"],
        r"--question and --context go together\."),
    # tfqa_score
    "score_data_is_a_directory": (
        ["tfqa_score", "adir", "runs/a/eval/predictions.json"],
        r"DATA_FILE=adir is a directory \(holding adir/train\.json\); "
        r"expected a SQuAD JSON file\.$"),
    "score_predictions_is_a_directory": (
        ["tfqa_score", "dev.json", "adir"],
        r"PREDICTIONS_FILE=adir is a directory"),
    "score_missing_data": (
        ["tfqa_score", "dev2.json", "runs/a/eval/predictions.json"],
        r"DATA_FILE=dev2\.json does not exist \(relative to the working "
        r"directory .*\); expected a SQuAD JSON file\.$"),
    "score_empty_data": (
        ["tfqa_score", "empty.json", "runs/a/eval/predictions.json"],
        r"DATA_FILE=empty\.json is empty \(0 bytes\)"),
    "score_binary_data": (
        ["tfqa_score", "binary.json", "runs/a/eval/predictions.json"],
        r"DATA_FILE=binary\.json is not JSON text: it starts with the bytes "
        r"00 01 02 03"),
    "score_huge_data": (
        ["tfqa_score", "huge.json", "runs/a/eval/predictions.json"],
        r"DATA_FILE=huge\.json is not JSON text: it starts with the bytes "
        r"00 00 00 00"),
    "score_arguments_swapped": (
        ["tfqa_score", "runs/a/eval/predictions.json", "dev.json"],
        r"DATA_FILE=runs/a/eval/predictions\.json is not a SQuAD file, but "
        r"PREDICTIONS_FILE=dev\.json looks like one .*the arguments are "
        r"swapped\?"),
    "score_predictions_not_an_object": (
        ["tfqa_score", "dev.json", "list.json"],
        r"PREDICTIONS_FILE=list\.json is not a JSON object: it starts with "
        r"'\[\"p0q0\", \"paris\"'; expected a predictions JSON file"),
    "score_na_prob_file_is_a_directory": (
        ["tfqa_score", "dev.json", "runs/a/eval/predictions.json",
         "--na_prob_file=runs/a/eval"],
        r"--na_prob_file=runs/a/eval is a directory \(holding "
        r"runs/a/eval/eval_results\.json"),
    # tfqa_train
    "train_file_is_a_directory": (
        _train(train_file="adir"),
        r"--train_file=adir is a directory \(holding adir/train\.json\); "
        r"expected a SQuAD JSON file\.$"),
    "train_file_missing": (
        _train(train_file="data/train.json"),
        r"--train_file=data/train\.json does not exist \(relative to the "
        r"working directory .*\)"),
    "train_file_empty": (_train(train_file="empty.json"),
                         r"--train_file=empty\.json is empty \(0 bytes\)"),
    "train_file_binary": (_train(train_file="binary.json"),
                          r"--train_file=binary\.json is not JSON text"),
    "train_eval_file_is_a_directory": (_train(eval_file="adir"),
                                       r"--eval_file=adir is a directory"),
    "train_model_dir_is_a_file": (
        ["tfqa_train", "--model_dir=afile", *_TRAIN],
        r"--model_dir=afile is a file; expected a run directory \(created if "
        r"absent\)\.$"),
    "train_model_dir_under_a_file": (
        ["tfqa_train", "--model_dir=afile/run", *_TRAIN],
        r"--model_dir=afile/run cannot be created: afile is a file, not a "
        r"directory"),
    "train_model_dir_with_unexpanded_tilde": (
        ["tfqa_train", "--model_dir=~/runs/a", *_TRAIN],
        r"--model_dir=~/runs/a would be created in a directory named '~': "
        r"the shell does not expand ~ after '='"),
    "train_model_dir_read_as_a_pattern": (
        ["tfqa_train", "--model_dir=runs/b[1]", *_TRAIN],
        r"--model_dir=runs/b\[1\] contains \[, which TensorFlow's checkpoint "
        r"reader takes for a file pattern"),
    "train_windows_longer_than_the_model": (
        _train(max_seq_length=256),
        r"Invalid value for flag --max_seq_length\. Received: "
        r"--max_seq_length=256, but the model embeds at most "
        r"max_position_embeddings=128 positions \(bert_config\.json\)"),
    "train_doc_stride_leaves_gaps": (
        _train(doc_stride=100),
        r"Invalid value for flag --doc_stride\. Received: --doc_stride=100\. "
        r"Expected doc_stride <= max_seq_length - max_query_length - 3 = 17"),
    "train_model_and_bert_config_file": (
        _train(model="minilm-l6"),
        r"Expected exactly one of --model and --bert_config_file\. Received: "
        r"--model='minilm-l6', --bert_config_file='bert_config\.json'\. Pass "
        r"--model for pretrained weights"),
    "train_batch_size_zero": (
        _train(train_batch_size=0),
        r"Invalid value for flag --train_batch_size\. Received: "
        r"--train_batch_size=0\. Expected a positive integer\.$"),
    "train_unknown_hub_model_offline": (
        ["tfqa_train", "--model_dir=runs/new", f"--model={_NO_HUB_MODEL}",
         "--train_file=train.json", "--version_2_with_negative"],
        rf"--model={_NO_HUB_MODEL} is neither a local directory nor "
        r"'minilm-l6', and as a hub name it is not in the Hugging Face cache "
        r"\(.*\) and HF_HUB_OFFLINE is set .*; expected a save_pretrained "
        r"directory", {"HF_HUB_OFFLINE": "1"}),
    # Here the hub is unreachable; where it is reachable, it has no such
    # model. Either way: one request, then the error.
    "train_unknown_hub_model_online": (
        ["tfqa_train", "--model_dir=runs/new", f"--model={_NO_HUB_MODEL}",
         "--train_file=train.json", "--version_2_with_negative"],
        rf"--model={_NO_HUB_MODEL} is neither a local directory nor "
        r"'minilm-l6', .*, and the hub \(.*\) (cannot be reached|has no "
        r"model of that name).*; expected a save_pretrained directory"),
    "train_model_path_missing": (
        ["tfqa_train", "--model_dir=runs/new", "--model=./models/bert",
         "--train_file=train.json", "--version_2_with_negative"],
        r"--model=\./models/bert does not exist \(relative to the working "
        r"directory .*\); expected a save_pretrained directory"),
    "train_model_is_a_file": (
        ["tfqa_train", "--model_dir=runs/new", "--model=afile",
         "--train_file=train.json", "--version_2_with_negative"],
        r"--model=afile is a file; expected a save_pretrained directory"),
    "train_model_dir_without_weights": (
        ["tfqa_train", "--model_dir=runs/new", "--model=adir",
         "--train_file=train.json", "--version_2_with_negative"],
        r"--model=adir has no config\.json; expected a save_pretrained "
        r"directory"),
    "train_model_of_another_architecture": (
        ["tfqa_train", "--model_dir=runs/new", "--model=roberta",
         "--train_file=train.json", "--version_2_with_negative"],
        r"--model=roberta is a 'roberta' model \(model_type in "
        r"roberta/config\.json\); tfqa supports model_type 'bert' only "
        r"\(BERT-architecture checkpoints, built as "
        r"TFBertForQuestionAnswering; see docs/TRAINING\.md\)\.$"),
    "train_bert_config_is_a_directory": (
        _train(bert_config_file="adir"),
        r"--bert_config_file=adir is a directory"),
    "train_vocab_file_missing": (
        _train(vocab_file="vocab2.txt"),
        r"--vocab_file=vocab2\.txt does not exist"),
    # tfqa_train: longer runs
    "train_eval_every_steps_without_eval_file": (
        _train(eval_file=None, eval_every_steps=100),
        r"Invalid value for flag --eval_every_steps\. Received: "
        r"--eval_every_steps=100 with no eval data\. Expected --eval_file "
        r"\(or --tfds_dataset, whose validation split is evaluated\) to "
        r"evaluate on; pass --eval_file=dev\.json, or "
        r"--eval_every_steps=0\.$"),
    "train_eval_every_steps_negative": (
        _train(eval_every_steps=-5),
        r"Invalid value for flag --eval_every_steps\. Received: "
        r"--eval_every_steps=-5\. Expected an integer >= 0 \(0: evaluate "
        r"only at the end\)\.$"),
    "train_keep_best_unknown_metric": (
        _train(keep_best="foo"),
        r"flag --keep_best=foo: value should be one of <none\|f1\|exact> "
        r"\(`tfqa_train --help` lists the flags\)$"),
    "train_keep_best_without_eval_file": (
        _train(eval_file=None, keep_best="f1"),
        r"Invalid value for flag --keep_best\. Received: --keep_best='f1' "
        r"with no eval data\. Expected --eval_file .*, or "
        r"--keep_best=none\.$"),
    "train_gradient_accumulation_steps_zero": (
        _train(gradient_accumulation_steps=0),
        r"Invalid value for flag --gradient_accumulation_steps\. Received: "
        r"--gradient_accumulation_steps=0\. Expected a positive integer\.$"),
    "train_batch_size_not_divisible_by_accumulation": (
        _train(gradient_accumulation_steps=3),
        r"Invalid value for flag --gradient_accumulation_steps\. Received: "
        r"--gradient_accumulation_steps=3 with --train_batch_size=4\. "
        r"Expected a divisor of train_batch_size \(the windows of one "
        r"optimizer step, cut into that many micro-batches\): one of "
        r"\[1, 2, 4\]\.$"),
    "train_init_checkpoint_missing": (
        _train(init_checkpoint="runs/b"),
        r"--init_checkpoint=runs/b does not exist \(there is no "
        r"runs/b\.index\); expected a tfqa_train --model_dir that has "
        r"trained, or a checkpoint prefix such as "
        r"runs/a/checkpoints/ckpt-500\.$"),
    "train_init_checkpoint_without_checkpoints": (
        _train(init_checkpoint="adir"),
        r"--init_checkpoint=adir is a directory without tfqa checkpoints "
        r"\(no adir/checkpoints/ckpt-\*\.index\); expected a tfqa_train "
        r"--model_dir that has trained, or a checkpoint prefix"),
    "train_init_checkpoint_prefix_missing": (
        _train(init_checkpoint="runs/a/checkpoints/ckpt-500"),
        r"--init_checkpoint=runs/a/checkpoints/ckpt-500 does not exist"),
    # tfqa_eval
    "eval_file_is_a_directory": (
        ["tfqa_eval", "--model_dir=runs/a", "--eval_file=adir"],
        r"--eval_file=adir is a directory"),
    "eval_file_missing": (
        ["tfqa_eval", "--model_dir=runs/a", "--eval_file=dev2.json"],
        r"--eval_file=dev2\.json does not exist"),
    "eval_model_dir_not_a_run": (
        ["tfqa_eval", "--model_dir=adir"],
        r"--model_dir=adir holds no run_config\.json; expected a tfqa_train "
        r"--model_dir\.$"),
    "eval_model_dir_holding_runs": (
        ["tfqa_eval", "--model_dir=runs"],
        r"--model_dir=runs holds no run_config\.json \(runs inside it: "
        r"runs/a\)"),
    "eval_model_dir_is_a_file": (["tfqa_eval", "--model_dir=afile"],
                                 r"--model_dir=afile is a file"),
    "eval_checkpoint_missing": (
        ["tfqa_eval", "--model_dir=runs/a",
         "--checkpoint=runs/a/checkpoints/ckpt-500"],
        r"--checkpoint=runs/a/checkpoints/ckpt-500 does not exist \(there is "
        r"no runs/a/checkpoints/ckpt-500\.index\); expected a checkpoint "
        r"prefix of runs/a\. " + _CKPT_LIST),
    "eval_checkpoint_is_a_directory": (
        ["tfqa_eval", "--model_dir=runs/a", "--checkpoint=runs/a/checkpoints"],
        r"--checkpoint=runs/a/checkpoints is a directory, not a checkpoint "
        r"prefix"),
    "eval_output_dir_is_a_file": (
        ["tfqa_eval", "--model_dir=runs/a", "--output_dir=afile"],
        r"--output_dir=afile is a file"),
    # tfqa_export
    "export_model_dir_missing": (
        ["tfqa_export", "--model_dir=runs/b", "--export_dir=exports/b"],
        r"--model_dir=runs/b does not exist"),
    "export_dir_is_a_file": (
        ["tfqa_export", "--model_dir=runs/a", "--export_dir=afile"],
        r"--export_dir=afile is a file; expected an export directory"),
    "export_probe_file_is_a_directory": (
        ["tfqa_export", "--model_dir=runs/a", "--export_dir=exports/a",
         "--probe_file=adir"],
        r"--probe_file=adir is a directory"),
    "export_best_checkpoint_of_a_run_without_one": (
        ["tfqa_export", "--model_dir=runs/a", "--export_dir=exports/a",
         "--checkpoint=best"],
        r"--checkpoint=best: runs/a has no best checkpoint \(no "
        r"best_checkpoint\.json\); expected a run trained with "
        r"--keep_best=f1 or --keep_best=exact"),
    "export_checkpoint_missing": (
        ["tfqa_export", "--model_dir=runs/a", "--export_dir=exports/a",
         "--checkpoint=runs/a/checkpoints/ckpt-500"],
        r"--checkpoint=runs/a/checkpoints/ckpt-500 does not exist .* "
        + _CKPT_LIST),
    # tfqa_predict
    "predict_input_file_is_a_directory": (
        ["tfqa_predict", "--model=runs/a", "--input_file=adir",
         "--output_file=preds.json"],
        r"--input_file=adir is a directory"),
    "predict_input_file_empty": (
        ["tfqa_predict", "--model=runs/a", "--input_file=empty.json",
         "--output_file=preds.json"],
        r"--input_file=empty\.json is empty"),
    "predict_output_file_is_a_directory": (
        ["tfqa_predict", "--model=runs/a", "--input_file=dev.json",
         "--output_file=adir"],
        r"--output_file=adir is a directory; expected a JSON file to write"),
    "predict_output_file_under_a_file": (
        ["tfqa_predict", "--model=runs/a", "--input_file=dev.json",
         "--output_file=afile/preds.json"],
        r"--output_file=afile/preds\.json cannot be created: afile is a file"),
    "predict_model_missing": (
        ["tfqa_predict", "--model=exports/a", *_Q],
        r"--model=exports/a does not exist"),
    "predict_model_is_a_file": (["tfqa_predict", "--model=afile", *_Q],
                                r"--model=afile is a file"),
    "predict_checkpoint_missing": (
        ["tfqa_predict", "--model=runs/a",
         "--checkpoint=runs/a/checkpoints/ckpt-500", *_Q],
        r"--checkpoint=runs/a/checkpoints/ckpt-500 does not exist .* "
        + _CKPT_LIST),
    "predict_onnx_model_missing": (
        ["tfqa_predict", "--onnx_model=exports/a/onnx/model.onnx", *_Q],
        r"--onnx_model=exports/a/onnx/model\.onnx does not exist"),
}


@pytest.mark.slow
@pytest.mark.parametrize("argv, expected, env", [
    pytest.param(case[0], case[1], case[2] if len(case) > 2 else {}, id=name)
    for name, case in CASES.items()])
def test_a_wrong_input_is_one_error_line(workdir, argv, expected, env):
  tool, *args = argv
  before = _snapshot(workdir)
  started = time.monotonic()
  proc = _cli(_MODULES[tool], *args, cwd=workdir, env=env, exit_status=1,
              timeout=_TIME_LIMIT_S * 4)
  elapsed = time.monotonic() - started
  output = proc.stdout + proc.stderr
  assert "Traceback" not in output, output[-3000:]
  errors = [line for line in proc.stderr.splitlines()
            if line.startswith(f"{tool}: error:")]
  assert len(errors) == 1, proc.stderr[-3000:]
  assert proc.stderr.splitlines()[-1] == errors[0], proc.stderr[-3000:]
  assert re.match(rf"{tool}: error: {expected}", errors[0]), errors[0]
  assert elapsed < _TIME_LIMIT_S, (elapsed, errors[0])
  assert _snapshot(workdir) == before


@pytest.mark.slow
def test_require_gpu_without_a_gpu_is_one_line_and_writes_nothing(workdir):
  # Not in the table: seeing the GPUs needs TensorFlow, which takes longer
  # to import than the table's time limit on a loaded machine.
  before = _snapshot(workdir)
  proc = _cli("tfqa.cli.train", *_train("--require_gpu")[1:], cwd=workdir,
              env={"CUDA_VISIBLE_DEVICES": ""}, exit_status=1)
  assert "Traceback" not in proc.stderr
  assert proc.stderr.splitlines()[-1] == (
      "tfqa_train: error: Invalid value for flag --require_gpu. Received: "
      "--require_gpu=True but TensorFlow sees no GPU. Expected a GPU: in "
      "Colab choose Runtime > Change runtime type > a GPU, then run all "
      "cells again; elsewhere install tensorflow[and-cuda] (see BUILD.md) on "
      "a machine with an NVIDIA driver, or pass --norequire_gpu to train on "
      "the CPU.")
  assert _snapshot(workdir) == before


def test_the_table_is_long_enough():
  assert len(CASES) >= 30
  assert {argv[0] for argv, *_ in CASES.values()} == set(_MODULES)
