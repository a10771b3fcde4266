"""The receiver's settings from STATUSFLOW_* variables: parsed, checked at start, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import ConfigError
from stream.web.settings import BASIC_AUTH, WebhookSettings
from stream.web.webhooks import Replays, warnings_at_start
from tests.unit.test_webhook_signatures import SENDGRID_KEY, make_certificate

SECRETS = {
    "STATUSFLOW_TWILIO_AUTH_TOKEN": "tw-secret-1",
    "STATUSFLOW_MAILGUN_SIGNING_KEY": "mg-secret-2",
    "STATUSFLOW_WHATSAPP_APP_SECRET": "wa-secret-3",
    "STATUSFLOW_POSTMARK_BASIC_AUTH": "pm:secret-4",
}


def test_defaults_bind_loopback_and_configure_nothing() -> None:
    """127.0.0.1:8088, 1 MiB, and every format unconfigured (so 503), not insecure."""
    hooks = WebhookSettings.from_env({})
    assert ("127.0.0.1", 8088, 1024 * 1024, False) == (hooks.host, hooks.port, hooks.max_body, hooks.insecure)
    assert "STATUSFLOW_SNS_CERT_FILE" == hooks.unconfigured("ses")
    assert "STATUSFLOW_ENVELOPE_BASIC_AUTH" == hooks.unconfigured("envelope")
    assert ("envelope", "infobip", "vonage", "postmark") == BASIC_AUTH


def test_every_variable_is_read_and_no_secret_shows(tmp_path: Path) -> None:
    """Each STATUSFLOW_* variable lands in its field; repr and the start warnings hold no secret."""
    certificate = tmp_path / "sns.pem"
    certificate.write_bytes(make_certificate()[1])
    hooks = WebhookSettings.from_env(
        {
            **SECRETS,
            "STATUSFLOW_WEBHOOKS_HOST": "0.0.0.0",  # noqa: S104 - a value under test
            "STATUSFLOW_WEBHOOKS_PORT": "9000",
            "STATUSFLOW_WEBHOOKS_PUBLIC_URL": "https://hooks.example.com/sf",
            "STATUSFLOW_WEBHOOKS_MAX_BODY": "2048",
            "STATUSFLOW_SENDGRID_PUBLIC_KEY": SENDGRID_KEY,
            "STATUSFLOW_SNS_CERT_FILE": str(certificate),
            "STATUSFLOW_WEBHOOKS_INSECURE": "1",
        },
        port=9001,
    )
    assert (9001, 2048, True) == (hooks.port, hooks.max_body, hooks.insecure)
    assert [] == [
        name for name in ("sendgrid", "twilio", "mailgun", "whatsapp", "ses", "postmark") if hooks.unconfigured(name)
    ]
    assert "tw-secret-1" == hooks.twilio_auth_token.reveal()
    shown = repr(hooks) + "\n".join(warnings_at_start(hooks))
    for secret in SECRETS.values():
        assert secret.split(":")[-1] not in shown
    assert "accepted UNSIGNED (demo only)" in shown


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"STATUSFLOW_WEBHOOKS_PORT": "http"}, "STATUSFLOW_WEBHOOKS_PORT='http' is not a valid int"),
        ({"STATUSFLOW_WEBHOOKS_PUBLIC_URL": "hooks.example.com"}, "is not an http(s) base URL"),
        ({"STATUSFLOW_WEBHOOKS_INSECURE": "maybe"}, "STATUSFLOW_WEBHOOKS_INSECURE='maybe' is not 1 or 0"),
        ({"STATUSFLOW_WEBHOOKS_MAX_BODY": "10"}, "below 1024 bytes"),
        ({"STATUSFLOW_WEBHOOKS_MAX_BODY": str(9 * 1024 * 1024)}, "the raw topics take records up to 8 MiB"),
        ({"STATUSFLOW_SENDGRID_PUBLIC_KEY": "c2VjcmV0"}, "STATUSFLOW_SENDGRID_PUBLIC_KEY: not a base64 DER public key"),
        ({"STATUSFLOW_VONAGE_BASIC_AUTH": "just-a-password"}, "STATUSFLOW_VONAGE_BASIC_AUTH must be user:password"),
        (
            {"STATUSFLOW_SNS_CERT_FILE": "/nonexistent/sns.pem"},
            "STATUSFLOW_SNS_CERT_FILE='/nonexistent/sns.pem' cannot be read",
        ),
    ],
)
def test_bad_settings_are_named_at_start(variables: dict[str, str], message: str) -> None:
    """A bad value stops the command with the variable's name, and never the secret itself."""
    with pytest.raises(ConfigError) as error:
        WebhookSettings.from_env(variables)
    assert message in str(error.value)
    assert "just-a-password" not in str(error.value)


def test_replays_keeps_a_token_only_once_accepted() -> None:
    """A reserved token is refused while in flight, free again after a failure, refused for the window once accepted."""
    now = [1000.0]
    replays = Replays(window=300, clock=lambda: now[0])
    assert replays.reserve("t1")
    assert not replays.reserve("t1")  # the same request twice at once
    replays.release("t1")  # answered 503: the provider's retry must pass
    assert replays.reserve("t1")
    replays.confirm("t1")
    assert not replays.reserve("t1")
    now[0] += 601  # twice the window: its timestamp is refused as stale by then anyway
    assert replays.reserve("t1")
