"""Bridge -> broker -> ingest while everything is killed: 0 lost, 0 doubled.

A generator inside a real bridge process streams records with a ground-truth
log; the test kill -9s the bridge, the ingest process, one of its decoding
processes and the broker, and cuts the network (the broker stopped for a few
seconds).  At the end the store must hold exactly the generator's records, and
no decoding process may outlive the ingest process that was killed under it.
The machinery is in ``tests/_support/fault_pipeline.py``; the long run with
several kits and a random plan is ``benchmarks/soak_faults.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_pipeline import Fault, Pipeline, account
from harness import require, wait_until
from qsec.broker import find_mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PLAN = [Fault("bridge"), Fault("ingest"), Fault("broker"), Fault("decoder", wait_s=1.0), Fault("network"),
        Fault("bridge"), Fault("ingest"), Fault("broker"), Fault("network")]


def test_the_store_holds_exactly_the_generated_records_after_kills_of_every_part(tmp_path: Path) -> None:
    require(find_mosquitto() is not None, "no mosquitto binary (apt-get install mosquitto)")
    p = Pipeline(tmp_path, kits=1, rate=100, generate_s=26.0, decode_processes=1)
    try:
        p.start()
        p.run(PLAN)
        p.settle(timeout=90)
    finally:
        p.stop()
    # ingest/decode.py watch_parent: a decoding process ends within ~0.5 s of its ingest's death
    wait_until(lambda: not p.leftover_decoders(), timeout=2.0, interval=0.1,
               what="the decoding processes of killed ingest processes to exit")

    (kit,), dead, doubled = account(p)
    print(f"\nfaults {dict(p.faults)}: {kit.line()}; decoders checked for orphans {len(p.killed_decoders)}")
    assert not p.crashes, "\n".join(p.crashes)
    assert not kit.problems, "\n".join(kit.problems)
    assert kit.lost == 0 and kit.doubled == 0 and doubled == 0 and dead == 0
    assert p.faults == {"bridge": 2, "ingest": 2, "decoder": 1, "broker": 2, "network": 2}
    assert "a decoding process died" in (tmp_path / "ingest.err").read_text(), "ingest did not see the decoder die"
