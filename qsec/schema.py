"""The JSON Schema of contract v1's readings message, made from the contract and the quantity table.

``python -m qsec.schema`` rewrites ``qsec/schema/readings-v1.json``; a test
checks that the file in the repository is what this module makes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qsec import contract, quantities

PATH = Path(__file__).with_name("schema") / "readings-v1.json"


def readings_schema() -> dict[str, Any]:
    props = {q.name: {"type": "number", "minimum": q.minimum, "maximum": q.maximum,
                      "description": f"{q.long_name} [{q.unit}]"} for q in quantities.QUANTITIES.values()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://qsec.example/schema/readings-v1.json",
        "title": "qsec readings message, contract v1",
        "description": "Published by a bridge on qsec/v1/<campaign>/<device>/readings (QoS 1). See docs/contract.md.",
        "type": "object",
        "required": ["v", "boot", "records"],
        "additionalProperties": False,
        "properties": {
            "v": {"const": 1},
            "device": {"type": "string", "pattern": contract.ID_PATTERN.pattern,
                       "description": "must equal the topic's device"},
            "boot": {"type": "string", "pattern": contract.BOOT_PATTERN.pattern,
                     "description": "new at every bridge start"},
            "sent": {"type": "integer", "minimum": 0, "description": "bridge clock at sending [ms since epoch, UTC]"},
            "records": {"type": "array", "maxItems": contract.LIMITS.max_records, "items": {"$ref": "#/$defs/record"}},
        },
        "$defs": {
            "record": {
                "type": "object", "required": ["seq", "t", "sensor", "values"], "additionalProperties": False,
                "properties": {
                    "seq": {"type": "integer", "minimum": 0, "maximum": contract.LIMITS.max_seq},
                    "t": {"type": "integer", "minimum": 0, "description": "measurement time [ms since epoch, UTC]"},
                    "sensor": {"type": "string", "pattern": contract.SENSOR_PATTERN.pattern},
                    "flags": {"type": "integer", "minimum": 0, "maximum": 65535},
                    "values": {"type": "object", "minProperties": 1, "maxProperties": contract.LIMITS.max_values,
                               "additionalProperties": False, "properties": props},
                },
            }
        },
    }


def quantity_table_markdown() -> str:
    """The quantity table as docs/contract.md shows it."""
    rows = ["| name | unit | kind | range | meaning | CF standard name |", "|---|---|---|---|---|---|"]
    for q in quantities.QUANTITIES.values():
        rows.append(f"| `{q.name}` | {q.unit} | {q.kind.value} | {q.minimum:g} … {q.maximum:g} | "
                    f"{q.long_name} / {q.long_name_fr} | {q.standard_name or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    PATH.write_text(json.dumps(readings_schema(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {PATH}")
