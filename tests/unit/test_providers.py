"""The provider registry: exact format names, vocabularies registered with the core, topics, purity."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream.config import Settings
from stream.domain import classify, vocab
from stream.domain.errors import REASONS
from stream.domain.model import Event
from stream.kafka.topics import topic_specs
from stream.metrics import Metrics
from stream.providers import registry
from stream.resolver import events_of
from tests.conftest import ROOT, load_schema

FORMATS = ("envelope", "sendgrid", "twilio", "ses", "mailgun", "infobip", "whatsapp", "vonage", "postmark")


def test_the_formats_are_exactly_the_documented_names() -> None:
    """envelope, then one format per provider, each the name of its module."""
    assert FORMATS == registry.FORMATS
    assert all(p.__name__ == f"stream.providers.{name}" for name, p in registry.PROVIDERS.items())  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(registry.PROVIDERS))
def test_every_provider_vocabulary_is_registered_with_the_core(name: str) -> None:
    """classify, the envelope decoder's source list and the schema all know the provider's source."""
    provider = registry.PROVIDERS[name]

    assert provider.VOCABULARY is vocab.BY_SOURCE[provider.SOURCE]
    assert provider.CHANNELS == vocab.SOURCE_CHANNELS[provider.SOURCE]
    assert provider.SOURCE in classify.SOURCES
    assert provider.SOURCE in load_schema("envelope.v1.json")["properties"]["source"]["enum"]


def test_the_metrics_create_every_provider_source_up_front() -> None:
    """Dashboards show zeros, not gaps, for a provider that has sent nothing yet."""
    registry_ = CollectorRegistry()
    Metrics(registry_)

    for provider in registry.PROVIDERS.values():
        labels = {"source": provider.SOURCE}
        assert 0 == registry_.get_sample_value("statusflow_duplicate_events_total", labels)


def test_a_vocabulary_registered_after_classify_indexed_them_is_refused() -> None:
    """A late registration would go unseen by classify, so it fails loudly instead."""
    with pytest.raises(RuntimeError, match="after classify"):
        vocab.register("pigeon", ("sms",), {"ok": (2020, vocab.FINAL)})


def test_each_format_has_its_raw_topic() -> None:
    """message-events for envelopes, message-events.<format> for each provider; all created with 8 MiB records."""
    settings = Settings()
    specs = {spec.name: spec for spec in topic_specs(settings)}

    assert "message-events" == settings.raw_topic("envelope")
    assert [f"message-events.{name}" for name in FORMATS[1:]] == [settings.raw_topic(name) for name in FORMATS[1:]]
    for name in FORMATS:
        assert "8388608" == specs[settings.raw_topic(name)].topic_configs["max.message.bytes"]


def test_neither_the_core_nor_the_providers_import_io_libraries_and_the_core_imports_no_provider() -> None:
    """stream/domain stays pure and provider-free; stream/providers imports no Kafka, Faust, aiohttp or metrics."""
    forbidden = ("faust", "aiokafka", "aiohttp", "prometheus_client", "mode")
    for folder, also in (("domain", ("stream.providers",)), ("providers", ())):
        for path in sorted(Path(ROOT, "stream", folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    assert name.split(".")[0] not in forbidden, (path, name)
                    assert not name.startswith(also), (path, name)


@pytest.mark.parametrize("name", list(registry.PROVIDERS))
def test_every_envelope_a_provider_makes_validates_against_the_envelope_schema(
    name: str, validate: Callable[[str, Any], None]
) -> None:
    """What a decoder hands the core is a documented envelope, provider ids included."""
    from tests.integration.test_cli_resolve import PROVIDER_BODIES

    envelopes = [
        envelope
        for line in PROVIDER_BODIES[name][0]
        for _, envelope in registry.provider(name).envelopes_from_body(line)
        if isinstance(envelope, dict)
    ]

    assert envelopes
    for envelope in envelopes:
        validate("envelope.v1.json", envelope)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(list(registry.PROVIDERS)),
    body=st.binary(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    ).map(orjson.dumps),
)
def test_no_body_makes_a_provider_decoder_raise(name: str, body: bytes) -> None:
    """Any bytes or any JSON become events or dead letters with a known reason, never an exception."""
    for item in events_of(body, name):
        assert isinstance(item, Event) or item.error.reason in REASONS
