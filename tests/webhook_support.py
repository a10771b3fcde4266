"""Signed webhook requests for the receiver's tests and benchmark: each provider's documented scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from stream.config import Secret
from stream.providers import ses
from stream.web.settings import BASIC_AUTH, WebhookSettings
from tests.unit.test_webhook_signatures import SNS_NOTIFICATION, make_certificate


@dataclass
class Signer:
    """The secrets of every format, and requests signed with them."""

    sendgrid_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    sns: tuple[rsa.RSAPrivateKey, bytes] = field(default_factory=make_certificate)
    twilio_token: str = "twilio-auth-token"  # noqa: S105 - a test secret
    mailgun_key: str = "mailgun-signing-key"
    whatsapp_secret: str = "whatsapp-app-secret"  # noqa: S105 - a test secret
    basic: str = "hooks:basic-password"

    def settings(self, directory: Path, **changes: Any) -> WebhookSettings:
        """Return receiver settings holding every secret (the SNS certificate in a file under ``directory``)."""
        certificate = directory / "sns.pem"
        certificate.write_bytes(self.sns[1])
        public = self.sendgrid_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        values: dict[str, Any] = {
            "sendgrid_public_key": base64.b64encode(public).decode(),
            "twilio_auth_token": Secret(self.twilio_token),
            "mailgun_signing_key": Secret(self.mailgun_key),
            "whatsapp_app_secret": Secret(self.whatsapp_secret),
            "sns_cert_file": str(certificate),
            "basic_auth": {name: Secret(self.basic) for name in BASIC_AUTH},
            "kafka_timeout": 30.0,  # a topic created a moment ago may have no leader for seconds on a busy machine
        }
        return WebhookSettings(**{**values, **changes})

    def request(self, record_format: str, base_url: str, query: str = "") -> tuple[bytes, dict[str, str]]:
        """Return a body of ``record_format`` and the headers that sign it, for ``base_url``/webhooks/<format>?query."""
        url = f"{base_url}/webhooks/{record_format}" + (f"?{query}" if query else "")
        body = BODIES[record_format]()
        headers = {"Content-Type": "application/json"}
        if record_format == "sendgrid":
            stamp = str(int(time.time()))
            signature = self.sendgrid_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(signature).decode()
            headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
        elif record_format == "twilio":
            return body, {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(self.twilio_token, url, body),
            }
        elif record_format == "mailgun":
            body = mailgun_body(self.mailgun_key)
        elif record_format == "whatsapp":
            digest = hmac.new(self.whatsapp_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        elif record_format == "ses":
            body = sns_body(self.sns[0], body)
            headers["Content-Type"] = "text/plain; charset=UTF-8"  # as SNS sends it
        else:
            headers["Authorization"] = "Basic " + base64.b64encode(self.basic.encode()).decode()
        return body, headers


def twilio_signature(token: str, url: str, body: bytes) -> str:
    """Return X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted form parameters, base64."""
    data = url + "".join(name + value for name, value in sorted(parse_qsl(body.decode(), keep_blank_values=True)))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def mailgun_body(key: str, timestamp: float | None = None, event: str = "delivered") -> bytes:
    """Return a Mailgun webhook body signed with ``key`` (a fresh token each call)."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    data = {
        "event": event,
        "timestamp": float(stamp),
        "id": token[:22],
        "message": {"headers": {"message-id": "20250101.1@example.com"}},
        "user-variables": {"member_id": "cm-1"},
    }
    return json.dumps(
        {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": data}
    ).encode()


def sns_body(key: rsa.RSAPrivateKey, ses_record: bytes, message_type: str = "Notification") -> bytes:
    """Return an SNS message (SignatureVersion 2) carrying ``ses_record``."""
    message: dict[str, Any] = {**SNS_NOTIFICATION, "Type": message_type, "Message": ses_record.decode()}
    message["MessageId"] = str(uuid.uuid4())
    if message_type == "SubscriptionConfirmation":
        message.pop("Subject")
        message["Token"] = "2336412f37f"  # noqa: S105 - SNS's subscription token, not a password
        message["SubscribeURL"] = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37f"
    message["SignatureVersion"] = "2"
    canonical = ses.string_to_sign(message)
    assert canonical is not None
    message["Signature"] = base64.b64encode(key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())).decode()
    return json.dumps(message).encode()


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


# One documented-shape body per format (the providers' own examples, trimmed).
BODIES: dict[str, Callable[[], bytes]] = {
    "envelope": lambda: _json(
        {"member_id": "cm-1", "source": "smpp", "status": "DELIVRD", "occurred_at": "2025-01-01T12:00:00Z"}
    ),
    "sendgrid": lambda: _json(
        [
            {
                "email": "a@example.com",
                "timestamp": 1735732800,
                "event": "delivered",
                "sg_event_id": "e1",
                "member_id": "cm-1",
            }
        ]
    ),
    "twilio": lambda: (
        b"MessageSid=SM123&MessageStatus=delivered&To=%2B4512345678&AccountSid=AC123&ApiVersion=2010-04-01"
    ),
    "ses": lambda: _json({"eventType": "Delivery", "mail": {"messageId": "m-1", "tags": {"member_id": ["cm-1"]}}}),
    "mailgun": lambda: b"",  # signed per request (mailgun_body)
    "infobip": lambda: _json(
        {"results": [{"messageId": "ib-1", "status": {"groupName": "DELIVERED"}, "callbackData": "member_id=cm-1"}]}
    ),
    "whatsapp": lambda: _json(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "statuses": [
                                    {
                                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
                                        "status": "delivered",
                                        "timestamp": "1735732800",
                                        "recipient_id": "16505551234",
                                        "biz_opaque_callback_data": "member_id=cm-1",
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ),
    "vonage": lambda: _json({"messageId": "v-1", "status": "delivered", "client-ref": "member_id=cm-1"}),
    "postmark": lambda: _json({"RecordType": "Delivery", "MessageID": "p-1", "Metadata": {"member_id": "cm-1"}}),
}
