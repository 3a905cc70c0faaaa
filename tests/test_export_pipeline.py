"""Tests for tfqa.export.pipeline: export_model's stages, in order, through the ExportHooks seam."""

import os

import pytest

from tfqa import export
from tfqa.export import pipeline

from conftest import tiny_export


@pytest.mark.slow
def test_stages_come_in_order_staged_then_published(tmp_path_factory,
                                                     tiny_files, tmp_path):
  model_dir, _ = tiny_export(tmp_path_factory, tiny_files)
  export_dir = str(tmp_path / "export")
  stages = []
  result = export.export_model(
      model_dir=model_dir, export_dir=export_dir, verify=False,
      hooks=pipeline.ExportHooks(
          after_stage=lambda stage, path: stages.append((stage, path))))
  # No verification asked, no portable formats: those stages are skipped.
  assert [stage for stage, _ in stages] == [
      s for s in pipeline.STAGES if s not in ("verify", "portable")]
  paths = dict(stages)
  # Written into hidden staging directories first, published after.
  for stage in ("saved_model", "warmup", "pretrained"):
    assert os.path.basename(paths[stage]).startswith(".tmp-"), stage
  assert paths["saved_model"] == paths["warmup"]
  assert paths["published_version"] == result.saved_model_dir == os.path.join(
      export_dir, "saved_model", "tfqa", "1")
  assert paths["published_pretrained"] == result.pretrained_dir
  assert paths["manifest"] == result.manifest_path == os.path.join(
      export_dir, "manifest.json")
