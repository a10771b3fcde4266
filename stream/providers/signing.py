"""
What every provider's signature check shares: the verdict it returns and the comparisons it makes.

Each provider module holds its own ``verify_signature`` (``stream/providers/<format>.py``), pure:
the request's bytes, headers and the configured secret in, a ``Verdict`` out. No clock is read and
nothing is remembered here: the webhook receiver (``stream/web/webhooks.py``) passes the time in
and keeps the replay window's seen tokens (Mailgun). A verdict's reason names what is wrong
(missing header, stale timestamp, mismatch) and never holds a secret or an expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import NamedTuple


class Verdict(NamedTuple):
    """Whether a request is authentic; if not, why. ``nonce`` is what must not be seen twice (Mailgun's token)."""

    ok: bool
    reason: str = ""
    nonce: str = ""


ACCEPTED = Verdict(ok=True)


def refused(reason: str) -> Verdict:
    """Return the verdict of a request that is not authentic, for ``reason``."""
    return Verdict(ok=False, reason=reason)


def header(headers: Mapping[str, str], name: str) -> str:
    """Return header ``name`` (any case) or an empty string; aiohttp's headers are case-blind, a dict is not."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value.strip()


def same(expected: bytes | str, given: bytes | str) -> bool:
    """Compare two signatures in constant time (a timing difference would leak the expected one)."""
    left = expected.encode() if isinstance(expected, str) else expected
    right = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(left, right)


def b64decode(text: str) -> bytes | None:
    """Return the bytes of standard base64 ``text``, or None if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def basic_auth(headers: Mapping[str, str], credentials: str) -> Verdict:
    """
    Check HTTP basic auth against ``credentials`` (``user:password``), for formats that sign nothing.

    Infobip, Vonage (unless signed webhooks are switched on by Vonage support) and Postmark call a
    URL with credentials in it (``https://user:password@host/...``), which they send as basic auth.
    """
    given = header(headers, "Authorization")
    if not given:
        return refused("no Authorization header (HTTP basic auth)")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "basic":
        return refused(f"Authorization scheme {scheme[:20]!r} is not Basic")
    decoded = b64decode(token.strip())
    if decoded is None:
        return refused("Authorization: Basic credentials are not base64")
    if not same(credentials.encode(), decoded):
        return refused("wrong user or password (HTTP basic auth)")
    return ACCEPTED
