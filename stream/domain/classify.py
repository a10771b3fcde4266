"""
Classify a provider status: look it up in ``vocab`` the way providers really send it.

Providers vary case, prefix labels (``SMS Sender: Delivered``), mix ``-``, ``_`` and spaces, send
numeric codes as integers or digit strings, and SMPP gateways send whole delivery receipts.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stream.domain import milestones, vocab
from stream.domain.catalog import range_of
from stream.domain.errors import BadEventError
from stream.domain.model import Outcome
from stream.domain.precedence import outcome

SOURCES: tuple[str, ...] = tuple(vocab.SOURCE_CHANNELS)

_SEPARATORS = re.compile(r"[\s_-]+")
_RECEIPT_STAT = re.compile(r"\bstat:\s*([A-Za-z_]+)", re.IGNORECASE)
_WORD = re.compile(r"\w")
_STAT_VALUE = re.compile(r"\s*([A-Za-z_]+)")


def normalise(status: str | int) -> str | int:
    """
    Return the lookup key of a status: an int for numeric codes, else a folded name.

    >>> normalise("SMS Sender: Undeliverable"), normalise("error-address-format"), normalise(" 4 ")
    ('undeliverable', 'error_address_format', 4)
    """
    if isinstance(status, int):
        return status
    text = status.rsplit(":", 1)[-1].strip()
    if text.isdigit():
        return int(text)
    return _SEPARATORS.sub("_", text).lower()


def _index(table: vocab.Vocabulary) -> dict[str | int, vocab.Entry]:
    return {normalise(key): entry for key, entry in table.items()}


vocab.close_registration()  # the indexes below are built once: a later vocabulary would go unseen
_VOCABULARIES: dict[tuple[str, str], dict[str | int, vocab.Entry]] = {
    (source, channel): _index(vocab.table(source, channel))
    for source, channels in vocab.SOURCE_CHANNELS.items()
    for channel in channels
}


def default_channel(source: str) -> str:
    """Return the channel an event of ``source`` is on when it names none."""
    return vocab.SOURCE_CHANNELS[source][0]


def receipt_stat(receipt: str) -> str:
    """
    Return the ``stat:`` value of an SMPP delivery receipt, or the text itself if it is no receipt.

    >>> receipt_stat("id:42 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000")
    'DELIVRD'
    """
    if not receipt.isascii():  # lower() may change a non-ASCII text's length: leave it to the regex
        match = _RECEIPT_STAT.search(receipt)
        return match.group(1) if match else receipt
    # What _RECEIPT_STAT finds, without its case-blind scan of the whole text (3 us a receipt).
    lowered = receipt.lower()
    at = lowered.find("stat:")
    while at >= 0:
        if at == 0 or not _WORD.match(receipt, at - 1):
            value = _STAT_VALUE.match(receipt, at + len("stat:"))
            if value:
                return value.group(1)
        at = lowered.find("stat:", at + 1)
    return receipt


def classify(source: str, channel: str, status: str | int, message_type: str | None = None) -> Outcome:
    """
    Map one provider status to its Outcome on ``channel``.

    Args:
        source: whose vocabulary ``status`` is in (``vocab.SOURCE_CHANNELS``).
        channel: the channel the message went over.
        status: the provider's own status, as sent.
        message_type: ``reminder`` turns a handover (2010 sent) into 2050 Reminded.

    Raises:
        BadEventError: unknown source, a channel the source does not speak for, or unknown status.

    """
    if source == "smpp" and isinstance(status, str):
        status = receipt_stat(status)
    reminder = message_type is not None and vocab.MESSAGE_TYPE_SPELLINGS.get(message_type.lower()) == "reminder"
    return _classify(source, channel, normalise(status), reminder, status)


@lru_cache(maxsize=8192)
def _classify(source: str, channel: str, key: str | int, reminder: bool, raw: str | int) -> Outcome:
    channels = vocab.SOURCE_CHANNELS.get(source)
    if channels is None:
        raise BadEventError(
            "unknown_source", "source", f"unknown source {source!r}; known sources: {', '.join(SOURCES)}"
        )
    if channel not in channels:
        raise BadEventError(
            "unsupported_channel", "channel", f"source {source!r} reports {'/'.join(channels)}, not channel {channel!r}"
        )
    table = _VOCABULARIES[(source, channel)]
    entry = table.get(key)
    if entry is None:
        scope = f"{source} {channel}" if source == "dce" else source
        raise BadEventError(
            "unknown_status", "status", f"{raw!r} is not a {scope} status (see 'statusflow codes --vocab')"
        )
    target, final = entry[0], entry[1]
    code = target.code_for(channel) if isinstance(target, vocab.PerChannel) else target
    if reminder and code == 2010:
        code = 2050
    channel_status = entry[2] if len(entry) == 3 else channel_status_of(channel, code)
    return outcome(code, final, channel_status, milestones.bits(channel, code, channel_status))


def channel_status_of(channel: str, code: int) -> int:
    """Return the channel status that AdditionStatus ``code`` shows as on ``channel``."""
    if channel == "survey":
        return code
    table = vocab.CHANNEL_STATUS[channel]
    found = table.get(code)
    return found if found is not None else table[range_of(code).name]
