"""What every benchmark shares: where the data is, the machine record, saving results."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import av
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import cv2
    import onnxruntime

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "av": av.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save_result(name: str, payload: dict, out: Path | None = None) -> Path:
    """Write {"benchmark": name, "machine": ..., **payload} to `out` or
    benchmarks/results/<name>_<date>.json; return the path."""
    out = out or RESULTS / f"{name}_{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2) + "\n")
    return out
