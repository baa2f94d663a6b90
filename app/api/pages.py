"""The web pages: a start page, the gate inspector and the API docs, every asset served here.

The inspector's assets live in app/static; Swagger UI's come from the fastapi-offline package,
so the docs work without a network. :func:`content_security_policy` is the policy the pages
are served under: only this server's scripts, styles and images. ReDoc is not served: it
injects ``<style>`` elements at run time, which that policy refuses (it would need
``'unsafe-inline'`` styles), and Swagger UI documents the same schema.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
DOCS_ASSETS = "/docs/static"  # where docs_assets() is mounted
OPENAPI_URL = "/openapi.json"  # FastAPI's default
TITLE = "IMDB LSTM sentiment"
router = APIRouter(include_in_schema=False)

INDEX = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>
<link rel="stylesheet" href="/static/inspect.css"></head><body><h1>{TITLE}</h1><ul>
<li><a href="/inspect">Gate inspector</a>: look inside the LSTM as it reads a review</li>
<li><a href="/inspect/contrast">Contrast two texts</a>: a review and its minimal edit, side by side</li>
<li><a href="/docs">API documentation</a></li><li><a href="/v1/model">Model card</a></li>
<li><a href="/metrics">Metrics</a></li></ul></body></html>"""


def docs_assets() -> StaticFiles:
    """Swagger UI's script, stylesheet and favicon, as fastapi-offline ships them."""
    return StaticFiles(packages=[("fastapi_offline", "static")])


def swagger_ui_page() -> HTMLResponse:
    """Swagger UI over the OpenAPI schema, from local assets."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - API documentation",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        oauth2_redirect_url=None,  # the API takes a key header, no OAuth
        swagger_ui_parameters={"validatorUrl": None},  # else it asks swagger.io to validate the schema
    )


def _inline_script_hashes(html: str) -> list[str]:
    """CSP source expressions allowing exactly the inline scripts of ``html``."""
    bodies = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)  # no src: inline
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies]


def content_security_policy() -> str:
    """Same-origin scripts, styles, images and requests only; no plugins, no framing.

    FastAPI's Swagger UI page starts it with an inline script: that script is allowed by its
    hash (CSP level 2), so no other inline code runs. Swagger UI's stylesheet draws its icons
    from ``data:`` images.
    """
    scripts = " ".join(["'self'", *_inline_script_hashes(swagger_ui_page().body.decode())])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@router.get("/")
async def index() -> HTMLResponse:
    """Links to the inspector, the API docs and the model card."""
    return HTMLResponse(INDEX)


@router.get("/inspect")
async def inspect() -> FileResponse:
    """The gate inspector page."""
    return FileResponse(STATIC / "inspect.html")


@router.get("/inspect/contrast")
async def inspect_contrast() -> FileResponse:
    """The contrast view: two texts' running sentiment and gates, token by token."""
    return FileResponse(STATIC / "contrast.html")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI: the interactive API documentation."""
    return swagger_ui_page()
