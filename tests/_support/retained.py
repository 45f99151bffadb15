"""Clearing retained MQTT messages that tests left on a shared broker.

Subscribing to ``qsec/#`` gets every retained message under it at once, flagged ``retain``;
publishing an empty retained payload on a topic removes its retained message (MQTT 5.0 §3.3.1.3,
https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html#_Toc3901104).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def clear_retained(host: str, port: int, select: Callable[[str], bool], *, settle_s: float = 1.0) -> list[str]:
    """Remove the retained messages whose topic ``select`` accepts; returns those topics."""
    found: list[str] = []
    subscribed = threading.Event()
    last = [time.monotonic()]

    def on_message(c, u, m):  # noqa: ANN001
        last[0] = time.monotonic()
        if m.retain and m.payload and select(m.topic):
            found.append(m.topic)

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect(host, port)
    c.loop_start()
    try:
        c.subscribe("qsec/#", qos=0)
        if not subscribed.wait(5):
            return []
        last[0] = time.monotonic()
        while time.monotonic() - last[0] < settle_s:  # retained messages come right after SUBACK
            time.sleep(0.05)
        for topic in found:
            c.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    return found
