"""
Every raw format by name, and the provider module that reads it.

Adding a provider: write ``stream/providers/<format>.py`` (see ``base.Provider``) and add one line
to ``PROVIDERS``. Importing this module registers each provider's vocabulary with the core
(``vocab.register``); ``stream/__init__.py`` imports it first thing, so the core's indexes
(``classify``), the envelope decoder and the metrics' pre-created series all see every provider.
"""

from __future__ import annotations

from stream.domain import vocab
from stream.providers import infobip, mailgun, postmark, sendgrid, ses, twilio, vonage, whatsapp
from stream.providers.base import Provider

PROVIDERS: dict[str, Provider] = {
    "sendgrid": sendgrid,
    "twilio": twilio,
    "ses": ses,
    "mailgun": mailgun,
    "infobip": infobip,
    "whatsapp": whatsapp,
    "vonage": vonage,
    "postmark": postmark,
}

# "envelope" is statusflow's own format (schemas/envelope.v1.json): one event per line or record.
ENVELOPE = "envelope"
FORMATS: tuple[str, ...] = (ENVELOPE, *PROVIDERS)

for _provider in PROVIDERS.values():
    vocab.register(_provider.SOURCE, _provider.CHANNELS, _provider.VOCABULARY)


def provider(record_format: str) -> Provider:
    """
    Return the provider module that reads ``record_format``.

    Raises:
        KeyError: not a provider format (``envelope`` has no provider).

    """
    return PROVIDERS[record_format]
