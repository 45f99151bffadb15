"""Exhibition screens: configuration, store views, privacy filter, replay and visitors' walks.

Modules
-------
config
    :class:`ScreenConfig` per screen, from URL parameters or ``screens.toml``.
zones
    Home-zone masking of everything a public screen receives.
store
    Store reads behind the views: positions with PM, day means, campaign counts.
views
    The answers of the store-backed views (WHO comparison, trips, summary).
walks
    Visitors' walks: detection, short codes, comparison, one-page summary.
render
    Server-side SVG of a walk (trace on the base layer, profile) and its QR code.
replay
    A recorded day to replay when live data is thin.
models
    Public models of the screen API (every field bounded).
"""
