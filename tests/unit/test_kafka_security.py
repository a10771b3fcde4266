"""Security settings: validation, the secret that never shows, and the options every Kafka client gets."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from stream.config import ConfigError, Secret, Settings
from stream.kafka.client import describe, faust_credentials, group_consumer_options, kafka_client_options

PASSWORD = "hunter2-do-not-print"  # noqa: S105 - a test value that must never be printed


def sasl_env(**extra: str) -> dict[str, str]:
    """Return the variables of a SASL_PLAINTEXT SCRAM client."""
    return {
        "STATUSFLOW_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STATUSFLOW_SASL_MECHANISM": "SCRAM-SHA-512",
        "STATUSFLOW_SASL_USERNAME": "worker",
        "STATUSFLOW_SASL_PASSWORD": PASSWORD,
        **extra,
    }


def test_the_default_is_plaintext_with_no_credentials() -> None:
    """A local broker needs nothing: PLAINTEXT, no SASL, no TLS options."""
    options = kafka_client_options(Settings())

    assert {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"} == options
    assert faust_credentials(Settings()) is None


def test_the_password_never_shows_in_repr_str_or_the_settings_repr() -> None:
    """repr, str and an f-string of the settings show asterisks, never the password."""
    settings = Settings.from_env(sasl_env())

    shown = f"{settings!r} {settings} {settings.sasl_password} {settings.sasl_password!r}"

    assert PASSWORD not in shown
    assert "**********" in shown
    assert PASSWORD == settings.sasl_password.reveal()


def test_the_password_file_is_read_once_at_the_edge(tmp_path: Path) -> None:
    """STATUSFLOW_SASL_PASSWORD_FILE (a mounted secret) gives the password, less its trailing newline."""
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    env = sasl_env(STATUSFLOW_SASL_PASSWORD_FILE=str(secret))
    del env["STATUSFLOW_SASL_PASSWORD"]

    settings = Settings.from_env(env)

    assert Secret(PASSWORD) == settings.sasl_password


def test_sasl_options_reach_aiokafka_and_faust() -> None:
    """SASL settings become aiokafka's keyword arguments and Faust's SASLCredentials."""
    settings = Settings.from_env(sasl_env())

    options = kafka_client_options(settings)
    credentials = faust_credentials(settings)

    assert ("SASL_PLAINTEXT", "SCRAM-SHA-512", "worker", PASSWORD) == (
        options["security_protocol"],
        options["sasl_mechanism"],
        options["sasl_plain_username"],
        options["sasl_plain_password"],
    )
    assert ("worker", PASSWORD, "SCRAM-SHA-512") == (
        credentials.username,
        credentials.password,
        credentials.mechanism.value,
    )
    assert PASSWORD not in repr(credentials)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STATUSFLOW_SECURITY_PROTOCOL": "TLS"}, "STATUSFLOW_SECURITY_PROTOCOL='TLS'"),
        ({"STATUSFLOW_SASL_MECHANISM": "GSSAPI"}, "STATUSFLOW_SASL_MECHANISM='GSSAPI'"),
        ({"STATUSFLOW_SECURITY_PROTOCOL": "SASL_SSL"}, "STATUSFLOW_SASL_USERNAME"),
        ({"STATUSFLOW_SECURITY_PROTOCOL": "SSL", "STATUSFLOW_SSL_CERTFILE": "/x"}, "STATUSFLOW_SSL_KEYFILE"),
        ({"STATUSFLOW_SSL_CAFILE": "/etc/hostname"}, "STATUSFLOW_SECURITY_PROTOCOL=SSL"),
        ({"STATUSFLOW_SECURITY_PROTOCOL": "SSL", "STATUSFLOW_SSL_CAFILE": "/nonexistent"}, "no such file"),
        ({"STATUSFLOW_SASL_PASSWORD_FILE": "/nonexistent"}, "STATUSFLOW_SASL_PASSWORD_FILE='/nonexistent'"),
        ({"STATUSFLOW_REPLICATION_FACTOR": "0"}, "STATUSFLOW_REPLICATION_FACTOR=0"),
        ({"STATUSFLOW_REPLICATION_FACTOR": "3", "STATUSFLOW_MIN_INSYNC_REPLICAS": "4"}, "MIN_INSYNC_REPLICAS=4"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    """Each impossible combination is a ConfigError that names what to fix."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)

    assert named in str(caught.value)


def test_a_wrong_password_is_described_without_the_password() -> None:
    """The one-line reason for a failed login names user and mechanism, not the password."""
    settings = Settings.from_env(sasl_env())

    line = describe(type("SaslAuthenticationFailed", (Exception,), {})("invalid credentials"), settings, "h:1")

    assert "SASL authentication as 'worker' (SCRAM-SHA-512) to h:1 failed: invalid credentials" in line
    assert PASSWORD not in line


def tls_alert(reason: str) -> Exception:
    """Return what aiokafka raises for a TLS alert after the handshake: 'Connection closed', the alert as cause."""
    alert = ssl.SSLError(1, f"[SSL: {reason}] alert")
    alert.reason = reason
    closed = ConnectionError("Connection at h:1 closed")
    closed.__cause__ = alert
    return closed


def test_a_broker_that_wants_a_client_certificate_says_so_through_aiokafkas_closed_connection() -> None:
    """TLS 1.3 refuses a missing client certificate after the handshake; the cause is found under the close."""
    line = describe(tls_alert("TLSV13_ALERT_CERTIFICATE_REQUIRED"), Settings(security_protocol="SSL"), "h:1")

    assert line == (
        "TLS to h:1 refused: the broker requires a client certificate "
        "(mutual TLS: set STATUSFLOW_SSL_CERTFILE and STATUSFLOW_SSL_KEYFILE)"
    )


def test_a_client_certificate_the_broker_does_not_trust_is_named(tmp_path: Path) -> None:
    """An alert while a certificate was offered names the certificate file and the alert."""
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "c.key").write_text("x")
    settings = Settings(
        security_protocol="SSL", ssl_certfile=str(tmp_path / "c.pem"), ssl_keyfile=str(tmp_path / "c.key")
    )

    line = describe(tls_alert("TLSV1_ALERT_UNKNOWN_CA"), settings, "h:1")

    assert f"TLS to h:1 refused the client certificate in STATUSFLOW_SSL_CERTFILE={tmp_path / 'c.pem'}" in line
    assert "TLSV1_ALERT_UNKNOWN_CA" in line


@pytest.mark.parametrize(("replication", "expected"), [(1, 1), (2, 1), (3, 2), (5, 4)])
def test_min_insync_replicas_defaults_to_one_less_than_the_replication(replication: int, expected: int) -> None:
    """RF 3 gets min ISR 2: one broker may be lost without refusing writes."""
    assert expected == Settings(replication_factor=replication).min_insync


def test_help_offers_no_password_flag_and_shows_no_password() -> None:
    """`statusflow worker --help` has no password flag (it would show in ps) and prints no secret."""
    env = {"STATUSFLOW_SASL_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}

    result = subprocess.run(
        [sys.executable, "-m", "stream", "worker", "--help"], capture_output=True, env=env, check=True, timeout=60
    )

    assert b"--sasl-password-file" in result.stdout
    assert b"--sasl-password " not in result.stdout
    assert PASSWORD.encode() not in result.stdout + result.stderr


def test_each_group_of_a_static_worker_has_its_own_instance_id() -> None:
    """One instance id in two groups would make the broker fence one of them; dynamic stays dynamic."""
    static = Settings(instance_id="pod-3", app_id="app")
    ingest, correlate = (group_consumer_options(static, group) for group in ("ingest", "correlate"))

    assert ("app-ingest", "pod-3") == (ingest["group_id"], ingest["group_instance_id"])
    assert ("app-correlate", "pod-3-correlate") == (correlate["group_id"], correlate["group_instance_id"])
    assert group_consumer_options(Settings(), "ingest")["group_instance_id"] is None
    assert not ingest["enable_auto_commit"]
