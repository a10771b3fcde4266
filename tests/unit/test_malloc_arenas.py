"""The worker caps glibc's malloc arenas, so RocksDB's threads do not hold freed memory in arenas of their own."""

from __future__ import annotations

import ctypes
import platform
from typing import Any

import pytest

from stream.cli.worker import MALLOC_ARENAS, limit_malloc_arenas


class FakeLibc:
    """Records the mallopt calls the worker makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, parameter: int, value: int) -> int:
        """Take the call as glibc would (1: accepted)."""
        self.calls.append((parameter, value))
        return 1


def test_the_worker_caps_the_arenas_when_the_operator_did_not() -> None:
    """M_ARENA_MAX (-8 in glibc's malloc.h) is set to MALLOC_ARENAS on glibc's libc."""
    libc = FakeLibc()
    loaded: list[str] = []

    def load(name: str) -> Any:
        loaded.append(name)
        return libc

    assert limit_malloc_arenas({}, load)
    assert (["libc.so.6"], [(-8, MALLOC_ARENAS)]) == (loaded, libc.calls)


def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    """MALLOC_ARENA_MAX in the environment was read by glibc at start: the worker does not override it."""
    libc = FakeLibc()

    assert not limit_malloc_arenas({"MALLOC_ARENA_MAX": "4"}, lambda _: libc)
    assert [] == libc.calls


def test_without_glibc_the_worker_starts_all_the_same() -> None:
    """On musl or macOS (no libc.so.6, or no mallopt in it) there is nothing to cap, and no error."""

    def missing(name: str) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    assert not limit_malloc_arenas({}, missing)
    assert not limit_malloc_arenas({}, lambda _: object())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_glibc_takes_the_cap() -> None:
    """The real call: glibc's mallopt accepts M_ARENA_MAX (returns 1)."""
    assert limit_malloc_arenas({}, ctypes.CDLL)
