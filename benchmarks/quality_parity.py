"""Answer quality of tfqa's defaults against the transformers TF recipe: seeded cross-validation, paired differences with folds as the unit.

  .venv/bin/python benchmarks/quality_parity.py --results=quality.jsonl \\
      [--folds=0,1,2,3,4] [--seeds=3] [--epochs=4] [--learning_rate=1.5e-4] \\
      [--arms=tfqa,recipe,...] [--budget_arm=tfqa+num_train_epochs=6]
  .venv/bin/python benchmarks/quality_parity.py --results=... --report_only
  .venv/bin/python benchmarks/quality_parity.py --results=... --migrate

Cross-validation over the shared real sample (SQuAD 2.0 dev, 5 articles):
fold k trains on the answerable questions of the four other articles and
evaluates on those of article k. Every arm of a fold and seed trains on the
same examples and is scored on the same held-out questions by the same
decoder (tfqa.inference.run_evaluation.evaluate: tfqa's windows, n-best 20, official SQuAD
v1.1 EM/F1), so the comparison isolates training.

Arms (--arms, comma-separated; default: the study's seven, quality_arms.py):
  tfqa          training.train_and_evaluate with tfqa's defaults; only
                epochs, batch size, peak LR and seed are set.
  tfqa+F=V...   the same with RunConfig fields of features, pipeline, decode
                or train overridden, e.g. the attribution arm
                tfqa+clip_norm=1.0+adam_epsilon=1e-8+padding=dynamic (tfqa
                with the recipe's optimizer settings and random batches) or
                the equal-wall-clock arm tfqa+num_train_epochs=6, or the
                speed arm tfqa+mixed_precision=mixed_bfloat16+
                pad_to_multiple_of=16 (the fastest measured setting).
  tfqa+...+select=dev   scored with the checkpoint that did best (F1) on a
                dev split of the training fold (10% of its paragraphs, drawn
                by fold and seed, not trained on; evaluated at every epoch's
                end) instead of the last one; its row also holds the last
                checkpoint's held-out F1 (last_f1), the selected step and
                the training time with the dev evaluations.
  recipe        the transformers TF example recipe (hf_recipe.py) as
                upstream ships it: each shuffled batch padded to its longest
                window (run_qa.py's default), Adam epsilon 1e-8, global
                clipnorm 1.0 (max_grad_norm, applied by Keras' legacy
                optimizer to the raw embedding-gradient rows).
  recipe384     the same recipe with every window padded to 384.
  recipe+F=V... the recipe with padding (longest | max_length),
                max_grad_norm (0: no clipping) or adam_epsilon overridden,
                e.g. recipe+max_grad_norm=0 (the recipe without clipping).
An unknown field or value is refused in one line. Both tfqa and the recipe
use warmup ratio 0.1 and weight decay 0.01.

Each run trains in a subprocess (fresh TF state, bounded memory) and is
appended to --results as one JSON line with every setting it ran with
(`settings`, keyed by their hash) and a label (`arm`) derived from those
settings against today's defaults; a rerun skips what is there, so the study
can be interrupted and resumed. Several processes may share one results
file (e.g. one per core, `taskset -c 0` / `-c 1`): each claims a run before
training it (run_claims.py) and skips runs another live process holds; a
killed process's claim is taken over. Runs go seed by seed, fold by fold, arm by
arm. --migrate relabels an existing file's rows by their settings
(idempotent; the first label is kept in `arm_recorded`).

Prints each run's EM/F1, training windows/s and last-epoch loss; the
strongest recipe arm (highest mean F1 over the cells every recipe arm has);
then the paired F1 differences, with folds as the unit (each fold's
difference is the mean over its seeds, the 95% t-interval is over folds):
tfqa against the upstream recipe, the unclipped recipe and the recipe at
384; the attribution arm against tfqa and the recipe; other tfqa+ arms
against tfqa; the --budget_arm against the strongest recipe arm. Runs
missing from the 5 folds x --seeds grid are named. Last line
`equal_wall_clock_delta_f1=<budget arm - strongest recipe>` (nan when no
pair was run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tfqa.cli import common  # Keras 2 setup.

common.hide_pytorch()  # It runs no PyTorch model.

from absl import app
from absl import flags

import bench_common
import quality_arms
import quality_report
import run_claims

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with >= 5 articles.")
_MODEL = flags.DEFINE_string("model", "minilm-l6", "tfqa --model.")
_FOLDS = flags.DEFINE_list("folds", ["0", "1", "2", "3", "4"],
                           "Held-out article of each fold (0-4).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0..N-1 per fold.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Training epochs.")
_LR = flags.DEFINE_float("learning_rate", 1.5e-4, "Peak learning rate.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
_ARMS = flags.DEFINE_list("arms", list(quality_arms.STUDY_ARMS),
                          "Arms (module doc).")
_BUDGET_ARM = flags.DEFINE_string(
    "budget_arm", quality_arms.BUDGET,
    "The equal-wall-clock arm, compared with the strongest recipe arm (its "
    "runs are reported, trained only when it is also in --arms).")
_MIGRATE = flags.DEFINE_bool(
    "migrate", False, "Relabel the rows of --results by their recorded "
    "settings (idempotent; studies appending to the file wait for it) and "
    "exit.")
_RESULTS = flags.DEFINE_string("results", "quality_parity.jsonl",
                               "JSON-lines results file (appended).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Default: a temp dir.")
_TINY = flags.DEFINE_bool("tiny", False,
                          "Smoke mode: tiny random BERT and data, 1 epoch.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False,
                                 "Print the table from --results; train "
                                 "nothing.")
_RUN_ONE = flags.DEFINE_string("run_one", None,
                               "Internal: train one run (JSON) and print "
                               "its result.")

_RESULT_PREFIX = "QUALITY_RUN_RESULT "


def _study(fold: int, seed: int) -> dict:
  """The run settings every arm of a fold and seed shares (from the flags)."""
  return {"fold": fold, "seed": seed,
          "epochs": 1 if _TINY.value else _EPOCHS.value,
          "learning_rate": _LR.value,
          "batch_size": 4 if _TINY.value else _BATCH.value,
          "model": _MODEL.value, "tiny": _TINY.value,
          "data": os.path.basename(_DATA.value)}


def resolved_settings(arm: str, fold: int, seed: int, *,
                      flag: str = "--arms") -> dict:
  """Everything that determines a run's outcome (quality_arms.arm_settings).

  `flag` is the one that named the arm, for the refusal's wording.
  """
  try:
    return quality_arms.arm_settings(arm, _study(fold, seed))
  except ValueError as e:
    # One line, no usage dump (exit 1).
    raise SystemExit(f"{flag}: {e}") from None


def tfqa_run_config(settings: dict, train_file: str, heldout_file: str,
                    workdir: str):
  """The tfqa RunConfig of a run from its recorded settings."""
  from tfqa import config  # pylint: disable=import-outside-toplevel

  sections = {name: cls(**settings["resolved"][name]) if "resolved" in
              settings else cls()
              for name, cls in (("features", config.FeatureConfig),
                                ("pipeline", config.PipelineConfig),
                                ("decode", config.DecodeConfig))}
  train = (config.TrainConfig(**settings["resolved"]["train"])
           if "resolved" in settings else
           quality_arms.tfqa_sections(settings, {})["train"])
  kind = "tiny" if settings["tiny"] else "pretrained"
  return config.RunConfig(
      model=bench_common.model_config(kind, workdir, model=settings["model"]),
      data=config.DataConfig(train_file=train_file, eval_file=heldout_file),
      train=train, **sections)


def run_one(spec: dict) -> dict:
  """Trains and scores one run (in this process); returns its record."""
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows  # pylint: disable=import-outside-toplevel
  from tfqa.inference import run_evaluation  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel
  from tfqa.training import trainer  # pylint: disable=import-outside-toplevel
  import hf_recipe  # pylint: disable=import-outside-toplevel

  settings, workdir = spec["settings"], spec["workdir"]
  train_file, heldout_file, _, titles = bench_common.split_answerable(
      spec["data"], workdir, tiny=settings["tiny"],
      heldout_article=settings["fold"])
  run_config = tfqa_run_config(settings, train_file, heldout_file, workdir)
  selection = settings.get("selection")
  if selection:
    run_config, dev_paragraphs = _select_on_dev(run_config, selection,
                                                settings, workdir)
  started = time.perf_counter()
  if settings["kind"] == "tfqa":
    model_dir = os.path.join(workdir, "run")
    result = trainer.train_and_evaluate(run_config, model_dir, verbose=0)
    if selection:
      # The run evaluated on its dev split; both ends are scored on the
      # held-out questions, by the same evaluator the other arms use.
      train_seconds = time.perf_counter() - started
      selected = _score_checkpoints(model_dir, heldout_file)
    log = trainer.read_train_log(model_dir)
    # The run's own epochs (an arm may override num_train_epochs).
    per_epoch = result.total_steps // run_config.train.num_train_epochs
    last_epoch = [e["loss"] for e in log if e["step"] > result.total_steps -
                  per_epoch]
    norms = [e.get("gradient_norm") for e in log]
    metrics = selected["best"] if selection else result.metrics
    record = {"exact_match": metrics["exact_match"],
              "f1": metrics["f1"], "steps": result.steps_run,
              "windows": result.windows_run,
              "train_seconds": result.train_seconds,
              "last_epoch_loss": sum(last_epoch) / len(last_epoch),
              "gradient_norm_median": sorted(norms)[len(norms) // 2],
              "clipped_share": sum(n > run_config.train.clip_norm
                                   for n in norms) / len(norms)
                               if run_config.train.clip_norm else 0.0}
    if selection:
      record.update(
          last_exact_match=selected["last"]["exact_match"],
          last_f1=selected["last"]["f1"], selected_step=selected["step"],
          dev_f1=selected["dev_f1"], dev_paragraphs=dev_paragraphs,
          eval_every_steps=run_config.train.eval_every_steps,
          # Training with its dev evaluations, before the held-out scoring.
          train_and_dev_seconds=train_seconds)
    shutil.rmtree(model_dir, ignore_errors=True)
  else:
    recipe = hf_recipe.train(run_config, train_file,
                             epochs=settings["epochs"],
                             padding=settings["recipe"]["padding"],
                             epsilon=settings["recipe"]["adam_epsilon"],
                             clip_norm=settings["recipe"]["max_grad_norm"])
    source = model_source.resolve(run_config.model)
    heldout = squad_lib.load_squad_json(heldout_file).examples
    metrics = run_evaluation.evaluate(
        recipe.model, heldout, windows.load_tokenizer(source.tokenizer_path),
        run_config=run_config).metrics
    record = {"exact_match": metrics["exact_match"], "f1": metrics["f1"],
              "steps": recipe.steps,
              "windows": recipe.steps * run_config.train.train_batch_size,
              "train_seconds": recipe.fit_seconds,
              "last_epoch_loss": recipe.last_epoch_loss}
  record.update(
      windows_per_second=record["windows"] / record["train_seconds"],
      heldout_title=titles[0],
      heldout_questions=len(squad_lib.load_squad_json(heldout_file).examples),
      wall_seconds=time.perf_counter() - started)
  return record


def _select_on_dev(run_config, selection: dict, settings: dict,
                   workdir: str):
  """(run_config training on the fold less a dev split and keeping the
  checkpoint best on it, evaluated at every epoch's end; dev paragraphs)."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from tfqa.data import pipeline  # pylint: disable=import-outside-toplevel
  from tfqa.data import squad as squad_lib  # pylint: disable=import-outside-toplevel
  from tfqa.data import windows  # pylint: disable=import-outside-toplevel
  from tfqa.model import source as model_source  # pylint: disable=import-outside-toplevel

  fit_file, dev_file, dev_paragraphs = bench_common.carve_dev(
      run_config.data.train_file, workdir, share=selection["dev_share"],
      seed=[settings["fold"], settings["seed"]])
  tokenizer = windows.load_tokenizer(
      model_source.resolve(run_config.model).tokenizer_path)
  fit_windows = len(windows.build_features(
      squad_lib.load_squad_json(fit_file).examples, tokenizer,
      run_config.features))
  per_epoch = pipeline.steps_per_epoch(fit_windows,
                                       run_config.train.train_batch_size)
  return dataclasses.replace(
      run_config,
      data=dataclasses.replace(run_config.data, train_file=fit_file,
                               eval_file=dev_file),
      train=dataclasses.replace(run_config.train, eval_every_steps=per_epoch,
                                keep_best=selection["metric"])
  ), dev_paragraphs


def _score_checkpoints(model_dir: str, heldout_file: str) -> dict:
  """Held-out metrics of the run's best-on-dev and last checkpoints."""
  from tfqa import api  # pylint: disable=import-outside-toplevel
  from tfqa.layout import best_checkpoint  # pylint: disable=import-outside-toplevel

  best = best_checkpoint.read_record(model_dir)
  scored = {name: api.evaluate(
      model_dir, eval_file=heldout_file, checkpoint=checkpoint,
      output_dir=os.path.join(model_dir, f"heldout-{name}")).metrics
            for name, checkpoint in (
                ("best", best_checkpoint.prefix(model_dir)), ("last", None))}
  return dict(scored, step=best["step"], dev_f1=best["value"])


def _spawn(spec: dict) -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__),
       f"--run_one={json.dumps(spec)}"],
      env=env, capture_output=True, text=True)
  for line in proc.stdout.splitlines():
    if line.startswith(_RESULT_PREFIX):
      return json.loads(line[len(_RESULT_PREFIX):])
  raise RuntimeError(f"run {spec['arm']} fold {spec['settings']['fold']} "
                     f"seed {spec['settings']['seed']} failed (exit "
                     f"{proc.returncode}):\n{proc.stderr[-3000:]}")


def _train_unless_taken(arm, fold, seed, settings, key, *, label, workdir,
                        claims, done):
  """Trains one run and appends its row, unless another process holds it
  (None) or finished it meanwhile (its row, marked finished_by_other)."""
  if not run_claims.claim(claims, key):
    return None
  try:
    done.update(read_results(_RESULTS.value))
    if key in done:
      return dict(done[key], finished_by_other=True)
    spec = {"arm": arm, "workdir": os.path.join(workdir, key),
            "data": _DATA.value, "settings": settings}
    record = dict(_spawn(spec), key=key, arm=label, fold=fold, seed=seed,
                  settings=settings,
                  finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    shutil.rmtree(spec["workdir"], ignore_errors=True)
    run_claims.append_line(_RESULTS.value, json.dumps(record))
    done[key] = record
    return record
  finally:
    run_claims.release(claims, key)


def read_results(path: str) -> dict:
  """Finished runs by key; a line cut by a kill is ignored."""
  runs = {}
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      for line in f:
        try:
          record = json.loads(line)
        except json.JSONDecodeError:
          continue
        # Keyed anew: the key's canonical form may be newer than the line.
        runs[quality_arms.settings_key(record["settings"])] = record
  return runs


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _RUN_ONE.value:
    record = run_one(json.loads(_RUN_ONE.value))
    print(_RESULT_PREFIX + json.dumps(record))
    return
  if _MIGRATE.value:
    if not os.path.exists(_RESULTS.value):
      raise SystemExit(f"--results={_RESULTS.value}: no such file to "
                           f"migrate.")
    # Under the claims lock: a study appending meanwhile waits, loses nothing.
    with run_claims.locked(run_claims.claims_dir(_RESULTS.value)):
      changed = quality_arms.migrate_file(_RESULTS.value)
    print(f"{_RESULTS.value}: {changed} row(s) relabelled by their recorded "
          f"settings.")
    return
  arms = _ARMS.value
  labels = {}
  for arm, flag in [*((a, "--arms") for a in arms),
                    (_BUDGET_ARM.value, "--budget_arm"),
                    *((a, "--arms") for a in quality_arms.REPORTED_ONLY)]:
    if arm not in labels:
      labels[arm] = quality_arms.arm_label(
          resolved_settings(arm, 0, 0, flag=flag))
  try:
    folds = [int(f) for f in _FOLDS.value]
  except ValueError:
    raise SystemExit(f"Invalid --folds={','.join(_FOLDS.value)}: "
                         f"expected integers 0-4.") from None
  if not all(0 <= f < 5 for f in folds):
    raise SystemExit(f"Invalid --folds={','.join(_FOLDS.value)}: "
                         f"expected integers 0-4.")
  if _SEEDS.value < 1:
    raise SystemExit(f"Invalid --seeds={_SEEDS.value}: expected >= 1.")
  if not _REPORT_ONLY.value:
    bench_common.require_data(_DATA.value)
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="tfqa-quality-")
  done = read_results(_RESULTS.value)
  claims = run_claims.claims_dir(_RESULTS.value)
  started = time.perf_counter()
  grid = [(fold, seed) for fold in folds for seed in range(_SEEDS.value)]
  cells = []  # (label, key) of every run the report covers, in order
  for seed in range(_SEEDS.value):
    for fold in folds:
      for arm in labels:
        settings = resolved_settings(arm, fold, seed)
        key = quality_arms.settings_key(settings)
        cells.append((labels[arm], key))
        if key not in done and arm in arms and not _REPORT_ONLY.value:
          elapsed = f"[{time.perf_counter() - started:7.0f}s]"
          record = _train_unless_taken(arm, fold, seed, settings, key,
                                       label=labels[arm], workdir=workdir,
                                       claims=claims, done=done)
          if record is None:
            held = run_claims.holder(claims, key)
            by = (f"process {held['pid']} on {held['host']} holds it"
                  if held else "another process had it")
            print(f"{elapsed} {labels[arm]} fold {fold} seed {seed}: "
                  f"skipped, {by}", flush=True)
          elif record.get("finished_by_other"):
            print(f"{elapsed} {labels[arm]} fold {fold} seed {seed}: "
                  f"finished by another process", flush=True)
          else:
            print(f"[{time.perf_counter() - started:7.0f}s] {labels[arm]} "
                  f"fold {fold} seed {seed}: EM {record['exact_match']:.2f} "
                  f"F1 {record['f1']:.2f}, "
                  f"{record['windows_per_second']:.2f} windows/s", flush=True)
  if not _REPORT_ONLY.value:
    # Runs other processes finished meanwhile are reported too.
    done = read_results(_RESULTS.value)
  rows = [dict(done[key], arm=label) for label, key in cells if key in done]
  print()
  delta = quality_report.report(
      rows, list(dict.fromkeys(labels.values())), grid=grid,
      budget_arm=labels[_BUDGET_ARM.value])
  print(quality_report.format_last_line(delta))


if __name__ == "__main__":
  app.run(main)
