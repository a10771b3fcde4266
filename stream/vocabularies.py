"""
House vocabularies: sources of your own, from a TOML file (``STATUSFLOW_VOCABULARIES=path.toml``).

A gateway of your own, or a provider statusflow does not know yet, gets a source without code:
each status maps to an AdditionStatus, final or temporary, and optionally a channel status, the
same entry shape as the built-in vocabularies (``stream/domain/vocab.py``). The file is read and
checked once, at start, before the core indexes the vocabularies: an unknown code, a missing or
misspelt field, a source that exists already, each stops the command with ``file:line: what``.

``parse`` is pure (text in, sources out); ``load`` reads the file; ``install`` registers what it
read with the core (``vocab.register``), as the provider registry does for the built-in providers.

The file::

    [sources.acme-sms]
    channels = ["sms"]                                     # the first is the default channel

    [sources.acme-sms.statuses]
    QUEUED    = { code = 2010, final = false }
    DELIVERED = { code = 2020, final = true }
    NO_ROUTE  = { code = "bounce", final = true, channel_status = 4 }   # 5201 on SMS
    REFUSED   = { code = "provider_failure", final = true }             # 5200 on SMS
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from stream.config import ConfigError
from stream.domain import vocab
from stream.domain.catalog import ADDITION_BY_CODE, CHANNEL_CODES, CHANNELS

VARIABLE = "STATUSFLOW_VOCABULARIES"
# A code name for the outcomes whose AdditionStatus depends on the channel.
PER_CHANNEL: dict[str, vocab.PerChannel] = {"bounce": vocab.BOUNCED, "provider_failure": vocab.PROVIDER_FAILED}
_FIELDS = frozenset({"code", "final", "channel_status"})
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class HouseSource:
    """One source of the file: its name, channels and vocabulary (core data, ready to register)."""

    name: str
    channels: tuple[str, ...]
    vocabulary: vocab.Vocabulary


def parse(text: str, path: str) -> list[HouseSource]:
    """
    Read and check a vocabulary file's text; ``path`` names it in errors.

    Raises:
        ConfigError: ``path:line: what is wrong``, for the first problem found.

    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None) or _line_in_message(str(error))
        raise ConfigError(f"{path}:{line}: not valid TOML: {getattr(error, 'msg', error)}") from None
    where = _Lines(text, path)
    extra = sorted(set(document) - {"sources"})
    if extra:
        raise where.error(f"unknown top-level key {extra[0]!r} (sources are under [sources.<name>])", extra[0])
    sources = document.get("sources")
    if not isinstance(sources, dict) or not sources:
        raise where.error("no [sources.<name>] table", "sources")
    return [_source(name, table, where) for name, table in sources.items()]


def load(path: str) -> list[HouseSource]:
    """
    Read and check the vocabulary file at ``path``.

    Raises:
        ConfigError: the file cannot be read, or ``parse`` refuses it.

    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{VARIABLE}={path!r} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    return parse(text, path)


_INSTALLED: dict[str, list[str]] = {}


def install(environ: Mapping[str, str]) -> list[str]:
    """
    Register the sources of the file ``STATUSFLOW_VOCABULARIES`` names (none if unset); return their names.

    Call it before anything imports ``stream.domain.classify`` (the command line does, first thing).
    A second call with the same file (a command run in-process twice) registers nothing again.

    Raises:
        ConfigError: the file is bad, or a source of it is taken.

    """
    path = environ.get(VARIABLE, "").strip()
    if not path:
        return []
    if path in _INSTALLED:
        return _INSTALLED[path]
    sources = load(path)
    for source in sources:
        try:
            vocab.register(source.name, source.channels, source.vocabulary)
        except (RuntimeError, ValueError) as error:
            raise ConfigError(f"{path}: source {source.name!r}: {error}") from None
    _INSTALLED[path] = [source.name for source in sources]
    return _INSTALLED[path]


def _source(name: str, table: object, where: _Lines) -> HouseSource:
    if not _SOURCE_NAME.fullmatch(name):
        raise where.error(f"source name {name!r} must be lower-case letters, digits, '-' or '_'", name)
    if name in vocab.SOURCE_CHANNELS:
        raise where.error(f"source {name!r} exists already (built in); choose another name", name)
    if not isinstance(table, dict):
        raise where.error(f"sources.{name} must be a table", name)
    extra = sorted(set(table) - {"channels", "statuses"})
    if extra:
        raise where.error(f"sources.{name}: unknown key {extra[0]!r} (channels, statuses)", extra[0], name)
    channels = table.get("channels")
    if not isinstance(channels, list) or not channels:
        raise where.error(f"sources.{name}: missing field 'channels' (a list, e.g. [\"sms\"])", name)
    for channel in channels:
        if channel not in CHANNELS:
            raise where.error(
                f"sources.{name}: unknown channel {channel!r}; channels: {', '.join(CHANNELS)}", "channels", name
            )
    statuses = table.get("statuses")
    if not isinstance(statuses, dict) or not statuses:
        raise where.error(f"sources.{name}: missing table 'statuses' ([sources.{name}.statuses])", name)
    vocabulary: vocab.Vocabulary = {}
    for status, entry in statuses.items():
        vocabulary[status] = _entry(name, tuple(channels), status, entry, where)
    return HouseSource(name, tuple(channels), vocabulary)


def _entry(source: str, channels: tuple[str, ...], status: str, entry: object, where: _Lines) -> vocab.Entry:
    what = f"sources.{source}.statuses.{status}"
    if not isinstance(entry, dict):
        raise where.error(f"{what} must be a table: {{ code = ..., final = ... }}", status, source)
    extra = sorted(set(entry) - _FIELDS)
    if extra:
        raise where.error(f"{what}: unknown field {extra[0]!r} (code, final, channel_status)", status, source)
    for field in ("code", "final"):
        if field not in entry:
            raise where.error(f"{what}: missing field {field!r}", status, source)
    final = entry["final"]
    if not isinstance(final, bool):
        raise where.error(f"{what}: final must be true or false, got {final!r}", status, source)
    target = _target(entry["code"])
    if target is None:
        raise where.error(
            f"{what}: unknown code {entry['code']!r}: an AdditionStatus code (statusflow codes) "
            "or 'bounce' / 'provider_failure'",
            status,
            source,
        )
    if "channel_status" not in entry:
        return (target, final)
    channel_status = entry["channel_status"]
    for channel in channels:
        known = CHANNEL_CODES[channel]
        if isinstance(channel_status, bool) or channel_status not in known:
            raise where.error(
                f"{what}: channel_status {channel_status!r} is not a {channel} status "
                f"({', '.join(f'{c} {known[c].shortcode}' for c in sorted(known)[:12])})",
                status,
                source,
            )
    return (target, final, channel_status)


def _target(code: object) -> vocab.Target | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code if code in ADDITION_BY_CODE else None
    if isinstance(code, str):
        return PER_CHANNEL.get(code.strip().lower())
    return None


def _line_in_message(message: str) -> int:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 1


class _Lines:
    """Finds the line of a key in the file's text, for errors tomllib cannot place (it gives values, not lines)."""

    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.path = path

    def error(self, message: str, key: str, source: str | None = None) -> ConfigError:
        return ConfigError(f"{self.path}:{self.line_of(key, source)}: {message}")

    def line_of(self, key: str, source: str | None = None) -> int:
        """Return the first line defining ``key`` (after the header of ``source``, if given); 1 if none."""
        start = 0
        if source is not None:
            start = next((i for i, line in enumerate(self.lines) if _is_header_of(line, source)), 0)
        quoted = re.escape(key)
        pattern = re.compile(rf"""^\s*(?:["']{quoted}["']|{quoted})\s*=|^\s*\[[^\]]*\b{quoted}["']?\s*\]""")
        for number in range(start, len(self.lines)):
            if pattern.search(self.lines[number]):
                return number + 1
        return start + 1


def _is_header_of(line: str, source: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("[") and re.search(rf"""sources\.["']?{re.escape(source)}["']?""", stripped) is not None
