"""
Every provider vocabulary, as data: provider status -> (AdditionStatus, final[, channel status]).

This is the one file that answers "where does ``DELIVRD`` become 2020?". Keys are written as the
providers spell them; lookups normalise case, label prefixes and ``-``/``_``/space (see
``classify.normalise``). An entry is ``(target, final)`` or ``(target, final, channel_status)``:

- ``target`` is an AdditionStatus code, or ``BOUNCED`` / ``PROVIDER_FAILED`` whose code depends on
  the channel (a bounce is 5101 for email, 5201 for SMS, 5001 elsewhere);
- ``final`` is True for a permanent outcome, False for a temporary / in-transit one;
- ``channel_status`` overrides the channel status derived from the AdditionStatus
  (``CHANNEL_STATUS`` below) where the provider is more specific than the AdditionStatus.

Every decision where the seeds are silent is explained in README.md ("Vocabularies").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from stream.domain.catalog import ADDITION_STATUS, EMAIL_STATUS, SMS_STATUS


@dataclass(frozen=True, slots=True)
class PerChannel:
    """An outcome whose AdditionStatus depends on the channel it happened on."""

    email: int
    sms: int
    other: int

    def code_for(self, channel: str) -> int:
        """Return the AdditionStatus code of this outcome on ``channel``."""
        return self.email if channel == "email" else self.sms if channel == "sms" else self.other


BOUNCED = PerChannel(email=5101, sms=5201, other=5001)
PROVIDER_FAILED = PerChannel(email=5100, sms=5200, other=5000)

FINAL = True
TEMPORARY = False

Target: TypeAlias = int | PerChannel
Entry: TypeAlias = tuple[Target, bool] | tuple[Target, bool, int]
Vocabulary: TypeAlias = dict[str | int, Entry]

# A spam complaint: the strongest unsubscribe there is (3010). Its Email status is 1 Sent, not
# 5 Clicked as for an unsubscribe link: it proves the email reached the mailbox, and no more.
COMPLAINT_EMAIL_STATUS = 1
COMPLAINT: Entry = (3010, FINAL, COMPLAINT_EMAIL_STATUS)

# message_type as sent, lower-cased -> its name. "remider" is seed 001's own spelling of type 1.
MESSAGE_TYPE_SPELLINGS: dict[str, str] = {
    "survey": "survey",
    "reminder": "reminder",
    "remider": "reminder",
    "manualresend": "manualResend",
}

# --- nps.today's own codes (seed 001) ------------------------------------------------------------

# Handover and processing stages: more news is expected. Everything else nps.today reports is final.
NPSTODAY_TEMPORARY = frozenset({0, 10, 2010, 2050})

NPSTODAY: Vocabulary = {
    **{c.code: (c.code, c.code not in NPSTODAY_TEMPORARY) for c in ADDITION_STATUS},
    **{c.shortcode: (c.code, c.code not in NPSTODAY_TEMPORARY) for c in ADDITION_STATUS},
}

_NPSTODAY_SMS_BY_CODE: Vocabulary = {
    0: (0, TEMPORARY, 0),  # Added
    1: (2010, TEMPORARY, 1),  # Sent: handed to a provider; a delivery report may follow
    2: (4000, FINAL, 2),  # Cancelled: "something" stopped it before sending
    3: (4002, FINAL, 3),  # CancelledThrottle
    4: (5202, FINAL, 4),  # NotCapableOfReceivingSMS
}
NPSTODAY_SMS: Vocabulary = {
    **_NPSTODAY_SMS_BY_CODE,
    **{c.shortcode: _NPSTODAY_SMS_BY_CODE[c.code] for c in SMS_STATUS},
}

_NPSTODAY_EMAIL_BY_CODE: Vocabulary = {
    0: (10, TEMPORARY, 0),  # Scheduled
    1: (2010, TEMPORARY, 1),  # Sent
    2: (2030, FINAL, 2),  # Opened
    3: (4002, FINAL, 3),  # CancelledThrottle
    4: (5101, FINAL, 4),  # Bounced
    5: (2040, FINAL, 5),  # Clicked
    6: (4006, FINAL, 6),  # CancelledInactive: unsubscribed / blacklisted before this survey
    7: (4006, FINAL, 7),  # CancelledDoNotContact: same meaning in the seed
    8: (4007, FINAL, 8),  # CancelledEndedCampaign
    9: (2051, FINAL, 9),  # CancelledReminder: the reminder was not sent (already answered)
}
NPSTODAY_EMAIL: Vocabulary = {
    **_NPSTODAY_EMAIL_BY_CODE,
    **{c.shortcode: _NPSTODAY_EMAIL_BY_CODE[c.code] for c in EMAIL_STATUS},
}

# --- IdSurvey SMS Sender outcomes (seed 002): "permanent" is final, "temporary" is retried --------

IDSURVEY: Vocabulary = {
    "Invalid": (4004, FINAL),  # number not properly formatted: never sent
    "Duplicated": (4001, FINAL),  # already in the list: never sent
    "Rejected": (BOUNCED, FINAL),  # the mobile network rejected it
    "Undeliverable": (BOUNCED, FINAL),
    "Delivered": (2020, FINAL),
    "Expired": (PROVIDER_FAILED, FINAL),  # no delivery confirmation in time
    "Deleted": (PROVIDER_FAILED, FINAL),
    "Skipped": (PROVIDER_FAILED, FINAL),  # sent, but ignored by network rules
    "Buffered": (2010, TEMPORARY),
    "Scheduled": (10, TEMPORARY),
    "Unknown": (2010, TEMPORARY),  # sent, no outcome yet
    "Enroute": (2010, TEMPORARY),
    "Accepted": (2010, TEMPORARY),
}

# --- Digital Customer Engagement platform (seed 003), one table per channel ----------------------

# "INCOMPLETE": sent with empty placeholders. It was sent; a content defect is not a delivery outcome.
_DCE_INCOMPLETE: Entry = (2010, TEMPORARY)

DCE: dict[str, Vocabulary] = {
    "sms": {
        "SENT": (2010, TEMPORARY),
        "EXPIRED": (PROVIDER_FAILED, FINAL),
        "DELETED": (PROVIDER_FAILED, FINAL),
        "UNDELIV": (BOUNCED, FINAL),
        "ACCEPTD": (2010, TEMPORARY),
        "UNKNOWN": (PROVIDER_FAILED, FINAL),  # "invalid status ... unknown error with the operator"
        "REJECTD": (BOUNCED, FINAL),
        "INVALID_ROUTING": (4004, FINAL),  # "Phone number is not valid": InvalidPhone, as IdSurvey's Invalid
        "CODE_NOT_ALLOWED": (PROVIDER_FAILED, FINAL),  # our sender (short/long code) setup at the provider
        "BLACKLISTED": (BOUNCED, FINAL),
        "QUEUE": (2010, TEMPORARY),
        "DEQUEUED": (2010, TEMPORARY),
        "DELIVRD": (2020, FINAL),
        "INCOMPLETE": _DCE_INCOMPLETE,
        "ENROUTE": (2010, TEMPORARY),
    },
    "email": {
        "DEQUEUED": (2010, TEMPORARY),
        "NOT_SENT": (PROVIDER_FAILED, FINAL),
        "BAD_TO": (BOUNCED, FINAL),
        "BAD_FROM": (PROVIDER_FAILED, FINAL),  # our sender setup, not the respondent's address
        "BLACKLISTED": (BOUNCED, FINAL),
        # "Recipient temporarily blocked": not sent to this recipient. Seed 001's 5101 covers an address
        # that is "blocked ... at our mail provider"; temporary or not, this message was not delivered.
        "BLOCKED_DUE_BAD_BEHAVIOUR": (BOUNCED, FINAL),
        "BLOCKED_DUE_BAD_BEHAVIOR": (BOUNCED, FINAL),  # the American spelling some integrations send
        "SENT": (2010, TEMPORARY),
        "EXHAUSTED": (PROVIDER_FAILED, FINAL),  # retry limit exceeded
        "BOUNCED_PERMANENT": (BOUNCED, FINAL),
        "BOUNCED": (BOUNCED, FINAL),
        "COMPLAINED": COMPLAINT,  # "Recipient marked the email as spam"
        "OPEN": (2030, FINAL),
        "CLICK": (2040, FINAL),
        "INCOMPLETE": _DCE_INCOMPLETE,
    },
    "push": {
        "SENT": (2010, TEMPORARY),
        "DEQUEUED": (2010, TEMPORARY),
        "AUTH_MISSING": (PROVIDER_FAILED, FINAL),
        "EXHAUSTED": (PROVIDER_FAILED, FINAL),
        "NOT_SENT": (PROVIDER_FAILED, FINAL),
        "BAD_DEVICE_TOKEN": (BOUNCED, FINAL),
        "BAD_PLATFORM": (PROVIDER_FAILED, FINAL),
        "AUTH_ERROR": (PROVIDER_FAILED, FINAL),
        "PAYLOAD_LIMIT_EXCEEDED": (PROVIDER_FAILED, FINAL),
        "INVALID_MESSAGE": (PROVIDER_FAILED, FINAL),
        "DEVICE_QUOTA_EXCEEDED": (2010, TEMPORARY),  # throttled by the push service, retried
        "SERVER_UNAVAILABLE": (2010, TEMPORARY),  # "could not process the request in time"
        "SERVER_ERROR": (PROVIDER_FAILED, FINAL),
        "UNREGISTERED": (BOUNCED, FINAL),
        "NOT_CONTEMPLATED_ERROR": (PROVIDER_FAILED, FINAL),
        "MISMATCHED_TOKEN": (PROVIDER_FAILED, FINAL),  # "The credential does not have the permission": ours
        "INCOMPLETE": _DCE_INCOMPLETE,
    },
    "rcs": {
        "SENT": (2010, TEMPORARY),
        "DELIVERED": (2020, FINAL),
        "READ": (2030, FINAL),
        "FALLBACK": (PROVIDER_FAILED, FINAL),  # "this status is final": RCS failed, other channel used
        "NOT_SENT": (PROVIDER_FAILED, FINAL),
        "INCOMPLETE": _DCE_INCOMPLETE,
    },
    "whatsapp": {
        "SENT": (2010, TEMPORARY),
        "DELIVERED": (2020, FINAL),
        "READ": (2030, FINAL),
        "CODE_NOT_ALLOWED": (PROVIDER_FAILED, FINAL),  # "Sender ... is not valid": as imgw error-subject-unknown
        "FAILED": (PROVIDER_FAILED, FINAL),  # "Message delivery failed.": the words of RCS NOT_SENT
        "QUOTA_EXCEEDED": (PROVIDER_FAILED, FINAL),
        "INCOMPLETE": _DCE_INCOMPLETE,
    },
}

# --- Instant-messaging gateway (seed 004): request, connector and delivery codes ------------------

# A malformed request is our integration's fault, not the provider's nor the respondent's: 4000.
_IMGW_BAD_REQUEST: Entry = (4000, FINAL)

IMGW: Vocabulary = {
    # Request processing codes
    "ok": (2010, TEMPORARY),
    "error-system": (PROVIDER_FAILED, FINAL),
    "error-content-do-not-match-hsm-template": (PROVIDER_FAILED, FINAL),
    "error-insufficient-balance": (PROVIDER_FAILED, FINAL),
    "error-id-not-unique": _IMGW_BAD_REQUEST,
    "error-subject-format": _IMGW_BAD_REQUEST,
    "error-subject-unknown": (PROVIDER_FAILED, FINAL),  # sender not allowed: as DCE CODE_NOT_ALLOWED
    "error-address-format": (4004, FINAL),
    "error-address-not-specified": (4004, FINAL),
    "error-priority-format": _IMGW_BAD_REQUEST,
    "error-start-time-format": _IMGW_BAD_REQUEST,
    "error-validity-period-seconds-format": _IMGW_BAD_REQUEST,
    "error-content-type-format": _IMGW_BAD_REQUEST,
    "error-im-type-not-specified": _IMGW_BAD_REQUEST,
    "error-attachment-url-not-specified": _IMGW_BAD_REQUEST,
    "error-latitude-not-specified": _IMGW_BAD_REQUEST,
    "error-longtitude-not-specified": _IMGW_BAD_REQUEST,  # the seed's spelling
    "error-longitude-not-specified": _IMGW_BAD_REQUEST,
    "error-content-format": _IMGW_BAD_REQUEST,
    "error-content-type-not-specified": _IMGW_BAD_REQUEST,
    "error-comment-format": _IMGW_BAD_REQUEST,
    "error-subject-id-format": _IMGW_BAD_REQUEST,
    "not-template-match": (PROVIDER_FAILED, FINAL),
    "not-whatsapp-user": (BOUNCED, FINAL),
    "not-viber-user": (BOUNCED, FINAL),
    "user-blocked": (BOUNCED, FINAL),
    # Error in Connector
    "error-system-blocked": (PROVIDER_FAILED, FINAL),
    "error-syntax": _IMGW_BAD_REQUEST,
    "error-unauthorized": (PROVIDER_FAILED, FINAL),
    "error-not-found": (PROVIDER_FAILED, FINAL),
    # Message Delivery Codes
    "enqueued": (2010, TEMPORARY),
    "expired": (PROVIDER_FAILED, FINAL),
    "sent": (2010, TEMPORARY),
    "delivered": (2020, FINAL),
    "undelivered": (BOUNCED, FINAL),
    "read": (2030, FINAL),
    "failed": (BOUNCED, FINAL),
    "no-match-template": (PROVIDER_FAILED, FINAL),
    "delayed": (10, TEMPORARY),  # held until its start time
    "cancelled": (4000, FINAL),  # cancelled on the client's request
}

# --- SMPP delivery receipts (stat:), SMPP 3.4 section 5.2.28, plus long spellings some SMSCs use ---

SMPP: Vocabulary = {
    "ENROUTE": (2010, TEMPORARY),
    "DELIVRD": (2020, FINAL),
    "EXPIRED": (PROVIDER_FAILED, FINAL),
    "DELETED": (PROVIDER_FAILED, FINAL),
    "UNDELIV": (BOUNCED, FINAL),
    "ACCEPTD": (2010, TEMPORARY),
    "UNKNOWN": (PROVIDER_FAILED, FINAL),
    "REJECTD": (BOUNCED, FINAL),
    "SCHEDULED": (10, TEMPORARY),  # SMPP 5.0
    "SCHEDLD": (10, TEMPORARY),  # SMPP 5.0's receipt spelling
    "SKIPPED": (PROVIDER_FAILED, FINAL),  # SMPP 5.0
    "DELIVERED": (2020, FINAL),
    "UNDELIVERABLE": (BOUNCED, FINAL),
    "ACCEPTED": (2010, TEMPORARY),
    "REJECTED": (BOUNCED, FINAL),
    # The message_state values (SMPP 3.4 section 5.2.28 table 5-6; 9 is SMPP 5.0), as gateways that
    # forward query_sm / deliver_sm TLVs send them.
    1: (2010, TEMPORARY),  # ENROUTE
    2: (2020, FINAL),  # DELIVERED
    3: (PROVIDER_FAILED, FINAL),  # EXPIRED
    4: (PROVIDER_FAILED, FINAL),  # DELETED
    5: (BOUNCED, FINAL),  # UNDELIVERABLE
    6: (2010, TEMPORARY),  # ACCEPTED
    7: (PROVIDER_FAILED, FINAL),  # UNKNOWN
    8: (BOUNCED, FINAL),  # REJECTED
    9: (PROVIDER_FAILED, FINAL),  # SKIPPED
}

# The channel-independent vocabularies by source name (``dce`` has one per channel: ``DCE``).
BY_SOURCE: dict[str, Vocabulary] = {
    "npstoday": NPSTODAY,
    "npstoday-sms": NPSTODAY_SMS,
    "npstoday-email": NPSTODAY_EMAIL,
    "idsurvey": IDSURVEY,
    "imgw": IMGW,
    "smpp": SMPP,
}


def table(source: str, channel: str) -> Vocabulary:
    """Return the vocabulary ``source`` uses on ``channel``."""
    return DCE[channel] if source == "dce" else BY_SOURCE[source]


# Which channels each source speaks for; the first is the default when an event names none.
SOURCE_CHANNELS: dict[str, tuple[str, ...]] = {
    "npstoday": ("survey", "sms", "email", "push", "rcs", "whatsapp", "viber"),
    "npstoday-sms": ("sms",),
    "npstoday-email": ("email",),
    "idsurvey": ("sms",),
    "dce": tuple(DCE),
    "imgw": ("whatsapp", "viber", "sms"),
    "smpp": ("sms",),
}

# Channel status by AdditionStatus: exact codes first, then the code's range name.
CHANNEL_STATUS: dict[str, dict[int | str, int]] = {
    "sms": {
        2051: 2,
        4002: 3,
        4008: 3,
        5202: 4,
        "processing": 0,
        "delivery": 1,
        "answered": 1,
        "negative": 1,
        "internal_error": 2,
        "provider_unknown_error": 2,
        "email_provider_error": 2,
        "sms_provider_error": 2,
    },
    "email": {
        2030: 2,
        2040: 5,
        2051: 9,
        4002: 3,
        4008: 3,
        4005: 4,
        4006: 6,
        4007: 8,
        # Answering or unsubscribing means the respondent followed a link in the email.
        "processing": 0,
        "delivery": 1,
        "answered": 5,
        "negative": 5,
        # No Email status says "not sent by nps.today" in general. 7 CancelledDoNotContact would
        # invent an opt-out; 0 Scheduled claims nothing beyond "it never left nps.today".
        "internal_error": 0,
        "provider_unknown_error": 4,
        "email_provider_error": 4,
        "sms_provider_error": 4,
    },
    **{
        channel: {
            2020: 2,
            2030: 3,
            2040: 3,
            2051: 4,
            5000: 4,
            5100: 4,
            5200: 4,
            "processing": 0,
            "delivery": 1,
            "answered": 3,
            "negative": 7,
            "internal_error": 6,
            "provider_unknown_error": 5,
            "email_provider_error": 5,
            "sms_provider_error": 5,
        }
        for channel in ("push", "rcs", "whatsapp", "viber")
    },
}


# --- Provider vocabularies: registered as data ---------------------------------------------------
# Each provider's vocabulary lives in its own module (stream/providers/<format>.py), which the core
# never imports: stream.providers.registry registers them here when the stream package is imported
# (stream/__init__.py), before classify builds its indexes from BY_SOURCE and SOURCE_CHANNELS.
_REGISTRATION = {"open": True}


def register(source: str, channels: tuple[str, ...], vocabulary: Vocabulary) -> None:
    """
    Add a provider's vocabulary: ``source`` speaks for ``channels`` (the first is its default).

    Raises:
        RuntimeError: classify has already indexed the vocabularies; this one would go unseen.
        ValueError: ``source`` is taken by another vocabulary.

    """
    if not _REGISTRATION["open"]:
        raise RuntimeError(f"vocabulary {source!r} registered after classify indexed the vocabularies")
    if source in SOURCE_CHANNELS and BY_SOURCE.get(source) is not vocabulary:
        raise ValueError(f"source {source!r} already has a vocabulary")
    BY_SOURCE[source] = vocabulary
    SOURCE_CHANNELS[source] = channels


def close_registration() -> None:
    """Refuse further vocabularies: classify calls this as it builds its indexes."""
    _REGISTRATION["open"] = False
