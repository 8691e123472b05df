"""Where GAIA keeps run directories (temp) and result records (repo-local)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("GAIA_RESULTS_DIR", REPO / "results"))
PUBLISHED_DATA_DIR = REPO / "paper_figures" / "data"
FIGURES_OUT_DIR = Path(os.environ.get("GAIA_FIGURES_DIR", REPO / "results" / "figures"))


def run_root() -> Path:
    """Parent of all run directories (override with GAIA_RUN_ROOT)."""
    root = Path(os.environ.get("GAIA_RUN_ROOT", Path(tempfile.gettempdir()) / "gaia-runs"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_run_dir(kind: str) -> Path:
    """A fresh directory for one deployment or experiment run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{stamp}-", dir=run_root()))
