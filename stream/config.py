"""
The worker's settings: one frozen object, built once at the edge from flags and environment.

Every default is the embedded local setup (Kafka on 127.0.0.1:9092, everything bound to
127.0.0.1). ``STATUSFLOW_*`` environment variables override the defaults; flags override both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


class ConfigError(ValueError):
    """A setting that does not parse: the command line reports it and exits 2."""


class Secret:
    """
    A string that never shows itself: ``repr``, ``str`` and f-strings print asterisks.

    Only ``reveal()`` returns the value, so a password reaches the Kafka client and nothing else
    (not a log line, an error, a ``repr`` of the settings or ``--help``).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself; pass it straight to the client that needs it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Settings:
    """
    Everything the worker and its tools need to know.

    The timeouts are chosen so a restarted or crashed worker resumes within seconds (Faust's
    defaults left it stalled for about a minute): a dead member is noticed after
    ``session_timeout`` seconds, and a rebalance waits at most ``rebalance_timeout``.
    """

    broker: str = "127.0.0.1:9092"
    app_id: str = "statusflow"
    partitions: int = 8
    events_topic: str = "message-events"
    sendgrid_topic: str = "message-events.sendgrid"
    output_topic: str = "campaign-member-status"
    # Dispatch records (schemas/dispatch.v1.json): the sending system's word that a provider took a
    # message for a member; statuses that name no member wait for theirs (README, "Dispatch records").
    dispatches_topic: str = "message-dispatches"
    # Seconds of event time a status waits for its dispatch record, and a dispatch is kept after the
    # latest event time it saw (its own or a status's).
    dispatch_wait: float = 24 * 3600.0
    dispatch_retention: float = 7 * 24 * 3600.0
    dlq_topic: str = "message-events.dlq"
    # Member states (README, "State stores"): rocksdb:// keeps them on disk under data_dir, so a
    # restart replays only the changelog written since; memory:// replays all of it.
    store: str = "rocksdb://"
    data_dir: str = ".statusflow-data"
    rocksdb_cache_mib: int = 64
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    session_timeout: float = 10.0
    heartbeat_interval: float = 2.0
    rebalance_timeout: float = 20.0
    commit_interval: float = 1.0
    batch_size: int = 1000
    log_level: str = "warning"
    # Seconds a stop (SIGTERM/SIGINT) may take before the process exits regardless: a graceful
    # stop takes a second or two, one with the broker gone would wait a minute for it.
    stop_timeout: float = 25.0
    # Static group membership (KIP-345): a worker restarted under the same id takes its partitions
    # back without a rebalance. Must be unique per worker (e.g. the pod's name); empty: dynamic.
    instance_id: str = ""
    # Kafka security (README, "Security"). The password comes from STATUSFLOW_SASL_PASSWORD or,
    # better, a mounted file named by STATUSFLOW_SASL_PASSWORD_FILE; it is read once, here.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: Secret = Secret()  # noqa: RUF009 - immutable, so one shared default is safe
    sasl_password_file: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    # Topics the worker creates (README, "Replication"). 0 min.insync.replicas: replication - 1,
    # at least 1 (so 2 of 3), which survives one lost broker without refusing writes.
    replication_factor: int = 1
    min_insync_replicas: int = 0

    def __post_init__(self) -> None:
        """
        Refuse combinations that cannot work, naming the variable to fix.

        Raises:
            ConfigError: an unknown protocol or mechanism, SASL without a user or password,
                a certificate without its key, a replication setting out of range.

        """
        check_security(self)
        if self.replication_factor < 1:
            raise ConfigError(f"STATUSFLOW_REPLICATION_FACTOR={self.replication_factor} must be at least 1")
        if self.dispatch_wait <= 0 or self.dispatch_retention < self.dispatch_wait:
            raise ConfigError(
                f"STATUSFLOW_DISPATCH_WAIT={self.dispatch_wait} must be above 0 and at most "
                f"STATUSFLOW_DISPATCH_RETENTION={self.dispatch_retention} (seconds)"
            )
        if not 0 <= self.min_insync_replicas <= self.replication_factor:
            raise ConfigError(
                f"STATUSFLOW_MIN_INSYNC_REPLICAS={self.min_insync_replicas} must be between 1 and "
                f"STATUSFLOW_REPLICATION_FACTOR={self.replication_factor}"
            )

    @property
    def min_insync(self) -> int:
        """The min.insync.replicas of the topics the worker creates."""
        return self.min_insync_replicas or max(1, self.replication_factor - 1)

    @property
    def uses_sasl(self) -> bool:
        """Whether the clients authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """Whether the clients speak TLS to the brokers."""
        return self.security_protocol in {"SSL", "SASL_SSL"}

    def raw_topic(self, record_format: str) -> str:
        """
        Return the raw topic of ``record_format``: where its records (one webhook body each) arrive.

        Envelopes arrive on ``events_topic`` (``message-events``), SendGrid bodies on
        ``sendgrid_topic``, every other provider format on ``<events_topic>.<format>``
        (``message-events.twilio``, ...).
        """
        if record_format == "envelope":
            return self.events_topic
        if record_format == "sendgrid":
            return self.sendgrid_topic
        return f"{self.events_topic}.{record_format}"

    @property
    def by_member_topic(self) -> str:
        """The internal topic that re-keys events by member_id, so a member's events meet."""
        return f"{self.app_id}-events-by-member"

    @property
    def by_message_topic(self) -> str:
        """The internal topic that re-keys memberless statuses and dispatches by (provider, message id), so they meet."""
        return f"{self.app_id}-events-by-message"

    @property
    def hold_changelog_topic(self) -> str:
        """The compacted changelog of the dispatch join: per (provider, message id), its dispatch and waiting statuses."""
        return f"{self.app_id}-dispatch-hold-changelog"

    @property
    def changelog_topic(self) -> str:
        """The compacted changelog of the member states (named as Faust names a table's changelog)."""
        return f"{self.app_id}-member-states-changelog"

    @property
    def leader_topic(self) -> str:
        """Faust's one-partition topic whose owner is the group's leader (its assignor's)."""
        return f"{self.app_id}-__assignor-__leader"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """
        Build settings: defaults, then ``STATUSFLOW_<FIELD>`` variables, then ``overrides``.

        Raises:
            ConfigError: a variable that does not parse as its field's type.

        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"STATUSFLOW_{field.name.upper()}")
            if raw is not None:
                kind = type(getattr(cls, field.name))
                try:
                    values[field.name] = kind(raw)
                except ValueError:
                    raise ConfigError(
                        f"STATUSFLOW_{field.name.upper()}={raw!r} is not a valid {kind.__name__}"
                    ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("sasl_password"), str):
            values["sasl_password"] = Secret(values["sasl_password"])
        password_file = values.get("sasl_password_file")
        if password_file:
            values["sasl_password"] = Secret(_read_secret(password_file))
        return replace(cls(), **values)

    def environment(self) -> dict[str, str]:
        """Return these settings as ``STATUSFLOW_*`` variables, for a child process (secrets included)."""
        env = {f"STATUSFLOW_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}
        env["STATUSFLOW_SASL_PASSWORD"] = self.sasl_password.reveal()
        return env


def check_security(settings: Settings) -> None:
    """
    Raise ConfigError for security settings that cannot work together.

    Raises:
        ConfigError: the first problem found, naming its variable.

    """
    s = settings
    if s.security_protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(
            f"STATUSFLOW_SECURITY_PROTOCOL={s.security_protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    if s.sasl_mechanism not in SASL_MECHANISMS:
        raise ConfigError(f"STATUSFLOW_SASL_MECHANISM={s.sasl_mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}")
    if s.uses_sasl and not (s.sasl_username and s.sasl_password):
        raise ConfigError(
            f"STATUSFLOW_SECURITY_PROTOCOL={s.security_protocol} needs STATUSFLOW_SASL_USERNAME and "
            "STATUSFLOW_SASL_PASSWORD or STATUSFLOW_SASL_PASSWORD_FILE"
        )
    if bool(s.ssl_certfile) != bool(s.ssl_keyfile):
        raise ConfigError("STATUSFLOW_SSL_CERTFILE and STATUSFLOW_SSL_KEYFILE go together (mutual TLS)")
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(s, name)
        if path and not s.uses_tls:
            raise ConfigError(f"STATUSFLOW_{name.upper()} needs STATUSFLOW_SECURITY_PROTOCOL=SSL or SASL_SSL")
        if path and not os.path.isfile(path):
            raise ConfigError(f"STATUSFLOW_{name.upper()}={path!r}: no such file")


def _read_secret(path: str) -> str:
    # A mounted Kubernetes secret or a file written by kafka.sh: the whole file, minus one
    # trailing newline. The error names the file, never its content.
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().removesuffix("\n")
    except OSError as error:
        raise ConfigError(f"STATUSFLOW_SASL_PASSWORD_FILE={path!r} cannot be read: {error.strerror}") from None
