"""The page in a real headless browser (Debian's chromium, driven by Playwright).

Type a formula and submit, run a check, follow a shared link; each test saves a screenshot
(see :func:`web_server.artifact_dir`). The tests skip, naming the reason, where Playwright or
a chromium binary is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from web_server import artifact_dir, keep, serving  # noqa: E402

CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM") or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "")
     if p and Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install chromium, or set "
                             "CHAINRULE_CHROMIUM to one)")

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server():
    with serving() as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox"])
        except sync_api.Error as exc:
            pytest.skip(f"chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return artifact_dir(tmp_path_factory)


def _shot(page, shots: Path, name: str) -> None:
    path = shots / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    keep(path)


def test_type_a_formula_and_read_the_steps(server, page, shots):
    page.goto(server)
    page.fill("#derive-expression", "x*sigmoid(x)")
    page.click("#derive-submit")
    page.wait_for_selector("#derive-result")
    # The address is the shareable link, without the empty fields of the form.
    assert page.url == server + "derive?expression=x%2Asigmoid%28x%29"
    steps = page.locator("#derive-result li.step")
    assert steps.count() >= 3
    assert page.locator("#derive-result li.step").first.get_attribute("data-rule") == "product"
    assert "Product rule" in page.inner_text("#derive-result ol.steps")
    result = page.locator("#derive-result .result")
    assert result.locator("math").count() >= 1
    # MathML rendered by the browser: the result's math has a real size on screen
    box = result.locator("math").first.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 10
    assert "σ" in result.text_content()  # the DOM text (the browser shows an italic 𝜎)
    assert page.inner_text("#derive-result .singularities").strip().endswith("none")
    assert page.locator("#derive-result figure.plot svg path").count() >= 2
    # The check panel starts from the same function.
    assert page.input_value("#check-function") == "x*sigmoid(x)"
    _shot(page, shots, "derive.png")


def test_singular_points_and_warnings_are_set_apart(server, page, shots):
    page.goto(server)
    page.select_option("#derive-activation", "tanh")
    page.select_option("#derive-loss", "bce")
    page.click("#derive-submit")
    page.wait_for_selector("#derive-result")
    assert "yhat = 0" in page.inner_text("#derive-result .singularities")
    assert "Domain conflict" in page.inner_text("#derive-result .warnings")
    forms = page.locator("#derive-result .result-row")
    assert [forms.nth(i).get_attribute("data-form") for i in range(forms.count())] == [
        "output", "input"]
    _shot(page, shots, "derive-composition.png")


def test_run_a_check_and_read_the_diagnosis(server, page, shots):
    page.goto(server)
    page.fill("#check-formula", "-(y/yhat + (1-y)/(1-yhat))")
    page.select_option("#check-loss", "bce")
    page.click("#check-submit")
    page.wait_for_selector("#check-result")
    report = page.locator("#check-result .chainrule-check")
    assert report.get_attribute("data-correct") == "false"
    assert page.inner_text("#check-result .chainrule-verdict") == "not correct"
    table = page.inner_text("#check-result table.findings")
    assert "wrong sign" in table and "second term" in table
    _shot(page, shots, "check.png")


def test_a_correct_check_says_so(server, page):
    page.goto(server)
    page.fill("#check-formula", "(yhat - y)/(yhat*(1 - yhat))")
    page.select_option("#check-loss", "bce")
    page.click("#check-submit")
    page.wait_for_selector("#check-result")
    assert page.inner_text("#check-result .chainrule-verdict") == "correct"


def test_follow_a_shared_link(server, page, browser, shots):
    page.goto(server + "derive?expression=tanh")
    link = page.locator("#derive-result a.share")
    href = link.get_attribute("href")
    shared = server.rstrip("/") + href
    assert link.inner_text() == shared
    # A second person opens the link in a fresh browser context.
    other = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        second = other.new_page()
        second.set_default_timeout(TIMEOUT_MS)
        second.goto(shared)
        second.wait_for_selector("#derive-result")
        assert second.input_value("#derive-expression") == "tanh"
        assert (second.inner_text("#derive-result .result")
                == page.inner_text("#derive-result .result"))
        assert "output form" in second.inner_text("#derive-result .result")
        _shot(second, shots, "shared-link.png")
    finally:
        other.close()


def test_a_bad_formula_shows_a_message_not_a_traceback(server, page):
    page.goto(server)
    page.fill("#derive-expression", "__import__('os')")
    page.click("#derive-submit")
    page.wait_for_selector(".error")
    text = page.inner_text(".error")
    assert "Unknown function '__import__'" in text
    assert "Traceback" not in page.content()


_MONOSPACE_MATHS = """root => [...root.querySelectorAll('*')].filter(e =>
    getComputedStyle(e).fontFamily.includes('monospace') && e.closest('ol.steps, .result')
    && e.textContent.trim()).map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 40))"""


def _maths_per_step(page, where: str) -> list[int]:
    steps = page.locator(f"{where} ol.steps > li.step")
    return [steps.nth(i).locator("math").count() for i in range(steps.count())]


def test_a_network_derivation_is_set_in_mathml_step_by_step(server, page, shots):
    page.goto(server + "derive?network=relu%2Csigmoid&loss=bce")
    page.wait_for_selector("#derive-result")
    result = page.locator("#derive-result")
    assert result.locator("pre").count() == 0
    assert result.evaluate(_MONOSPACE_MATHS) == []
    counts = _maths_per_step(page, "#derive-result")
    assert len(counts) == 8 and min(counts) >= 1, counts
    # Xᵀ Δ₁ / m drawn by the browser: the transpose is a superscript above the baseline
    transposed = result.locator("msup", has_text="X⊤").first
    box, base = transposed.bounding_box(), transposed.locator("mi").first.bounding_box()
    assert box["height"] > base["height"] * 0.9 and box["width"] > base["width"]
    assert all(m.get_attribute("alttext") for m in result.locator("math").all())
    _shot(page, shots, "derive-network.png")


@pytest.mark.parametrize("layer, steps", [("conv2d", 7), ("maxpool", 3), ("avgpool", 2),
                                          ("rnn", 4), ("lstm", 6)])
def test_a_layer_derivation_is_set_in_mathml_step_by_step(server, page, shots, layer, steps):
    page.goto(server + f"derive?expression={layer}")
    page.wait_for_selector("#derive-result")
    result = page.locator("#derive-result")
    assert result.locator("pre").count() == 0
    assert result.evaluate(_MONOSPACE_MATHS) == []
    counts = _maths_per_step(page, "#derive-result")
    assert len(counts) == steps and min(counts) >= 1, counts
    # every formula has a real size on screen: the browser drew it as maths
    blocks = result.locator("math[display=block]").all()
    assert len(blocks) >= steps
    for box in (m.bounding_box() for m in blocks[:4]):
        assert box is not None and box["width"] > 20 and box["height"] > 8
    _shot(page, shots, f"derive-{layer}.png")


def test_the_softmax_jacobian_is_set_in_mathml_with_its_title_once(server, page, shots):
    page.goto(server + "derive?activation=softmax")
    page.wait_for_selector("#derive-result")
    text = page.inner_text("#derive-result")
    assert text.count("Jacobian of softmax") == 1
    assert min(_maths_per_step(page, "#derive-result")) >= 1
    assert page.locator("#derive-result pre").count() == 0
    _shot(page, shots, "derive-softmax.png")


def test_a_wrong_matrix_check_shows_the_formulas_as_maths(server, page, shots):
    page.goto(server + "check?formula=X+%40+%28%28Yhat+-+T%29+%40+W2.T+%2A+%28Z1+%3E+0%29%29+"
                       "%2F+m&loss=bce&network=relu%2Csigmoid&wrt=W1")
    page.wait_for_selector("#check-result")
    assert page.inner_text("#check-result .chainrule-verdict") == "not correct"
    forms = page.locator("#check-result table.forms")
    assert forms.locator("math").count() >= 2  # yours and the expected one
    assert "transpose missing" in forms.inner_text()  # the difference
    assert forms.locator("msup", has_text="X⊤").count() >= 1
    _shot(page, shots, "check-matrix.png")


@pytest.mark.parametrize(("activation", "loss"), [
    ("tanh", "bce"), ("gelu", "bce"), ("elu", "huber"), ("selu", "mse"), ("softplus", "bce")])
def test_the_two_result_forms_of_a_composition_never_touch(server, page, activation, loss):
    page.goto(f"{server}derive?activation={activation}&loss={loss}")
    rows = page.locator("#derive-result .result-row math")
    boxes = [rows.nth(i).bounding_box() for i in range(rows.count())]
    assert len(boxes) == 2
    upper, lower = boxes
    assert lower["y"] >= upper["y"] + upper["height"] + 4, boxes  # a visible gap between them


def test_the_page_says_how_a_typed_formula_was_read(server, page, shots):
    page.goto(server)
    page.fill("#derive-expression", "2x(1 − x) + σ z")
    page.click("#derive-submit")
    page.wait_for_selector("#derive-result .read-as")
    line = page.locator("#derive-result .read-as")
    box = line.locator("math").bounding_box()
    assert box is not None and box["width"] > 50  # MathML set by the browser, no script
    assert "2*x*(1 - x) + sigmoid(z)" in line.inner_text()
    page.fill("#derive-expression", "2ŷ + q")
    page.click("#derive-submit")
    page.wait_for_selector(".error")
    assert "2*yhat + q" in page.inner_text(".read-as")
    _shot(page, shots, "read-as.png")
