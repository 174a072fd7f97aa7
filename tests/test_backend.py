"""TensorFlow starts without printing its start-up lines."""

import os
import subprocess
import sys


def test_tensorflow_starts_without_a_line_on_stderr():
    # a fresh process: TensorFlow writes its lines (absl, oneDNN) the first time it is imported
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    code = ("from liverseg.backend import start_tensorflow_quietly; start_tensorflow_quietly(); "
            "import sys; assert 'tensorflow' in sys.modules; print('started', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["started"]  # stderr is back once TensorFlow is loaded
