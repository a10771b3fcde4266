"""House vocabularies from TOML (STATUSFLOW_VOCABULARIES): checked at start, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import ConfigError
from stream.domain import vocab
from stream.vocabularies import HouseSource, load, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "vocabularies.example.toml"

GOOD = """\
[sources.house-sms]
channels = ["sms"]

[sources.house-sms.statuses]
QUEUED = { code = 2010, final = false }
DELIVERED = { code = 2020, final = true }
"NO ROUTE" = { code = "bounce", final = true, channel_status = 2 }
"7" = { code = "provider_failure", final = true }
"""


def test_a_good_file_gives_core_vocabulary_entries() -> None:
    """Each status becomes the built-in entry shape: (target, final[, channel status])."""
    [source] = parse(GOOD, "house.toml")
    assert (
        HouseSource(
            "house-sms",
            ("sms",),
            {
                "QUEUED": (2010, False),
                "DELIVERED": (2020, True),
                "NO ROUTE": (vocab.BOUNCED, True, 2),
                "7": (vocab.PROVIDER_FAILED, True),
            },
        )
        == source
    )


def test_the_example_file_in_deploy_loads() -> None:
    """deploy/vocabularies.example.toml is valid, with both its sources."""
    assert ["acme-sms", "acme-relay"] == [source.name for source in load(str(EXAMPLE))]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # An AdditionStatus that does not exist, on the line of its status.
        (
            ("DELIVERED = { code = 2020,", "DELIVERED = { code = 2021,"),
            "house.toml:6: sources.house-sms.statuses.DELIVERED: unknown code 2021",
        ),
        (
            ('"7" = { code = "provider_failure"', '"7" = { code = "failure"'),
            "house.toml:8: sources.house-sms.statuses.7: unknown code 'failure'",
        ),
        # A missing field, on the line of its status.
        (
            ("QUEUED = { code = 2010, final = false }", "QUEUED = { code = 2010 }"),
            "house.toml:5: sources.house-sms.statuses.QUEUED: missing field 'final'",
        ),
        (
            ("DELIVERED = { code = 2020, final = true }", "DELIVERED = { final = true }"),
            "house.toml:6: sources.house-sms.statuses.DELIVERED: missing field 'code'",
        ),
        (('channels = ["sms"]\n', ""), "house.toml:1: sources.house-sms: missing field 'channels'"),
        # Misspelt or out-of-range values.
        (
            ("final = false }", "finale = false }"),
            "house.toml:5: sources.house-sms.statuses.QUEUED: unknown field 'finale'",
        ),
        (('channels = ["sms"]', 'channels = ["fax"]'), "house.toml:2: sources.house-sms: unknown channel 'fax'"),
        (
            ("channel_status = 2", "channel_status = 9"),
            "house.toml:7: sources.house-sms.statuses.NO ROUTE: channel_status 9 is not a sms status",
        ),
        (
            ('"bounce", final = true', '"bounce", final = "yes"'),
            "house.toml:7: sources.house-sms.statuses.NO ROUTE: final must be true or false",
        ),
        # A built-in source cannot be redefined.
        (("house-sms", "twilio"), "house.toml:1: source 'twilio' exists already"),
        # tomllib's own errors keep its line.
        (("QUEUED = {", "QUEUED = {{"), "house.toml:5: not valid TOML"),
    ],
)
def test_errors_name_the_file_and_line(change: tuple[str, str], expected: str) -> None:
    """Unknown codes, missing fields and syntax errors: file:line and what is wrong."""
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as error:
        parse(text, "house.toml")
    assert str(error.value).startswith(expected), str(error.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    """A path that does not exist: the variable and the path."""
    with pytest.raises(ConfigError, match=r"STATUSFLOW_VOCABULARIES='.*nope\.toml' cannot be read"):
        load(str(tmp_path / "nope.toml"))
