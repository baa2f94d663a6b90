"""The inspector as a newcomer sees it at 1400 px, its Match View, unit contexts and language-model
view, in real headless Chromium (the ``browser`` fixture is in conftest.py), against a real
server with a corpus index, and with no request leaving for another host."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from app.match_index import build_index
from app.settings import Settings
from app.store import ModelStore
from tests.app.test_inspect_page import ARTIFACTS, analyse, expected_units
from tests.bundles import CORPUS, make_bundle
from tests.serving import start_server

THRESHOLD = 0.1  # the index's; the tiny bundle's random weights keep h small
WIDTH = 1400
EXAMPLE_TOKENS = 38  # the page's example review, as the tokenizer reads it


@pytest.fixture(scope="module")
def indexed_server(tmp_path_factory):
    """A server over a tiny bundle that reads 64 tokens, with a corpus index of 24 reviews."""
    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", max_tokens=64)
    store = ModelStore(Settings(model_dir=folder))
    store.load()
    reviews = [(i, i % 2, f"{CORPUS[i % 4]} . {CORPUS[(i + 1) % 4]}") for i in range(24)]
    index = tmp_path_factory.mktemp("index") / "index.npz"
    build_index(store.model, reviews, max_tokens=64, threshold=THRESHOLD, top_k=10, source="tiny").save(index)
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as output:
        try:
            process, base, _ = start_server(folder, env={"SENTIMENT_MATCH_INDEX": str(index)}, output=output)
        except SystemExit as error:
            pytest.fail(f"server never became ready ({error}): {log.read_text()}")
    yield base
    process.terminate()
    process.wait(timeout=10)


def open_page(browser, base: str, elsewhere: list[str]):
    """The inspector at 1400 px, analysed; requests to any other host are refused and noted."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.route(
        lambda url: not url.startswith(f"{base}/"),
        lambda route: elsewhere.append(route.request.url) or route.abort(),
    )
    page.goto(f"{base}/inspect")
    page.wait_for_selector("#results[data-text]", timeout=20_000)  # no click: it opens analysed
    return page


STRIP_GEOMETRY = """() => [...document.querySelectorAll("#tokens .tok")].map((tok) => {
    const box = tok.getBoundingClientRect(), curve = tok.querySelector("svg").getBoundingClientRect();
    const middle = tok.querySelector("polyline").getAttribute("points").split(" ")[1].split(",");
    return {top: box.top, left: box.left, right: box.right, curveLeft: curve.left,
            curveRight: curve.right, curveTop: curve.top, wordBottom: tok.querySelector(".word")
            .getBoundingClientRect().bottom, x: Number(middle[0]), y: Number(middle[1])};
})"""


def test_it_opens_on_an_analysed_example_that_fits_1400_px(indexed_server, browser) -> None:
    elsewhere: list[str] = []
    page = open_page(browser, indexed_server, elsewhere)
    text = page.input_value("#text")
    saliency = httpx.post(
        f"{indexed_server}/v1/trace/saliency", json={"text": text, "max_tokens": 200}
    ).json()
    assert page.locator("#tokens .tok").count() == len(saliency["tokens"]) == EXAMPLE_TOKENS

    # the strip wraps instead of scrolling sideways, and the page does not scroll sideways either
    strip = page.evaluate(
        "() => { const s = document.getElementById('tokens'); return [s.scrollWidth, s.clientWidth]; }"
    )
    assert strip[0] <= strip[1]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= WIDTH
    geometry = page.evaluate(STRIP_GEOMETRY)
    assert len({round(g["top"]) for g in geometry}) >= 2  # more than one line
    # each token's stretch of the running-sentiment curve lies under its word, at its value
    for g, running in zip(geometry, saliency["running"], strict=True):
        assert g["curveLeft"] == pytest.approx(g["left"], abs=1) and g["curveRight"] == pytest.approx(
            g["right"], abs=1
        )
        assert g["curveTop"] >= g["wordBottom"] - 1
        assert g["x"] == 50 and g["y"] == pytest.approx(2 + (1 - running) * 22, abs=1e-6)

    # the heatmap fills its box and labels every token and every 8th unit
    box_width = page.evaluate("() => document.getElementById('heatmap-box').clientWidth")
    canvas_width = page.evaluate("() => document.getElementById('heatmap').getBoundingClientRect().width")
    assert box_width - 4 <= canvas_width <= box_width
    assert int(page.get_attribute("#heatmap", "data-token-labels")) == EXAMPLE_TOKENS
    assert int(page.get_attribute("#heatmap", "data-unit-labels")) == math.ceil(6 / 8)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inspect-first-view.png"), full_page=True)
    assert not elsewhere


def marked_token(hidden: list[list[float]]) -> int:
    """A token that some unit of h marks at the index's threshold (LSTMVis' rule)."""
    for token in range(len(hidden)):
        if expected_units(hidden, (token, token), THRESHOLD):
            return token
    raise AssertionError("no unit of h marks any token of the example")


def test_a_span_s_matches_and_a_unit_s_top_contexts_are_listed(indexed_server, browser) -> None:
    elsewhere: list[str] = []
    page = open_page(browser, indexed_server, elsewhere)
    text = page.input_value("#text")
    trace = httpx.post(f"{indexed_server}/v1/trace", json={"text": text, "max_tokens": 200}).json()
    hidden = trace["layers"][0]["forward"]["gates"]["hidden"]
    token = marked_token(hidden)
    page.locator("#tokens .tok").nth(token).click()

    # selecting a span leaves no blank gap: the Match View heading follows the span's controls
    gap = page.evaluate(
        "() => document.getElementById('match-view').getBoundingClientRect().top"
        " - document.getElementById('find-units').getBoundingClientRect().bottom"
    )
    assert gap < 90

    units = [int(u) for u in page.get_attribute("#match-units", "data-units").split(",")]
    assert units == expected_units(hidden, (token, token), THRESHOLD)
    page.click("#find-matches")
    page.wait_for_selector("#matches li .hit", timeout=20_000)
    body = {"units": [{"layer": 0, "direction": "forward", "unit": u} for u in units], "length": 1, "k": 15}
    served = httpx.post(f"{indexed_server}/v1/inspect/match", json=body).json()
    assert served["matches"]
    hits = page.locator("#matches li .hit")
    assert [hits.nth(i).inner_text() for i in range(hits.count())] == [
        " ".join(match["tokens"]) for match in served["matches"]
    ]
    page.screenshot(path=str(ARTIFACTS / "inspect-match-view.png"), full_page=True)

    page.locator(".unit-chip").first.click()  # a unit's top contexts in the corpus
    page.wait_for_selector(f"#contexts[data-unit='0/forward/{units[0]}']", timeout=20_000)
    served = httpx.get(f"{indexed_server}/v1/inspect/units/0/forward/{units[0]}", params={"k": 8}).json()
    for side in ("highest", "lowest"):
        shown = page.locator(f"#contexts-{side} li .hit")
        assert [shown.nth(i).inner_text() for i in range(shown.count())] == [
            " ".join(c["tokens"]) for c in served[side]
        ]
    assert page.locator("#error").is_hidden()
    page.locator("#contexts").screenshot(path=str(ARTIFACTS / "inspect-unit-contexts.png"))
    assert not elsewhere


def test_without_a_language_model_the_view_says_so(indexed_server, browser) -> None:
    elsewhere: list[str] = []
    page = open_page(browser, indexed_server, elsewhere)
    page.wait_for_selector("#lm-note[data-loaded=false]")
    assert "language model is not loaded" in page.inner_text("#lm-note")
    assert page.locator("#lm-tools").is_hidden()
    assert page.locator("input[name=colour-by][value=surprisal]").is_disabled()
    assert not elsewhere


# Answers in the shapes the lm branch documents for its routes (docs/api.md, language model; its own
# tests check the routes): here they stand in for a loaded language model, so that the page's
# drawing of them is tested on this branch. The running sentiment of the continuation is real.
LM_INFO = {"loaded": True, "model": {"name": "lm", "version": "1"}, "perplexity": {"test": 150.0}}
GUESSES = [
    {"token": word, "probability": p}
    for word, p in zip(["the", "a", "this", "it", "i"], [0.2, 0.1, 0.05, 0.04, 0.03], strict=True)
]
CONTINUATION = {
    "prompt": "",
    "text": " a great film , i loved it .",
    "tokens": ["a", "great", "film", ",", "i", "loved", "it", "."],
    "seed": 7,
    "finish_reason": "length",
    "sentiment": None,
    "model": {"name": "lm", "version": "1"},
}


def lm_score(tokens: list[str]) -> dict:
    """A score answer: token i's surprisal is i + 1 bits."""
    scored = [
        {
            "token": t,
            "log_prob": -(i + 1) * math.log(2),
            "surprisal": i + 1.0,
            "unknown": False,
            "top": GUESSES,
        }
        for i, t in enumerate(tokens)
    ]
    return {
        "tokens": scored,
        "perplexity": 100.0,
        "mean_log_prob": -4.6,
        "truncated": False,
        "model": LM_INFO["model"],
    }


def test_the_language_model_view_draws_the_documented_answers(indexed_server, browser) -> None:
    base = indexed_server
    text = "a wonderful , moving film"
    tokens = httpx.post(f"{base}/v1/trace/saliency", json={"text": text}).json()["tokens"]
    elsewhere: list[str] = []
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    page.route(
        lambda url: not url.startswith(f"{base}/"),
        lambda route: elsewhere.append(route.request.url) or route.abort(),
    )
    answers = {
        "/v1/lm": LM_INFO,
        "/v1/lm/score": lm_score(tokens),
        "/v1/lm/generate": {**CONTINUATION, "prompt": text},
    }
    sent = []
    page.route(
        lambda url: url.split("?")[0].removeprefix(base) in answers,
        lambda route: (
            sent.append(route.request.post_data)
            or route.fulfill(json=answers[route.request.url.removeprefix(base)])
        ),
    )
    page.goto(f"{base}/inspect")
    page.wait_for_selector("#results[data-text]", timeout=20_000)
    analyse(page, text)
    assert "lm 1, test perplexity 150" in page.inner_text("#lm-note")

    page.check("input[name=colour-by][value=surprisal]")
    strip = page.locator("#tokens .tok")
    assert [float(strip.nth(i).get_attribute("data-surprisal")) for i in range(strip.count())] == [
        i + 1.0 for i in range(len(tokens))
    ]
    colours = {
        strip.nth(i).locator(".word").evaluate("e => e.style.background") for i in range(strip.count())
    }
    assert len(colours) == len(tokens)  # a shade per surprisal
    strip.nth(2).hover()
    tooltip = page.inner_text("#tooltip")
    assert "surprisal 3.00 bits" in tooltip and all(g["token"] in tooltip for g in GUESSES)

    page.click("#lm-continue")
    page.wait_for_selector("#continuation[data-text]", timeout=20_000)
    generate = json.loads(next(body for body in sent if body and "prompt" in body))
    assert generate["prompt"] == text and generate["seed"] == 7
    generated = page.locator("#continuation .tok.generated")
    assert [generated.nth(i).inner_text() for i in range(generated.count())] == CONTINUATION["tokens"]
    whole = httpx.post(f"{base}/v1/trace/saliency", json={"text": text + CONTINUATION["text"]}).json()
    running = [float(generated.nth(i).get_attribute("data-running")) for i in range(generated.count())]
    assert running == pytest.approx(whole["running"][len(tokens) :], abs=1e-9)
    page.locator("#lm-tools").screenshot(path=str(ARTIFACTS / "inspect-lm-view.png"))
    page.screenshot(path=str(ARTIFACTS / "inspect-lm.png"), full_page=True)
    assert not elsewhere


@pytest.fixture(scope="module")
def lm_server(tmp_path_factory):
    """A server with a tiny classifier and a tiny language model over its vocabulary: only where
    the language-model routes are part of the app (the lm branch)."""
    pytest.importorskip("app.lm", reason="the language-model routes come with the lm branch")
    from model.tokenizer import Tokenizer
    from tests.bundles import make_lm_bundle

    folder, _, _ = make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", max_tokens=64)
    lm = make_lm_bundle(tmp_path_factory.mktemp("lm"), Tokenizer.load(folder / "tokenizer.json"))
    process, base, _ = start_server(folder, env={"SENTIMENT_LM_BUNDLE": str(lm)})
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_the_language_model_view_with_the_served_language_model(lm_server, browser) -> None:
    base, text = lm_server, "a wonderful , moving film"
    elsewhere: list[str] = []
    page = open_page(browser, base, elsewhere)
    page.wait_for_selector("#lm-note[data-loaded=true]")
    analyse(page, text)
    scored = httpx.post(f"{base}/v1/lm/score", json={"text": text, "top_k": 5}).json()["tokens"]
    page.check("input[name=colour-by][value=surprisal]")
    strip = page.locator("#tokens .tok")
    shown = [float(strip.nth(i).get_attribute("data-surprisal")) for i in range(strip.count())]
    assert shown == pytest.approx([token["surprisal"] for token in scored], abs=1e-9)
    strip.nth(1).hover()
    assert all(guess["token"] in page.inner_text("#tooltip") for guess in scored[1]["top"])

    page.fill("#lm-new-tokens", "12")
    page.click("#lm-continue")
    page.wait_for_selector("#continuation[data-text]", timeout=20_000)
    same = {"prompt": text, "max_new_tokens": 12, "temperature": 0.8, "seed": 7}
    generated = httpx.post(f"{base}/v1/lm/generate", json=same).json()  # the same seed, the same text
    assert page.get_attribute("#continuation", "data-text") == generated["text"]
    assert page.locator("#continuation .tok.generated").count() == len(
        httpx.post(f"{base}/v1/trace/saliency", json={"text": text + generated["text"]}).json()["tokens"]
    ) - len(scored)
    page.screenshot(path=str(ARTIFACTS / "inspect-lm-served.png"), full_page=True)
    assert not elsewhere
