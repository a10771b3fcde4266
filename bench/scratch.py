"""
The benchmarks' scratch directories: removed after a run that ends well, kept after one that fails.

A 1,000,000-member ``bench/state_bench.py`` run leaves about 6 GB of broker and RocksDB data; a few
runs fill a disk. A failed run's directory holds the broker's and the workers' logs, so it stays,
and its path is printed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_MADE: list[Path] = []


def scratch_dir(prefix: str) -> Path:
    """Return a new directory under the system's temporary directory, removed by ``run`` on success."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _MADE.append(path)
    return path


def run(main: Callable[[], object]) -> None:
    """Run a benchmark's ``main``; remove its scratch directories if it returned, else say where they are."""
    try:
        main()
    except BaseException:
        for path in _MADE:
            print(f"kept {path} (the failed run's data and logs)", file=sys.stderr)
        raise
    for path in _MADE:
        shutil.rmtree(path, ignore_errors=True)
