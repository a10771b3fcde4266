"""The worker over SASL_SSL with ACLs: parity, least privilege, and failures that end it in one line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.kafka.acls import worker_acls
from tests.e2e.test_worker_kafka import offline, sample
from tests.kafka_fixtures import Pipeline, free_port
from tests.secured_fixtures import LocalKafka

pytestmark = pytest.mark.kafka


def test_a_worker_holding_only_the_readme_acls_resolves_exactly_as_offline_over_sasl_ssl(
    secured_pipeline: Pipeline, secured_kafka: LocalKafka
) -> None:
    """SCRAM-SHA-512 over TLS, as a principal with only the worker's ACLs (topics made by an admin): parity."""
    lines = sample(1000, 9, seed=23)[:8000]
    expected = offline(lines)
    # Through kafka-acls, as the README shows it (the other tests grant through the protocol: faster).
    secured_kafka.grant_with_kafka_acls(worker_acls(secured_pipeline.settings, creates_topics=False), "statusflow")
    secured_pipeline.worker_env = secured_kafka.worker_env("statusflow")
    worker = secured_pipeline.start_worker()

    secured_pipeline.produce(lines)

    secured_pipeline.wait_for(
        lambda: secured_pipeline.latest_states() == expected,
        180,
        "the secured stream to match the offline result",
        lambda: secured_pipeline.differences(expected),
    )
    assert worker.process.poll() is None
    assert 0 == worker.stop()
    assert secured_kafka.password("statusflow") not in worker.log.read_text()


def run_worker(pipeline: Pipeline, env: dict[str, str]) -> tuple[int, float, str]:
    """Run a worker of ``pipeline`` with ``env`` until it exits (at most 60 s); return code, seconds, stderr."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stream", "worker", "--web-port", str(free_port())],
        env={**pipeline.env(), **env},
        cwd=pipeline.workdir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, time.monotonic() - started, done.stderr.decode()


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("wrong password", "SASL authentication as 'statusflow' (SCRAM-SHA-512)"),
        ("unknown user", "SASL authentication as 'nobody' (SCRAM-SHA-512)"),
        ("wrong CA", "certificate is not trusted by the CA in STATUSFLOW_SSL_CAFILE="),
    ],
)
def test_a_login_that_cannot_work_ends_the_worker_within_10_s_with_one_line(
    secured_pipeline: Pipeline, secured_kafka: LocalKafka, tmp_path: Path, case: str, cause: str
) -> None:
    """Wrong password, unknown user, a CA that did not sign the broker: exit 1, one line naming it, no traceback."""
    env = secured_kafka.worker_env("statusflow")
    if case == "wrong password":
        (tmp_path / "wrong").write_text("not-the-password\n")
        env["STATUSFLOW_SASL_PASSWORD_FILE"] = str(tmp_path / "wrong")
    elif case == "unknown user":
        env["STATUSFLOW_SASL_USERNAME"] = "nobody"
    else:
        env["STATUSFLOW_SSL_CAFILE"] = "/etc/ssl/certs/ca-certificates.crt"

    code, seconds, stderr = run_worker(secured_pipeline, env)

    assert (1, True) == (code, seconds < 10), stderr
    assert 1 == len(stderr.strip().splitlines()), stderr
    assert cause in stderr
    assert "Traceback" not in stderr
    assert secured_kafka.password("statusflow") not in stderr


@pytest.mark.parametrize("topic", ["output", "re-key", "changelog"])
def test_a_principal_lacking_write_on_one_topic_is_told_which_at_start_and_the_worker_exits(
    secured_pipeline: Pipeline, secured_kafka: LocalKafka, topic: str
) -> None:
    """
    The worker's ACLs but Write on one topic: exit 1 within 10 s, one line naming topic, operation, principal.

    The output topic is then invisible to the principal (Write is its only ACL); the re-key topic
    and the changelog stay readable, so only the operations the broker reports for them tell.
    """
    s = secured_pipeline.settings
    name = {"output": s.output_topic, "re-key": s.by_member_topic, "changelog": s.changelog_topic}[topic]
    acls = [acl for acl in worker_acls(s, creates_topics=False) if (acl.operation, acl.name) != ("Write", name)]
    secured_kafka.grant(acls, "User:restricted")

    code, seconds, stderr = run_worker(secured_pipeline, secured_kafka.worker_env("restricted"))

    assert (1, True) == (code, seconds < 10), stderr
    line = f"statusflow worker: cannot start: principal User:restricted lacks Write on topic {name} (README, 'Least privilege')"
    assert [line] == stderr.strip().splitlines()
