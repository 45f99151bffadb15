"""Server-side SVG of a walk: its trace on the local base layer, its PM2.5 profile, and a QR code.

The trace is drawn on a local tangent plane (equirectangular projection
around the walk's centre, exact to well under 1 % over a town), over the
schematic base layer shipped in ``static/geo/yvelines.geojson``, with a
scale bar and a north arrow.  Each step of the trace takes the colour of
its PM2.5 in the screen's index.  No tile, no network.

The QR code is made by the ``qrcode`` package (pure Python, SVG output, no
imaging library needed).

Sources
-------
- ISO/IEC 18004:2015 (QR code), through python-qrcode, https://github.com/lincolnloop/python-qrcode
- SVG 1.1, https://www.w3.org/TR/SVG11/
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]

from analysis.indices import Band

EARTH_RADIUS_M = 6_371_008.8  # [m] IUGG mean radius, as analysis.trips
BASEMAP = Path(__file__).resolve().parents[1] / "static" / "geo" / "yvelines.geojson"
STYLE = {  # kind -> (stroke, width, fill)
    "park": ("none", 0.0, "#dfeedd"),
    "water": ("#8cc3e8", 7.0, "none"),
    "main": ("#b9bfc7", 6.0, "none"),
    "street": ("#d2d6db", 4.0, "none"),
    "path": ("#c9dcc4", 3.0, "none"),
}


@cache
def basemap() -> dict[str, Any]:
    """The shipped base layer (GeoJSON FeatureCollection)."""
    document: dict[str, Any] = json.loads(BASEMAP.read_text(encoding="utf-8"))
    return document


class Frame:
    """Projection of WGS84 degrees onto an SVG box of ``width`` × ``height`` around some points."""

    def __init__(self, lat: Sequence[float], lon: Sequence[float], width: float, height: float,
                 pad: float = 40.0, min_span_m: float = 400.0) -> None:
        self.lat0 = (min(lat) + max(lat)) / 2
        self.lon0 = (min(lon) + max(lon)) / 2
        self.k = math.cos(math.radians(self.lat0))
        xs = [self._x(v) for v in lon]
        ys = [self._y(v) for v in lat]
        span_x = max(max(xs) - min(xs), min_span_m)
        span_y = max(max(ys) - min(ys), min_span_m)
        self.scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)  # [px/m]
        self.width, self.height = width, height

    def _x(self, lon: float) -> float:
        return EARTH_RADIUS_M * self.k * math.radians(lon - self.lon0)

    def _y(self, lat: float) -> float:
        return EARTH_RADIUS_M * math.radians(lat - self.lat0)

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """SVG coordinates [px] of a point."""
        return self.width / 2 + self._x(lon) * self.scale, self.height / 2 - self._y(lat) * self.scale

    def inside(self, coords: Sequence[Sequence[float]], margin: float = 200.0) -> bool:
        """Whether any vertex ``[lon, lat]`` falls within the box (plus a margin [px])."""
        for lon, lat in coords:
            x, y = self.xy(lat, lon)
            if -margin <= x <= self.width + margin and -margin <= y <= self.height + margin:
                return True
        return False


def nice_length(max_m: float) -> float:
    """The largest 1, 2 or 5 × 10^k metres not above ``max_m``."""
    power = 10 ** math.floor(math.log10(max_m))
    return max(step * power for step in (1, 2, 5) if step * power <= max_m)


def band_of(value: float | None, bands: Sequence[Band]) -> Band | None:
    """The band a value falls in (bands include their upper bound); None without a value."""
    if value is None or not math.isfinite(value):
        return None
    for band in bands:
        if value <= band.upper:
            return band
    return bands[-1]


def _points(frame: Frame, coords: Sequence[Sequence[float]]) -> str:
    return " ".join("{:.1f},{:.1f}".format(*frame.xy(lat, lon)) for lon, lat in coords)


def _base(frame: Frame) -> list[str]:
    parts: list[str] = []
    labels: list[str] = []
    for feature in basemap()["features"]:
        kind = feature["properties"].get("kind", "street")
        geometry = feature["geometry"]
        if geometry["type"] == "Point":
            lon, lat = geometry["coordinates"]
            if frame.inside([[lon, lat]], margin=-20):
                x, y = frame.xy(lat, lon)
                name = html.escape(feature["properties"].get("name", ""))
                labels.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#8a949f"/>'
                              f'<text x="{x + 8:.1f}" y="{y + 8:.1f}" fill="#444" font-size="22" font-weight="normal">{name}</text>')
            continue
        coords = geometry["coordinates"][0] if geometry["type"] == "Polygon" else geometry["coordinates"]
        if not frame.inside(coords):
            continue
        stroke, width, fill = STYLE.get(kind, STYLE["street"])
        tag = "polygon" if geometry["type"] == "Polygon" else "polyline"
        parts.append(f'<{tag} points="{_points(frame, coords)}" fill="{fill}" stroke="{stroke}" '
                     f'stroke-width="{width}" stroke-linecap="round" stroke-linejoin="round"/>')
    return parts + labels


def _furniture(frame: Frame, metres: str) -> list[str]:
    """Scale bar (bottom left) and north arrow (top right)."""
    length_m = nice_length(frame.width * 0.25 / frame.scale)
    px = length_m * frame.scale
    x0, y0 = 24.0, frame.height - 26.0
    text = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} {metres}"
    nx, ny = frame.width - 40.0, 30.0
    scale = (f'<g class="scale"><rect x="{x0 - 8}" y="{y0 - 40}" width="{px + 16:.1f}" height="54" rx="6" '
             f'fill="#fff" fill-opacity="0.85"/><path d="M{x0},{y0 - 8}V{y0}H{x0 + px:.1f}V{y0 - 8}" fill="none" '
             f'stroke="#111" stroke-width="3"/><text x="{x0 + px / 2:.1f}" y="{y0 - 12}" text-anchor="middle">'
             f'{text}</text></g>')
    north = (f'<g class="north"><path d="M{nx},{ny - 18}L{nx + 11},{ny + 14}L{nx},{ny + 7}L{nx - 11},{ny + 14}Z" '
             f'fill="#111"/><text x="{nx}" y="{ny + 36}" text-anchor="middle">N</text></g>')
    return [scale, north]


def walk_map(lat: Sequence[float], lon: Sequence[float], pm: Sequence[float | None], bands: Sequence[Band], *,
             width: int = 900, height: int = 900, metres: str = "m") -> str:
    """SVG of a trace coloured by PM2.5 over the base layer, with scale bar and north arrow."""
    frame = Frame(lat, lon, width, height)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="walk-map" '
            f'role="img" font-family="DejaVu Sans, sans-serif" font-size="26" font-weight="bold">')
    parts = [head, f'<rect width="{width}" height="{height}" fill="#f4f1ea"/>', *_base(frame)]
    xy = [frame.xy(a, b) for a, b in zip(lat, lon, strict=True)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#222" stroke-width="14" stroke-linecap="round" '
                 f'stroke-linejoin="round"/>')  # one dark casing under the coloured steps
    for i in range(1, len(xy)):
        band = band_of(pm[i], bands)
        colour = band.colour if band is not None and band.colour else "#7a7a7a"
        (x1, y1), (x2, y2) = xy[i - 1], xy[i]
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
                     f'stroke-width="8" stroke-linecap="round"/>')
    if xy:
        (sx, sy), (ex, ey) = xy[0], xy[-1]
        parts.append(f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="11" fill="#fff" stroke="#111" stroke-width="4"/>'
                     f'<circle cx="{ex:.1f}" cy="{ey:.1f}" r="11" fill="#111"/>')
    parts += _furniture(frame, metres)
    parts.append("</svg>")
    return "".join(parts)


def profile(minutes: Sequence[float], pm: Sequence[float | None], bands: Sequence[Band], guideline: float, *,
            width: int = 900, height: int = 360, guide_label: str = "OMS", minute_label: str = "min") -> str:
    """SVG of PM2.5 [µg/m³] against minutes since the start, bands shaded, WHO level dashed."""
    values = [v for v in pm if v is not None and math.isfinite(v)]
    top = max([guideline * 1.5, *(v * 1.15 for v in values)])
    left, bottom = 70.0, 44.0
    span = max(max(minutes, default=1.0), 1.0)

    def x(m: float) -> float:
        return left + m / span * (width - left - 10)

    def y(v: float) -> float:
        return (height - bottom) * (1 - min(v, top) / top) + 4

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="walk-profile" '
              f'role="img" font-family="DejaVu Sans, sans-serif" font-size="26">')]
    lower = 0.0
    for band in bands:
        upper = min(band.upper, top)
        if upper > lower and band.colour:
            parts.append(f'<rect x="{left}" y="{y(upper):.1f}" width="{width - left - 10}" '
                         f'height="{y(lower) - y(upper):.1f}" fill="{band.colour}" fill-opacity="0.35"/>')
        lower = band.upper
        if lower >= top:
            break
    line = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in zip(minutes, pm, strict=True) if v is not None)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#111" stroke-width="3" stroke-linejoin="round"/>')
    gy = y(guideline)
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#111" '
                 f'stroke-dasharray="8 6" stroke-width="2"/><text x="{width - 14}" y="{gy - 6:.1f}" '
                 f'text-anchor="end">{html.escape(guide_label)} {guideline:g}</text>')
    parts.append(f'<text x="{left - 8}" y="28" text-anchor="end">{top:.0f}</text>'
                 f'<text x="{left - 8}" y="{height - bottom + 4}" text-anchor="end">0</text>'
                 f'<text x="{left}" y="{height - 8}">0 {minute_label}</text>'
                 f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{span:.0f} {minute_label}</text>'
                 f'<path d="M{left},4V{height - bottom + 4}H{width - 10}" fill="none" stroke="#555" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def qr_svg(url: str) -> str:
    """SVG of a QR code for ``url`` (medium error correction, black on white)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2,
                         image_factory=qrcode.image.svg.SvgPathFillImage)
    code.add_data(url)
    code.make(fit=True)
    text: str = code.make_image().to_string(encoding="unicode")
    return text
