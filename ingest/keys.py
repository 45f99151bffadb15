"""Record keys ``(device, boot, seq)`` of a commit, handled as columns rather than one Python object a record.

A commit holds a few thousand records of a few ``(device, boot)`` groups (one
kit's message carries one boot).  Feedback ranges, gap accounting and lag
statistics need per-group figures only, so the rows are grouped once by
dictionary codes and each group is reduced with NumPy.

Sources: Arrow ``dictionary_encode`` (https://arrow.apache.org/docs/python/generated/pyarrow.compute.dictionary_encode.html),
NumPy ``unique`` / ``flatnonzero`` (https://numpy.org/doc/stable/reference/routines.set.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Group:
    """The rows of one ``(device, boot)`` in a table.

    rows : row indices in the table, ascending
    seq : their sequence numbers, in the same order
    """

    device: str
    boot: str
    rows: np.ndarray
    seq: np.ndarray


def groups(table: pa.Table) -> list[Group]:
    """Split a table with ``device``, ``boot`` and ``seq`` columns by ``(device, boot)``.

    The two string columns are dictionary-encoded (Arrow), their codes combined into one integer key, and the
    rows split by a stable sort of that key (NumPy): rows stay ascending within each group.
    """
    if table.num_rows == 0:
        return []
    dev = table.column("device").combine_chunks().dictionary_encode()
    boot = table.column("boot").combine_chunks().dictionary_encode()
    nb = len(boot.dictionary)
    code = dev.indices.to_numpy(zero_copy_only=False).astype(np.int64) * nb \
        + boot.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    seq = table.column("seq").to_numpy()
    order = np.argsort(code, kind="stable")
    cuts = np.flatnonzero(np.diff(code[order])) + 1
    devices, boots = dev.dictionary.to_pylist(), boot.dictionary.to_pylist()
    out = []
    for rows in np.split(order, cuts):
        k = int(code[rows[0]])
        out.append(Group(devices[k // nb], boots[k % nb], rows, seq[rows]))
    return out


def ranges(seqs: np.ndarray) -> list[list[int]]:
    """Sorted inclusive ``[lo, hi]`` ranges of the distinct values of ``seqs`` (as :func:`qsec.contract.ranges`)."""
    u = np.unique(seqs)
    if u.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(u) != 1)
    lo = np.concatenate(([u[0]], u[breaks + 1]))
    hi = np.concatenate((u[breaks], [u[-1]]))
    return [[int(a), int(b)] for a, b in zip(lo, hi)]


def first_of_keys(table: pa.Table, keys: Iterable[tuple[str, str, int]]) -> np.ndarray:
    """Mask of the rows of ``table`` whose ``(device, boot, seq)`` is in ``keys``, first occurrence only.

    Used on the exact (``ON CONFLICT … RETURNING``) path to say which rows the store took as new.
    """
    new = set(keys)
    mask = np.zeros(table.num_rows, dtype=bool)
    for i, key in enumerate(zip(table.column("device").to_pylist(), table.column("boot").to_pylist(),
                                table.column("seq").to_pylist())):
        if key in new:
            mask[i] = True
            new.discard(key)
    return mask
