"""The worker's start-up refusals, without a broker: one line, the right exit code, no secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.kafka_fixtures import free_port

PASSWORD = "s3cret-never-shown"  # noqa: S105 - a test value that must never be printed


def worker(env: dict[str, str]) -> tuple[int, float, str]:
    """Run `statusflow worker` with ``env`` added; return exit code, seconds taken and stderr."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stream", "worker", "--web-port", str(free_port())],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, time.monotonic() - started, done.stderr.decode()


def test_a_broker_nobody_listens_on_ends_the_worker_with_one_line_and_exit_1() -> None:
    """Connection refused: exit 1 within 10 s, one line naming the address, no traceback."""
    address = f"127.0.0.1:{free_port()}"

    code, seconds, stderr = worker({"STATUSFLOW_BROKER": address})

    assert (1, True) == (code, seconds < 10), stderr
    assert [f"statusflow worker: cannot start: broker {address} refused the connection (nothing listening there?)"] == (
        stderr.strip().splitlines()
    )


def test_sasl_without_a_user_is_a_usage_error_that_names_the_variables_and_not_the_password() -> None:
    """SASL_SSL with a password but no user: exit 2, the variables named, the password nowhere."""
    code, _, stderr = worker({"STATUSFLOW_SECURITY_PROTOCOL": "SASL_SSL", "STATUSFLOW_SASL_PASSWORD": PASSWORD})

    assert 2 == code
    assert "STATUSFLOW_SASL_USERNAME" in stderr
    assert PASSWORD not in stderr
