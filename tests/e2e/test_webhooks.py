"""The webhook receiver on the real broker: signatures, replays, limits, and Kafka acknowledgements."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.config import Secret
from stream.kafka.topics import ensure_topics
from stream.providers.registry import FORMATS
from stream.web.settings import BASIC_AUTH, WebhookSettings
from stream.web.webhooks import Receiver, make_app
from tests.kafka_fixtures import KAFKA_SH, Pipeline, _read_all, free_port
from tests.webhook_support import Signer, mailgun_body, sns_body

pytestmark = pytest.mark.kafka

Serve = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="module")
def signer() -> Signer:
    """Return the secrets of every format (an ECDSA key and an SNS certificate of a throw-away CA)."""
    return Signer()


@pytest.fixture
async def serve(pipeline: Pipeline, signer: Signer, tmp_path: Path) -> AsyncIterator[Serve]:
    """Return a starter of receivers on the pipeline's raw topics (every secret configured unless changed)."""
    started: list[tuple[TestClient[Any, Any], Receiver]] = []

    async def start(**changes: Any) -> TestClient[Any, Any]:
        receiver = Receiver(pipeline.settings, signer.settings(tmp_path, **changes))
        await receiver.start()
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(receiver)))
        await client.start_server()
        started.append((client, receiver))
        return client

    yield start
    for client, receiver in started:
        await client.close()
        await receiver.stop()


def base_url(client: TestClient[Any, Any]) -> str:
    """Return the URL the test server is called at (what it sees, with no public URL set)."""
    return str(client.make_url("")).rstrip("/")


async def records(pipeline: Pipeline, record_format: str) -> list[Any]:
    """Return every record of ``record_format``'s raw topic."""
    return await _read_all(pipeline.settings, pipeline.settings.raw_topic(record_format), pipeline.settings.partitions)


async def test_a_signed_mailgun_body_lands_unchanged_with_its_headers(
    serve: Serve, pipeline: Pipeline, signer: Signer
) -> None:
    """200 only once the record is in the raw topic: the body as sent, content type, format, time, member."""
    client = await serve()
    body = mailgun_body(signer.mailgun_key)
    before = time.time()
    response = await client.post(
        "/webhooks/mailgun?member_id=cm-7&campaign_id=c-9",
        data=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert 200 == response.status, await response.text()
    assert {"status": "ok"} == await response.json()
    [record] = await records(pipeline, "mailgun")
    assert body == record.value
    assert b"cm-7" == record.key
    headers = dict(record.headers)
    assert b"application/json; charset=utf-8" == headers["content_type"]
    assert b"mailgun" == headers["format"]
    assert b"cm-7" == headers["member_id"]
    assert b"c-9" == headers["campaign_id"]
    received = datetime.fromisoformat(headers["received_at"].decode()).timestamp()
    assert before - 1 <= received <= time.time() + 1


@pytest.mark.parametrize("record_format", FORMATS)
async def test_every_format_takes_its_signed_body_and_refuses_a_bad_one(
    serve: Serve, pipeline: Pipeline, signer: Signer, record_format: str
) -> None:
    """A good signature (or basic auth) is written; a changed body or a missing signature is 401 with a reason."""
    client = await serve()
    body, headers = signer.request(record_format, base_url(client), "member_id=cm-1")
    path = f"/webhooks/{record_format}?member_id=cm-1"

    good = await client.post(path, data=body, headers=headers)
    assert 200 == good.status, await good.text()

    if record_format in BASIC_AUTH:  # the password, not the body, is checked
        wrong = "Basic " + base64.b64encode(b"hooks:wrong").decode()
        bad = await client.post(path, data=body, headers={**headers, "Authorization": wrong})
    else:
        tampered = body.replace(b"cm-1", b"cm-2").replace(b"delivered", b"bounced")
        assert tampered != body
        bad = await client.post(path, data=tampered, headers=headers)
    assert 401 == bad.status
    assert (await bad.json())["reason"]
    bare = {k: v for k, v in headers.items() if k == "Content-Type"}
    if record_format not in {"mailgun", "ses"}:  # their signatures are in the body itself
        unsigned = await client.post(path, data=body, headers=bare)
        assert 401 == unsigned.status
    assert [body] == [record.value for record in await records(pipeline, record_format)]


async def test_twilio_is_checked_against_the_public_url(serve: Serve, signer: Signer) -> None:
    """Behind a proxy Twilio signs the URL it called: STATUSFLOW_WEBHOOKS_PUBLIC_URL, not what the server sees."""
    client = await serve(public_url="https://hooks.example.com/statusflow/")
    body, headers = signer.request("twilio", "https://hooks.example.com/statusflow", "member_id=cm-1")
    assert 200 == (await client.post("/webhooks/twilio?member_id=cm-1", data=body, headers=headers)).status
    _, seen_here = signer.request("twilio", base_url(client), "member_id=cm-1")
    refused = await client.post("/webhooks/twilio?member_id=cm-1", data=body, headers=seen_here)
    assert 401 == refused.status


async def test_a_replayed_or_stale_mailgun_request_is_refused(serve: Serve, pipeline: Pipeline, signer: Signer) -> None:
    """The same signed request twice: the second is 401; a signature older than the window is 401."""
    client = await serve()
    body = mailgun_body(signer.mailgun_key)
    assert 200 == (await client.post("/webhooks/mailgun", data=body)).status
    replayed = await client.post("/webhooks/mailgun", data=body)
    assert 401 == replayed.status
    assert "used before" in (await replayed.json())["reason"]
    stale = await client.post("/webhooks/mailgun", data=mailgun_body(signer.mailgun_key, time.time() - 3600))
    assert 401 == stale.status
    assert "window" in (await stale.json())["reason"]
    assert 1 == len(await records(pipeline, "mailgun"))


async def test_a_body_over_the_limit_is_413(serve: Serve, pipeline: Pipeline, signer: Signer) -> None:
    """Over STATUSFLOW_WEBHOOKS_MAX_BODY: 413, with or without a Content-Length; nothing written."""
    client = await serve(max_body=4096)
    _, headers = signer.request("infobip", base_url(client))
    big = b'{"results": [' + b" " * 5000 + b"]}"
    response = await client.post("/webhooks/infobip", data=big, headers=headers)
    assert 413 == response.status
    assert "STATUSFLOW_WEBHOOKS_MAX_BODY" in (await response.json())["reason"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    chunked = await client.post("/webhooks/infobip", data=chunks(), headers=headers)
    assert 413 == chunked.status
    assert [] == await records(pipeline, "infobip")


async def test_an_unconfigured_format_answers_503_unless_insecure(serve: Serve, signer: Signer) -> None:
    """No secret: 503 naming the variable; STATUSFLOW_WEBHOOKS_INSECURE=1 (demo) takes it unsigned."""
    client = await serve(mailgun_signing_key=WebhookSettings().mailgun_signing_key, basic_auth={})
    response = await client.post("/webhooks/mailgun", data=mailgun_body(signer.mailgun_key))
    assert 503 == response.status
    assert "set STATUSFLOW_MAILGUN_SIGNING_KEY" in (await response.json())["reason"]
    assert (
        "STATUSFLOW_VONAGE_BASIC_AUTH" in (await (await client.post("/webhooks/vonage", data=b"{}")).json())["reason"]
    )
    assert 404 == (await client.post("/webhooks/nope", data=b"{}")).status

    insecure = await serve(mailgun_signing_key=WebhookSettings().mailgun_signing_key, insecure=True)
    assert 200 == (await insecure.post("/webhooks/mailgun", data=b'{"unsigned": true}')).status
    assert 401 == (await insecure.post("/webhooks/whatsapp", data=b"{}")).status  # configured ones stay checked


async def test_sns_subscription_confirmation_is_written_through_and_logged(
    serve: Serve, pipeline: Pipeline, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    """A signed SubscriptionConfirmation: 200, on the raw topic (the worker dead-letters it), its URL logged."""
    client = await serve()
    body = sns_body(signer.sns[0], b"You have chosen to subscribe", "SubscriptionConfirmation")
    assert 200 == (await client.post("/webhooks/ses", data=body)).status
    assert [body] == [record.value for record in await records(pipeline, "ses")]
    assert "Action=ConfirmSubscription" in caplog.text


async def test_meta_checks_the_whatsapp_callback_url_with_our_verify_token(serve: Serve) -> None:
    """GET with hub.mode=subscribe and our verify token echoes hub.challenge; another token is 403."""
    client = await serve(whatsapp_verify_token=Secret("verify-me"))
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
    ok = await client.get(f"/webhooks/whatsapp?{query}verify-me")
    assert 200 == ok.status
    assert "1158201444" == await ok.text()
    assert 403 == (await client.get(f"/webhooks/whatsapp?{query}guess")).status


async def test_metrics_and_health(serve: Serve, signer: Signer) -> None:
    """/metrics counts requests by format and code, bytes and write latency; /healthz answers."""
    client = await serve()
    body = mailgun_body(signer.mailgun_key)
    await client.post("/webhooks/mailgun", data=body)
    await client.post("/webhooks/mailgun", data=body)
    text = await (await client.get("/metrics")).text()
    assert 'statusflow_webhook_requests_total{code="200",format="mailgun"} 1.0' in text
    assert 'statusflow_webhook_requests_total{code="401",format="mailgun"} 1.0' in text
    assert f'statusflow_webhook_received_bytes_total{{format="mailgun"}} {float(len(body))}' in text
    assert 'statusflow_webhook_kafka_write_seconds_count{format="mailgun"} 1.0' in text
    assert {"status": "ok"} == await (await client.get("/healthz")).json()


def test_bodies_through_the_receiver_resolve_in_the_worker(pipeline: Pipeline, signer: Signer, tmp_path: Path) -> None:
    """Three providers' signed bodies, posted to the receiver, reach a worker unchanged and resolve the member."""
    worker = pipeline.start_worker()

    async def post() -> None:
        receiver = Receiver(pipeline.settings, signer.settings(tmp_path))
        await receiver.start()
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(receiver)))
        await client.start_server()
        try:
            for record_format in ("mailgun", "sendgrid", "whatsapp"):
                body, headers = signer.request(record_format, base_url(client))
                response = await client.post(f"/webhooks/{record_format}", data=body, headers=headers)
                assert 200 == response.status, await response.text()
        finally:
            await client.close()
            await receiver.stop()

    asyncio.run(post())
    pipeline.wait_for(
        lambda: pipeline.latest_states().get("cm-1", {}).get("events") == 3,
        180,
        "the worker to apply the three delivered events of cm-1",
        lambda: str(pipeline.latest_states()),
    )
    state = pipeline.latest_states()["cm-1"]
    assert 2020 == state["status"]["code"]
    assert {"email", "whatsapp"} == set(state["channels"])
    assert [] == pipeline.read(pipeline.settings.dlq_topic)
    assert worker.process.poll() is None


# --- A broker that goes away and comes back ------------------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Start a broker of this test's own (test port + 100), to stop and start; stop it at the end."""
    port = int(os.environ.get("STATUSFLOW_TEST_KAFKA_PORT", "19092")) + 100
    env = {**os.environ, "STATUSFLOW_KAFKA_PORT": str(port), "STATUSFLOW_KAFKA_DATA": str(tmp_path / "kafka")}
    subprocess.run([str(KAFKA_SH), "start"], env=env, check=True, timeout=600)
    try:
        yield env
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, check=False, timeout=120)


async def until_accepted(client: TestClient[Any, Any], body: bytes, seconds: float = 120) -> None:
    """Post ``body`` to the Mailgun endpoint until it is answered 200 (only 503s in between), as a provider retries."""
    deadline = time.monotonic() + seconds
    while (status := (await client.post("/webhooks/mailgun", data=body)).status) != 200:
        assert 503 == status
        assert time.monotonic() < deadline, f"still {status} after {seconds} s"
        await asyncio.sleep(1)


async def test_broker_down_answers_503_then_200_once_it_is_back(
    own_broker: dict[str, str], pipeline: Pipeline, signer: Signer, tmp_path: Path
) -> None:
    """No acknowledgement within the timeout: 503 (the provider retries); after the restart: 200, in the topic."""
    settings = replace(pipeline.settings, broker=f"127.0.0.1:{own_broker['STATUSFLOW_KAFKA_PORT']}")
    await ensure_topics(settings)
    receiver = Receiver(settings, signer.settings(tmp_path, kafka_timeout=3.0))
    await receiver.start()
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(receiver)))
    await client.start_server()
    try:
        first = mailgun_body(signer.mailgun_key)
        await until_accepted(client, first)  # a topic created a moment ago may have no leader yet

        await asyncio.to_thread(subprocess.run, [str(KAFKA_SH), "stop"], env=own_broker, check=True, timeout=120)
        during = mailgun_body(signer.mailgun_key)
        started = time.monotonic()
        down = await client.post("/webhooks/mailgun", data=during)
        assert 503 == down.status
        assert "retry later" in (await down.json())["reason"]
        assert time.monotonic() - started < 15

        await asyncio.to_thread(subprocess.run, [str(KAFKA_SH), "start"], env=own_broker, check=True, timeout=600)
        await until_accepted(client, during)  # the provider's retry, with the same signed body
        values = [r.value for r in await _read_all(settings, settings.raw_topic("mailgun"), settings.partitions)]
        assert first in values
        assert during in values
    finally:
        await client.close()
        await receiver.stop()


# --- The command itself ----------------------------------------------------------------------------


def test_statusflow_webhooks_serves_warns_and_stops(pipeline: Pipeline, signer: Signer, tmp_path: Path) -> None:
    """The real command: warns about unconfigured formats (never printing a secret), serves, exits 0 on SIGTERM."""
    port = free_port()
    env = {
        **pipeline.env(),
        "STATUSFLOW_WEBHOOKS_PORT": str(port),
        "STATUSFLOW_WHATSAPP_APP_SECRET": signer.whatsapp_secret,
        "STATUSFLOW_INFOBIP_BASIC_AUTH": signer.basic,
    }
    log = tmp_path / "webhooks.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "webhooks"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while b"listening on" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        body, headers = signer.request("whatsapp", f"http://127.0.0.1:{port}")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/whatsapp", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own http URL
            assert 200 == response.status
        auth = {"Authorization": "Basic " + base64.b64encode(b"hooks:wrong").decode()}
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/infobip", data=b"{}", headers=auth),
                timeout=30,
            )
        assert 401 == refused.value.code
        assert "wrong user or password" in orjson.loads(refused.value.read())["reason"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert 0 == process.wait(timeout=30)
    text = log.read_text()
    assert "mailgun webhooks are not configured (STATUSFLOW_MAILGUN_SIGNING_KEY is not set): answered 503" in text
    assert "whatsapp webhooks are not configured" not in text
    assert signer.whatsapp_secret not in text
    assert "basic-password" not in text
