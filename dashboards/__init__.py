"""qsec dashboards: the exhibition screens (FastAPI).

Modules
-------
app
    :func:`create_app`, the application and its live-data routes.
screens
    The screens' pages, visitors' walks and the data behind each view.
kiosk
    Screen configuration, store views, home-zone filter, replay, walks, SVG rendering.
reader
    A DuckDB cursor per request, store errors as HTTP 503.
live
    :class:`LiveHub`, the thread-safe fan-out of live events to screens.
sse
    Server-Sent Events encoding of hub events, with heartbeats.
page
    The screen page: template, inline configuration, local assets; the take-away walk page.
models
    Public API models (every field bounded).
i18n
    French and English labels of the screens.
"""
