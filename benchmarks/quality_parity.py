"""Answer quality of tfqa's defaults against the transformers TF recipe: seeded cross-validation, paired differences.

  .venv/bin/python benchmarks/quality_parity.py --results=quality.jsonl \\
      [--folds=0,1,2,3,4] [--seeds=3] [--epochs=4] [--learning_rate=1.5e-4] \\
      [--arms=tfqa,recipe]

Cross-validation over the shared real sample (SQuAD 2.0 dev, 5 articles):
fold k trains on the answerable questions of the four other articles and
evaluates on those of article k. Every arm of a fold and seed trains on the
same examples and is scored on the same held-out questions by the same
decoder (tfqa.evaluation.evaluate: tfqa's windows, n-best 20, official SQuAD
v1.1 EM/F1), so the comparison isolates training.

Arms (--arms, comma-separated):
  tfqa        training.train_and_evaluate with tfqa's defaults; only epochs,
              batch size, peak LR and seed are set.
  tfqa+F=V    the same with RunConfig fields overridden, e.g.
              tfqa+clip_norm=0+adam_epsilon=1e-8 (an ablation, or a
              candidate default); F is a field of features, pipeline, decode
              or train.
  recipe      the transformers TF example recipe (hf_recipe.py), each
              shuffled batch padded to its longest window (run_qa.py's
              variable_batch mode; --recipe_padding=max_length pads to 384).
  recipe384   the recipe padded to 384 (the speed baseline).
Both tfqa and the recipe use warmup ratio 0.1 and weight decay 0.01; the
recipe keeps its own Adam epsilon (1e-8) and clipnorm (1.0, applied by
Keras' legacy optimizer to the raw embedding-gradient rows).

Each run trains in a subprocess (fresh TF state, bounded memory) and is
appended to --results as one JSON line keyed by its resolved settings; a
rerun skips what is there, so the study can be interrupted and resumed.
Runs go seed by seed, fold by fold, arm by arm.

Prints, per fold and seed, each arm's EM/F1 and training windows/s; then
for each arm the paired F1 difference against each of its references among
--arms (tfqa against recipe and recipe384; tfqa+... against tfqa, recipe
and recipe384; recipe384 against recipe): mean, standard deviation and 95%
t-interval over the pairs. Last line
`quality_delta_f1=<mean paired F1 difference tfqa - recipe>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tfqa.cli import common  # pylint: disable=unused-import  (Keras 2 setup)

from absl import app
from absl import flags

import bench_common

_DATA = flags.DEFINE_string("data", bench_common.SHARED_SAMPLE,
                            "SQuAD JSON with >= 5 articles.")
_MODEL = flags.DEFINE_string("model", "minilm-l6", "tfqa --model.")
_FOLDS = flags.DEFINE_list("folds", ["0", "1", "2", "3", "4"],
                           "Held-out article of each fold (0-4).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds 0..N-1 per fold.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Training epochs.")
_LR = flags.DEFINE_float("learning_rate", 1.5e-4, "Peak learning rate.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Batch size.")
_ARMS = flags.DEFINE_list("arms", ["tfqa", "recipe"], "Arms (module doc).")
_RECIPE_PADDING = flags.DEFINE_enum(
    "recipe_padding", "longest", ["longest", "max_length"],
    "Padding of the `recipe` arm.")
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
# t quantiles (two-sided 95%) by degrees of freedom.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447,
         7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179,
         13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
         19: 2.093, 20: 2.086, 24: 2.064, 29: 2.045, 39: 2.023, 59: 2.001}


def parse_arm(arm: str) -> tuple[str, dict]:
  """("tfqa" | "recipe" | "recipe384", {field: value}) of an arm spec."""
  kind, *overrides = arm.split("+")
  if kind not in ("tfqa", "recipe", "recipe384"):
    raise app.UsageError(f"Invalid arm {arm!r}: expected tfqa, tfqa+F=V..., "
                         f"recipe or recipe384.")
  if overrides and kind != "tfqa":
    raise app.UsageError(f"Invalid arm {arm!r}: only tfqa takes overrides.")
  values = {}
  for item in overrides:
    name, sep, text = item.partition("=")
    if not sep:
      raise app.UsageError(f"Invalid override {item!r} in arm {arm!r}: "
                           f"expected FIELD=VALUE.")
    values[name] = _parse_value(text)
  return kind, values


def _parse_value(text):
  """A number, true/false, or else the text itself."""
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    return text


def tfqa_run_config(settings: dict, train_file: str, heldout_file: str,
                    workdir: str):
  """The tfqa RunConfig of a run: defaults, the study's four settings, overrides."""
  from tfqa import config  # pylint: disable=import-outside-toplevel

  sections = {"features": config.FeatureConfig(),
              "pipeline": config.PipelineConfig(),
              "decode": config.DecodeConfig(),
              "train": config.TrainConfig(
                  train_batch_size=settings["batch_size"],
                  learning_rate=settings["learning_rate"],
                  num_train_epochs=settings["epochs"],
                  seed=settings["seed"])}
  for name, value in settings["overrides"].items():
    owners = [s for s, obj in sections.items()
              if name in {f.name for f in dataclasses.fields(obj)}]
    if not owners:
      raise app.UsageError(f"Unknown RunConfig field {name!r} in an arm.")
    sections[owners[0]] = dataclasses.replace(sections[owners[0]],
                                              **{name: value})
  kind = "tiny" if settings["tiny"] else "pretrained"
  return config.RunConfig(
      model=bench_common.model_config(kind, workdir, model=settings["model"]),
      data=config.DataConfig(train_file=train_file, eval_file=heldout_file),
      **sections)


def resolved_settings(arm: str, fold: int, seed: int) -> dict:
  """Everything that determines a run's outcome (its results-file key)."""
  from tfqa import config  # pylint: disable=import-outside-toplevel
  import hf_recipe  # pylint: disable=import-outside-toplevel

  kind, overrides = parse_arm(arm)
  settings = {"kind": kind, "fold": fold, "seed": seed,
              "epochs": 1 if _TINY.value else _EPOCHS.value,
              "learning_rate": _LR.value,
              "batch_size": 4 if _TINY.value else _BATCH.value,
              "model": _MODEL.value, "tiny": _TINY.value,
              "data": os.path.basename(_DATA.value), "overrides": overrides}
  if kind == "tfqa":
    run_config = tfqa_run_config(settings, "train.json", "heldout.json",
                                 tempfile.gettempdir())
    # The resolved sections, so that a change of tfqa's defaults is a new
    # key (and a run whose overrides equal the new defaults is reused).
    settings["resolved"] = {name: dataclasses.asdict(getattr(run_config,
                                                             name))
                            for name in ("features", "pipeline", "decode",
                                         "train")}
    settings["overrides"] = {}
  else:
    settings["recipe"] = {
        "padding": ("max_length" if kind == "recipe384"
                    else _RECIPE_PADDING.value),
        "max_length": hf_recipe.MAX_LENGTH, "stride": hf_recipe.STRIDE,
        "adam_epsilon": hf_recipe.ADAM_EPSILON,
        "max_grad_norm": hf_recipe.MAX_GRAD_NORM,
        "warmup_ratio": config.TrainConfig().warmup_ratio,
        "weight_decay": config.TrainConfig().weight_decay}
  return settings


def settings_key(settings: dict) -> str:
  """A run's key: the hash of its settings, float fields as floats (so that
  clip_norm=0 and the default 0.0 are one setting)."""
  return hashlib.sha256(json.dumps(_canonical(settings), sort_keys=True)
                        .encode()).hexdigest()[:16]


# Fields tfqa gained after runs were recorded, at the value that trains as
# before they existed: left out of the key, so those runs still count.
_ADDED_LATER = {"train": {"eval_every_steps": 0, "keep_best": "none",
                          "gradient_accumulation_steps": 1}}


def _canonical(settings: dict) -> dict:
  from tfqa import config  # pylint: disable=import-outside-toplevel

  if "resolved" not in settings:
    return settings
  sections = {"features": config.FeatureConfig, "pipeline":
              config.PipelineConfig, "decode": config.DecodeConfig,
              "train": config.TrainConfig}
  resolved = {}
  for name, values in settings["resolved"].items():
    floats = {f.name for f in dataclasses.fields(sections[name])
              if f.type == "float"}
    neutral = _ADDED_LATER.get(name, {})
    resolved[name] = {k: float(v) if k in floats and isinstance(v, int)
                      else v for k, v in values.items()
                      if k not in neutral or v != neutral[k]}
  return dict(settings, resolved=resolved)


def run_one(spec: dict) -> dict:
  """Trains and scores one run (in this process); returns its record."""
  from tfqa import data as data_lib  # pylint: disable=import-outside-toplevel
  from tfqa import evaluation  # pylint: disable=import-outside-toplevel
  from tfqa import features  # pylint: disable=import-outside-toplevel
  from tfqa import modeling  # pylint: disable=import-outside-toplevel
  from tfqa import training  # pylint: disable=import-outside-toplevel
  import hf_recipe  # pylint: disable=import-outside-toplevel

  settings, workdir = spec["settings"], spec["workdir"]
  train_file, heldout_file, _, titles = bench_common.split_answerable(
      spec["data"], workdir, tiny=settings["tiny"],
      heldout_article=settings["fold"])
  overrides = settings.get("resolved_overrides", {})
  base = dict(settings, overrides=overrides)
  run_config = tfqa_run_config(base, train_file, heldout_file, workdir)
  started = time.perf_counter()
  if settings["kind"] == "tfqa":
    model_dir = os.path.join(workdir, "run")
    result = training.train_and_evaluate(run_config, model_dir, verbose=0)
    log = training.read_train_log(model_dir)
    per_epoch = result.total_steps // settings["epochs"]
    last_epoch = [e["loss"] for e in log if e["step"] > result.total_steps -
                  per_epoch]
    norms = [e.get("gradient_norm") for e in log]
    record = {"exact_match": result.metrics["exact_match"],
              "f1": result.metrics["f1"], "steps": result.steps_run,
              "windows": result.windows_run,
              "train_seconds": result.train_seconds,
              "last_epoch_loss": sum(last_epoch) / len(last_epoch),
              "gradient_norm_median": sorted(norms)[len(norms) // 2],
              "clipped_share": sum(n > run_config.train.clip_norm
                                   for n in norms) / len(norms)
                               if run_config.train.clip_norm else 0.0}
    shutil.rmtree(model_dir, ignore_errors=True)
  else:
    recipe = hf_recipe.train(run_config, train_file,
                             epochs=settings["epochs"],
                             padding=settings["recipe"]["padding"])
    source = modeling.resolve_source(run_config.model)
    heldout = data_lib.load_squad_json(heldout_file).examples
    metrics = evaluation.evaluate(
        recipe.model, heldout, features.load_tokenizer(source.tokenizer_path),
        run_config=run_config).metrics
    record = {"exact_match": metrics["exact_match"], "f1": metrics["f1"],
              "steps": recipe.steps,
              "windows": recipe.steps * run_config.train.train_batch_size,
              "train_seconds": recipe.fit_seconds,
              "last_epoch_loss": recipe.last_epoch_loss}
  record.update(
      windows_per_second=record["windows"] / record["train_seconds"],
      heldout_title=titles[0],
      heldout_questions=len(data_lib.load_squad_json(heldout_file).examples),
      wall_seconds=time.perf_counter() - started)
  return record


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
        runs[settings_key(record["settings"])] = record
  return runs


def mean_sd_ci(values):
  """(mean, sample sd, 95% t half-width); sd and half-width None for n < 2."""
  n = len(values)
  mean = sum(values) / n
  if n < 2:
    return mean, None, None
  sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
  df = n - 1
  t = _T975.get(df) or _T975[max(k for k in _T975 if k <= df)]
  return mean, sd, t * sd / math.sqrt(n)


def references_of(arm: str) -> tuple[str, ...]:
  """The arms `arm` is paired with; the first names the summary line.

  tfqa is paired with the recipe both ways it is run (variable padding and
  384), an ablation or budget arm `tfqa+...` with tfqa's defaults and with
  both recipes.
  """
  if arm == "tfqa":
    return ("recipe", "recipe384")
  if arm.startswith("tfqa+"):
    return ("tfqa", "recipe", "recipe384")
  if arm == "recipe384":
    return ("recipe",)
  return ()


def report(rows: list[dict], arms: list[str]) -> float | None:
  """Prints the per-run table and the paired differences; returns tfqa - recipe."""
  by_cell = {(r["arm"], r["fold"], r["seed"]): r for r in rows}
  cells = sorted({(r["fold"], r["seed"]) for r in rows})
  print(f"{'fold':>4} {'seed':>4} {'held-out article':<32} {'arm':<36} "
        f"{'EM':>6} {'F1':>6} {'win/s':>7} {'loss':>6}")
  for fold, seed in cells:
    for arm in arms:
      r = by_cell.get((arm, fold, seed))
      if r:
        print(f"{fold:>4} {seed:>4} {r['heldout_title'][:32]:<32} "
              f"{arm[:36]:<36} {r['exact_match']:6.2f} {r['f1']:6.2f} "
              f"{r['windows_per_second']:7.2f} {r['last_epoch_loss']:6.3f}")
  print()
  print(f"{'arm':<36} {'reference':<10} {'pairs':>5} {'mean dF1':>9} "
        f"{'sd':>6} {'95% CI':>17} {'speed x':>8}")
  delta = None
  for arm, ref in [(a, r) for a in arms for r in references_of(a)]:
    pairs = [(by_cell[(arm, f, s)], by_cell[(ref, f, s)]) for f, s in cells
             if (arm, f, s) in by_cell and (ref, f, s) in by_cell]
    if not pairs:
      continue
    diffs = [a["f1"] - b["f1"] for a, b in pairs]
    speed = sum(a["windows_per_second"] / b["windows_per_second"]
                for a, b in pairs) / len(pairs)
    mean, sd, half = mean_sd_ci(diffs)
    ci = (f"[{mean - half:+6.2f}, {mean + half:+6.2f}]" if half is not None
          else "n/a")
    sd_text = f"{sd:6.2f}" if sd is not None else "   n/a"
    print(f"{arm[:36]:<36} {ref:<10} {len(pairs):>5} {mean:+9.2f} "
          f"{sd_text} {ci:>17} {speed:8.2f}")
    if (arm, ref) == ("tfqa", "recipe"):
      delta = mean
  return delta


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _RUN_ONE.value:
    record = run_one(json.loads(_RUN_ONE.value))
    print(_RESULT_PREFIX + json.dumps(record))
    return
  arms = _ARMS.value
  for arm in arms:
    parse_arm(arm)
  try:
    folds = [int(f) for f in _FOLDS.value]
  except ValueError:
    raise app.UsageError(f"Invalid --folds={','.join(_FOLDS.value)}: "
                         f"expected integers 0-4.") from None
  if not all(0 <= f < 5 for f in folds):
    raise app.UsageError(f"Invalid --folds={','.join(_FOLDS.value)}: "
                         f"expected integers 0-4.")
  if _SEEDS.value < 1:
    raise app.UsageError(f"Invalid --seeds={_SEEDS.value}: expected >= 1.")
  bench_common.require_data(_DATA.value)
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="tfqa-quality-")
  done = read_results(_RESULTS.value)
  started = time.perf_counter()
  rows = []
  for seed in range(_SEEDS.value):
    for fold in folds:
      for arm in arms:
        settings = resolved_settings(arm, fold, seed)
        key = settings_key(settings)
        if key not in done and not _REPORT_ONLY.value:
          spec = {"arm": arm, "workdir": os.path.join(workdir, key),
                  "data": _DATA.value,
                  "settings": dict(settings,
                                   resolved_overrides=parse_arm(arm)[1])}
          record = dict(_spawn(spec), key=key, arm=arm, fold=fold,
                        seed=seed, settings=settings,
                        finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
          shutil.rmtree(spec["workdir"], ignore_errors=True)
          with open(_RESULTS.value, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
          done[key] = record
          print(f"[{time.perf_counter() - started:7.0f}s] {arm} fold "
                f"{fold} seed {seed}: EM {record['exact_match']:.2f} F1 "
                f"{record['f1']:.2f}, {record['windows_per_second']:.2f} "
                f"windows/s", flush=True)
        if key in done:
          rows.append(dict(done[key], arm=arm))
  print()
  delta = report(rows, arms)
  if delta is not None:
    print(bench_common.format_last_line("quality_delta_f1", delta))


if __name__ == "__main__":
  app.run(main)
