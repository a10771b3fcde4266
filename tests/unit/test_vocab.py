"""Every code and vocabulary entry of the four seed documents classifies, and classifies right."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain import catalog, vocab
from stream.domain.catalog import CHANNEL_CODES, range_of
from stream.domain.classify import classify, normalise, receipt_stat
from stream.domain.errors import BadEventError
from stream.domain.precedence import RANK
from tests.conftest import SEEDS


def _seed(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text()


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def _npstoday_rows(section: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in re.finditer(r"^(\d+) (\S+) ", section, re.MULTILINE)]


SEED_001 = _seed("001")
ADDITION_ROWS = _npstoday_rows(_section(SEED_001, "Status code list", "SMS codes"))
SMS_ROWS = _npstoday_rows(_section(SEED_001, "SMS status codes", "SMS types"))
EMAIL_ROWS = _npstoday_rows(_section(SEED_001, "Email status codes", "Email types"))
IDSURVEY_ROWS = re.findall(r"SMS Sender: ([A-Z][a-z]+).*?(Permanent|Temporary)", _seed("002"))
DCE_SECTIONS = {
    "sms": ("SMS Statuses", "ON TRANSIT"),
    "email": ("Email Statuses", "Push notification"),
    "push": ("Push notification Statuses", "RCS Statuses"),
    "rcs": ("RCS Statuses", "WhatsApp Statuses"),
    "whatsapp": ("WhatsApp Statuses", "Updated"),
}
DCE_ROWS = [
    (channel, status)
    for channel, (start, end) in DCE_SECTIONS.items()
    for status in re.findall(r"^([A-Z_]+) \|", _section(_seed("003"), start, end), re.MULTILINE)
]
IMGW_ROWS = re.findall(r"• (\S+)\s+–", _seed("004"))


def test_the_seed_parsers_find_every_row() -> None:
    """The counts match the seed documents, so no entry escapes the tests below."""
    counts = (len(ADDITION_ROWS), len(SMS_ROWS), len(EMAIL_ROWS), len(IDSURVEY_ROWS), len(DCE_ROWS), len(IMGW_ROWS))

    assert (30, 5, 10, 13, 15 + 14 + 17 + 6 + 7, 26 + 4 + 10) == counts


@pytest.mark.parametrize(("code", "shortcode"), ADDITION_ROWS)
def test_every_addition_status_of_the_seed_is_in_the_catalog_and_resolves_to_itself(code: int, shortcode: str) -> None:
    """AdditionStatus codes keep their number; shortcodes match the seed except 2051's (README)."""
    expected_shortcode = "ReminderFailed" if code == 2051 else shortcode

    assert expected_shortcode == catalog.ADDITION_BY_CODE[code].shortcode
    assert code == classify("npstoday", "survey", code).code
    assert code == classify("npstoday", "survey", str(code)).code
    assert code == classify("npstoday", "survey", expected_shortcode.upper()).code
    assert code in RANK


@pytest.mark.parametrize(("code", "shortcode"), SMS_ROWS)
def test_every_sms_status_of_the_seed_keeps_its_code_on_the_sms_channel(code: int, shortcode: str) -> None:
    """npstoday-sms code n shows as SMS status n, by number or by shortcode."""
    assert shortcode == CHANNEL_CODES["sms"][code].shortcode
    assert code == classify("npstoday-sms", "sms", code).channel_status
    assert code == classify("npstoday-sms", "sms", shortcode.lower()).channel_status


@pytest.mark.parametrize(("code", "shortcode"), EMAIL_ROWS)
def test_every_email_status_of_the_seed_keeps_its_code_on_the_email_channel(code: int, shortcode: str) -> None:
    """npstoday-email code n shows as Email status n, by number or by shortcode."""
    assert shortcode.rstrip("*") == CHANNEL_CODES["email"][code].shortcode
    assert code == classify("npstoday-email", "email", f" {code} ").channel_status
    assert code == classify("npstoday-email", "email", shortcode.rstrip("*")).channel_status


@pytest.mark.parametrize(("status", "permanence"), IDSURVEY_ROWS)
def test_idsurvey_outcomes_are_final_exactly_when_the_seed_says_permanent(status: str, permanence: str) -> None:
    """A temporary IdSurvey outcome is retried by the sender, so it must not be final."""
    outcome = classify("idsurvey", "sms", f"SMS Sender: {status}")

    assert (permanence == "Permanent") == outcome.final


@pytest.mark.parametrize(("channel", "status"), DCE_ROWS)
def test_every_dce_status_of_the_seed_classifies_on_its_channel(channel: str, status: str) -> None:
    """Each DCE status maps to a known AdditionStatus and a status of the channel's own list."""
    outcome = classify("dce", channel, status.lower())

    assert outcome.channel_status in CHANNEL_CODES[channel]
    assert outcome.code in catalog.ADDITION_BY_CODE


@pytest.mark.parametrize("status", IMGW_ROWS)
@pytest.mark.parametrize("channel", ["whatsapp", "viber", "sms"])
def test_every_imgw_code_of_the_seed_classifies_on_every_gateway_channel(status: str, channel: str) -> None:
    """Request, connector and delivery codes of the gateway all classify, on each of its channels."""
    outcome = classify("imgw", channel, status)

    assert outcome.channel_status in CHANNEL_CODES[channel]


@pytest.mark.parametrize(
    ("source", "channel", "status", "code", "final", "channel_status"),
    [
        ("smpp", "sms", "DELIVRD", 2020, True, 1),
        (
            "smpp",
            "sms",
            "id:7 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:UNDELIV err:034",
            5201,
            True,
            2,
        ),
        ("smpp", "sms", "ENROUTE", 2010, False, 1),
        ("dce", "sms", "EXPIRED", 5200, True, 2),
        ("dce", "email", "BOUNCED_PERMANENT", 5101, True, 4),
        ("dce", "email", "CLICK", 2040, True, 5),
        ("dce", "email", "COMPLAINED", 3010, True, 1),
        ("dce", "push", "BAD_DEVICE_TOKEN", 5001, True, 5),
        ("dce", "push", "SERVER_UNAVAILABLE", 2010, False, 1),
        ("dce", "rcs", "READ", 2030, True, 3),
        ("dce", "whatsapp", "FAILED", 5000, True, 4),
        ("idsurvey", "sms", "SMS Sender: Undeliverable", 5201, True, 2),
        ("idsurvey", "sms", "Invalid", 4004, True, 2),
        ("imgw", "whatsapp", "not-whatsapp-user", 5001, True, 5),
        ("imgw", "sms", "undelivered", 5201, True, 2),
        ("imgw", "viber", "error-address-format", 4004, True, 6),
        ("imgw", "viber", "Error_Content_Format", 4000, True, 6),
        ("imgw", "whatsapp", "read", 2030, True, 3),
        ("sendgrid", "email", "bounce", 5101, True, 4),
        ("sendgrid", "email", "blocked", 5100, True, 4),
        ("sendgrid", "email", "deferred", 2010, False, 1),
        ("sendgrid", "email", "spamreport", 3010, True, 1),
        ("npstoday-email", "email", 9, 2051, True, 9),
        ("npstoday-sms", "sms", "NotCapableOfReceivingSMS", 5202, True, 4),
        ("npstoday", "survey", 2600, 2600, True, 2600),
        ("npstoday", "sms", "Completed", 2600, True, 1),
    ],
)
def test_provider_statuses_map_to_the_documented_outcome(
    source: str, channel: str, status: str | int, code: int, final: bool, channel_status: int
) -> None:
    """Spot checks of the README's vocabulary tables, including spelling variants."""
    outcome = classify(source, channel, status)

    assert (code, final, channel_status) == (outcome.code, outcome.final, outcome.channel_status)


def test_a_reminder_handover_is_reminded_not_sent() -> None:
    """message_type reminder turns 2010 sent into 2050 Reminded; other outcomes keep their code."""
    assert 2050 == classify("sendgrid", "email", "processed", "reminder").code
    assert 2020 == classify("sendgrid", "email", "delivered", "reminder").code
    assert 2010 == classify("sendgrid", "email", "processed", "manualResend").code


@pytest.mark.parametrize(
    ("source", "channel", "status", "reason"),
    [
        ("fax", "sms", "sent", "unknown_source"),
        ("idsurvey", "email", "Delivered", "unsupported_channel"),
        ("dce", "viber", "SENT", "unsupported_channel"),
        ("idsurvey", "sms", "Teleported", "unknown_status"),
        ("npstoday", "survey", 1234, "unknown_status"),
        ("smpp", "sms", "id:1 stat:LOST err:000", "unknown_status"),
    ],
)
def test_unknown_vocabulary_is_rejected_with_a_specific_reason(
    source: str, channel: str, status: str | int, reason: str
) -> None:
    """What is wrong is named, so a dead letter tells its reader what to fix."""
    with pytest.raises(BadEventError) as raised:
        classify(source, channel, status)

    assert reason == raised.value.reason


def test_every_vocabulary_entry_yields_a_status_of_each_channel_it_can_arrive_on() -> None:
    """No (source, channel, status) combination produces a channel code outside the channel's list."""
    for source, channels in vocab.SOURCE_CHANNELS.items():
        for channel in channels:
            table = vocab.table(source, channel)
            for status in table:
                outcome = classify(source, channel, status)

                assert outcome.channel_status in CHANNEL_CODES[channel], (source, channel, status)
                assert range_of(outcome.code).low <= outcome.code


def test_normalise_folds_case_prefixes_separators_and_digit_strings() -> None:
    """Providers' spelling variations reach the same vocabulary key."""
    assert ["delivered", "error_address_format", "bounced_permanent", 4] == [
        normalise("SMS Sender:  Delivered"),
        normalise("Error-Address-Format"),
        normalise("bounced permanent"),
        normalise("4"),
    ]


_RECEIPT_PIECES = st.sampled_from(
    ["stat:", "STAT:", "Stat: ", "xstat:", " ", "\t", "\x1c", "_", "DELIVRD", "9", "é", "ſ"]
)


@settings(max_examples=500)
@given(st.lists(_RECEIPT_PIECES | st.text(max_size=3), max_size=8).map("".join))
def test_the_receipt_scan_finds_what_the_receipt_pattern_finds(text: str) -> None:
    """The hand-rolled stat: scan agrees with the case-blind regex it replaces, on any text."""
    match = re.search(r"\bstat:\s*([A-Za-z_]+)", text, re.IGNORECASE)
    assert (match.group(1) if match else text) == receipt_stat(text)


@pytest.mark.parametrize(
    ("source", "channel", "status", "code", "final", "channel_status"),
    [
        # "Recipient temporarily blocked": not sent to this recipient; no longer a silent "sent".
        ("dce", "email", "BLOCKED_DUE_BAD_BEHAVIOUR", 5101, True, 4),
        ("dce", "email", "blocked due bad behavior", 5101, True, 4),
        # "Message delivery failed.": the words of RCS NOT_SENT, so the same provider failure.
        ("dce", "whatsapp", "FAILED", 5000, True, 4),
        ("dce", "rcs", "NOT_SENT", 5000, True, 4),
        # "Phone number is not valid": InvalidPhone, as IdSurvey Invalid and imgw error-address-format.
        ("dce", "sms", "INVALID_ROUTING", 4004, True, 2),
        # "The credential does not have the permission ...": our credential, a provider failure.
        ("dce", "push", "MISMATCHED_TOKEN", 5000, True, 4),
        # A sender not allowed: one code per channel for both vocabularies.
        ("dce", "sms", "CODE_NOT_ALLOWED", 5200, True, 2),
        ("imgw", "sms", "error-subject-unknown", 5200, True, 2),
        ("dce", "whatsapp", "CODE_NOT_ALLOWED", 5000, True, 4),
        ("imgw", "whatsapp", "error-subject-unknown", 5000, True, 4),
        # A spam complaint: Email status 1 Sent (it reached the mailbox), not 5 Clicked.
        ("dce", "email", "COMPLAINED", 3010, True, 1),
        ("sendgrid", "email", "spamreport", 3010, True, 1),
        ("sendgrid", "email", "unsubscribe", 3010, True, 5),
        # Internal errors on email: 0 Scheduled (never left nps.today), not an invented opt-out.
        ("npstoday", "email", "Duplicate", 4001, True, 0),
        ("npstoday", "email", "InternalUnknownError", 4000, True, 0),
        ("npstoday-email", "email", "CancelledDoNotContact", 4006, True, 7),
        # Spellings the lookup missed.
        (
            "smpp",
            "sms",
            "id:1 sub:001 dlvrd:000 submit date:2501011200 done date:2501011200 stat:SCHEDLD",
            10,
            False,
            0,
        ),
        ("imgw", "viber", "error-longitude-not-specified", 4000, True, 6),
    ],
)
def test_the_issue_13_mapping_decisions(
    source: str, channel: str, status: str | int, code: int, final: bool, channel_status: int
) -> None:
    """Each mapping the per-message review changed, with the seed's reason beside it (README)."""
    outcome = classify(source, channel, status)

    assert (code, final, channel_status) == (outcome.code, outcome.final, outcome.channel_status)


@pytest.mark.parametrize(
    ("state", "name", "code", "final"),
    [
        (1, "ENROUTE", 2010, False),
        (2, "DELIVERED", 2020, True),
        (3, "EXPIRED", 5200, True),
        (4, "DELETED", 5200, True),
        (5, "UNDELIVERABLE", 5201, True),
        (6, "ACCEPTED", 2010, False),
        (7, "UNKNOWN", 5200, True),
        (8, "REJECTED", 5201, True),
        (9, "SKIPPED", 5200, True),
    ],
)
def test_smpp_message_state_integers_classify_as_their_names(state: int, name: str, code: int, final: bool) -> None:
    """SMPP message_state 1-9, as an integer or digit string, means what its stat name means."""
    by_number, by_digits, by_name = (classify("smpp", "sms", s) for s in (state, str(state), name))

    assert (code, final) == (by_number.code, by_number.final)
    assert by_number == by_digits == by_name


def test_the_seeds_own_remider_spelling_is_a_reminder() -> None:
    """Seed 001 spells message type 1 "remider": it is the reminder type, in any case."""
    assert (
        2050
        == classify("sendgrid", "email", "processed", "remider").code
        == classify("sendgrid", "email", "processed", "REMIDER").code
    )
