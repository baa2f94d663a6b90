"""The inspector's contrast view in real headless Chromium: two texts aligned token by token, with
the served running sentiment and gates of each, and their differences computed right."""

from __future__ import annotations

import httpx
import pytest

from tests.app.test_inspect_page import ARTIFACTS  # the browser fixture is in conftest.py

TEXT_A = "a wonderful , moving film with great acting . i loved it"
TEXT_B = "a dull film with terrible acting . i hated it"


def lcs_rows(left: list[str], right: list[str]) -> list[tuple[int | None, int | None]]:
    """The longest-common-subsequence alignment, computed here independently of the page."""
    n, m = len(left), len(right)
    longest = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            same = left[i] == right[j]
            longest[i][j] = longest[i + 1][j + 1] + 1 if same else max(longest[i + 1][j], longest[i][j + 1])
    rows, i, j = [], 0, 0
    while i < n or j < m:
        if i < n and j < m and left[i] == right[j]:
            rows.append((i, j))
            i, j = i + 1, j + 1
        elif i < n and (j == m or longest[i + 1][j] >= longest[i][j + 1]):
            rows.append((i, None))
            i += 1
        else:
            rows.append((None, j))
            j += 1
    return rows


def test_contrast_view_aligns_two_texts_and_shows_where_they_diverge(server, browser) -> None:
    base, _ = server
    traces = [
        httpx.post(f"{base}/v1/trace", json={"text": t, "max_tokens": 200}).json() for t in (TEXT_A, TEXT_B)
    ]
    running = [
        httpx.post(f"{base}/v1/trace/saliency", json={"text": t, "max_tokens": 200}).json()["running"]
        for t in (TEXT_A, TEXT_B)
    ]
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    refused = []
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and refused.append(message.text)
    )
    page.goto(f"{base}/inspect")
    page.click("text=contrast two texts")
    page.wait_for_load_state("load")  # the page's script listens for the form from then on
    page.fill("#text-a", TEXT_A)
    page.fill("#text-b", TEXT_B)
    page.click("#compare")
    page.wait_for_selector("#contrast[data-rendered=true]", timeout=60_000)
    page.select_option("#contrast-gate", "forget")

    expected = lcs_rows(traces[0]["tokens"], traces[1]["tokens"])
    rows = page.locator("#contrast-rows tr")
    assert rows.count() == len(expected)
    forget = [t["layers"][0]["forward"]["gates"]["forget"] for t in traces]
    first_gap = None
    last = [None, None]
    for k, (i, j) in enumerate(expected):
        row = rows.nth(k)
        assert (row.get_attribute("data-a"), row.get_attribute("data-b")) == (
            "" if i is None else str(i),
            "" if j is None else str(j),
        )
        last = [running[0][i] if i is not None else last[0], running[1][j] if j is not None else last[1]]
        gap = None if None in last else last[1] - last[0]
        shown_gap = row.get_attribute("data-gap")
        assert (shown_gap == "") if gap is None else float(shown_gap) == pytest.approx(gap, abs=1e-6)
        if first_gap is None and gap is not None and abs(gap) >= 0.1:
            first_gap = k + 1
        if i is not None and j is not None:
            # the page asks for 5 decimals; its mean |difference| matches the full trace's to 1e-5
            mean = sum(abs(a - b) for a, b in zip(forget[0][i], forget[1][j], strict=True)) / len(
                forget[0][i]
            )
            assert float(row.get_attribute("data-divergence")) == pytest.approx(mean, abs=1e-5)
        else:
            assert "edit" in row.get_attribute("class")
    assert page.get_attribute("#divergence-summary", "data-first") == str(first_gap or 0)
    assert page.locator("#contrast-chart[data-rendered=true]").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "contrast.png"), full_page=True)
    assert not refused


def test_contrast_view_shows_api_errors_in_words(server, browser) -> None:
    base, _ = server
    page = browser.new_page()
    page.goto(f"{base}/inspect/contrast", wait_until="load")
    page.fill("#text-a", "x" * 100_001)
    page.click("#compare")
    page.wait_for_selector("#contrast-error:not([hidden])")
    assert "could not compare" in page.inner_text("#contrast-error")
