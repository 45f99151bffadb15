"""LiveHub: fan-out from any thread to asyncio subscribers, bounded and counted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dashboards.live import LiveHub
from dashboards.sse import clean_event, message


def event(n: int) -> dict[str, object]:
    return {"campaign": "expo", "device": "kit-1", "sensor": "plantower-pms5003", "t": n, "values": {"pm2_5": float(n)}}


def test_an_event_published_from_another_thread_reaches_every_subscriber():
    hub = LiveHub()

    async def main() -> list[list[int]]:
        subs = [hub.subscription() for _ in range(3)]
        thread = threading.Thread(target=lambda: [hub.publish(event(n)) for n in range(5)])
        thread.start()
        got = [[(await s.get(timeout=2))["t"] for _ in range(5)] for s in subs]
        thread.join()
        return got

    assert asyncio.run(main()) == [[0, 1, 2, 3, 4]] * 3
    assert hub.published == 5 and hub.dropped == 0


def test_a_slow_subscriber_loses_its_oldest_events_and_the_loss_is_counted():
    hub = LiveHub(maxsize=3)

    async def main() -> list[int]:
        slow = hub.subscription()
        for n in range(10):
            hub.publish(event(n))
        await asyncio.sleep(0)  # let the loop run the scheduled deliveries
        return [(await slow.get(timeout=1))["t"] for _ in range(3)]

    assert asyncio.run(main()) == [7, 8, 9]
    assert hub.dropped == 7


def test_closing_the_hub_ends_every_async_iteration():
    hub = LiveHub()

    async def main() -> list[int]:
        seen: list[int] = []

        async def reader() -> None:
            async for ev in hub.subscribe():
                seen.append(ev["t"])

        task = asyncio.create_task(reader())
        while hub.subscribers == 0:
            await asyncio.sleep(0.001)
        hub.publish(event(1))
        hub.close()
        await asyncio.wait_for(task, 2)
        return seen

    assert asyncio.run(main()) == [1]
    assert hub.subscribers == 0


def test_a_subscription_leaves_the_hub_when_its_block_ends():
    hub = LiveHub()

    async def main() -> None:
        with hub.subscription():
            assert hub.subscribers == 1
        assert hub.subscribers == 0

    asyncio.run(main())


def test_a_subscriber_whose_event_loop_has_gone_is_forgotten():
    hub = LiveHub()
    loop = asyncio.new_event_loop()

    async def subscribe() -> None:
        hub.subscription()

    loop.run_until_complete(subscribe())
    loop.close()
    hub.publish(event(1))
    assert hub.subscribers == 0


def test_get_returns_none_on_timeout_and_publishing_without_subscribers_is_harmless():
    hub = LiveHub()
    hub.publish(event(1))

    async def main() -> object:
        with hub.subscription() as sub:
            return await sub.get(timeout=0.01)

    assert asyncio.run(main()) is None


def test_hub_refuses_a_queue_size_below_one():
    with pytest.raises(ValueError, match="maxsize"):
        LiveHub(maxsize=0)


def test_events_are_sent_as_json_without_non_finite_values():
    cleaned = clean_event({**event(3), "values": {"pm2_5": 3.0, "pm10": float("nan"), "co2": float("inf")}})
    assert cleaned["values"] == {"pm2_5": 3.0}
    assert message("reading", cleaned) == (
        'event: reading\ndata: {"campaign":"expo","device":"kit-1","sensor":"plantower-pms5003",'
        '"t":3,"values":{"pm2_5":3.0}}\n\n'
    )
