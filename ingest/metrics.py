"""Every counter of the pipeline in Prometheus text format, and as a plain snapshot.

Served at ``/metrics`` by ``qsec serve``/``qsec up`` and shown by ``qsec
status``.  Built on prometheus-client's custom-collector API
(https://prometheus.github.io/client_python/collector/custom/): the counters
live in plain objects of ingest, the bridges' retained status messages and the
dashboard hub; the collector reads them at scrape time, so several workers in
one process never clash in a global registry.

Where a drop can happen, a metric counts it:

========================================  =====================================================
metric                                    what drops or waits
========================================  =====================================================
``qsec_ingest_deadletter_total{reason}``  records refused by validation (kept with their reason)
``qsec_ingest_missing_records{device}``   seqs not stored yet: in a spool, in flight, or dropped
``qsec_bridge_spool_dropped_total``       records a full spool dropped (oldest first)
``qsec_bridge_spool_torn_total``          torn or corrupt spool entries skipped at recovery
``qsec_broker_messages_dropped``          Mosquitto's own count (queue limits); resent from spools
``qsec_dashboard_events_dropped_total``   live events a slow screen could not take (screens reload)
``qsec_mirror_*``                         InfluxDB mirror retries and rejections (when enabled)
========================================  =====================================================
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ingest.worker import IngestWorker

_COUNTERS = {
    "messages_received": "MQTT readings messages received",
    "records_received": "records received (valid or not)",
    "records_stored": "records newly stored",
    "records_duplicate": "records already stored (resends, re-imports), not stored again",
    "commit_errors": "store commits that failed and were retried",
    "connects": "connections to the broker",
    "disconnects": "connections to the broker lost",
    "listener_errors": "commit listeners (screens, mirror) that raised",
    "decoder_restarts": "decoding process pools started again after one of their processes died",
    "status_unreadable": "bridge status messages that could not be read",
}


class QsecCollector:
    """Reads ingest, bridges' status, hub and mirror counters at scrape time."""

    def __init__(self, worker: IngestWorker, *, hub: Any = None,
                 mirror_metrics: Callable[[], dict[str, float]] | None = None):
        self.worker = worker
        self.hub = hub
        self.mirror_metrics = mirror_metrics

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        for key, doc in _COUNTERS.items():
            c = CounterMetricFamily(f"qsec_ingest_{key}", doc)
            c.add_metric([], float(w.metrics.get(key, 0)))
            yield c
        dl = CounterMetricFamily("qsec_ingest_deadletter", "records or messages set aside in the dead-letter table",
                                 labels=["reason"])
        for reason, n in sorted(w.deadletter_reasons.items()):
            dl.add_metric([reason], float(n))
        yield dl
        ig = CounterMetricFamily("qsec_ingest_ignored", "values an adapter set aside on purpose (metadata, computed "
                                 "values: docs/adapters.md), by adapter and field", labels=["adapter", "field"])
        for (adapter, name), n in sorted(w.ignored.items()):
            ig.add_metric([adapter, name], float(n))
        yield ig
        up = GaugeMetricFamily("qsec_ingest_connected", "1 while ingest is connected to the broker")
        up.add_metric([], 1.0 if w.connected else 0.0)
        yield up
        missing = GaugeMetricFamily("qsec_ingest_missing_records",
                                    "records not stored yet below each boot's highest seq", labels=["device"])
        for device, n in sorted(w.tracker.missing_by_device().items()):
            missing.add_metric([device], float(n))
        yield missing
        lag = HistogramMetricFamily("qsec_ingest_lag_seconds", "measurement time to commit [s]")
        lag.add_metric([], [(("+Inf" if b == float("inf") else repr(b)), float(n)) for b, n in w.lag.cumulative()],
                       sum_value=w.lag.total)
        yield lag
        if w.broker_dropped is not None:
            bd = GaugeMetricFamily("qsec_broker_messages_dropped", "messages Mosquitto dropped ($SYS), resent from spools")
            bd.add_metric([], float(w.broker_dropped))
            yield bd
        yield from self._bridges()
        if self.hub is not None:
            hd = CounterMetricFamily("qsec_dashboard_events_dropped", "live events a slow screen could not take")
            hd.add_metric([], float(self.hub.dropped))
            yield hd
            hs = GaugeMetricFamily("qsec_dashboard_screens", "screens connected to the live stream")
            hs.add_metric([], float(self.hub.subscribers))
            yield hs
        if self.mirror_metrics is not None:
            for key, value in sorted(self.mirror_metrics().items()):
                if isinstance(value, (int, float)):
                    g = GaugeMetricFamily(f"qsec_mirror_{key}", f"InfluxDB mirror: {key.replace('_', ' ')}")
                    g.add_metric([], float(value))
                    yield g

    def _bridges(self) -> Iterator[Metric]:
        online = GaugeMetricFamily("qsec_bridge_online", "1 when the kit's retained status says online", labels=["device"])
        pending = GaugeMetricFamily("qsec_bridge_spool_pending", "records waiting in the kit's spool", labels=["device"])
        dropped = CounterMetricFamily("qsec_bridge_spool_dropped", "records a full spool dropped", labels=["device"])
        torn = CounterMetricFamily("qsec_bridge_spool_torn", "torn spool entries skipped", labels=["device"])
        aside = CounterMetricFamily("qsec_bridge_frames_set_aside", "sensor frames a kit's reader set aside, by kind "
                                    "(waiting, ignored, frame_error) and reason class",
                                    labels=["device", "sensor", "kind", "reason"])
        for device, doc in sorted(self.worker.bridges.items()):
            spool = doc.get("spool") or {}
            online.add_metric([device], 1.0 if doc.get("state") == "online" else 0.0)
            pending.add_metric([device], float(spool.get("pending", 0)))
            dropped.add_metric([device], float(spool.get("dropped_full", 0)))
            torn.add_metric([device], float(spool.get("torn_skipped", 0)))
            for sensor, reader in sorted((doc.get("sensors") or {}).items()):
                kinds = reader.get("set_aside") if isinstance(reader, dict) else None
                for kind, reasons in sorted((kinds or {}).items()):
                    for reason, n in sorted((reasons or {}).items()):
                        aside.add_metric([device, sensor, kind, reason], float(n))
        yield from (online, pending, dropped, torn, aside)


def render(collector: QsecCollector) -> bytes:
    """The Prometheus text exposition of one collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def status(worker: IngestWorker, hub: Any = None,
           mirror_metrics: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The same figures as a JSON-friendly dict, for ``qsec status`` and ``/api/status``."""
    snap = worker.snapshot()
    snap["bridges"] = {d: {"state": doc.get("state"), "spool": doc.get("spool"), "t": doc.get("t"),
                           "sensors": doc.get("sensors")}
                       for d, doc in sorted(worker.bridges.items())}
    snap["store"] = worker.store.counts()
    if hub is not None:
        snap["dashboard"] = {"screens": hub.subscribers, "events_dropped": hub.dropped}
    if mirror_metrics is not None:
        snap["mirror"] = mirror_metrics()
    return snap
