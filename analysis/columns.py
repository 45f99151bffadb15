"""The quantity columns of the ``readings`` table.

The store has one ``DOUBLE`` column per quantity of
:data:`qsec.quantities.QUANTITIES`; a store written by an older qsec may
lack the newest ones.  Queries are built only from names that are both in
the quantity table and in the store, so a column name never comes from
user input.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from qsec import quantities as qty

READINGS = "readings"


def quantity_columns(
    con: duckdb.DuckDBPyConnection, wanted: Iterable[str] | None = None
) -> list[str]:
    """Return the quantity columns present in ``readings``, in quantity-table order.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection or cursor on the store.
    wanted : iterable of str, optional
        Restrict to these quantity names.  Each must be a known quantity.

    Returns
    -------
    list of str
        Names from :data:`qsec.quantities.QUANTITIES` that are columns of
        ``readings`` (and in ``wanted`` when given).

    Raises
    ------
    KeyError
        If ``wanted`` names an unknown quantity (the message lists the known ones).
    duckdb.CatalogException
        If the store has no ``readings`` table yet.
    """
    present = {
        row[0] for row in con.execute(f"SELECT name FROM pragma_table_info('{READINGS}')").fetchall()
    }
    if wanted is None:
        selected = set(qty.QUANTITIES)
    else:
        selected = {qty.get(name).name for name in wanted}
    return [name for name in qty.QUANTITIES if name in selected and name in present]


def quote(name: str) -> str:
    """Quote a column name for SQL; names come from the quantity table only."""
    if name not in qty.QUANTITIES:
        raise KeyError(f"not a quantity column: {name!r}")
    return f'"{name}"'
