"""`statusflow worker` and `statusflow produce` refuse what they cannot do, before touching Kafka."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

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


def test_a_web_port_in_use_ends_the_worker_with_one_line_naming_the_port_and_the_setting() -> None:
    """Another process listens on the web port: exit 1 within seconds, one line, no traceback (was 48 lines)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        # A broker nobody listens on: the port must be checked first, so this line must not be about it.
        result = run("worker", "--web-port", str(port), STATUSFLOW_BROKER="127.0.0.1:1")
        seconds = time.monotonic() - started

    stderr = result.stderr.decode()
    assert (1, True) == (result.returncode, seconds < 10), stderr
    expected = (
        f"statusflow worker: cannot start: web port {port} on 127.0.0.1 is already in use by another process "
        "(STATUSFLOW_WEB_PORT or --web-port choose the port, STATUSFLOW_WEB_HOST the address)"
    )
    assert [expected] == stderr.splitlines()


def test_at_debug_level_a_web_port_in_use_shows_the_traceback_too() -> None:
    """--log-level debug keeps the traceback for whoever is investigating, and the same last line."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("worker", "--web-port", str(port), "--log-level", "debug", STATUSFLOW_BROKER="127.0.0.1:1")

    stderr = result.stderr.decode()
    assert 1 == result.returncode, stderr
    assert "Traceback" in stderr
    assert "OSError: [Errno 98] Address already in use" in stderr
    assert stderr.splitlines()[-1].startswith(f"statusflow worker: cannot start: web port {port} on 127.0.0.1 is")


def test_web_port_0_is_refused_in_one_line() -> None:
    """Faust refuses port 0 with a traceback after the Kafka checks; the worker says so first, in one line."""
    result = run("worker", "--web-port", "0", STATUSFLOW_BROKER="127.0.0.1:1")

    assert 1 == result.returncode
    expected = (
        b"statusflow worker: cannot start: web port 0 on 127.0.0.1: not a TCP port (1-65535) "
        b"(STATUSFLOW_WEB_PORT or --web-port choose the port, STATUSFLOW_WEB_HOST the address)"
    )
    assert [expected] == result.stderr.splitlines()
