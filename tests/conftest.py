"""Shared fixtures: the JSON Schemas, the seed documents, and a way to run the CLI for real."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).resolve().parent / "seeds"

pytest_plugins = ["tests.kafka_fixtures", "tests.secured_fixtures"]


def load_schema(name: str) -> dict[str, Any]:
    """Return one of the schemas in schemas/."""
    schema: dict[str, Any] = json.loads((ROOT / "schemas" / name).read_text())
    return schema


@pytest.fixture(scope="session")
def validate() -> Callable[[str, Any], None]:
    """Return a checker that raises if a document breaks the named schema."""
    validators = {
        name: jsonschema.Draft202012Validator(load_schema(name), format_checker=jsonschema.FormatChecker())
        for name in ("envelope.v1.json", "member-status.v1.json", "dead-letter.v1.json", "dispatch.v1.json")
    }

    def check(name: str, document: Any) -> None:
        validators[name].validate(document)

    return check


@pytest.fixture
def statusflow() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Return a runner of the real `statusflow` command line, in a subprocess."""

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "stream", *args],
            input=stdin,
            capture_output=True,
            timeout=120,
            check=False,
            cwd=ROOT,
        )

    return run


def jsonl(data: bytes) -> list[Any]:
    """Parse JSON lines."""
    return [json.loads(line) for line in data.splitlines() if line.strip()]
