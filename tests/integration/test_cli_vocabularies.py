"""STATUSFLOW_VOCABULARIES through the real command line: a house source resolves; a bad file stops at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, jsonl

EXAMPLE = ROOT / "deploy" / "vocabularies.example.toml"


def run(*args: str, vocabularies: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run ``statusflow`` with STATUSFLOW_VOCABULARIES set."""
    env = {**os.environ, "STATUSFLOW_VOCABULARIES": str(vocabularies)}
    return subprocess.run(
        [sys.executable, "-m", "stream", *args], input=stdin, capture_output=True, timeout=120, check=False, env=env
    )


def test_resolve_uses_a_house_source(validate: Callable[[str, Any], None]) -> None:
    """The example file's acme-sms: its words resolve, any case and separator, per channel; codes --vocab lists it."""
    events = [
        {"member_id": "cm-1", "source": "acme-sms", "status": "submitted", "occurred_at": "2025-01-01T12:00:00Z"},
        {"member_id": "cm-1", "source": "acme-sms", "status": "DELIVERED", "occurred_at": "2025-01-01T12:01:00Z"},
        {"member_id": "cm-2", "source": "acme-sms", "status": "no route", "occurred_at": "2025-01-01T12:00:00Z"},
        {"member_id": "cm-3", "source": "acme-relay", "status": "Hard-Bounce", "occurred_at": "2025-01-01T12:00:00Z"},
        {"member_id": "cm-4", "source": "acme-sms", "status": "LOST", "occurred_at": "2025-01-01T12:00:00Z"},
    ]
    stdin = "\n".join(json.dumps(event) for event in events).encode()
    result = run("resolve", "-", vocabularies=EXAMPLE, stdin=stdin)
    assert 0 == result.returncode, result.stderr
    states = {state["member_id"]: state for state in jsonl(result.stdout)}
    for state in states.values():
        validate("member-status.v1.json", state)
    assert 2020 == states["cm-1"]["status"]["code"]
    assert 5201 == states["cm-2"]["status"]["code"]  # "bounce" on SMS
    assert 5101 == states["cm-3"]["status"]["code"]  # "bounce" on email, acme-relay's default channel
    assert "cm-4" not in states
    assert b"unknown_status" in result.stderr  # a word the house vocabulary lacks is dead-lettered
    listed = run("codes", "--vocab", vocabularies=EXAMPLE)
    assert b"acme-relay" in listed.stdout


def test_a_bad_file_stops_every_command_with_file_and_line(tmp_path: Path) -> None:
    """An unknown code: exit 2 and one line naming the file and the line of the status."""
    bad = tmp_path / "house.toml"
    bad.write_text(EXAMPLE.read_text().replace("DELIVERED = { code = 2020", "DELIVERED = { code = 2025"))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("DELIVERED"))
    result = run("resolve", "-", vocabularies=bad)
    assert 2 == result.returncode
    assert f"statusflow: {bad}:{line}: sources.acme-sms.statuses.DELIVERED: unknown code 2025".encode() in result.stderr
    assert 2 == run("codes", vocabularies=bad).returncode
