"""bench_scale's latency probe process (bench/scale_readers.py) on its bad paths; its good
path runs in tests/bench/test_bench_scale.py (a real system, calls counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scale_readers import Readers
from localnet.node_harness import free_port


async def test_a_probe_that_cannot_reach_the_services_fails_clearly_and_leaves_nothing_running() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    readers = Readers("get_vault", nowhere, nowhere, ["11111111111111111111111111111111"], 1)
    with pytest.raises(RuntimeError, match="was not calling within 3"):
        await readers.start(timeout=3.0)
    assert readers.process is not None and readers.process.returncode is not None
    assert not Path(readers._file).exists() and not Path(readers._out).exists()  # its files are gone too


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of get_vault, get_tvl"):
        Readers("get_everything", "127.0.0.1:1", "127.0.0.1:1", [])
