"""qsec dashboards: the live exhibition screen (FastAPI).

Modules
-------
app
    :func:`create_app`, the application and its routes.
live
    :class:`LiveHub`, the thread-safe fan-out of live events to screens.
sse
    Server-Sent Events encoding of hub events, with heartbeats.
page
    The kiosk page: template, inline configuration, local assets.
models
    Public API models (every field bounded).
i18n
    French and English labels of the page.
"""
