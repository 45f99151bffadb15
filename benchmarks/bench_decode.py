"""Sensor frame decoding: frames per second for every registered protocol, and against PyPMS.

For each name in ``firmware_bridge.sensors.PROTOCOLS`` the run builds a pool
of valid, varied frames with the protocol's own encoders and times two loops
over it: ``decode`` alone, and ``find_frame`` + ``decode`` over the frames
concatenated and read 64 bytes at a time (what the bridge's reader does
with a byte stream; text lines are cut at line ends, as ``readline`` does).  For the
sensors PyPMS also decodes (PMS5003, PMS5003T, PMS5003ST, SDS011, SPS30,
MH-Z19B) it times ``pms.core.Sensor[...].decode`` on the very same frames in
the same run, in turn with ours (so that a change of load on a shared
machine hits both), with PyPMS's loguru logger disabled
(``logger.disable("pms")``) and a fixed time stamp, and prints the median of
the per-repeat ratios.  Medians of the repeats.

    python benchmarks/bench_decode.py            # 20k frames per protocol, 5 repeats
    python benchmarks/bench_decode.py --quick    # 2k frames, 3 repeats, a few seconds

PyPMS (``pip install pypms``) is a benchmark-only dependency; without it the
comparison columns are left empty.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_bridge.sensors import PROTOCOLS, SensorError  # noqa: E402
from firmware_bridge.sensors.line import kitline  # noqa: E402
from firmware_bridge.sensors.nmea import encode as nmea  # noqa: E402
from firmware_bridge.sensors.novafitness import sds011  # noqa: E402
from firmware_bridge.sensors.plantower import pms5003, pms5003st, pms5003t  # noqa: E402
from firmware_bridge.sensors.senseair import s8  # noqa: E402
from firmware_bridge.sensors.sensirion import scd30, sps30  # noqa: E402
from firmware_bridge.sensors.winsen import mhz19  # noqa: E402


# ------------------------------------------------------------------ frame pools
def _pm(rng: random.Random, names: tuple[str, ...]) -> dict[str, float]:
    base = rng.randint(1, 300)
    values: dict[str, float] = {name: base + i for i, name in enumerate(names)}
    values.update({"pn0_3": 1000 + base, "temperature": rng.randint(-100, 400) / 10,
                   "relative_humidity": rng.randint(0, 1000) / 10, "hcho": rng.randint(0, 500) / 1000})
    return values


def _sps30(rng: random.Random) -> bytes:
    while True:  # PyPMS checks the 47-byte length before unstuffing: keep frames that need no stuffing
        frame = sps30.encode({name: rng.uniform(0.5, 500) for name in sps30.FIELDS})
        if len(frame) == 47:
            return frame


def _mhz19(rng: random.Random) -> bytes:
    while True:  # PyPMS computes a checksum of 0x100 where the byte is 0x00: keep frames both can read
        frame = mhz19.encode_response(rng.randint(400, 5000), rng.randint(0, 50))
        if frame[-1]:
            return frame


def _nmea(rng: random.Random, i: int) -> bytes:
    when = datetime.fromtimestamp(1_795_000_000 + i, timezone.utc)
    lat, lon = 48.8 + rng.random() / 100, 2.12 + rng.random() / 100
    kind = i % 4
    if kind == 0:
        return nmea.encode_gga(when, lat, lon, talker="GN")
    if kind == 1:
        return nmea.encode_rmc(when, lat, lon, speed=rng.random() * 5, course=rng.random() * 359, talker="GN")
    if kind == 2:
        return nmea.encode_vtg(rng.random() * 5, rng.random() * 359, talker="GN")
    return nmea.encode_gsa(3, [3, 4, 6, 13], hdop=0.5 + rng.random(), talker="GN")


def _kitline(rng: random.Random, i: int) -> bytes:
    if i % 2:
        return kitline.encode("bosch-bme280", {"temperature": round(rng.uniform(-5, 35), 2),
                                               "relative_humidity": round(rng.uniform(20, 90), 1),
                                               "pressure": round(rng.uniform(980, 1030), 1)})
    return kitline.encode("sensirion-scd41", {"co2": rng.randint(400, 3000), "temperature": 21.5}, form="json")


BUILDERS: dict[str, Callable[[random.Random, int], bytes]] = {
    "pms5003": lambda rng, i: pms5003.encode(_pm(rng, pms5003.FIELDS)),
    "pms5003t": lambda rng, i: pms5003t.encode(_pm(rng, pms5003t.PARTICLES)),
    "pms5003st": lambda rng, i: pms5003st.encode(_pm(rng, pms5003st.PARTICLES)),
    "sds011": lambda rng, i: sds011.encode(rng.randint(1, 9999) / 10, rng.randint(1, 9999) / 10),
    "sps30": lambda rng, i: _sps30(rng),
    "mhz19": lambda rng, i: _mhz19(rng),
    "senseair-s8": lambda rng, i: s8.encode(rng.randint(400, 2000)),
    "sensirion-scd30": lambda rng, i: scd30.encode(rng.uniform(400, 5000), rng.uniform(-10, 40), rng.uniform(0, 100)),
    "nmea": _nmea,
    "kitline": _kitline,
}
SAME_FRAMES = {"pms7003": "pms5003", "pmsa003": "pms5003", "pms5003-passive": "pms5003",
               "sds011-query": "sds011", "sds021": "sds011", "mhz19-abc": "mhz19"}
PYPMS_NAMES = {"pms5003": "PMSx003", "pms5003t": "PMS5003T", "pms5003st": "PMS5003ST", "sds011": "SDS01x",
               "sps30": "SPS30", "mhz19": "MHZ19B"}


def frames_for(name: str, n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    build = BUILDERS[SAME_FRAMES.get(name, name)]
    return [build(rng, i) for i in range(n)]


# ------------------------------------------------------------------ timing
def once(loop: Callable[[], int]) -> float:
    """Frames per second of one run of ``loop`` (which returns how many frames it handled)."""
    start = time.perf_counter()
    count = loop()
    return count / (time.perf_counter() - start)


def rate(loop: Callable[[], int], repeats: int) -> float:
    """Median frames per second of ``loop`` over ``repeats`` runs."""
    return statistics.median(once(loop) for _ in range(repeats))


def paired(ours: Callable[[], int], theirs: Callable[[], int], repeats: int) -> tuple[float, float, float]:
    """Medians of both rates and of their ratio, the two loops run in turn so that load changes hit both."""
    pairs = [(once(ours), once(theirs)) for _ in range(repeats)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(a / b for a, b in pairs))


def decode_loop(decode: Callable[[bytes], Any], frames: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        for frame in frames:
            decode(frame)
        return len(frames)
    return run


def stream_loop(proto: Any, frames: list[bytes], chunk: int = 64) -> Callable[[], int]:
    """Cut and decode the frames from their byte stream, read ``chunk`` bytes at a time as the reader does."""
    stream = b"".join(frames)
    chunks = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    if proto.KIND == "line":
        def run_lines() -> int:
            n = 0
            for line in stream.splitlines(keepends=True):  # the reader's readline() does this cut
                proto.decode(line)
                n += 1
            return n
        return run_lines

    def run() -> int:
        buf, n = b"", 0
        for data in chunks:
            buf += data
            while True:
                frame, buf = proto.find_frame(buf)
                if frame is None:
                    break
                proto.decode(frame)
                n += 1
        return n
    return run


def pypms_decoder(name: str) -> Callable[[bytes], Any] | None:
    try:
        from loguru import logger
        from pms.core import Sensor
    except ImportError:
        return None
    logger.disable("pms")
    sensor = Sensor[PYPMS_NAMES[name]]
    return lambda frame: sensor.decode(frame, time=1_795_000_000)


def check(name: str, frames: list[bytes]) -> None:
    """Every frame of the pool decodes (a benchmark of errors would measure the wrong thing)."""
    for frame in frames:
        try:
            PROTOCOLS[name].decode(frame)
        except SensorError as exc:
            raise SystemExit(f"{name}: a benchmark frame does not decode: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k frames per protocol, 3 repeats")
    parser.add_argument("--frames", type=int, default=None, help="frames per protocol (default 20000)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 5)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME", help="protocols to measure")
    args = parser.parse_args(argv)
    n = args.frames or (2_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 5)
    names = args.only or list(PROTOCOLS)
    print(f"decode benchmark: {n} frames per protocol, median of {repeats}, Python {sys.version.split()[0]}")
    print(f"{'protocol':<17}{'decode/s':>11}{'µs/frame':>10}{'cut+decode/s':>14}{'PyPMS/s':>11}{'ratio':>8}")
    ratios: dict[str, float] = {}
    for name in names:
        proto = PROTOCOLS[name]
        frames = frames_for(name, n)
        check(name, frames)
        stream = rate(stream_loop(proto, frames), repeats)
        theirs_text, ratio_text = "", ""
        reference = pypms_decoder(name) if name in PYPMS_NAMES else None
        if reference is None:
            ours = rate(decode_loop(proto.decode, frames), repeats)
        else:
            ours, theirs, ratios[name] = paired(decode_loop(proto.decode, frames), decode_loop(reference, frames),
                                                repeats)
            theirs_text, ratio_text = f"{theirs:>11,.0f}", f"{ratios[name]:>7.1f}x"
        print(f"{name:<17}{ours:>11,.0f}{1e6 / ours:>10.2f}{stream:>14,.0f}{theirs_text:>11}{ratio_text:>8}")
    if ratios:
        print("ratio = median of (our decode / PyPMS Sensor[...].decode) over repeats run in turn on the same "
              "frames; goal >= 2x: "
              + ("met" if min(ratios.values()) >= 2 else "NOT met") + f" (lowest {min(ratios.values()):.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
