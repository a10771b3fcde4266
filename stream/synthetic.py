"""
Synthetic event streams: reproducible (seeded) envelopes that touch every source and vocabulary.

Used by the demo, the benchmarks and the end-to-end tests. Each member gets a story on one
source: a few statuses of that source's vocabulary in the order a provider tends to send them,
sometimes followed by a survey answer, with providers' spelling variations; then the whole stream
is shuffled and some events are duplicated, as real feeds are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from stream.domain import vocab
from stream.providers import sendgrid

_BASE_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z

# For each source: the channels it reports on and its vocabulary per channel.
_TABLES: dict[str, dict[str, vocab.Vocabulary]] = {
    "npstoday-sms": {"sms": vocab.NPSTODAY_SMS},
    "npstoday-email": {"email": vocab.NPSTODAY_EMAIL},
    "idsurvey": {"sms": vocab.IDSURVEY},
    "dce": dict(vocab.DCE),
    "imgw": dict.fromkeys(("whatsapp", "viber", "sms"), vocab.IMGW),
    "smpp": {"sms": vocab.SMPP},
    "sendgrid": {"email": sendgrid.VOCABULARY},
}
_ANSWERS = (2510, 2520, 2600, 3010, 2701, 2702)


def _spelling(rng: random.Random, source: str, status: str | int) -> str | int:
    """Return the status as some provider might spell it."""
    if isinstance(status, int):
        return str(status) if rng.random() < 0.3 else status
    if source == "idsurvey" and rng.random() < 0.5:
        return f"SMS Sender: {status}"
    if source == "smpp" and rng.random() < 0.5:
        return f"id:{rng.randrange(10**9)} sub:001 dlvrd:001 submit date:2501011200 done date:2501011201 stat:{status} err:000 text:Hi"
    return status.upper() if rng.random() < 0.2 else status.lower() if rng.random() < 0.2 else status


def member_story(rng: random.Random, member_id: str, events: int) -> list[dict[str, Any]]:
    """Return ``events`` envelopes of one member, in the order they happened."""
    source = rng.choice(tuple(_TABLES))
    channel = rng.choice(tuple(_TABLES[source]))
    table = _TABLES[source][channel]
    temporary = [key for key, entry in table.items() if not entry[1]]
    final = [key for key, entry in table.items() if entry[1]]
    campaign_id = f"c{rng.randrange(20)}"
    story: list[dict[str, Any]] = []
    at = _BASE_MS + rng.randrange(30 * 24 * 3600 * 1000)
    for index in range(events):
        answer = index == events - 1 and rng.random() < 0.2
        status: str | int
        if answer:
            src, ch, status = "npstoday", "survey", rng.choice(_ANSWERS)
        else:
            pool = temporary if (index < events // 2 and temporary) else final
            src, ch, status = source, channel, _spelling(rng, source, rng.choice(pool))
        at += rng.randrange(1_000, 3_600_000)
        story.append(
            {
                "event_id": f"{member_id}-{index}",
                "member_id": member_id,
                "campaign_id": campaign_id,
                "channel": ch,
                "source": src,
                "status": status,
                "message_type": "reminder" if rng.random() < 0.05 else "survey",
                "occurred_at": at if rng.random() < 0.5 else _rfc3339(at),
            }
        )
    return story


def stream(members: int, events_per_member: int, *, seed: int = 1, duplicates: float = 0.0) -> Iterator[dict[str, Any]]:
    """
    Yield a shuffled stream of envelopes for ``members`` members.

    Args:
        members: how many members.
        events_per_member: distinct events per member.
        seed: the same seed gives the same stream.
        duplicates: the fraction of events sent a second time (a redelivery, same event_id).

    """
    rng = random.Random(seed)
    events = [event for m in range(members) for event in member_story(rng, f"m{m:07d}", events_per_member)]
    events += [rng.choice(events) for _ in range(int(len(events) * duplicates))]
    rng.shuffle(events)
    yield from events


def _rfc3339(epoch_ms: int) -> str:
    from stream.codec import format_time  # noqa: PLC0415 - keep this module's import light

    return format_time(epoch_ms)
