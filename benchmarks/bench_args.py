"""The command line every benchmark shares: a size, a number of repeats, and ``--quick`` for a short run."""

from __future__ import annotations

import argparse


def parse(doc: str | None, size: str, default: int, quick: int, repeats: int = 3) -> argparse.Namespace:
    """Arguments ``--<size> N``, ``--repeats R`` and ``--quick`` (``quick`` items, 1 repeat); ``doc`` is the help."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(f"--{size}", type=int, default=default)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--quick", action="store_true", help=f"{quick:,} {size}, 1 repeat")
    a = ap.parse_args()
    if a.quick:
        setattr(a, size, quick)
        a.repeats = 1
    return a
