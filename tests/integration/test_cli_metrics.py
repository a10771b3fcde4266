"""`statusflow resolve --metrics FILE`: the same counters, in the text exposition format."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from stream.domain.catalog import range_of
from stream.resolver import DeadLetter, events_of
from stream.synthetic import stream

Runner = Callable[..., subprocess.CompletedProcess[bytes]]


def test_resolve_writes_per_range_counts_and_dead_letters_as_prometheus_text(
    statusflow: Runner, tmp_path: Path
) -> None:
    """Counts per range equal the distinct events per range; dead letters are counted by reason."""
    lines = [orjson.dumps(e) for e in stream(100, 4, seed=2, duplicates=0.25)] + [b"{nope"]
    events = {i.event_id: i for line in lines for i in events_of(line, "envelope") if not isinstance(i, DeadLetter)}
    expected = Counter(range_of(e.decision.outcome.code).name for e in events.values())
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines))

    statusflow("resolve", str(tmp_path / "in.jsonl"), "--metrics", str(tmp_path / "m.prom"), "--dlq", "/dev/null")
    families = {f.name: f for f in text_string_to_metric_families((tmp_path / "m.prom").read_text())}
    per_range: Counter[str] = Counter()
    for sample in families["statusflow_events"].samples:
        per_range[sample.labels["range"]] += int(sample.value)

    assert expected == +per_range
    assert 1 == sum(
        s.value for s in families["statusflow_dead_letters"].samples if s.labels["reason"] == "malformed_json"
    )
