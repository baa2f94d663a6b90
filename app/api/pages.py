"""The web pages: a start page and the gate inspector (assets served from app/static, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)

INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>IMDB LSTM sentiment</title>
<link rel="stylesheet" href="/static/inspect.css"></head><body><h1>IMDB LSTM sentiment</h1><ul>
<li><a href="/inspect">Gate inspector</a>: look inside the LSTM as it reads a review</li>
<li><a href="/docs">API documentation</a></li><li><a href="/v1/model">Model card</a></li>
<li><a href="/metrics">Metrics</a></li></ul></body></html>"""


@router.get("/")
async def index() -> HTMLResponse:
    """Links to the inspector, the API docs and the model card."""
    return HTMLResponse(INDEX)


@router.get("/inspect")
async def inspect() -> FileResponse:
    """The gate inspector page."""
    return FileResponse(STATIC / "inspect.html")
