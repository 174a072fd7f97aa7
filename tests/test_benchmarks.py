"""The benchmark scripts still run against the library (they patch its functions by name)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.keras
def test_volume_benchmark_times_every_stage_of_a_small_volume(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "volume.py"), "--profile", "smoke",
         "--shape", "12", "48", "40", "--planes", "axial", "--json-only",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["config"]["weights"] == "untrained"
    assert result["config"]["shape_zyx"] == [12, 48, 40]
    assert result["lesion_cascade_ran"]  # the untrained liver is not empty on this phantom
    stages = result["seconds"]["stages"]
    assert stages["liver_axial"] > 0 and stages["lesion_axial"] > 0
    assert "lesion_view" in result["seconds"]["outside_library_stages_parts"]
    assert result["memory"]["peak_rss_mib"] > result["memory"]["rss_before_mib"] > 0
