"""
The webhook receiver's settings: ``STATUSFLOW_WEBHOOKS_*``, each provider's secret, basic auth.

Built once at the edge from the environment (and flags). Secrets are ``Secret``s: their ``repr`` is
asterisks, and no error or log line here ever quotes one. Files named by a setting (the SNS
certificate) and keys (SendGrid's) are loaded and checked here, so a bad one stops the command at
start with a sentence naming the variable, not on the first request.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.config import ConfigError, Secret
from stream.providers import sendgrid, ses
from stream.providers.registry import FORMATS

# The formats a provider signs, and the variable holding what checks the signature.
SIGNED: dict[str, str] = {
    "sendgrid": "STATUSFLOW_SENDGRID_PUBLIC_KEY",
    "twilio": "STATUSFLOW_TWILIO_AUTH_TOKEN",
    "mailgun": "STATUSFLOW_MAILGUN_SIGNING_KEY",
    "whatsapp": "STATUSFLOW_WHATSAPP_APP_SECRET",
    "ses": "STATUSFLOW_SNS_CERT_FILE",
}
# The rest sign nothing: HTTP basic auth. ``envelope`` (our own format) is served too, for internal
# senders without a Kafka client; an envelope names its member directly, so it is never unsigned.
BASIC_AUTH: tuple[str, ...] = tuple(name for name in FORMATS if name not in SIGNED)

MIB = 1024 * 1024
# The raw topics' max.message.bytes (stream.kafka.topics.RAW_MAX_BYTES), less room for the record's
# headers and framing: a larger body could never be written, and would be a 503 for ever.
MAX_BODY_LIMIT = 8 * MIB - 64 * 1024
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def basic_auth_variable(record_format: str) -> str:
    """Return the variable holding ``user:password`` for ``record_format``."""
    return f"STATUSFLOW_{record_format.upper()}_BASIC_AUTH"


@dataclass(frozen=True)
class WebhookSettings:
    """Everything ``statusflow webhooks`` needs besides the Kafka settings (``stream.config.Settings``)."""

    host: str = "127.0.0.1"
    port: int = 8088
    # The base URL providers call (scheme, host, port, any path prefix of a proxy). Twilio signs
    # the full URL it called, so behind a proxy this, not what the server sees, is what is checked.
    public_url: str = ""
    max_body: int = MIB
    # How long a request waits for Kafka's acknowledgement before it is answered 503.
    kafka_timeout: float = 10.0
    mailgun_max_age: float = 300.0
    sendgrid_public_key: str = ""  # a public key: not a secret, but checked at start
    twilio_auth_token: Secret = Secret()  # noqa: RUF009 - immutable
    mailgun_signing_key: Secret = Secret()  # noqa: RUF009 - immutable
    whatsapp_app_secret: Secret = Secret()  # noqa: RUF009 - immutable
    # What Meta's dashboard is told to send when it checks the callback URL (GET, hub.verify_token).
    whatsapp_verify_token: Secret = Secret()  # noqa: RUF009 - immutable
    sns_cert_file: str = ""
    basic_auth: Mapping[str, Secret] = field(default_factory=dict)
    insecure: bool = False
    sns_keys: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        """
        Check what can be checked before serving: URL, limits, the SendGrid key, the SNS certificates.

        Raises:
            ConfigError: the first bad setting, naming its variable (never its secret value).

        """
        self._check_values()
        if self.sendgrid_public_key:
            try:
                sendgrid.public_key(self.sendgrid_public_key)
            except ValueError as error:
                raise ConfigError(f"STATUSFLOW_SENDGRID_PUBLIC_KEY: {error}") from None
        for name, credentials in self.basic_auth.items():
            if ":" not in credentials.reveal():
                raise ConfigError(f"{basic_auth_variable(name)} must be user:password (it has no ':')")
        if self.sns_cert_file and not self.sns_keys:
            object.__setattr__(self, "sns_keys", tuple(_sns_keys(self.sns_cert_file)))

    def _check_values(self) -> None:
        if self.public_url:
            parts = urllib.parse.urlsplit(self.public_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
                raise ConfigError(
                    f"STATUSFLOW_WEBHOOKS_PUBLIC_URL={self.public_url!r} is not an http(s) base URL without a query"
                )
        if not 0 < self.port < 65536:
            raise ConfigError(f"STATUSFLOW_WEBHOOKS_PORT={self.port} is not a TCP port")
        if not 1024 <= self.max_body <= MAX_BODY_LIMIT:
            raise ConfigError(
                f"STATUSFLOW_WEBHOOKS_MAX_BODY={self.max_body} is below 1024 bytes or above {MAX_BODY_LIMIT} "
                "(the raw topics take records up to 8 MiB, headers included)"
            )
        if self.kafka_timeout <= 0:
            raise ConfigError(f"STATUSFLOW_WEBHOOKS_KAFKA_TIMEOUT={self.kafka_timeout} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WebhookSettings:
        """
        Build the settings from ``STATUSFLOW_*`` variables, then ``overrides`` (flags; None means unset).

        Raises:
            ConfigError: a variable that does not parse, naming it.

        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        plain = {
            "host": ("STATUSFLOW_WEBHOOKS_HOST", str),
            "port": ("STATUSFLOW_WEBHOOKS_PORT", int),
            "public_url": ("STATUSFLOW_WEBHOOKS_PUBLIC_URL", str),
            "max_body": ("STATUSFLOW_WEBHOOKS_MAX_BODY", int),
            "kafka_timeout": ("STATUSFLOW_WEBHOOKS_KAFKA_TIMEOUT", float),
            "mailgun_max_age": ("STATUSFLOW_MAILGUN_MAX_AGE", float),
            "sendgrid_public_key": ("STATUSFLOW_SENDGRID_PUBLIC_KEY", str),
            "sns_cert_file": ("STATUSFLOW_SNS_CERT_FILE", str),
        }
        for name, (variable, kind) in plain.items():
            raw = env.get(variable)
            if raw is not None:
                try:
                    values[name] = kind(raw.strip())
                except ValueError:
                    raise ConfigError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
        for name in ("twilio_auth_token", "mailgun_signing_key", "whatsapp_app_secret", "whatsapp_verify_token"):
            variable = f"STATUSFLOW_{name.upper()}"
            if env.get(variable):
                values[name] = Secret(env[variable].strip())
        values["basic_auth"] = {
            name: Secret(env[basic_auth_variable(name)]) for name in BASIC_AUTH if env.get(basic_auth_variable(name))
        }
        insecure = env.get("STATUSFLOW_WEBHOOKS_INSECURE", "").strip().lower()
        if insecure not in _TRUE | _FALSE:
            raise ConfigError(f"STATUSFLOW_WEBHOOKS_INSECURE={insecure!r} is not 1 or 0")
        values["insecure"] = insecure in _TRUE
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def unconfigured(self, record_format: str) -> str | None:
        """Return the variable to set for ``record_format``'s requests to be checked, or None if it is set."""
        if record_format in SIGNED:
            has = {
                "sendgrid": bool(self.sendgrid_public_key),
                "twilio": bool(self.twilio_auth_token),
                "mailgun": bool(self.mailgun_signing_key),
                "whatsapp": bool(self.whatsapp_app_secret),
                "ses": bool(self.sns_keys),
            }[record_format]
            return None if has else SIGNED[record_format]
        return None if record_format in self.basic_auth else basic_auth_variable(record_format)


def _sns_keys(path: str) -> list[Any]:
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as error:
        raise ConfigError(f"STATUSFLOW_SNS_CERT_FILE={path!r} cannot be read: {error.strerror}") from None
    try:
        return list(ses.load_certificates(pem))
    except ValueError as error:
        raise ConfigError(f"STATUSFLOW_SNS_CERT_FILE={path!r}: {error}") from None
