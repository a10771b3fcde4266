"""
Each provider's signature check (``verify_signature`` in its module), with vectors made outside Python.

The fixed vectors were computed with the openssl command line by each provider's documented
algorithm (and Twilio's own documented example), so they hold the implementation to the scheme,
not to itself. Keys for the asymmetric schemes are also made here, with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from stream.providers import mailgun, sendgrid, ses, twilio, whatsapp
from stream.providers.signing import basic_auth

# --- SendGrid: ECDSA P-256 over timestamp + body (openssl ecparam / dgst -sha256 -sign) ---------------
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEav5ykAn/EZVO6JPdjzZwkmWmz+zHzl1mqPxa4kxADzh7bbm7Ym7xLFwevRTf68x/"
    "vX62ujr5fVIpVXEKiMrCKQ=="
)
SENDGRID_BODY = (
    b'[{"email":"example@test.com","timestamp":1513299569,"event":"delivered","sg_event_id":"sg_event_id",'
    b'"sg_message_id":"sg_message_id","member_id":"cm-1"}]'
)
SENDGRID_HEADERS = {
    "X-Twilio-Email-Event-Webhook-Signature": (
        "MEQCIGYEcAHJGgU96SH8+Eb8BKsMyTAeKxbR2AKsPMiayglXAiAgK3iBhY084wU839Xbw1VaGI+DVMwSKOfm4Uavh/rgUA=="
    ),
    "X-Twilio-Email-Event-Webhook-Timestamp": "1600112502",
}


def test_sendgrid_accepts_a_body_signed_with_its_key() -> None:
    """Sendgrid accepts a body signed with its key."""
    assert sendgrid.verify_signature(SENDGRID_BODY, SENDGRID_HEADERS, SENDGRID_KEY).ok


def test_sendgrid_header_names_are_case_blind() -> None:
    """Sendgrid header names are case blind."""
    lowered = {name.lower(): value for name, value in SENDGRID_HEADERS.items()}
    assert sendgrid.verify_signature(SENDGRID_BODY, lowered, SENDGRID_KEY).ok


@pytest.mark.parametrize(
    ("body", "changes", "reason"),
    [
        (SENDGRID_BODY.replace(b"delivered", b"bounce"), {}, "does not match"),
        (SENDGRID_BODY, {"X-Twilio-Email-Event-Webhook-Timestamp": "1600112503"}, "does not match"),
        (SENDGRID_BODY, {"X-Twilio-Email-Event-Webhook-Signature": ""}, "no X-Twilio-Email-Event-Webhook-Signature"),
        (SENDGRID_BODY, {"X-Twilio-Email-Event-Webhook-Signature": "not base64!"}, "not base64"),
    ],
)
def test_sendgrid_refuses_a_changed_body_timestamp_or_signature(
    body: bytes, changes: dict[str, str], reason: str
) -> None:
    """Sendgrid refuses a changed body timestamp or signature."""
    verdict = sendgrid.verify_signature(body, {**SENDGRID_HEADERS, **changes}, SENDGRID_KEY)
    assert not verdict.ok
    assert reason in verdict.reason


def test_sendgrid_refuses_another_key() -> None:
    """Sendgrid refuses another key."""
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not sendgrid.verify_signature(SENDGRID_BODY, SENDGRID_HEADERS, base64.b64encode(der).decode()).ok


def test_sendgrid_key_that_is_not_one_is_named() -> None:
    """Sendgrid key that is not one is named."""
    with pytest.raises(ValueError, match="not a base64 DER public key"):
        sendgrid.public_key("c2VjcmV0")


def test_sendgrid_signature_made_here_verifies() -> None:
    """Sendgrid signature made here verifies."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = private.sign(b"1700000000" + SENDGRID_BODY, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": "1700000000",
    }
    assert sendgrid.verify_signature(SENDGRID_BODY, headers, base64.b64encode(der).decode()).ok


# --- Twilio: HMAC-SHA1 over URL + sorted params ----------------------------------------------------


def test_twilio_documented_example() -> None:
    """Twilio documented example."""
    # Twilio's request-validation example: auth token 12345, this URL and these POST parameters.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in params.items()).encode()
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    assert twilio.verify_signature("https://mycompany.com/myapp.php?foo=1&bar=2", body, headers, "12345").ok


TWILIO_URL = "https://hooks.example.com/webhooks/twilio?member_id=cm-1"
TWILIO_BODY = (
    b"MessageStatus=undelivered&To=%2B4512345678&MessageSid=SM123&ErrorCode=30003"
    b"&AccountSid=AC123&ApiVersion=2010-04-01"
)
TWILIO_HEADERS = {"X-Twilio-Signature": "X0zpZM8Ozxszl3nYiX440f/2pmI="}  # openssl dgst -sha1 -hmac


def test_twilio_status_callback_with_a_member_query() -> None:
    """Twilio status callback with a member query."""
    assert twilio.verify_signature(TWILIO_URL, TWILIO_BODY, TWILIO_HEADERS, "twilio-token").ok


def test_twilio_explicit_default_port_is_the_same_url() -> None:
    """Twilio explicit default port is the same url."""
    url = TWILIO_URL.replace("hooks.example.com", "hooks.example.com:443")
    assert twilio.verify_signature(url, TWILIO_BODY, TWILIO_HEADERS, "twilio-token").ok


@pytest.mark.parametrize(
    ("url", "body", "token"),
    [
        (TWILIO_URL.replace("cm-1", "cm-2"), TWILIO_BODY, "twilio-token"),  # another member: the URL is signed
        ("http://hooks.example.com/webhooks/twilio?member_id=cm-1", TWILIO_BODY, "twilio-token"),
        (TWILIO_URL, TWILIO_BODY.replace(b"undelivered", b"delivered"), "twilio-token"),
        (TWILIO_URL, TWILIO_BODY, "other-token"),
    ],
)
def test_twilio_refuses_any_change(url: str, body: bytes, token: str) -> None:
    """Twilio refuses any change."""
    verdict = twilio.verify_signature(url, body, TWILIO_HEADERS, token)
    assert not verdict.ok
    assert "STATUSFLOW_TWILIO_AUTH_TOKEN" in verdict.reason


def test_twilio_without_the_header() -> None:
    """Twilio without the header."""
    assert "no X-Twilio-Signature" in twilio.verify_signature(TWILIO_URL, TWILIO_BODY, {}, "t").reason


def test_twilio_json_body_is_signed_through_body_sha256() -> None:
    """Twilio json body is signed through body sha256."""
    body = b'{"MessageStatus": "delivered"}'
    url = f"{TWILIO_URL}&bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = base64.b64encode(hmac.new(b"t", url.encode(), hashlib.sha1).digest()).decode()
    assert twilio.verify_signature(url, body, {"X-Twilio-Signature": signature}, "t").ok
    changed = twilio.verify_signature(url, body + b" ", {"X-Twilio-Signature": signature}, "t")
    assert "bodySHA256" in changed.reason


# --- Mailgun: HMAC-SHA256 over timestamp + token, with a freshness window ------------------------------
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MAILGUN_SIGNATURE = {
    "timestamp": "1770920772",
    "token": "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
    # openssl dgst -sha256 -hmac KEY of timestamp+token
    "signature": "3f9f9869e390626cfa401e164e5cd201b24d153eafc2004a69d41c945dc93c1e",
}


def mailgun_body(signature: dict[str, Any] | None = None) -> bytes:
    """Mailgun body."""
    return json.dumps(
        {"signature": signature or MAILGUN_SIGNATURE, "event-data": {"event": "delivered", "timestamp": 1770920772.1}}
    ).encode()


def test_mailgun_accepts_a_fresh_signature_and_names_its_token() -> None:
    """Mailgun accepts a fresh signature and names its token."""
    verdict = mailgun.verify_signature(mailgun_body(), MAILGUN_KEY, now=1770920772 + 60)
    assert verdict.ok
    assert MAILGUN_SIGNATURE["token"] == verdict.nonce


@pytest.mark.parametrize("age", [301, -301, 86400])
def test_mailgun_refuses_a_stale_timestamp(age: float) -> None:
    """Mailgun refuses a stale timestamp."""
    verdict = mailgun.verify_signature(mailgun_body(), MAILGUN_KEY, now=1770920772 + age)
    assert not verdict.ok
    assert "outside the 300 s window" in verdict.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (mailgun_body({**MAILGUN_SIGNATURE, "token": MAILGUN_SIGNATURE["token"][:-1] + "4"}), "does not match"),
        (mailgun_body({**MAILGUN_SIGNATURE, "timestamp": "1770920773"}), "does not match"),
        (b'{"event-data": {}}', "no signature object"),
        (b"[1, 2]", "no signature object"),
        (b"timestamp=1&token=x", "not JSON"),
        (mailgun_body({"timestamp": "1770920772", "token": "t"}), "needs timestamp, token and signature"),
    ],
)
def test_mailgun_refuses(body: bytes, reason: str) -> None:
    """Mailgun refuses."""
    verdict = mailgun.verify_signature(body, MAILGUN_KEY, now=1770920772)
    assert not verdict.ok
    assert reason in verdict.reason


def test_mailgun_integer_timestamp_reads_as_its_digits() -> None:
    """Mailgun integer timestamp reads as its digits."""
    body = mailgun_body({**MAILGUN_SIGNATURE, "timestamp": 1770920772})
    assert mailgun.verify_signature(body, MAILGUN_KEY, now=1770920772).ok


# --- Meta (WhatsApp): X-Hub-Signature-256 ------------------------------------------------------------


def test_whatsapp_vectors() -> None:
    """Whatsapp vectors."""
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    headers = {"X-Hub-Signature-256": "sha256=d3e4f9da0ce6c71ab3dba55929b8eeeee2455349e534924ead19f98d143e904f"}
    assert whatsapp.verify_signature(body, headers, "app-secret").ok
    # A published vector of the same scheme: HMAC-SHA256("test", key "secret").
    known = {"x-hub-signature-256": "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"}
    assert whatsapp.verify_signature(b"test", known, "secret").ok


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha1=abc"}, "not sha256=<hex>"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "does not match"),
    ],
)
def test_whatsapp_refuses(headers: dict[str, str], reason: str) -> None:
    """Whatsapp refuses."""
    verdict = whatsapp.verify_signature(b"test", headers, "secret")
    assert not verdict.ok
    assert reason in verdict.reason


@given(body=st.binary(max_size=200), secret=st.text(min_size=1, max_size=20), flip=st.integers(0, 63))
def test_whatsapp_one_changed_hex_digit_is_refused(body: bytes, secret: str, flip: int) -> None:
    """Whatsapp one changed hex digit is refused."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert whatsapp.verify_signature(body, {"X-Hub-Signature-256": f"sha256={digest}"}, secret).ok
    changed = digest[:flip] + ("0" if digest[flip] != "0" else "1") + digest[flip + 1 :]
    assert not whatsapp.verify_signature(body, {"X-Hub-Signature-256": f"sha256={changed}"}, secret).ok


# --- SNS (SES): SHA1withRSA / SHA256withRSA over the canonical string, our own CA -------------------


@functools.cache
def make_certificate(common_name: str = "sns.test") -> tuple[rsa.RSAPrivateKey, bytes]:
    """Return a signing key and its certificate (PEM), issued by a throw-away CA."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statusflow test CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


SNS_NOTIFICATION: dict[str, Any] = {
    # The shape of AWS's documented HTTP/HTTPS notification example (values shortened).
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    "Subject": "My First Message",
    "Message": "Hello world!",
    "Timestamp": "2012-05-02T00:54:06.655Z",
    "SignatureVersion": "1",
    "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
}
SNS_CANONICAL = (
    b"Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\n"
    b"Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
)


def signed(message: dict[str, Any], key: rsa.RSAPrivateKey, version: str) -> bytes:
    """Signed."""
    message = {**message, "SignatureVersion": version}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS's version 1 is SHA1withRSA
    canonical = ses.string_to_sign(message)
    assert canonical is not None
    message["Signature"] = base64.b64encode(key.sign(canonical, padding.PKCS1v15(), algorithm)).decode()
    return json.dumps(message).encode()


def test_sns_canonical_string_is_the_documented_one() -> None:
    """Sns canonical string is the documented one."""
    assert SNS_CANONICAL == ses.string_to_sign(SNS_NOTIFICATION)
    without_subject = {k: v for k, v in SNS_NOTIFICATION.items() if k != "Subject"}
    assert SNS_CANONICAL.replace(b"Subject\nMy First Message\n", b"") == ses.string_to_sign(without_subject)


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signature_versions_verify(version: str) -> None:
    """Sns signature versions verify."""
    key, pem = make_certificate()
    assert ses.verify_signature(signed(SNS_NOTIFICATION, key, version), ses.load_certificates(pem)).ok


def test_sns_subscription_confirmation_verifies_over_its_own_fields() -> None:
    """Sns subscription confirmation verifies over its own fields."""
    key, pem = make_certificate()
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37f",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37f",
        "Timestamp": "2012-04-26T20:45:04.751Z",
    }
    canonical = ses.string_to_sign(message)
    assert canonical is not None
    assert canonical.startswith(b"Message\nYou have chosen")
    assert b"SubscribeURL\n" in canonical
    assert b"Token\n2336412f37f\n" in canonical
    assert ses.verify_signature(signed(message, key, "2"), ses.load_certificates(pem)).ok


def test_sns_refuses_a_changed_message_another_certificate_or_an_unsigned_record() -> None:
    """Sns refuses a changed message another certificate or an unsigned record."""
    key, pem = make_certificate()
    _, other = make_certificate("other.test")
    body = signed(SNS_NOTIFICATION, key, "2")
    keys = ses.load_certificates(pem)
    assert not ses.verify_signature(body.replace(b"Hello world!", b"Hello World!"), keys).ok
    assert "STATUSFLOW_SNS_CERT_FILE" in ses.verify_signature(body, ses.load_certificates(other)).reason
    assert ses.verify_signature(body, ses.load_certificates(other + pem)).ok  # during a rotation: either
    raw_ses = json.dumps({"eventType": "Delivery", "mail": {}}).encode()
    assert "only SNS-signed bodies" in ses.verify_signature(raw_ses, keys).reason
    version_3 = json.loads(body) | {"SignatureVersion": "3"}
    assert "not 1 or 2" in ses.verify_signature(json.dumps(version_3).encode(), keys).reason


def test_sns_certificate_file_that_is_not_one_is_named() -> None:
    """Sns certificate file that is not one is named."""
    with pytest.raises(ValueError, match=r"not PEM X\.509"):
        ses.load_certificates(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


# --- HTTP basic auth (Infobip, Vonage, Postmark, envelopes) -----------------------------------------


def test_basic_auth() -> None:
    """Basic auth."""
    good = {"Authorization": "Basic " + base64.b64encode(b"infobip:s3cret").decode()}
    assert basic_auth(good, "infobip:s3cret").ok
    assert "wrong user or password" in basic_auth(good, "infobip:other").reason
    assert "no Authorization" in basic_auth({}, "a:b").reason
    assert "not Basic" in basic_auth({"Authorization": "Bearer x"}, "a:b").reason
    assert "s3cret" not in basic_auth(good, "infobip:other").reason
