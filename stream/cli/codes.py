"""``statusflow codes``: print the code catalog (and with --vocab, every provider vocabulary)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from stream.domain import catalog, vocab
from stream.domain.catalog import Code
from stream.providers import registry


def add_parser(commands: Any) -> None:
    """Register the command."""
    parser = commands.add_parser("codes", help="print the code catalog")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--vocab", action="store_true", help="print every provider vocabulary instead")
    parser.set_defaults(run=run)


def catalog_document() -> dict[str, Any]:
    """Return the whole catalog as one JSON-ready document."""

    def codes(items: tuple[Code, ...]) -> list[dict[str, Any]]:
        return [{"code": c.code, "shortcode": c.shortcode, "description": c.description} for c in items]

    return {
        "ranges": [
            {"name": r.name, "low": r.low, "high": r.high, "description": r.description} for r in catalog.RANGES
        ],
        "addition_status": [
            {**entry, "range": catalog.range_of(entry["code"]).name} for entry in codes(catalog.ADDITION_STATUS)
        ],
        "sms_status": codes(catalog.SMS_STATUS),
        "email_status": codes(catalog.EMAIL_STATUS),
        "sms_types": codes(catalog.MESSAGE_TYPES),
        "email_types": codes(catalog.MESSAGE_TYPES),
        "im_status": codes(catalog.IM_STATUS),
    }


def vocab_rows() -> list[tuple[str, str, str, str, str]]:
    """Return (source, channel, provider status, AdditionStatus, final) for every vocabulary entry."""
    tables: list[tuple[str, str, vocab.Vocabulary]] = [
        ("npstoday", "*", vocab.NPSTODAY),
        ("npstoday-sms", "sms", vocab.NPSTODAY_SMS),
        ("npstoday-email", "email", vocab.NPSTODAY_EMAIL),
        ("idsurvey", "sms", vocab.IDSURVEY),
        *[("dce", channel, table) for channel, table in vocab.DCE.items()],
        ("imgw", "whatsapp/viber/sms", vocab.IMGW),
        ("smpp", "sms", vocab.SMPP),
        *[(p.SOURCE, "/".join(p.CHANNELS), p.VOCABULARY) for p in registry.PROVIDERS.values()],
    ]
    listed = {source for source, _, _ in tables} | {"dce"}
    tables += [  # house vocabularies (STATUSFLOW_VOCABULARIES)
        (source, "/".join(channels), vocab.BY_SOURCE[source])
        for source, channels in vocab.SOURCE_CHANNELS.items()
        if source not in listed
    ]
    rows = []
    for source, channel, table in tables:
        for status, (target, final, *_) in table.items():
            code = (
                str(target)
                if isinstance(target, int)
                else f"{target.email}/{target.sms}/{target.other} (email/sms/other)"
            )
            rows.append((source, channel, str(status), code, "final" if final else "temporary"))
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the catalog or the vocabularies."""
    if args.vocab:
        rows = vocab_rows()
        if args.json:
            keys = ("source", "channel", "status", "addition_status", "final")
            sys.stdout.buffer.write(orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows]) + b"\n")
        else:
            _table(("source", "channel", "status", "AdditionStatus", "outcome"), rows)
        return 0
    document = catalog_document()
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for name, entries in document.items():
        print(f"\n{name}")
        if name == "ranges":
            _table(
                ("name", "low", "high", "description"),
                [(e["name"], e["low"], e["high"], e["description"]) for e in entries],
            )
        else:
            _table(
                ("code", "shortcode", "description"), [(e["code"], e["shortcode"], e["description"]) for e in entries]
            )
    return 0


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(str(cell) for cell in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
