"""HTTP endpoint for the airrohr firmware's "send to own API" push: ``POST /api/push/airrohr``.

In the firmware's configuration page ("APIs" tab, "Send to own API"): server
= the qsec host, path ``/api/push/airrohr``, port of ``qsec serve``.  The
firmware (``airrohr-firmware.ino`` ``sendData``) sends ``X-Sensor:
esp8266-<chip id>`` (the device id), ``X-MAC-ID``, ``Content-Type:
application/json`` and the body decoded by :mod:`ingest.adapters.airrohr`;
``X-PIN`` only on its Sensor.Community requests, honoured here when present.

Answers: ``200`` with the counts when records were accepted (some may still
be refused, listed in ``refused``; what was set aside as metadata is counted
in ``ignored``), ``400`` when nothing of the push could be accepted.  Refused
data is always handed to ``write`` as dead letters first.

FastAPI routing: https://fastapi.tiangolo.com/tutorial/bigger-applications/
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.adapters import AdapterResult
from ingest.adapters.airrohr import decode
from qsec import contract

PATH = "/api/push/airrohr"


class Refusal(BaseModel):
    """One refused record (``seq`` is its time [ms]) or the whole push (``seq`` null)."""

    boot: str | None = Field(default=None, max_length=64)
    seq: int | None = None
    reason: str = Field(max_length=64)
    detail: str = Field(max_length=2000)


class PushAnswer(BaseModel):
    """What the endpoint made of one push."""

    device: str | None = Field(default=None, max_length=64)
    accepted: int = Field(ge=0, description="records handed to the store (repeats included)")
    refused: list[Refusal] = Field(default_factory=list, max_length=200)
    ignored: dict[str, int] = Field(default_factory=dict, max_length=200,
                                    description="value types set aside as metadata (docs/adapters.md), with counts")


def router(write: Callable[[AdapterResult], object], campaign: str, *,
           clock: Callable[[], float] = time.time) -> APIRouter:
    """An :class:`APIRouter` with ``POST /api/push/airrohr`` storing pushes into ``campaign``.

    Parameters
    ----------
    write : called with each push's :class:`AdapterResult` (records and dead
        letters); it must commit both, e.g. ``lambda r: store.write(r.rows, r.refused)``
    campaign : campaign id the pushed records belong to
    clock : time source [s since epoch], the records' time (the push carries none)
    """
    if not contract.ID_PATTERN.match(campaign):
        raise ValueError(f"campaign id {campaign!r} must match {contract.ID_PATTERN.pattern}")
    api = APIRouter(tags=["push"])

    def handle(body: bytes, x_sensor: str | None, x_pin: str | None) -> JSONResponse:
        received_ms = int(clock() * 1000)
        source = PATH + (f"?x-pin={x_pin}" if x_pin else "")
        result = decode(body, source=source, received_ms=received_ms, campaign=campaign,
                        x_sensor=x_sensor, x_pin=x_pin)
        write(result)
        device = result.rows[0][1] if result.rows else next((d.device for d in result.refused if d.device), None)
        answer = PushAnswer(device=device, accepted=len(result.rows),
                            refused=[Refusal(boot=d.boot, seq=d.seq, reason=d.reason, detail=d.detail[:2000])
                                     for d in result.refused[:200]],
                            ignored=dict(result.ignored.most_common(200)))
        nothing = not result.rows and bool(result.refused)
        return JSONResponse(answer.model_dump(), status_code=400 if nothing else 200)

    @api.post(PATH, response_model=PushAnswer,
              responses={400: {"model": PushAnswer, "description": "nothing of the push could be accepted"}})
    async def push_airrohr(request: Request,
                           x_sensor: Annotated[str | None, Header(max_length=80)] = None,
                           x_pin: Annotated[str | None, Header(max_length=8)] = None) -> JSONResponse:
        """Store one airrohr push (Sensor.Community firmware, "Send to own API")."""
        body = await request.body()
        # decoding and the store's commit block: off the event loop
        return await run_in_threadpool(handle, body, x_sensor, x_pin)

    return api

