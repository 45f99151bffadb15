"""What a visitor would find wrong on an exhibition screen, measured in the page by Chromium's layout.

- :func:`layout_problems`: an element drawn outside the box it belongs to (a card, a view), or text
  wider than its own box (cut off by an ellipsis or spilling over), from ``getBoundingClientRect``
  and ``scrollWidth``/``clientWidth`` (CSSOM View Module, https://www.w3.org/TR/cssom-view-1/).
- :func:`contrast_problems`: text whose contrast ratio with what is painted behind it is below WCAG
  2.1 AA (success criterion 1.4.3: 4.5:1, or 3:1 for large text, i.e. at least 18 pt — 24 CSS px — or
  14 pt bold — 18.66 CSS px), with the relative luminance of WCAG 2.1's definition; backgrounds,
  colours with alpha and ``opacity`` of every ancestor are composited as the CSS Compositing spec
  describes (simple alpha compositing, group opacity), https://www.w3.org/TR/WCAG21/#contrast-minimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SIZES = ((1920, 1080), (1280, 720), (1080, 1920))  # the exhibitions' screens [CSS px], the last one portrait

_NAME = """(el) => {
  const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
  const card = el.closest("[data-device]");
  const classes = String(el.className.baseVal ?? el.className).trim().replace(/ +/g, ".");
  return `${card ? card.dataset.device + " " : ""}${el.tagName.toLowerCase()}.${classes} «${text}»`;
}"""

_LAYOUT = """([outer, inner, name]) => {
  const describe = (""" + _NAME + """);
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const edges = (r) => [r.left, r.top, r.right, r.bottom].map(Math.round).join(",");
  const problems = [];
  for (const box of document.querySelectorAll(outer)) {
    if (!shown(box)) continue;
    const b = box.getBoundingClientRect();
    for (const el of [box, ...box.querySelectorAll(inner)]) {
      if (!shown(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const outside = r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1 || r.bottom > b.bottom + 1;
      if (el !== box && outside) {
        problems.push(`${describe(el)} outside its ${name} [${edges(r)}] vs [${edges(b)}]`);
      }
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
        problems.push(`${describe(el)} cut off: ${el.scrollWidth} px of text in ${el.clientWidth} px`);
      }
    }
  }
  return problems;
}"""

_CONTRAST = """(selector) => {
  const describe = (""" + _NAME + """);
  const rgba = (css) => {
    const v = (css.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number);
    return v.length > 3 ? v : [...v, 1];
  };
  const over = (top, below, alpha) => below.map((c, i) => top[i] * alpha + c * (1 - alpha));
  const lum = (c) => {
    const [r, g, b] = c.map((v) => v / 255).map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  // the pixel under a glyph (withText) or beside it, from the root down, each opacity a group
  const paint = (chain, i, behind, withText) => {
    const style = getComputedStyle(chain[i]);
    const bg = rgba(style.backgroundColor);
    let inside = bg[3] > 0 ? over(bg, behind, bg[3]) : behind;
    if (i === chain.length - 1) {
      const ink = rgba(style.color);
      if (withText) inside = over(ink, inside, ink[3]);
    } else {
      inside = paint(chain, i + 1, inside, withText);
    }
    return over(inside, behind, Number(style.opacity));
  };
  const problems = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    const own = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own) continue;
    const chain = [];
    for (let n = el; n; n = n.parentElement) chain.unshift(n);
    const page = [255, 255, 255];
    const fg = paint(chain, 0, page, true);
    const bg = paint(chain, 0, page, false);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const needed = large ? 3 : 4.5;
    if (ratio < needed) problems.push(`${describe(el)} ${ratio.toFixed(2)}:1 < ${needed}:1`);
  }
  return problems;
}"""


def layout_problems(page: Any, outer: str, inner: str = "*", name: str = "box") -> list[str]:
    """Elements matching ``inner`` drawn outside their ``outer`` ancestor, and text cut off in either."""
    problems: list[str] = page.evaluate(_LAYOUT, [outer, inner, name])
    return problems


def contrast_problems(page: Any, selector: str) -> list[str]:
    """Text in elements matching ``selector`` below WCAG 2.1 AA contrast against what is behind it."""
    problems: list[str] = page.evaluate(_CONTRAST, selector)
    return problems


def settled(page: Any, check: Callable[[], list[str]], timeout: float = 3.0) -> list[str]:
    """Poll ``check`` until it finds nothing or ``timeout`` [s] passes (the page lays out again after a
    resize or new data); return what it found last.  Playwright keeps serving the page meanwhile."""
    deadline = time.monotonic() + timeout
    while (problems := check()) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return problems


def problems_at_every_size(page: Any, check: Callable[[], list[str]]) -> dict[str, list[str]]:
    """``check`` at each of :data:`SIZES` once the page has laid out again; the sizes that fail."""
    found = {}
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        if problems := settled(page, check):
            found[f"{width}×{height}"] = problems
    page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})
    return found
