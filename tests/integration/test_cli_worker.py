"""`statusflow worker` and `statusflow produce` refuse what they cannot do, before touching Kafka."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def run(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def test_the_worker_refuses_a_store_it_does_not_know_and_names_the_choices() -> None:
    """A typo in the store is not silently replaced by another store: exit 2, say which exist."""
    result = run("worker", STATUSFLOW_STORE="redis://")

    assert 2 == result.returncode
    assert b"store 'redis://' is not known: use memory:// or rocksdb://" in result.stderr


def test_the_store_flag_is_read_and_checked_like_the_variable() -> None:
    """--store is not silently ignored (it was once: the worker started on memory://)."""
    result = run("worker", "--store", "rocks://")

    assert 2 == result.returncode
    assert b"store 'rocks://' is not known" in result.stderr


def test_version_names_the_installed_release() -> None:
    """`statusflow --version` prints the package's version, the one pyproject.toml sets."""
    from importlib.metadata import version

    result = run("--version")

    assert (0, f"statusflow {version('statusflow')}\n".encode()) == (result.returncode, result.stdout)


def test_a_malformed_setting_is_named_in_the_error() -> None:
    """STATUSFLOW_PARTITIONS=eight is reported with the variable's name."""
    result = run("worker", STATUSFLOW_PARTITIONS="eight")

    assert 2 == result.returncode
    assert b"statusflow: STATUSFLOW_PARTITIONS='eight' is not a valid int\n" == result.stderr


def test_produce_reports_a_missing_file_as_a_usage_error() -> None:
    """Exit 2, no Kafka connection attempted."""
    result = run("produce", "/nonexistent/file.jsonl")

    assert 2 == result.returncode
    assert b"no such file" in result.stderr
