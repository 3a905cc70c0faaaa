"""The quality study's report: per-run table, paired F1 differences with folds as the unit, the strongest recipe arm and the equal-wall-clock difference.

An arm scored with its best checkpoint on a dev split (`+select=dev`) is
also compared with its own runs' last checkpoints, labelled `ARM@last`.

Not a library module: quality_parity.py and the tests import it from the
benchmarks directory. Pure over the results rows (TensorFlow-free).

Why folds are the unit: the seeds of one fold share its held-out questions,
so their differences are not independent. Each fold's difference is the
mean of its seeds' paired differences (A - B on the same fold and seed);
the mean, sd and 95% t-interval are over those fold means (df = folds - 1).
"""

from __future__ import annotations

import math

import quality_arms

# t quantiles (two-sided 95%) by degrees of freedom.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447,
         7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179,
         13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
         19: 2.093, 20: 2.086, 24: 2.064, 29: 2.045, 39: 2.023, 59: 2.001}
LAST_LINE = "equal_wall_clock_delta_f1"
_DEV_SELECTED = f"+{quality_arms.SELECT}=dev"
_RECIPES = (quality_arms.RECIPE, quality_arms.RECIPE_UNCLIPPED,
            quality_arms.RECIPE_384)
_DESCRIPTIONS = {
    quality_arms.TFQA: "tfqa's defaults",
    quality_arms.RECIPE: "upstream recipe (clip 1.0, per-batch padding)",
    quality_arms.RECIPE_UNCLIPPED: "recipe without clipping",
    quality_arms.RECIPE_384: "recipe padded to 384 (clip 1.0)",
    quality_arms.ATTRIBUTION: "tfqa with the recipe's optimizer settings",
    quality_arms.SPEED: "tfqa in bfloat16 with width-16 buckets",
}


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


def fold_unit_difference(by_cell: dict, arm: str, ref: str) -> dict | None:
  """F1 of `arm` minus `ref`, with folds as the unit (module doc).

  Args:
    by_cell: rows by (arm label, fold, seed).

  Returns:
    None without a pair, else folds, pairs, mean, sd, half (95% half-width;
    sd and half None for one fold), fold_means {fold: mean difference} and
    speed (mean per-pair ratio of training windows/s).
  """
  per_fold = {}
  speeds = []
  for (label, fold, seed), row in sorted(by_cell.items()):
    other = by_cell.get((ref, fold, seed))
    if label != arm or other is None:
      continue
    per_fold.setdefault(fold, []).append(row["f1"] - other["f1"])
    speeds.append(row["windows_per_second"] / other["windows_per_second"])
  if not per_fold:
    return None
  fold_means = {f: sum(d) / len(d) for f, d in sorted(per_fold.items())}
  mean, sd, half = mean_sd_ci(list(fold_means.values()))
  return {"folds": len(fold_means), "pairs": len(speeds), "mean": mean,
          "sd": sd, "half": half, "fold_means": fold_means,
          "speed": sum(speeds) / len(speeds)}


def strongest_recipe(by_cell: dict, arms: list[str]) -> tuple[str | None, str]:
  """The recipe arm with the highest mean F1, and the basis of that choice.

  The recipe arms among `arms` that have runs are compared over the (fold,
  seed) cells they all have, so that no arm is favoured by easier folds.
  """
  measured = [a for a in arms if a in _RECIPES and
              any(label == a for label, _, _ in by_cell)]
  if not measured:
    return None, "no recipe arm has runs"
  cells = set.intersection(*({(f, s) for label, f, s in by_cell
                              if label == a} for a in measured))
  if not cells:
    return None, (f"the recipe arms {', '.join(measured)} share no fold and "
                  f"seed")
  means = {a: sum(by_cell[(a, f, s)]["f1"] for f, s in cells) / len(cells)
           for a in measured}
  best = max(measured, key=lambda a: means[a])
  basis = ", ".join(f"{a} {means[a]:.2f}" for a in measured)
  unmeasured = [a for a in _RECIPES if a in arms and a not in measured]
  return best, (f"mean F1 over the {len(cells)} fold/seed cells every "
                f"measured recipe arm has: {basis}" +
                (f"; not measured: {', '.join(unmeasured)}"
                 if unmeasured else ""))


def comparisons(arms: list[str], strongest: str | None,
                budget_arm: str) -> list[tuple[str, str]]:
  """(arm, reference) pairs the report prints, in order."""
  wanted = [(quality_arms.TFQA, r) for r in _RECIPES]
  wanted += [(quality_arms.ATTRIBUTION, quality_arms.TFQA),
             (quality_arms.ATTRIBUTION, quality_arms.RECIPE),
             (quality_arms.RECIPE_UNCLIPPED, quality_arms.RECIPE),
             (quality_arms.RECIPE_384, quality_arms.RECIPE)]
  wanted += [(a, quality_arms.TFQA) for a in arms
             if a.startswith("tfqa+") and a != quality_arms.ATTRIBUTION]
  # A dev-selected arm against the same settings scored at their end: in
  # other runs (what selection and the smaller training set did together)
  # and in its own runs (what selection alone did).
  for a in arms:
    if a.endswith(_DEV_SELECTED):
      wanted += [(a, a[:-len(_DEV_SELECTED)]), (a, last_checkpoint_arm(a))]
  if strongest:
    wanted.append((budget_arm, strongest))
  return [(a, r) for a, r in dict.fromkeys(wanted) if a in arms and r in arms]


def last_checkpoint_arm(arm: str) -> str:
  """The label of a dev-selected arm's own runs scored at their last checkpoint."""
  return f"{arm}@last"


def with_last_checkpoints(rows: list[dict]) -> list[dict]:
  """`rows` plus, for each dev-selected run, its last checkpoint's scores as
  a row of last_checkpoint_arm(arm)."""
  return rows + [dict(r, arm=last_checkpoint_arm(r["arm"]), f1=r["last_f1"],
                      exact_match=r["last_exact_match"])
                 for r in rows if r["arm"].endswith(_DEV_SELECTED)]


def missing_runs(by_cell: dict, arm: str, grid: list[tuple[int, int]]) -> list:
  """(fold, seed) cells of the study's grid that `arm` has no run for."""
  return [(f, s) for f, s in grid if (arm, f, s) not in by_cell]


def _describe(arm: str) -> str:
  if arm.endswith("@last"):
    return "the same runs' last checkpoints"
  return _DESCRIPTIONS.get(arm, arm)


def _format_missing(arm: str, cells: list, grid: list) -> str:
  if len(cells) == len(grid):
    return f"{arm}: all {len(grid)} runs"
  return f"{arm}: " + " ".join(f"{f}/{s}" for f, s in cells)


def report(rows: list[dict], arms: list[str], *,
           grid: list[tuple[int, int]], budget_arm: str) -> float | None:
  """Prints the report (module doc); returns the equal-wall-clock difference.

  Args:
    rows: results rows, each labelled by its settings (`arm`).
    arms: the arm labels to show, in order.
    grid: the (fold, seed) cells the study asks for (missing runs are named).
    budget_arm: the equal-wall-clock arm's label.

  Returns:
    budget_arm's mean fold-unit F1 difference against the strongest recipe
    arm, or None when there is no pair (the report says what is missing).
  """
  arms = [*arms, *(last_checkpoint_arm(a) for a in arms
                   if a.endswith(_DEV_SELECTED))]
  by_cell = {(r["arm"], r["fold"], r["seed"]): r
             for r in with_last_checkpoints(rows) if r["arm"] in arms}
  # The arm column fits the study's longest label (52) or a longer one.
  arm_width = max(52, *(len(a) for a in [*arms, budget_arm]))
  print(f"{'fold':>4} {'seed':>4} {'held-out article':<32} "
        f"{'arm':<{arm_width}} {'EM':>6} {'F1':>6} {'win/s':>7} {'loss':>6}")
  for fold, seed in sorted({(f, s) for _, f, s in by_cell}):
    for arm in arms:
      r = by_cell.get((arm, fold, seed))
      if r:
        print(f"{fold:>4} {seed:>4} {r['heldout_title'][:32]:<32} "
              f"{arm:<{arm_width}} {r['exact_match']:6.2f} {r['f1']:6.2f} "
              f"{r['windows_per_second']:7.2f} {r['last_epoch_loss']:6.3f}")
  strongest, basis = strongest_recipe(by_cell, arms)
  print()
  print(f"Strongest recipe arm: {strongest or 'none'} ({basis}).")
  print("Paired F1 differences, arm - reference. Unit: the fold (each fold's "
        "difference is the mean over its seeds; mean, sd and 95% t-interval "
        "over folds). speed x: mean per-pair ratio of training windows/s, "
        "runs made under different machine loads.")
  print(f"{'arm':<{arm_width}} {'reference':<26} {'folds':>5} {'pairs':>5} "
        f"{'mean dF1':>9} {'sd':>6} {'95% CI (folds)':>17} {'speed x':>8}")
  budget_delta = None
  for arm, ref in comparisons(arms, strongest, budget_arm):
    result = fold_unit_difference(by_cell, arm, ref)
    lacking = [_format_missing(a, missing_runs(by_cell, a, grid), grid)
               for a in (arm, ref) if missing_runs(by_cell, a, grid)]
    if result is None:
      print(f"{arm:<{arm_width}} {ref:<26} no pairs; missing "
            f"{'; '.join(lacking)}")
      continue
    mean, sd, half = result["mean"], result["sd"], result["half"]
    ci = (f"[{mean - half:+6.2f}, {mean + half:+6.2f}]" if half is not None
          else "n/a")
    sd_text = f"{sd:6.2f}" if sd is not None else "   n/a"
    print(f"{arm:<{arm_width}} {ref:<26} {result['folds']:>5} "
          f"{result['pairs']:>5} {mean:+9.2f} {sd_text} {ci:>17} "
          f"{result['speed']:8.2f}")
    print(f"    {_describe(arm)} vs {_describe(ref)}; per fold: " +
          ", ".join(f"{f}: {d:+.2f}" for f, d in
                    result["fold_means"].items()) +
          (f"; missing {'; '.join(lacking)}" if lacking else ""))
    if (arm, ref) == (budget_arm, strongest):
      budget_delta = mean
  if budget_delta is None:
    print(f"No equal-wall-clock difference: {budget_arm} has no run paired "
          f"with the strongest recipe arm ({strongest or 'none'}).")
  return budget_delta


def format_last_line(delta: float | None) -> str:
  """`equal_wall_clock_delta_f1=<value>` (nan when not measured)."""
  return f"{LAST_LINE}={float('nan') if delta is None else delta:.4f}"
