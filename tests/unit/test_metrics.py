"""Metrics: per-range counts, status changes, members gauge, dead letters; bounded labels only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from stream.codec import event_from_envelope
from stream.domain.errors import BadEventError
from stream.domain.model import MemberState
from stream.metrics import MembersByStatus, Metrics
from stream.partitions import MemoryPartition
from stream.resolver import Tally, apply

BASE = {"member_id": "m1", "occurred_at": 1_735_689_600}


def run_batched(envelopes: list[dict[str, object]], seconds: float) -> CollectorRegistry:
    """Resolve envelopes with the worker's batch observer, committed once; return its registry."""
    registry = CollectorRegistry()
    batch = Metrics(registry).batch()
    states: dict[str, MemberState] = {}
    for envelope in envelopes:
        apply(states, event_from_envelope({**BASE, **envelope}), Tally(), batch)
    batch.commit(seconds)
    return registry


def run(envelopes: list[dict[str, object]]) -> tuple[CollectorRegistry, dict[str, MemberState]]:
    """Resolve envelopes with a fresh registry observing; return both."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    states: dict[str, MemberState] = {}
    registry.register(MembersByStatus(states.values))
    for envelope in envelopes:
        apply(states, event_from_envelope({**BASE, **envelope}), Tally(), metrics)
    return registry, states


def test_events_are_counted_by_code_range_channel_and_source() -> None:
    """A bounce counts in the SMS provider range, a delivery in delivery; duplicates only as duplicates."""
    registry, _ = run(
        [
            {"source": "smpp", "status": "DELIVRD", "event_id": "1"},
            {"source": "smpp", "status": "UNDELIV", "event_id": "2"},
            {"source": "smpp", "status": "UNDELIV", "event_id": "2"},
        ]
    )

    def events(code_range: str) -> float | None:
        return registry.get_sample_value(
            "statusflow_events_total", {"range": code_range, "channel": "sms", "source": "smpp"}
        )

    assert (1.0, 1.0) == (events("delivery"), events("sms_provider_error"))
    assert 1.0 == registry.get_sample_value("statusflow_duplicate_events_total", {"source": "smpp"})


def test_status_changes_count_only_when_the_addition_status_moves() -> None:
    """Two delivery receipts are one change to Delivered; the later click is a change to Clicked."""
    registry, _ = run(
        [
            {"source": "sendgrid", "status": "delivered", "event_id": "a"},
            {"source": "sendgrid", "status": "delivered", "event_id": "b"},
            {"source": "sendgrid", "status": "click", "event_id": "c"},
        ]
    )

    def changes(code: str, shortcode: str, code_range: str) -> float | None:
        return registry.get_sample_value(
            "statusflow_status_changes_total", {"code": code, "shortcode": shortcode, "range": code_range}
        )

    assert (1.0, 1.0) == (changes("2020", "Delivered", "delivery"), changes("2040", "Clicked", "delivery"))


def test_the_members_gauge_counts_each_member_once_in_its_current_status() -> None:
    """Moving from Delivered to Completed leaves Delivered at 0 and Completed at 1."""
    registry, _ = run(
        [
            {"source": "sendgrid", "status": "delivered", "event_id": "a"},
            {"source": "npstoday", "status": 2600, "event_id": "b"},
            {"member_id": "m2", "source": "sendgrid", "status": "delivered", "event_id": "c"},
        ]
    )

    def members(code: str, shortcode: str, code_range: str) -> float | None:
        return registry.get_sample_value(
            "statusflow_members", {"code": code, "shortcode": shortcode, "range": code_range}
        )

    assert (1.0, 1.0) == (members("2020", "Delivered", "delivery"), members("2600", "Completed", "answered"))


def test_dead_letters_are_counted_by_reason_class() -> None:
    """The reason label comes from the bounded set of error classes."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)

    metrics.dead_letter(BadEventError("bad_time", "occurred_at", "no"))

    assert 1.0 == registry.get_sample_value("statusflow_dead_letters_total", {"reason": "bad_time"})


def test_no_label_value_is_a_member_id_or_free_text() -> None:
    """Every label value is from the catalog's finite sets; never a member id, address or phone number."""
    registry, _ = run([{"member_id": "+4512345678", "source": "smpp", "status": "DELIVRD"}])
    values = {value for family in registry.collect() for sample in family.samples for value in sample.labels.values()}

    assert "+4512345678" not in values
    assert all(len(value) < 45 for value in values)


def test_batch_metrics_add_up_to_the_same_counts_as_per_event_metrics() -> None:
    """The worker's batched observer and the CLI's per-event one export identical counters."""
    envelopes: list[dict[str, object]] = [
        {"source": "smpp", "status": "DELIVRD", "event_id": "1"},
        {"source": "smpp", "status": "UNDELIV", "event_id": "2"},
        {"source": "smpp", "status": "UNDELIV", "event_id": "2"},
        {"source": "npstoday", "status": 2600, "event_id": "3"},
    ]
    per_event, _ = run(envelopes)
    registry = run_batched(envelopes, 0.004)

    def counters(r: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in r.collect()
            if f.type == "counter"
            for s in f.samples
        }

    assert counters(per_event) == counters(registry)
    assert 3.0 == registry.get_sample_value("statusflow_event_lag_seconds_count")
    assert 1.0 == registry.get_sample_value("statusflow_processing_seconds_count")


def test_the_live_members_gauge_reads_the_stores_tallies_without_scanning() -> None:
    """In the worker a scrape reads the kept counts (a scan of 1 M states stalled it 2 s)."""
    _, states = run(
        [
            {"source": "smpp", "status": "DELIVRD", "event_id": "1"},
            {"member_id": "m2", "source": "smpp", "status": "UNDELIV", "event_id": "2"},
        ]
    )
    delivered, bounced = states["m1"], states["m2"]
    partitions = [MemoryPartition(), MemoryPartition()]
    partitions[0].apply({b"m1": (None, delivered)})
    partitions[1].apply({b"m2": (None, bounced)})
    partitions[1].apply({b"m2": (bounced, delivered._replace(member_id="m2"))})  # delivered after all
    partitions[1].apply({b"m3": (None, delivered._replace(member_id="m3"))})  # a new member
    scans: list[int] = []

    def scan() -> list[MemberState]:
        scans.append(1)
        return []

    def tallies() -> dict[int, int]:
        total: dict[int, int] = {}
        for partition in partitions:
            for code, n in partition.tally.items():
                total[code] = total.get(code, 0) + n
        return total

    registry = CollectorRegistry()
    registry.register(MembersByStatus(scan, counts=tallies))

    def count(code: str) -> float | None:
        return registry.get_sample_value(
            "statusflow_members", {"code": code, "shortcode": NAMES[code], "range": RANGES[code]}
        )

    assert (3.0, 0.0) == (count("2020"), count("5201"))
    assert [] == scans


NAMES = {"2020": "Delivered", "5201": "SMSServiceBounced"}
RANGES = {"2020": "delivery", "5201": "sms_provider_error"}


def _email_campaign() -> list[dict[str, object]]:
    """100 emails: 90 processed, delivered, and 40 of them opened; 10 processed then bounced."""
    envelopes: list[dict[str, object]] = []
    for n in range(100):
        member = {"member_id": f"m{n}", "source": "sendgrid", "message_id": f"msg-{n}"}
        statuses = ["processed", "bounce"] if n < 10 else ["processed", "delivered", "open"][: 3 if n < 50 else 2]
        envelopes += [{**member, "status": status, "event_id": f"{n}-{status}"} for status in statuses]
    return envelopes


def test_a_100_email_10_bounce_campaign_counts_100_sent_and_10_failed_messages() -> None:
    """Per message, not per event: 240 events, yet the bounce ratio the alerts compute is 10%."""
    registry, _ = run(_email_campaign())

    def messages(outcome: str) -> float | None:
        return registry.get_sample_value("statusflow_messages_total", {"channel": "email", "outcome": outcome})

    assert (100.0, 10.0, 0.0, 0.0) == (
        messages("sent"),
        messages("failed"),
        messages("complained"),
        messages("not_sent"),
    )


def test_each_message_reaches_each_outcome_once_whatever_the_events() -> None:
    """A bounce after delivered, a late open, duplicates, a complaint: one sent, one failed, one complaint."""
    one = {"source": "sendgrid", "message_id": "x"}
    registry, _ = run(
        [
            {**one, "status": "processed", "event_id": "a"},
            {**one, "status": "delivered", "event_id": "b"},
            {**one, "status": "bounce", "event_id": "c"},
            {**one, "status": "bounce", "event_id": "c"},
            {**one, "status": "open", "event_id": "d"},
            {**one, "status": "spamreport", "event_id": "e"},
            {"member_id": "m2", "source": "sendgrid", "status": "unsubscribe", "event_id": "f"},
            {"member_id": "m3", "source": "npstoday", "status": "Throttled", "event_id": "g"},
        ]
    )

    def messages(channel: str, outcome: str) -> float | None:
        return registry.get_sample_value("statusflow_messages_total", {"channel": channel, "outcome": outcome})

    assert (2.0, 1.0, 1.0) == (messages("email", "sent"), messages("email", "failed"), messages("email", "complained"))
    assert 1.0 == messages("survey", "not_sent")


def test_batched_message_counts_equal_per_event_ones() -> None:
    """The worker's batch observer counts messages as the CLI does."""
    envelopes = _email_campaign()
    per_event, _ = run(envelopes)
    registry = run_batched(envelopes, 0.01)

    assert [
        per_event.get_sample_value("statusflow_messages_total", {"channel": "email", "outcome": o})
        for o in ("sent", "failed")
    ] == [
        registry.get_sample_value("statusflow_messages_total", {"channel": "email", "outcome": o})
        for o in ("sent", "failed")
    ]


def test_message_counts_do_not_depend_on_the_order_events_arrive_in() -> None:
    """An open before or after the bounce: the message counts as failed either way."""
    one = {"source": "sendgrid", "message_id": "x"}
    events: list[dict[str, object]] = [
        {**one, "status": "open", "event_id": "a"},
        {**one, "status": "bounce", "event_id": "b"},
        {"source": "npstoday", "status": "Throttled", "event_id": "c", "channel": "email", "message_id": "x"},
    ]
    forward, _ = run(events)
    backward, _ = run(events[::-1])

    def counts(registry: CollectorRegistry) -> list[float | None]:
        return [
            registry.get_sample_value("statusflow_messages_total", {"channel": "email", "outcome": outcome})
            for outcome in ("sent", "failed", "complained", "not_sent")
        ]

    assert [1.0, 1.0, 0.0, 1.0] == counts(forward) == counts(backward)


def test_statuses_found_or_not_through_dispatch_records_are_counted_per_provider() -> None:
    """Matched and unmatched per provider format, every provider's series there from the start; unmatched is a dead letter too."""
    import urllib.parse

    import orjson

    from stream.providers.registry import PROVIDERS
    from stream.resolver import DeadLetter, DispatchJoin, Sinks

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    dead: list[DeadLetter] = []
    join = DispatchJoin("twilio", {}, Tally(), Sinks(dead.append, None, metrics, metrics.correlated))

    def callback(sid: str) -> bytes:
        fields = {"MessageSid": sid, "MessageStatus": "delivered", "received_at": "1735732805"}
        return urllib.parse.urlencode(fields).encode()

    dispatch = {"provider": "twilio", "message_id": "SM1", "member_id": "m1", "occurred_at": 1735732800}
    join.dispatches([("d", 1, orjson.dumps(dispatch))])
    join.lines([("b", 1, callback("SM1")), ("b", 2, callback("SM2")), ("b", 3, callback("SM3"))])
    join.finish()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert 1 == value("statusflow_matched_statuses_total", provider="twilio")
    assert 2 == value("statusflow_unmatched_statuses_total", provider="twilio")
    assert 2 == value("statusflow_dead_letters_total", reason="unmatched_message")
    for provider in PROVIDERS:
        assert value("statusflow_held_statuses", provider=provider) == 0
        assert value("statusflow_dispatches_total", provider=provider) == 0
