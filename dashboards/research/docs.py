"""The API's interactive documentation (Swagger UI) with every asset served by qsec itself.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN; exhibitions
and field laptops are often offline, so ``/research/docs`` serves the
JavaScript and CSS of the ``swagger-ui-bundle`` package (Swagger UI
4.15.5, Apache-2.0) from ``/research/docs/assets/…``.  The page reads the
application's own OpenAPI document (``app.openapi_url``).

Sources
-------
- FastAPI, "Custom Docs UI Static Assets (Self-Hosting)":
  https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/
- swagger-ui-bundle: https://github.com/spec-first/swagger_ui_bundle
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png"}


def add_docs_routes(router: APIRouter, prefix: str = "/research/docs") -> None:
    """``GET {prefix}`` (the page) and ``GET {prefix}/assets/{name}`` (its files)."""

    @router.get(prefix, include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (request.app.openapi_url or "/openapi.json"), title="qsec — researcher API",
            swagger_js_url=f"{root}{prefix}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{prefix}/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}{prefix}/assets/favicon-32x32.png")

    @router.get(prefix + "/assets/{name}", include_in_schema=False, response_class=FileResponse)
    def asset(name: Annotated[str, Path(max_length=40)]) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(str(swagger_ui_path / name), media_type=ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})
