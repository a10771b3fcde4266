"""`statusflow resolve` and `statusflow codes`, run for real in a subprocess."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.synthetic import stream
from tests.conftest import jsonl

Runner = Callable[..., subprocess.CompletedProcess[bytes]]
Validate = Callable[[str, Any], None]


def lines(envelopes: list[dict[str, Any]]) -> bytes:
    """Encode envelopes as JSON lines."""
    return b"".join(orjson.dumps(e) + b"\n" for e in envelopes)


def test_resolve_writes_one_valid_state_per_member_sorted(
    statusflow: Runner, validate: Validate, tmp_path: Path
) -> None:
    """Output lines follow the schema, one per member, sorted by member_id; order of input is irrelevant."""
    events = list(stream(200, 5, seed=3, duplicates=0.2))
    shuffled = events[:]
    random.Random(9).shuffle(shuffled)
    (tmp_path / "a.jsonl").write_bytes(lines(events))
    (tmp_path / "b.jsonl").write_bytes(lines(shuffled))

    first = statusflow("resolve", str(tmp_path / "a.jsonl"))
    second = statusflow("resolve", str(tmp_path / "b.jsonl"))
    states = jsonl(first.stdout)

    assert 0 == first.returncode
    assert first.stdout == second.stdout
    assert sorted(s["member_id"] for s in states) == [s["member_id"] for s in states]
    assert len({e["member_id"] for e in events}) == len(states)
    for state in states:
        validate("member-status.v1.json", state)
    assert b"duplicates 200," in first.stderr


def test_bad_lines_go_to_the_dlq_with_line_number_raw_line_and_reason(
    statusflow: Runner, validate: Validate, tmp_path: Path
) -> None:
    """Bad input never stops the run; each bad line is kept whole with a specific error."""
    good = {"member_id": "m1", "source": "smpp", "status": "DELIVRD", "occurred_at": 1_704_110_400}
    raw = b"\n".join([orjson.dumps(good), b"{broken", orjson.dumps({**good, "status": "LOST"}), b"\xff\xfe"]) + b"\n"
    (tmp_path / "in.jsonl").write_bytes(raw)

    result = statusflow("resolve", str(tmp_path / "in.jsonl"), "--dlq", str(tmp_path / "dlq.jsonl"))
    dead = jsonl((tmp_path / "dlq.jsonl").read_bytes())

    assert 0 == result.returncode
    assert ["m1"] == [s["member_id"] for s in jsonl(result.stdout)]
    assert [
        (2, "malformed_json", "{broken"),
        (3, "unknown_status", orjson.dumps({**good, "status": "LOST"}).decode()),
    ] == [(d["line"], d["error"]["reason"], d["raw"]) for d in dead[:2]]
    assert "//4=" == dead[2]["raw_base64"]
    for record in dead:
        validate("dead-letter.v1.json", record)
    assert b"read 4, applied 1, duplicates 0, dead-lettered 3, members 1" in result.stderr


def test_strict_exits_1_on_dead_letters_and_missing_files_exit_2(statusflow: Runner, tmp_path: Path) -> None:
    """--strict turns dead letters into a failure; a usage error is exit 2."""
    (tmp_path / "bad.jsonl").write_bytes(b"nope\n")

    assert 1 == statusflow("resolve", "--strict", str(tmp_path / "bad.jsonl")).returncode
    assert 0 == statusflow("resolve", str(tmp_path / "bad.jsonl")).returncode
    assert 2 == statusflow("resolve", str(tmp_path / "missing.jsonl")).returncode
    assert 2 == statusflow("resolve", "--format", "xml").returncode


def test_changes_writes_every_state_change_and_ends_at_the_final_states(statusflow: Runner) -> None:
    """--changes (what the stream publishes): the last change per member equals the final state."""
    data = lines(list(stream(50, 4, seed=5, duplicates=0.3)))

    changes = jsonl(statusflow("resolve", "--changes", "-", stdin=data).stdout)
    final = jsonl(statusflow("resolve", stdin=data).stdout)
    last = {c["member_id"]: c for c in changes}

    assert 200 == len(changes)  # every distinct event changes the event count; duplicates change nothing
    assert final == [last[m] for m in sorted(last)]


def test_sendgrid_webhook_bodies_resolve_with_their_custom_member_id(statusflow: Runner) -> None:
    """Raw SendGrid bodies, one per line: the bounce then the click resolve to Clicked."""
    body1 = [
        {"event": "delivered", "member_id": "m9", "timestamp": 1_704_110_400, "sg_event_id": "a"},
        {"event": "bounce", "type": "bounce", "member_id": "m9", "timestamp": 1_704_110_500, "sg_event_id": "b"},
    ]
    body2 = [{"event": "click", "member_id": "m9", "timestamp": 1_704_110_600, "sg_event_id": "c"}, {"event": "open"}]
    data = orjson.dumps(body1) + b"\n" + orjson.dumps(body2) + b"\n"

    result = statusflow("resolve", "--format", "sendgrid", stdin=data)
    (state,) = jsonl(result.stdout)
    dead = result.stderr.splitlines()[0].decode()

    assert (2040, 3) == (state["status"]["code"], state["events"])
    assert "statusflow resolve: dead letter: -:2:1: missing_field in field '[1].member_id': " in dead


def test_codes_prints_the_catalog_as_table_and_json(statusflow: Runner) -> None:
    """Both forms list every AdditionStatus; the JSON one is machine-readable."""
    table = statusflow("codes").stdout.decode()
    document = orjson.loads(statusflow("codes", "--json").stdout)

    assert "SMSServiceNumberNotCapableOfReceivingSMS" in table
    assert 30 == len(document["addition_status"])
    assert ["Added", "Sent", "Cancelled", "CancelledThrottle", "NotCapableOfReceivingSMS"] == [
        c["shortcode"] for c in document["sms_status"]
    ]
    assert any(
        r["status"] == "DELIVRD" and r["addition_status"] == "2020"
        for r in orjson.loads(statusflow("codes", "--vocab", "--json").stdout)
    )


def test_jobs_split_the_work_by_member_and_write_exactly_what_one_process_writes(
    statusflow: Runner, tmp_path: Path
) -> None:
    """Files (one given twice), CRLF, blank lines, duplicates, bad lines: --jobs 3 writes what --jobs 1 writes."""
    events = [orjson.dumps(e) for e in stream(500, 6, seed=12, duplicates=0.2)]
    bad = [b"{broken", b'{"member_id":"m1","source":"pigeon","status":"x","occurred_at":1}', b'{"member_id":7}']
    (tmp_path / "a.jsonl").write_bytes(b"\n".join([*events[:700], b"", b"  ", *events[700:1500], *bad]) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\r\n".join(bad + events[1500:]))  # CRLF, no line end at the end
    files = [str(tmp_path / name) for name in ("a.jsonl", "b.jsonl", "a.jsonl")]
    runs = {}
    for jobs in ("1", "3"):
        dlq = tmp_path / f"dlq-{jobs}.jsonl"
        runs[jobs] = (statusflow("resolve", "--jobs", jobs, "--dlq", str(dlq), *files), dlq.read_bytes())

    (single, single_dlq), (split, split_dlq) = runs["1"], runs["3"]
    assert (0, 0) == (single.returncode, split.returncode)
    assert single.stdout == split.stdout
    assert single_dlq == split_dlq
    assert [("a.jsonl", 1503), ("b.jsonl", 1), ("a.jsonl", 1503)] == [
        (Path(d["file"]).name, d["line"]) for d in jsonl(split_dlq)[::3]
    ]
    assert single.stderr == split.stderr  # the summary: same counts
    assert 2 == statusflow("resolve", "--jobs", "-1", str(tmp_path / "a.jsonl")).returncode


# One documented body per provider, one line each: two events of one member (an early handover,
# then the outcome), then the same body again (a redelivery), then an event without a member.
PROVIDER_BODIES: dict[str, tuple[list[bytes], int, str]] = {
    "sendgrid": (
        [
            orjson.dumps(
                [
                    {"event": "processed", "member_id": "m1", "timestamp": 1_735_732_800, "sg_event_id": "a"},
                    {
                        "event": "dropped",
                        "reason": "Bounced Address",
                        "member_id": "m1",
                        "timestamp": 1_735_732_801,
                        "sg_event_id": "b",
                    },
                ]
            ),
            orjson.dumps([{"event": "open", "timestamp": 1_735_732_900, "sg_event_id": "c"}]),
        ],
        4006,
        "[0].member_id",
    ),
    "twilio": (
        [
            b"MessageSid=SM1&MessageStatus=sent&member_id=m1&received_at=2025-01-01T12:00:00Z",
            b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30006&member_id=m1&received_at=2025-01-01T12:00:09Z",
            b"MessageSid=SM2&MessageStatus=delivered&received_at=2025-01-01T12:00:09Z",
        ],
        5202,
        "[0].member_id",
    ),
    "ses": (
        [
            orjson.dumps(
                {
                    "Type": "Notification",
                    "Message": orjson.dumps(
                        {
                            "eventType": "Bounce",
                            "bounce": {
                                "bounceType": "Permanent",
                                "bounceSubType": "General",
                                "timestamp": "2025-01-01T12:00:09Z",
                            },
                            "mail": {
                                "messageId": "010001",
                                "timestamp": "2025-01-01T12:00:00Z",
                                "tags": {"member_id": ["m1"]},
                            },
                        }
                    ).decode(),
                }
            ),
            orjson.dumps(
                {"eventType": "Delivery", "mail": {"messageId": "010002", "timestamp": "2025-01-01T12:00:00Z"}}
            ),
        ],
        5101,
        "[0].mail.tags.member_id",
    ),
    "mailgun": (
        [
            orjson.dumps(
                {
                    "signature": {"token": "t", "timestamp": "1735732800", "signature": "s"},
                    "event-data": {
                        "id": "e1",
                        "event": "complained",
                        "timestamp": 1_735_732_800.5,
                        "user-variables": {"member_id": "m1"},
                    },
                }
            ),
            orjson.dumps({"event-data": {"id": "e2", "event": "delivered", "timestamp": 1_735_732_800.5}}),
        ],
        3010,
        "[0].event-data.user-variables.member_id",
    ),
    "infobip": (
        [
            orjson.dumps(
                {
                    "results": [
                        {
                            "messageId": "M1",
                            "doneAt": "2025-01-01T12:00:05.000+0000",
                            "status": {"groupName": "REJECTED", "name": "REJECTED_DND"},
                            "error": {"name": "EC_NO_ERROR", "permanent": False},
                            "callbackData": "member_id=m1",
                        },
                        {
                            "messageId": "M2",
                            "doneAt": "2025-01-01T12:00:05.000+0000",
                            "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
                        },
                    ]
                }
            )
        ],
        4006,
        "[1].callbackData",
    ),
    "whatsapp": (
        [
            orjson.dumps(
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "changes": [
                                {
                                    "field": "messages",
                                    "value": {
                                        "statuses": [
                                            {
                                                "id": "wamid.1",
                                                "status": "sent",
                                                "timestamp": "1735732800",
                                                "biz_opaque_callback_data": '{"member_id": "m1"}',
                                            },
                                            {
                                                "id": "wamid.1",
                                                "status": "read",
                                                "timestamp": "1735732900",
                                                "biz_opaque_callback_data": '{"member_id": "m1"}',
                                            },
                                            {"id": "wamid.2", "status": "read", "timestamp": "1735732900"},
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                }
            )
        ],
        2030,
        "[2].biz_opaque_callback_data",
    ),
    "vonage": (
        [
            orjson.dumps(
                {
                    "messageId": "V1",
                    "status": "failed",
                    "err-code": "9",
                    "message-timestamp": "2025-01-01 12:00:05",
                    "member_id": "m1",
                }
            ),
            orjson.dumps(
                {"messageId": "V2", "status": "delivered", "err-code": "0", "message-timestamp": "2025-01-01 12:00:05"}
            ),
        ],
        4006,
        "[0].member_id",
    ),
    "postmark": (
        [
            orjson.dumps(
                [
                    {
                        "RecordType": "Delivery",
                        "MessageID": "P1",
                        "DeliveredAt": "2025-01-01T12:00:05Z",
                        "Metadata": {"member_id": "m1"},
                    },
                    {
                        "RecordType": "Bounce",
                        "ID": 9,
                        "Type": "BadEmailAddress",
                        "MessageID": "P1",
                        "BouncedAt": "2025-01-01T12:00:06Z",
                        "Metadata": {"member_id": "m1"},
                    },
                ]
            ),
            orjson.dumps(
                {"RecordType": "Open", "MessageID": "P2", "ReceivedAt": "2025-01-01T12:00:06Z", "Metadata": {}}
            ),
        ],
        4005,
        "[0].Metadata.member_id",
    ),
}


@pytest.mark.parametrize("name", list(PROVIDER_BODIES))
def test_statusflow_resolve_reads_each_providers_own_bodies(statusflow: Runner, name: str, tmp_path: Path) -> None:
    """Bodies as the provider sends them, one a line, a redelivered one, an event with no member: one state, one letter."""
    lines, code, field = PROVIDER_BODIES[name]
    data = b"\n".join([*lines, lines[0]]) + b"\n"
    dlq = tmp_path / "dlq.jsonl"

    result = statusflow("resolve", "--format", name, "--dlq", str(dlq), stdin=data)
    (state,) = jsonl(result.stdout)
    letters = jsonl(dlq.read_bytes())

    assert 0 == result.returncode, result.stderr
    assert ("m1", code) == (state["member_id"], state["status"]["code"])
    assert {("missing_field", field)} == {(d["error"]["reason"], d["error"]["field"]) for d in letters}
    assert all("member_id" in d["error"]["message"] for d in letters)


def test_every_format_is_a_resolve_and_produce_choice_and_every_provider_is_in_codes_vocab(statusflow: Runner) -> None:
    """Resolve --help and produce --help list every format; codes --vocab lists every provider's statuses."""
    from stream.providers.registry import FORMATS, PROVIDERS

    resolve_help = statusflow("resolve", "--help").stdout.decode()
    produce_help = statusflow("produce", "--help").stdout.decode()
    rows = orjson.loads(statusflow("codes", "--vocab", "--json").stdout)
    table = statusflow("codes", "--vocab").stdout.decode()

    choices = "{" + ",".join(FORMATS) + "}"
    assert choices in resolve_help
    assert choices in produce_help
    for provider in PROVIDERS.values():
        listed = {r["status"] for r in rows if r["source"] == provider.SOURCE}
        assert {str(status) for status in provider.VOCABULARY} == listed
        assert f"\n{provider.SOURCE} " in table


# The samples whose event without a member names its message id (SendGrid's and Mailgun's name none:
# tests/unit/test_correlate.py joins theirs).
JOINABLE = ["twilio", "ses", "infobip", "whatsapp", "vonage", "postmark"]


@pytest.mark.parametrize("name", JOINABLE)
def test_resolve_with_dispatches_gives_memberless_events_their_member_and_dead_letters_the_unmatched(
    statusflow: Runner, validate: Validate, name: str, tmp_path: Path
) -> None:
    """Each provider's documented bodies: the event without a member joins its dispatch; without one it is unmatched at the end."""
    from stream.domain.correlate import Held
    from stream.resolver import items_of

    bodies, _, field = PROVIDER_BODIES[name]
    waiting = [item for body in bodies for item in items_of(body, name) if isinstance(item, Held)]
    assert waiting, "each provider's sample has an event without a member"
    dispatches = [
        {"provider": name, "message_id": held.message_id, "member_id": "m2", "occurred_at": "2025-01-01T12:00:00Z"}
        for held in waiting
    ]
    for record in dispatches:
        validate("dispatch.v1.json", record)
    (tmp_path / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
    (tmp_path / "dispatches.jsonl").write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in dispatches))
    (tmp_path / "none.jsonl").write_bytes(b"")

    joined = statusflow(
        "resolve", "--format", name, "--dispatches", str(tmp_path / "dispatches.jsonl"), str(tmp_path / "bodies.txt")
    )
    unmatched = statusflow(
        "resolve", "--format", name, "--dispatches", str(tmp_path / "none.jsonl"), "--dlq", str(tmp_path / "dlq.jsonl"),
        str(tmp_path / "bodies.txt"),
    )  # fmt: skip
    letters = jsonl((tmp_path / "dlq.jsonl").read_bytes())

    assert (0, 0) == (joined.returncode, unmatched.returncode), (joined.stderr, unmatched.stderr)
    assert ["m1", "m2"] == [state["member_id"] for state in jsonl(joined.stdout)]
    assert b"dead-lettered 0" in joined.stderr
    assert ["m1"] == [state["member_id"] for state in jsonl(unmatched.stdout)]
    assert {("unmatched_message", field)} == {(d["error"]["reason"], d["error"]["field"]) for d in letters}
    for letter in letters:
        validate("dead-letter.v1.json", letter)
        assert letter["file"].endswith("bodies.txt")
        assert "the input has no dispatch record" in letter["error"]["message"]


def test_resolve_dispatches_needs_a_provider_format_and_an_existing_file(statusflow: Runner, tmp_path: Path) -> None:
    """Usage errors exit 2 with the reason."""
    (tmp_path / "d.jsonl").write_bytes(b"")
    envelope = statusflow("resolve", "--dispatches", str(tmp_path / "d.jsonl"), stdin=b"")
    missing = statusflow("resolve", "--format", "twilio", "--dispatches", str(tmp_path / "nope.jsonl"), stdin=b"")
    assert (2, 2) == (envelope.returncode, missing.returncode)
    assert b"needs a provider --format" in envelope.stderr
    assert b"no such file" in missing.stderr
