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
    dlq_topic: str = "message-events.dlq"
    store: str = "memory://"
    data_dir: str = ".statusflow-data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    session_timeout: float = 10.0
    heartbeat_interval: float = 2.0
    rebalance_timeout: float = 20.0
    commit_interval: float = 1.0
    batch_size: int = 1000
    batch_window: float = 0.05
    log_level: str = "warning"

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
        return replace(cls(), **values)
