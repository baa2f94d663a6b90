"""The gate inspector in real headless Chromium (Debian's package) driven by Playwright (the
``browser`` fixture is in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HEATMAP_STATS = """() => {
    const canvas = document.getElementById("heatmap");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < pixels.length; i += 4) seen.add(`${pixels[i]},${pixels[i + 1]},${pixels[i + 2]}`);
    return [canvas.width, seen.size];
}"""
HEATMAP_LEFT = 48  # pixels of unit labels left of the cells (inspect.js)
REVIEW = "a wonderful , moving film with great acting and a superb story . i loved it ! but the plot was dull"


def expected_units(matrix: list[list[float]], span: tuple[int, int], threshold: float) -> list[int]:
    """LSTMVis' rule, computed here independently of the page's JavaScript."""
    a, b = span
    around = [t for t in range(max(0, a - 3), a)] + [t for t in range(b + 1, min(len(matrix), b + 4))]
    units = [
        u
        for u in range(len(matrix[0]))
        if all(matrix[t][u] >= threshold for t in range(a, b + 1))
        and all(matrix[t][u] < threshold for t in around)
    ]
    return sorted(units, key=lambda u: -sum(matrix[t][u] for t in range(a, b + 1)))


def marked_span(matrix: list[list[float]]) -> tuple[int, float]:
    """A token and a threshold at which at least one unit is on at that token and off around it."""
    for t in range(len(matrix)):
        around = [r for r in range(max(0, t - 3), min(len(matrix), t + 4)) if r != t]
        for u in range(len(matrix[0])):
            others = max(matrix[r][u] for r in around)
            if matrix[t][u] - others > 0.02:
                return t, round((matrix[t][u] + others) / 2, 4)
    raise AssertionError("no unit marks any token")


def analyse(page, text: str) -> None:
    """Type ``text`` into the page, press Analyze and wait until the page shows it (the page
    opens on its example, analysed, so a heatmap is there before the new one)."""
    page.fill("#text", text)
    page.click("#analyze")
    shown = "t => document.getElementById('results').dataset.text === t"
    page.wait_for_function(shown, arg=text, timeout=20_000)


def test_inspector_renders_the_served_activations(server, browser) -> None:
    base, _ = server
    trace = httpx.post(f"{base}/v1/trace", json={"text": REVIEW, "max_tokens": 200}).json()
    saliency = httpx.post(f"{base}/v1/trace/saliency", json={"text": REVIEW, "max_tokens": 200}).json()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    refused = []  # anything the pages' Content-Security-Policy blocked
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and refused.append(message.text)
    )
    page.goto(f"{base}/")
    page.click("text=Gate inspector")
    analyse(page, REVIEW)

    tokens = page.locator("#tokens .tok")
    assert tokens.count() == len(trace["tokens"])
    assert [tokens.nth(i).inner_text() for i in range(tokens.count())] == trace["tokens"]
    shown = [float(tokens.nth(i).get_attribute("data-running")) for i in range(tokens.count())]
    assert shown == pytest.approx(saliency["running"], abs=1e-9)
    assert page.inner_text("#label") == trace["prediction"]["label"]
    # the heatmap holds more than one colour, a column per token
    width, colours = page.evaluate(HEATMAP_STATS)
    assert colours > 10
    cell = float(page.get_attribute("#heatmap", "data-cell"))
    assert width == pytest.approx(HEATMAP_LEFT + cell * len(trace["tokens"]), abs=1)
    assert page.locator("#tabs button").count() == 6

    # choose a token and a threshold that some unit of the input gate marks, then ask the page
    matrix = trace["layers"][0]["forward"]["gates"]["input"]
    token, threshold = marked_span(matrix)
    tokens.nth(token).click()
    tokens.nth(token + 1).click(modifiers=["Shift"])
    tokens.nth(token).click()  # a plain click starts a new one-token span
    page.fill("#threshold", str(threshold))
    page.click("#find-units")
    listed = [int(u) for u in page.get_attribute("#units", "data-units").split(",") if u]
    want = expected_units(matrix, (token, token), threshold)
    assert listed == want and want
    page.click(f"#units li[data-unit='{want[0]}']")
    page.wait_for_selector("#unit-chart[data-rendered=true]")
    assert page.locator("#saturation canvas").count() == 3  # input, forget, output gates

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inspect.png"), full_page=True)
    assert (ARTIFACTS / "inspect.png").stat().st_size > 10_000
    assert not refused


def test_inspector_shows_api_errors_in_words(server, browser) -> None:
    base, _ = server
    page = browser.new_page()
    page.goto(f"{base}/inspect")
    page.fill("#text", "x" * 100_001)  # over the server's max_text_chars
    page.click("#analyze")
    page.wait_for_selector("#error:not([hidden])")
    assert "413" in page.inner_text("#error") and "characters" in page.inner_text("#error")


def test_api_docs_render_with_no_other_host_reachable(server, browser) -> None:
    """Swagger UI from the server's own assets, under the pages' Content-Security-Policy."""
    base, _ = server
    schema = httpx.get(f"{base}/openapi.json").json()
    operations = sum(len(methods) for methods in schema["paths"].values())
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    elsewhere, refused = [], []
    page.route(
        lambda url: not url.startswith(f"{base}/"),
        lambda route: elsewhere.append(route.request.url) or route.abort(),
    )
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and refused.append(message.text)
    )
    page.goto(f"{base}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() == operations
    # "Try it out" on /v1/predict: the page's own requests to the API are allowed
    predict = page.locator(".opblock-post", has=page.locator("[data-path='/v1/predict']"))
    predict.locator(".opblock-summary").click()
    predict.locator("button.try-out__btn").click()
    predict.locator("button.execute").click()
    status = predict.locator(".live-responses-table tr.response .response-col_status")
    status.wait_for(timeout=20_000)
    assert status.inner_text().strip() == "200"
    assert not elsewhere and not refused
