"""
The webhook receiver: ``POST /webhooks/<format>`` -> checked signature -> the format's raw topic.

An aiohttp application, the HTTP edge in front of the raw topics. Per request:

1. a format that is not configured answers 503 with the variable to set (unless
   ``STATUSFLOW_WEBHOOKS_INSECURE=1``, for the demo only);
2. a body over ``STATUSFLOW_WEBHOOKS_MAX_BODY`` answers 413;
3. the provider's signature is checked by its own module's pure ``verify_signature`` (basic auth
   for the formats that sign nothing); a missing or bad one answers 401 with the reason;
4. the body is written unchanged to ``message-events.<format>`` with headers ``content_type``,
   ``format``, ``received_at`` (and ``member_id``, ``campaign_id``, ``message_type`` from the
   callback URL's query, when it has them), acks=all;
5. only when Kafka has acknowledged it does the provider get 200; a broker that does not
   acknowledge within ``STATUSFLOW_WEBHOOKS_KAFKA_TIMEOUT`` gets the provider a 503, and the
   provider retries. A record whose acknowledgement came too late may still land, so a retry can
   write a body twice: the join is idempotent (event ids), so that counts once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from stream.config import Settings
from stream.kafka.client import kafka_client_options
from stream.kafka.topics import RAW_MAX_BYTES
from stream.providers import mailgun, sendgrid, ses, twilio, whatsapp
from stream.providers.registry import FORMATS
from stream.providers.signing import Verdict, basic_auth
from stream.web.settings import WebhookSettings

log = logging.getLogger("stream.web.webhooks")

# Query parameters of a callback URL passed on as record headers: the member a provider that
# echoes nothing (Twilio, Vonage) is reporting on.
OUR_PARAMETERS = ("member_id", "campaign_id", "message_type")
_WRITE_BUCKETS = (0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_OUR_VALUE_LIMIT = 256  # as the envelope's identifiers
_OK = b'{"status": "ok"}'


class WebhookMetrics:
    """The receiver's own Prometheus metrics, on its own registry (labels: format, HTTP status)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "statusflow_webhook_requests",
            "Webhook requests answered, by format and HTTP status code.",
            ["format", "code"],
            registry=registry,
        )
        self.received_bytes = Counter(
            "statusflow_webhook_received_bytes",
            "Bytes of webhook bodies written to Kafka, by format.",
            ["format"],
            registry=registry,
        )
        self.kafka_write = Histogram(
            "statusflow_webhook_kafka_write_seconds",
            "Time from handing a body to the producer to Kafka's acknowledgement (failures included).",
            ["format"],
            buckets=_WRITE_BUCKETS,
            registry=registry,
        )
        # Each series' child, looked up once: labels() takes a lock and hashes the labels on every call.
        self._requests: dict[tuple[str, int], Any] = {}
        self.bytes_of = {name: self.received_bytes.labels(name) for name in FORMATS}
        self.write_time_of = {name: self.kafka_write.labels(name) for name in FORMATS}
        for name in FORMATS:
            self.request_counter(name, 200)

    def request_counter(self, record_format: str, code: int) -> Any:
        """Return the counter of ``record_format``'s requests answered ``code``."""
        child = self._requests.get((record_format, code))
        if child is None:
            child = self._requests[(record_format, code)] = self.requests.labels(record_format, str(code))
        return child


class Replays:
    """
    Tokens (Mailgun's) seen within the freshness window: a reused one is a replayed request.

    A token is reserved while its request is being written and kept only once Kafka acknowledged
    it: a request answered 503 must be retriable with the same signature.
    """

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._pending: set[str] = set()

    def reserve(self, nonce: str) -> bool:
        """Return False if ``nonce`` was seen (or is in flight); else hold it."""
        self._forget_old()
        if nonce in self._seen or nonce in self._pending:
            return False
        self._pending.add(nonce)
        return True

    def confirm(self, nonce: str) -> None:
        """Remember ``nonce`` for the window: its request was accepted."""
        self._pending.discard(nonce)
        self._seen[nonce] = self.clock()

    def release(self, nonce: str) -> None:
        """Forget a reserved ``nonce``: its request failed and may be retried."""
        self._pending.discard(nonce)

    def _forget_old(self) -> None:
        # Twice the window: a timestamp may be up to one window in the future, then age one more.
        horizon = self.clock() - 2 * self.window
        if self._seen and next(iter(self._seen.values())) < horizon:
            self._seen = {nonce: at for nonce, at in self._seen.items() if at >= horizon}


class Receiver:
    """The request handler's state: settings, the producer, metrics, replay memory."""

    def __init__(
        self,
        settings: Settings,
        hooks: WebhookSettings,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.registry = registry or CollectorRegistry()
        self.metrics = WebhookMetrics(self.registry)
        self.clock = clock
        self.replays = Replays(hooks.mailgun_max_age)
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Start the producer (idempotent, acks=all); the caller has checked that Kafka is reachable."""
        self.producer = AIOKafkaProducer(
            **kafka_client_options(self.settings),
            acks="all",
            enable_idempotence=True,
            max_request_size=RAW_MAX_BYTES,
            request_timeout_ms=max(1000, int(self.hooks.kafka_timeout * 1000)),
        )
        await self.producer.start()

    async def missing_topics(self) -> list[str]:
        """Return the raw topics this server writes to that the cluster does not show (absent, or hidden by ACLs)."""
        if self.producer is None:
            return []
        cluster = await self.producer.client.fetch_all_metadata()
        wanted = [self.settings.raw_topic(name) for name in FORMATS]
        return [topic for topic in wanted if topic not in cluster.topics()]

    async def stop(self) -> None:
        """Stop the producer (what is still unacknowledged was answered 503 already)."""
        if self.producer is not None:
            await self.producer.stop()

    def verify(self, record_format: str, request: web.Request, body: bytes) -> Verdict:
        """Check ``request``'s signature (or basic auth) as ``record_format``'s provider documents it."""
        hooks, headers = self.hooks, request.headers
        if record_format == "sendgrid":
            return sendgrid.verify_signature(body, headers, hooks.sendgrid_public_key)
        if record_format == "twilio":
            return twilio.verify_signature(self.public_url(request), body, headers, hooks.twilio_auth_token.reveal())
        if record_format == "mailgun":
            return mailgun.verify_signature(
                body, hooks.mailgun_signing_key.reveal(), self.clock(), hooks.mailgun_max_age
            )
        if record_format == "whatsapp":
            return whatsapp.verify_signature(body, headers, hooks.whatsapp_app_secret.reveal())
        if record_format == "ses":
            return ses.verify_signature(body, hooks.sns_keys)
        return basic_auth(headers, hooks.basic_auth[record_format].reveal())

    def public_url(self, request: web.Request) -> str:
        """Return the URL the provider called: the public base URL (or what the server saw), path and query as sent."""
        base = self.hooks.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
        return base + request.raw_path

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one webhook request (see the module docstring)."""
        record_format = request.match_info["format"]
        response = await self._handle(record_format, request)
        label = record_format if record_format in FORMATS else "unknown"
        self.metrics.request_counter(label, response.status).inc()
        return response

    async def _handle(self, record_format: str, request: web.Request) -> web.Response:
        checked = await self._check(record_format, request)
        if isinstance(checked, web.Response):
            return checked
        body, verdict = checked
        if verdict.nonce and not self.replays.reserve(verdict.nonce):
            return _answer(401, "signature token used before: a replayed request")
        try:
            await self.write(record_format, request, body)
        except (TimeoutError, KafkaError, OSError) as error:
            if verdict.nonce:
                self.replays.release(verdict.nonce)
            log.warning("webhooks: %s body not acknowledged by Kafka (%s); answered 503", record_format, _why(error))
            return _answer(503, f"Kafka did not acknowledge the body ({_why(error)}); retry later")
        if verdict.nonce:
            self.replays.confirm(verdict.nonce)
        if record_format == "ses":
            _note_subscription(body)
        return web.Response(body=_OK, content_type="application/json")

    async def _check(self, record_format: str, request: web.Request) -> web.Response | tuple[bytes, Verdict]:
        # The refusal of a request, or its body and the signature's verdict.
        if record_format not in FORMATS:
            return _answer(404, f"no format {record_format[:40]!r}; formats: {', '.join(FORMATS)}")
        unset = self.hooks.unconfigured(record_format)
        if unset and not self.hooks.insecure:
            return _answer(503, f"{record_format} webhooks are not configured: set {unset}")
        if (request.content_length or 0) > self.hooks.max_body:
            return _too_large(self.hooks.max_body)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(self.hooks.max_body)
        verdict = self.verify(record_format, request, body) if not unset else Verdict(ok=True)
        if not verdict.ok:
            return _answer(401, verdict.reason)
        return body, verdict

    async def write(self, record_format: str, request: web.Request, body: bytes) -> None:
        """
        Write ``body`` unchanged to the format's raw topic and wait for Kafka's acknowledgement.

        Raises:
            TimeoutError: no acknowledgement within ``STATUSFLOW_WEBHOOKS_KAFKA_TIMEOUT``.
            KafkaError: the write failed (not authorised, too large, ...).

        """
        if self.producer is None:
            raise KafkaError("the producer is not started")
        headers = [
            ("content_type", (request.headers.get("Content-Type") or "").encode()),
            ("format", record_format.encode()),
            ("received_at", _now_text(self.clock()).encode()),
        ]
        ours = {name: request.query[name] for name in OUR_PARAMETERS if request.query.get(name)}
        headers += [(name, value[:_OUR_VALUE_LIMIT].encode()) for name, value in ours.items()]
        key = ours["member_id"].encode() if "member_id" in ours else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.hooks.kafka_timeout):
                delivery = await self.producer.send(
                    self.settings.raw_topic(record_format), value=body, key=key, headers=headers
                )
                await delivery
        finally:
            self.metrics.write_time_of[record_format].observe(time.perf_counter() - started)
        self.metrics.bytes_of[record_format].inc(len(body))

    async def whatsapp_challenge(self, request: web.Request) -> web.Response:
        """Answer Meta's one-time check of the callback URL (STATUSFLOW_WHATSAPP_VERIFY_TOKEN)."""
        challenge = whatsapp.subscription_challenge(request.query, self.hooks.whatsapp_verify_token.reveal())
        if challenge is None:
            return _answer(403, "not a subscription check with our verify token (STATUSFLOW_WHATSAPP_VERIFY_TOKEN)")
        return web.Response(text=challenge)

    async def metrics_page(self, _: web.Request) -> web.Response:
        """Serve the receiver's Prometheus metrics."""
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, _: web.Request) -> web.Response:
        """Answer 200 while the process and its event loop run (Kafka trouble shows as 503s, not here)."""
        return web.json_response({"status": "ok"})


def make_app(receiver: Receiver) -> web.Application:
    """Return the aiohttp application of ``receiver`` (the body limit enforced by aiohttp as well)."""
    app = web.Application(client_max_size=receiver.hooks.max_body)
    app.router.add_post("/webhooks/{format}", receiver.handle)
    app.router.add_get("/webhooks/whatsapp", receiver.whatsapp_challenge)
    app.router.add_get("/metrics", receiver.metrics_page)
    app.router.add_get("/healthz", receiver.healthz)
    return app


def warnings_at_start(hooks: WebhookSettings) -> list[str]:
    """Return what the operator must know at start: insecure mode, unconfigured formats, Twilio without a public URL."""
    lines = []
    if hooks.insecure:
        lines.append(
            "STATUSFLOW_WEBHOOKS_INSECURE=1: requests of unconfigured formats are accepted UNSIGNED (demo only)"
        )
    for record_format in FORMATS:
        unset = hooks.unconfigured(record_format)
        if unset:
            answer = "accepted unsigned" if hooks.insecure else "answered 503"
            lines.append(f"{record_format} webhooks are not configured ({unset} is not set): {answer}")
    if not hooks.public_url and hooks.twilio_auth_token:
        lines.append(
            "STATUSFLOW_WEBHOOKS_PUBLIC_URL is not set: Twilio signatures are checked against the URL this "
            "server sees, which differs behind a proxy"
        )
    return lines


def _answer(status: int, reason: str) -> web.Response:
    return web.json_response({"status": "refused" if status < 500 else "unavailable", "reason": reason}, status=status)


def _too_large(limit: int) -> web.Response:
    return _answer(413, f"body over the {limit}-byte limit (STATUSFLOW_WEBHOOKS_MAX_BODY)")


def _why(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no acknowledgement in time"
    return f"{type(error).__name__}: {str(error).strip()[:200]}"


def _now_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _note_subscription(body: bytes) -> None:
    # Not fetched here: confirming a subscription is a decision (which topic feeds us), taken once
    # by a person; the body goes on to the raw topic too, where it is dead-lettered with its URL.
    try:
        message: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(message, dict) and message.get("Type") == "SubscriptionConfirmation":
        log.warning(
            "webhooks: SNS subscription to %s awaits confirmation: visit its SubscribeURL %s",
            message.get("TopicArn"),
            message.get("SubscribeURL"),
        )
