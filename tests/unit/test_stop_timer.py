"""The worker's bounded stop: what the stop timer does when a stop outlasts STATUSFLOW_STOP_TIMEOUT."""

from __future__ import annotations

import pytest

from stream.cli import worker


def test_a_stop_that_outlasts_its_timeout_says_so_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line on stderr naming the setting and what happens to the work, then status 1 (as a kill -9)."""
    exits: list[int] = []
    monkeypatch.setattr("stream.cli.worker.os._exit", exits.append)

    worker._stop_now(5.0)

    assert [1] == exits
    assert capsys.readouterr().err == (
        "statusflow worker: not stopped 5 s after the stop began (STATUSFLOW_STOP_TIMEOUT; is the broker "
        "reachable?): exiting now, the next owner replays what was not committed\n"
    )
