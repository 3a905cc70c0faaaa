"""The reliability campaigns of tools/ in their small (CI) modes: each must run clean and report its counts."""


import pytest

from conftest import REPO_ROOT, run_python

pytestmark = pytest.mark.slow


def _campaign(script, tmp_path, *args):
  proc = run_python([REPO_ROOT / "tools" / script, "--small",
                     f"--workdir={tmp_path}", *args], timeout=1200)
  assert "failures: 0" in proc.stdout
  return proc.stdout


def _assert_rows(out, rows):
  """Each row stands on a line of its own in the campaign's tables."""
  missing = [row for row in rows if f"  {row}\n" not in out]
  assert not missing, out[-4000:]


def test_crash_campaign_small(tmp_path):
  out = _campaign("crash_campaign.py", tmp_path)
  _assert_rows(out, ["kills | 3", "kills: in_save | 1", "kills: eval | 1",
                     "kills: mid_eval | 1",
                     "bit-identical final checkpoints | 1",
                     "bit-identical best checkpoints | 1",
                     "inside evaluation | 1",
                     "inside an evaluation during training | 1"])


def test_corruption_campaign_small(tmp_path):
  out = _campaign("corruption_campaign.py", tmp_path)
  _assert_rows(out, [
      "checkpoints/ckpt-8.index | flip bit | fell back | 3",
      "checkpoints/ckpt-8.data-00000-of-00001 | truncate | fell back | 3",
      "checkpoints/checkpoint | zero | unaffected | 1",
      "saved_model/tfqa/1/variables/variables.data-00000-of-00001 | flip bit "
      "| detected | 2",
      "pretrained/tf_model.h5 | delete | detected | 1"])
  assert "  run_config.json | flip bit | refused | " in out


def test_export_kill_campaign_small(tmp_path):
  out = _campaign("export_kill_campaign.py", tmp_path)
  _assert_rows(out, ["kills: publish_aside | 1", "final rerun succeeded | 1",
                     "partial versions the watcher saw | 0",
                     "staging entries left after the final rerun | 0",
                     "final export verified against its manifest | 1"])


def test_disk_campaign_small(tmp_path):
  out = _campaign("disk_campaign.py", tmp_path)
  for check in ("tfqa_train exits 1", "one-line error, no traceback",
                "files written before are unchanged",
                "step log keeps steps 1-4",
                "newest checkpoint still ckpt-4",
                "resume once writable succeeds"):
    assert f"  fsize | {check} | ok |" in out


def test_preemption_campaign_small(tmp_path):
  out = _campaign("preemption_campaign.py", tmp_path)
  _assert_rows(out, ["signals | 2", "signals: SIGINT | 1",
                     "signals: SIGTERM | 1",
                     "interruptions that lost no step | 2",
                     "inside an evaluation during training | 1",
                     "between micro-batches | 1",
                     "bit-identical final checkpoints | 1",
                     "runs with equal step log and eval outputs | 1"])
