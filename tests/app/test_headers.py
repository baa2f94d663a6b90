"""Security headers: nosniff and no framing on every response, a strict policy on the pages."""

from __future__ import annotations

import re

import pytest

from app.api import pages

PAGES = ("/", "/inspect", "/docs")


def _policy(response) -> dict[str, str]:
    directives = [d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")]
    return {name: value for name, value in directives}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("POST", "/v1/predict", {"text": "a wonderful film"}, 200),
        ("POST", "/v1/predict", {"text": ""}, 422),
        ("POST", "/v1/predict", {"text": "x" * 3000}, 413),  # refused by the body-size middleware
        ("GET", "/nope", None, 404),
        ("GET", "/v1/model", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/static/inspect.js", None, 200),
        ("GET", "/docs/static/swagger-ui.css", None, 200),
        *[("GET", page, None, 200) for page in PAGES],
    ],
)
def test_every_response_forbids_sniffing_and_framing(make_client, method, path, body, status) -> None:
    client = make_client(max_body_bytes=2048)
    response = client.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    is_page = response.headers["content-type"].startswith("text/html")
    assert ("content-security-policy" in response.headers) == is_page  # only pages are rendered


@pytest.mark.parametrize("page", PAGES)
def test_pages_allow_only_their_own_scripts_styles_images_and_requests(client, page) -> None:
    policy = _policy(client.get(page))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"  # Swagger UI's stylesheet draws icons from data: URIs
    # the one inline script allowed is Swagger UI's start, by its hash; never 'unsafe-inline'
    assert re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]+=*'", policy["script-src"])
    assert "unsafe" not in client.get(page).headers["content-security-policy"]


def test_the_inline_script_hash_is_that_of_the_docs_page(client) -> None:
    html = client.get("/docs").text
    assert pages._inline_script_hashes(html) == [_policy(client.get("/docs"))["script-src"].split()[1]]


def test_the_inspector_has_no_inline_script_or_style() -> None:
    """The policy allows no inline code on the inspector: its script and styles are files."""
    html = (pages.STATIC / "inspect.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html and not re.search(r"\sstyle=", html) and not re.search(r"\son\w+=", html)
    assert "<style" not in pages.INDEX and "<script" not in pages.INDEX
