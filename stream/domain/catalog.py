"""
The code catalog: every status code of the nps.today model, as data.

Source: ``shared/seeds/001_83408c71abf37abd.txt`` (nps.today "Status codes", 2022-12-05).
Descriptions are kept verbatim, typos included, so they can be diffed against the seed.
The push/RCS/WhatsApp/Viber channel statuses are ours: the seed defines none (see README).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    """One code of a code list: number, stable shortcode, human description."""

    code: int
    shortcode: str
    description: str


@dataclass(frozen=True, slots=True)
class CodeRange:
    """An AdditionStatus code range with a stable machine name (used as a metric label)."""

    name: str
    low: int
    high: int
    description: str

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.low <= code <= self.high


RANGES: tuple[CodeRange, ...] = (
    CodeRange("processing", 0, 999, "Indicates different stages of nps.today sucessfully received new campaignMembers"),
    CodeRange(
        "delivery",
        2000,
        2499,
        "Sucessfull status that happens after nps.today has sucessfully recieved handled campaignMembers including handover to subproviders and sucessfull user actions",
    ),
    CodeRange("answered", 2500, 2999, "Survey sucessfully answered"),
    CodeRange(
        "negative",
        3000,
        3999,
        "Sucessfull status of negative events that are not ment to be in common reports and dashboards",
    ),
    CodeRange("internal_error", 4000, 4999, "Errors occuring at nps.today"),
    CodeRange("provider_unknown_error", 5000, 5099, "Unknown errors occuring at our providers"),
    CodeRange("email_provider_error", 5100, 5199, "Errors occuring at our Email providers"),
    CodeRange("sms_provider_error", 5200, 5299, "Errors occuring at our SMS providers"),
)

ADDITION_STATUS: tuple[Code, ...] = (
    Code(0, "added", "respondent / campaignMember sucessfully added to nps.today"),
    Code(10, "scheduled", "survey has been scheduled for processing"),
    Code(2010, "sent", "survey has been sucessfully handed over to a subprovider"),
    Code(
        2020,
        "Delivered",
        "survey has been sucessfully delivered as per notification from our providers. (Not guaranteed as we are not always provided with this data)",
    ),
    Code(
        2030,
        "Opened",
        "respondent has opened an email survey (not guaranteed as some providers prohibit this behaviour)",
    ),
    Code(
        2040,
        "Clicked",
        "respondent has clicked on a link in the survey. (Only Email, and not guaranteed as some providers prohibit this behaviour)",
    ),
    Code(2050, "Reminded", "A reminder has been send to the respondent."),
    # The seed names 2051 "Reminded" as well; a shortcode must identify one code, so ours differs.
    Code(2051, "ReminderFailed", "A reminder has been attempt to send but failed to do so."),
    Code(2510, "Rated", "respondent has given a rating, but not fully completed the survey."),
    Code(2520, "Commented", "respondent has added a comment, but not fully completed the survey."),
    Code(2600, "Completed", "respondent has fully completed a survey and clicked the final submit button."),
    Code(2701, "ScoreChangedInternally", "When the score is changed by a user in the dashboard"),
    Code(2702, "CommentChangedInternally", "When the comment is changed by a user in the dashboard"),
    Code(3010, "Unsubscribed", "respondent has unsubscribed from this exact surevy participation."),
    Code(4000, "InternalUnknownError", "Any internal error that is not described with a 4xxx number below."),
    Code(
        4001, "Duplicate", "respondent already exists on this campaign and duplicates are not allowed on this campaign."
    ),
    Code(
        4002,
        "Throttled",
        "respondent has recently received another survey from your account and a Throttling period on your campaign prevents the survey from being delivered.",
    ),
    Code(
        4003,
        "CallDurationTooShort",
        "When a survey is triggered from a call to a connected contact center but the call was shorter than a preset minimum talk time (default 10 seconds).",
    ),
    Code(
        4004,
        "InvalidPhone",
        "respondents phonenumber is invalid. Ensure the phonenumber is provided in the E.164 format. (+45... for DK, +1... for USA)",
    ),
    Code(
        4005,
        "InvalidEmail",
        "respondents email address is clearly invalid. Ex. Missing @ or has no valid domain ending like .com no delivery attempt will be made.",
    ),
    Code(4006, "AlreadyUnsubscribed", "respondent has unsubscribed before this campaign participation. (see 3010)"),
    Code(4007, "CampaignEnded", "A respondent was added or survey scheduled after the target campaign has been closed"),
    Code(
        4008,
        "DuplicatedDetected",
        "A respondent received a survey a few seconds ago. Even when throttling is not enabled, this mechanism works as an anti-spam safe guard.",
    ),
    Code(5000, "ExternalUnknownError", "Unknown external error."),
    Code(
        5001, "ExternalBounced", "Unknown bounce error at a provider. Delivery failed or not attempted from provider."
    ),
    Code(5100, "EmailServiceFailed", "Unknown error occuring at our Email provider provider."),
    Code(
        5101,
        "EmailServiceBounced",
        "Email address is either invalid, blocked, unsubscribed (outside your account), does not exist or is in another way blacklisted at our mail provider.",
    ),
    Code(5200, "SMSServiceFailed", "Unknown error occuring at our SMS provider."),
    Code(
        5201,
        "SMSServiceBounced",
        "The targeted phonenumber is blacklisted by our SMS provider and no delivery attempt will be made.",
    ),
    Code(
        5202,
        "SMSServiceNumberNotCapableOfReceivingSMS",
        "The targeted phone does not support the message we are trying to deliver. Ex. phone could be landline, or older cellphone with insufficient SMS storage space",
    ),
)

SMS_STATUS: tuple[Code, ...] = (
    Code(0, "Added", "The SMS survey has been added, but not yet processed"),
    Code(1, "Sent", "The SMS message has been sucessfully delivered to a provider"),
    Code(2, "Cancelled", "Something caused the message to not be sent."),
    Code(3, "CancelledThrottle", "SMS Not send casue the respondent is throttled"),
    Code(
        4, "NotCapableOfReceivingSMS", "The device this phonenumber belongs to is not capable of receiving SMS messages"
    ),
)

EMAIL_STATUS: tuple[Code, ...] = (
    Code(0, "Scheduled", "Scheduled for delivery"),
    Code(1, "Sent", "Handed over to Sendgrid or Flowmailer"),
    Code(2, "Opened", "Respondent has opened the email (Note that this is not always posible to detect)"),
    Code(3, "CancelledThrottle", "The respondent is throttled, email is not sent"),
    Code(
        4,
        "Bounced",
        "The email has bounced. i.e. not delivered because email does not exist, unreacheable or have blacklisted this sender",
    ),
    Code(5, "Clicked", "Respondent has clicked a link in the email"),
    Code(6, "CancelledInactive", 'Respondent did not recieve email because they were unsubscribed or "blacklisted"'),
    Code(
        7, "CancelledDoNotContact", 'Respondent did not recieve email because they were unsubscribed or "blacklisted"'
    ),
    Code(8, "CancelledEndedCampaign", "Email was not sent because the campaign was closed when delivery was attempted"),
    Code(9, "CancelledReminder", "Reminder email not delivered becasue survey was already answered"),
)

# SMS and Email types share one list in the seed (its Email list even says "SMS survey").
MESSAGE_TYPES: tuple[Code, ...] = (
    Code(0, "survey", "The original survey send to a respondent"),
    Code(1, "reminder", "A reminder copy of the original survey"),
    Code(2, "manualResend", "A user triggered resend of the above survy"),
)

# Ours: the seed has no status list for instant-messaging channels; this one follows the
# delivery codes the IM gateway (004) and the engagement platform (003) report.
IM_STATUS: tuple[Code, ...] = (
    Code(0, "Queued", "Accepted, not yet handed over to the messaging network"),
    Code(1, "Sent", "Handed over to the messaging network"),
    Code(2, "Delivered", "Delivered to the recipient's device"),
    Code(3, "Read", "Opened, read or acknowledged by the recipient"),
    Code(4, "Failed", "The provider could not send or deliver the message"),
    Code(5, "Unreachable", "The address cannot receive it: not a user of the network, bad device token, blocked"),
    Code(6, "Cancelled", "Not sent by nps.today: throttled, duplicate, campaign ended, unsubscribed, invalid"),
    Code(7, "OptedOut", "The recipient unsubscribed or complained"),
)

CHANNELS: tuple[str, ...] = ("sms", "email", "push", "rcs", "whatsapp", "viber", "survey")

ADDITION_BY_CODE: dict[int, Code] = {c.code: c for c in ADDITION_STATUS}

# Each channel's own status list. "survey" (answers) has no list of its own: its status is the
# AdditionStatus itself.
CHANNEL_CODES: dict[str, dict[int, Code]] = {
    "sms": {c.code: c for c in SMS_STATUS},
    "email": {c.code: c for c in EMAIL_STATUS},
    **{channel: {c.code: c for c in IM_STATUS} for channel in ("push", "rcs", "whatsapp", "viber")},
    "survey": ADDITION_BY_CODE,
}


def range_of(code: int) -> CodeRange:
    """
    Return the code range an AdditionStatus code falls in.

    Raises:
        KeyError: the code lies in no range of the seed (1000-1999 is unassigned).

    """
    for code_range in RANGES:
        if code in code_range:
            return code_range
    raise KeyError(code)
