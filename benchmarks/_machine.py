"""What every benchmark reports about the machine it ran on (imported by the scripts here)."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict:
    """CPU count, the CPUs this process may use, platform, Python and NumPy versions."""
    import numpy as np

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def device_name(keras) -> str:
    """The accelerator Keras' backend runs on, or ``CPU (arch)``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]  # str() is "cuda:0": add the chip ("NVIDIA H200") for PEAK_TFLOPS
        return str(device) if device.platform == "cpu" else f"{device} ({device.device_kind})"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else f"CPU ({platform.processor() or platform.machine()})"
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return "unknown"
