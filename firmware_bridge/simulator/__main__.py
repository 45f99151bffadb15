"""Run simulated kits until interrupted: ``python -m firmware_bridge.simulator --kits 3``."""

from __future__ import annotations

import argparse

from firmware_bridge.shutdown import wait_for_stop
from firmware_bridge.simulator.kit import start_kits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_bridge.simulator",
                                     description="Simulated PMS5003 + MH-Z19 + GPS kits on pseudo-terminals.")
    parser.add_argument("--kits", type=int, default=1, help="number of kits (default 1)")
    parser.add_argument("--dir", default="/tmp/qsec-devices", help="directory for the device links")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument("--rate", type=float, default=1.0, help="ticks per second (default 1)")
    parser.add_argument("--pms-warmup", type=int, default=0, help="all-zero PMS5003 frames after power-on")
    parser.add_argument("--gps-fix-after", type=int, default=0, help="ticks without a GPS fix at start")
    args = parser.parse_args(argv)
    if args.kits < 1 or args.rate <= 0:
        parser.error("--kits must be at least 1 and --rate positive")
    kits = start_kits(args.kits, args.dir, seed=args.seed, rate_hz=args.rate,
                      pms_warmup_frames=args.pms_warmup, gps_fix_after=args.gps_fix_after)
    for kit in kits:
        print(f"{kit.name}: {kit.route.town} ({kit.route.name})")
        for sensor, path in kit.paths.items():
            print(f"  {sensor:8s} {path}")
    try:
        wait_for_stop()
    finally:
        for kit in kits:
            kit.stop()
        for kit in kits:
            print(f"{kit.name}: {kit.counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
