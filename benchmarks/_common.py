"""What every benchmark script shares: where results go and how they are written."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def write_results(path: str | Path, benchmark: str, settings: Any, **content) -> None:
    """Writes `{"benchmark", "settings", "machine", **content}` as JSON to `path`."""
    import ray
    import torch

    out = {
        "benchmark": benchmark,
        "settings": vars(settings) if hasattr(settings, "__dict__") else settings,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ray": ray.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpus": ray.cluster_resources().get("CPU")
            if ray.is_initialized()
            else None,
        },
        **content,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
    print(f"Wrote {path}")
