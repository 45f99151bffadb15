"""The mirror's outbox on a real SQLite file: order, ownership, damage, and kill -9 of a writing process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from harness import wait_until
from scripted_http import Reply, Request, ScriptedHTTPServer
from victoria import free_port

from ingest.mirror import (
    InfluxMirror,
    MirrorSettings,
    Outbox,
    OutboxError,
    OutboxLocked,
)
from ingest.mirror.lineproto import RecordEncoder
from qsec import contract

ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int, start: int = 0) -> list[tuple[str, str, str, str | None, int]]:
    return [(f"m v={i} {i}", "camp", "kit-01", "b", i) for i in range(start, start + n)]


def test_the_outbox_gives_points_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.append(_rows(5))
    ob.append(_rows(3, start=5))
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")
    assert ob.depth == 8
    assert [e.seq for e in ob.head(100)] == list(range(8))
    ob.close()


def test_remove_takes_only_the_run_it_is_given(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", sync="normal")
    ob.append(_rows(6))
    head = ob.head(6)
    assert ob.remove(head[:2]) == 2 and ob.remove(head[3:4]) == 1
    assert [e.seq for e in ob.head(10)] == [2, 4, 5] and ob.depth == 3
    ob.append(_rows(1, start=6))
    assert [e.seq for e in ob.head(10)] == [2, 4, 5, 6]
    ob.close()


def test_a_second_owner_is_refused_with_a_message_that_says_what_to_do(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    with pytest.raises(OutboxLocked, match="another process"):
        Outbox(tmp_path / "o.sqlite")
    ob.close()
    Outbox(tmp_path / "o.sqlite").close()  # free again once closed


def test_a_damaged_file_is_refused_with_a_message_that_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "o.sqlite").write_bytes(b"this is not a database" * 200)
    with pytest.raises(OutboxError, match="move it aside"):
        Outbox(tmp_path / "o.sqlite")


def test_a_bad_sync_mode_is_refused_naming_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="full, normal"):
        Outbox(tmp_path / "o.sqlite", sync="sometimes")


@pytest.mark.parametrize("option, value", [("url", "127.0.0.1:8086"), ("batch_points", 0), ("org", ""),
                                           ("outbox_sync", "off"), ("backoff_initial_s", 0.0),
                                           ("measurement", "#readings"), ("measurement", "_readings")])
def test_settings_that_cannot_work_are_refused_naming_the_option(tmp_path: Path, option: str, value: object) -> None:
    kw: dict[str, object] = {"url": "http://127.0.0.1:8086", "outbox_path": tmp_path / "o.sqlite", option: value}
    with pytest.raises(ValueError, match=option):
        MirrorSettings(**kw)  # type: ignore[arg-type]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ingest.mirror import InfluxMirror, MirrorSettings
    from qsec import contract

    url, outbox, n, per_call = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    m = InfluxMirror(MirrorSettings(url=url, outbox_path=outbox, batch_points=7, flush_interval_ms=10,
                                    backoff_initial_s=0.01, backoff_max_s=0.05)).start()
    for start in range(0, n, per_call):
        m.submit([("camp", "kit-01", "boot-k", contract.Record(s, 1_790_000_000_000 + s, "winsen-mhz19",
                                                              {"co2": 400.0 + s}))
                  for s in range(start, min(n, start + per_call))])
    print("queued", m.outbox.depth, flush=True)
    time.sleep(600)
""")


def test_points_queued_while_the_server_is_down_survive_kill_9_and_drain_exactly_once(tmp_path: Path) -> None:
    port, n = free_port(), 1000
    outbox = tmp_path / "outbox.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, f"http://127.0.0.1:{port}", str(outbox), str(n), "37"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["queued", str(n)]  # nothing could be sent: the server is down
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    enc = RecordEncoder()
    expected = [enc.line("camp", "kit-01", "boot-k", contract.Record(s, 1_790_000_000_000 + s, "winsen-mhz19",
                                                                    {"co2": 400.0 + s})) for s in range(n)]
    with ScriptedHTTPServer(port=port) as srv:
        m = InfluxMirror(MirrorSettings(url=srv.url, outbox_path=outbox, batch_points=300))  # a new process's view
        assert m.outbox.depth == n
        assert m.flush(timeout=30)
        assert [ln for r in srv.writes for ln in r.lines] == expected
        assert m.metrics()["points_mirrored"] == n
        m.close()


def test_a_killed_mirror_resends_at_most_the_batch_it_had_in_flight(tmp_path: Path) -> None:
    """kill -9 between the server's 2xx and the outbox commit: that batch comes again, nothing else."""
    outbox = tmp_path / "outbox.sqlite"
    def slow(req: Request) -> Reply:  # ~100 requests of 7 points: about 2 s, so the kill lands mid-stream
        time.sleep(0.02)
        return Reply(204)

    with ScriptedHTTPServer(slow) as srv:
        proc = subprocess.Popen([sys.executable, "-c", WRITER, srv.url, str(outbox), "700", "100"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: len(srv.writes) >= 3, timeout=30, what="the writer to send some batches")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        sent_before = len(srv.writes)
        m = InfluxMirror(MirrorSettings(url=srv.url, outbox_path=outbox, batch_points=1000))
        assert m.flush(timeout=30)
        m.close()
        sent = [ln for r in srv.writes for ln in r.lines]
    seqs = [int(ln.split("seq=")[1].split("i")[0]) for ln in sent]
    assert sorted(set(seqs)) == list(range(700))  # nothing lost
    assert len(seqs) - 700 <= 7  # at most the killed writer's batch in flight (7 points) twice
    assert sent_before < 100  # the kill did land mid-stream
