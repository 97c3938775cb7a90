"""The web application through Starlette's test client: the API answers exactly what the
command line prints, errors are one-line messages, limits hold, nothing is written to disk."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient

from chainrule._panels import CHECK, DERIVE
from chainrule.cli import main
from chainrule.web.app import MAX_QUERY_BYTES, create_app
from chainrule.web.worker import EnginePool

RUNAWAY = "exp(exp(exp(exp(x))))*log(log(log(x)))"  # SymPy needs minutes for its derivative
BUDGET = 8.0


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # Run from an empty folder to show that serving writes nothing to disk.
    folder = tmp_path_factory.mktemp("cwd")
    before = os.getcwd()
    os.chdir(folder)
    app = create_app(EnginePool(2, BUDGET))
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            c.get("/api/derive", params={"expression": "x"})  # wait for a ready worker
            yield c
        assert list(folder.iterdir()) == []
    finally:
        os.chdir(before)


def _cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


# --- the API is the command line's JSON ---------------------------------------------------------


@pytest.mark.parametrize("query, argv", [
    ({"expression": "sigmoid"}, ["sigmoid"]),
    ({"expression": "x*sigmoid(x)"}, ["x*sigmoid(x)"]),
    ({"expression": "sigmoid", "method": "chain"}, ["sigmoid", "--method", "chain"]),
    ({"activation": "tanh", "loss": "bce", "weights": "1"},
     ["--activation", "tanh", "--loss", "bce", "--weights"]),
    ({"loss": "mse", "half": "true"}, ["--loss", "mse", "--half"]),
    ({"expression": "log(1 + exp(w))", "wrt": "w"}, ["log(1 + exp(w))", "--wrt", "w"]),
    ({"expression": "-x*tanh(x)"}, ["--", "-x*tanh(x)"]),
    ({"network": "relu,sigmoid", "loss": "bce"}, ["--network", "relu,sigmoid", "--loss", "bce"]),
    ({"activation": "softmax", "loss": "ce", "layer": "1"},
     ["--activation", "softmax", "--loss", "ce", "--layer"]),
    ({"expression": "softmax"}, ["softmax"]),
    ({"activation": "sigmoid", "loss": "bce", "mean": "1"},
     ["--activation", "sigmoid", "--loss", "bce", "--mean"]),
    ({"expression": "batchnorm"}, ["batchnorm"]),
    ({"layer": "attention"}, ["--layer", "attention"]),
    ({"layer": "rnn"}, ["--layer", "rnn"]),
])
def test_api_derive_is_what_the_cli_prints(client, capsys, query, argv):
    response = client.get("/api/derive", params=query)
    code, out = _cli(["derive", "--format", "json", *argv], capsys)
    assert code == 0
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.text == out


@pytest.mark.parametrize("query, argv, correct", [
    ({"formula": "-(y/yhat + (1-y)/(1-yhat))", "loss": "bce"},
     ["-(y/yhat + (1-y)/(1-yhat))", "--loss", "bce"], False),
    ({"formula": "(yhat - y)/(yhat*(1 - yhat))", "loss": "bce"},
     ["(yhat - y)/(yhat*(1 - yhat))", "--loss", "bce"], True),
    ({"formula": "sigmoid(x)*(1 + x*(1 - sigmoid(x)))", "function": "x*sigmoid(x)"},
     ["sigmoid(x)*(1 + x*(1 - sigmoid(x)))", "--function", "x*sigmoid(x)"], True),
    ({"formula": "yhat - y", "loss": "mse", "mean": "on"},
     ["yhat - y", "--loss", "mse", "--mean"], False),
    ({"formula": "X.T @ (sigmoid(X @ W) - Y) / m", "layer": "1", "activation": "sigmoid",
      "loss": "bce"},
     ["--layer", "--activation", "sigmoid", "--loss", "bce", "X.T @ (sigmoid(X @ W) - Y) / m"],
     True),
    ({"formula": "gamma * dY / sqrt(var + eps)", "layer": "batchnorm", "wrt": "X"},
     ["--layer", "batchnorm", "--wrt", "X", "gamma * dY / sqrt(var + eps)"], False),
    ({"formula": "P.T @ dO", "layer": "attention", "wrt": "V", "causal": "1"},
     ["--layer", "attention", "--wrt", "V", "--causal", "P.T @ dO"], True),
])
def test_api_check_is_what_the_cli_prints(client, capsys, query, argv, correct):
    response = client.get("/api/check", params=query)
    code, out = _cli(["check", *argv, "--format", "json"], capsys)
    assert code == (0 if correct else 1)
    assert response.status_code == 200  # a wrong formula is an answer, not an error
    assert response.text == out
    assert response.json()["correct"] is correct


def test_api_index_lists_the_panels_fields(client):
    body = client.get("/api").json()
    assert list(body["derive"]["parameters"]) == [f.name for f in DERIVE]
    assert list(body["check"]["parameters"]) == [f.name for f in CHECK]
    assert body["derive"]["parameters"]["weights"]["type"] == "boolean"
    assert body["check"]["parameters"]["layer"]["values"] == [
        "dense", "batchnorm", "layernorm", "attention"]


def test_the_layer_control_offers_the_named_layers(client):
    page = client.get("/check", params={"formula": "P.T @ dO", "layer": "attention",
                                        "wrt": "V"}).text
    assert '<option value="attention" selected>attention</option>' in page
    assert "Correct" in page


# --- errors are messages ------------------------------------------------------------------------


@pytest.mark.parametrize("query, status, words", [
    ({"expression": "__import__('os').system('ls')"}, 400, 'Unsupported call'),
    ({"expression": "x.real"}, 400, "x.real"),
    ({"expression": "x", "colour": "red"}, 400, "Unknown parameter 'colour'"),
    ({"expression": "x", "weights": "maybe"}, 400, "weights is a yes/no option"),
    ({"activation": "swish2"}, 400, "activation 'swish2'"),
    ({}, 400, "Nothing to derive"),
    ({"expression": "x" * 600}, 400, "600 characters long"),
    ({"expression": "x", "method": "bogus"}, 400, "got 'bogus'"),  # the library's message
])
def test_api_errors_are_one_line_json_messages(client, query, status, words):
    response = client.get("/api/derive", params=query)
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error"]
    assert words in body["error"]
    assert "\n" not in body["error"] and "Traceback" not in response.text


def test_api_check_needs_a_formula(client):
    response = client.get("/api/check", params={"loss": "bce"})
    assert response.status_code == 400
    assert "formula=" in response.json()["error"]


def test_a_repeated_parameter_is_refused(client):
    response = client.get("/api/derive?expression=x&expression=tanh")
    assert response.status_code == 400
    assert "given twice" in response.json()["error"]


def test_a_runaway_formula_gets_an_error_within_the_budget_and_the_server_goes_on(client):
    import time

    start = time.monotonic()
    response = client.get("/api/derive", params={"expression": RUNAWAY})
    elapsed = time.monotonic() - start
    assert response.status_code == 422
    assert f"Gave up after {BUDGET:g} s" in response.json()["error"]
    assert elapsed < BUDGET + 10  # the budget, the grace and a loaded machine's slack
    again = client.get("/api/derive", params={"expression": "tanh"})
    assert again.status_code == 200 and again.json()["result_output_form"] == "1 - yhat**2"


def test_long_queries_and_bodies_are_refused(client):
    response = client.get("/api/derive?expression=" + "x" * (MAX_QUERY_BYTES + 1))
    assert response.status_code == 414
    assert "longer than" in response.json()["error"]
    response = client.request("GET", "/api/derive?expression=x", content=b"0" * 100_000)
    assert response.status_code == 413
    page = client.get("/derive?expression=" + "x" * (MAX_QUERY_BYTES + 1))
    assert page.status_code == 414 and "text/html" in page.headers["content-type"]


def test_unknown_paths_and_methods(client):
    assert client.get("/api/nothing").json()["error"].startswith("no such page")
    response = client.get("/nothing")
    assert response.status_code == 404 and "no such page" in response.text
    assert client.post("/api/derive").status_code == 405


def test_security_headers(client):
    headers = client.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


# --- the page -----------------------------------------------------------------------------------


class _Checker(HTMLParser):
    """Collects the tags and fails on a tag closed out of order (the page is hand-built)."""

    VOID = frozenset({"meta", "link", "input", "br", "img", "hr", "mspace"})

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.sources = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.sources.append(attrs[key])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    assert checker.stack == ["html"] or checker.stack == [], checker.stack
    return checker


def test_the_empty_page(client):
    response = client.get("/")
    assert response.status_code == 200
    page = _parse(response.text)
    assert "form" in page.tags
    # Nothing from the internet: every link and source is on this server.
    assert all(s.startswith("/") for s in page.sources), page.sources
    assert client.get("/static/style.css").status_code == 200


def test_the_derive_page_shows_steps_result_singular_points_and_plot(client):
    response = client.get("/derive", params={"expression": "log(x)"})
    assert response.status_code == 200
    html = response.text
    page = _parse(html)
    assert page.tags.count("math") >= 3 and "svg" in page.tags
    start = html.index('<div class="chainrule-derivation">')
    fragment = html[start:html.index("</div><figure", start) + len("</div>")]
    root = ET.fromstring(fragment)  # the derivation is well-formed XML
    singular = root.find(".//section[@class='singularities']")
    assert "x = 0" in "".join(singular.itertext())
    assert "Domain: log(x) is defined only where x &gt; 0." in html
    assert 'href="/derive?expression=log%28x%29"' in html
    assert 'href="/api/derive?expression=log%28x%29"' in html


def test_a_network_derivation_is_shown_in_mathml(client):
    from chainrule.derivation import derive

    response = client.get("/derive", params={"network": "relu,sigmoid", "loss": "bce"})
    assert response.status_code == 200
    assert "<pre" not in response.text and "derivation-text" not in response.text
    assert response.text.count("<math") > 8
    assert "<msup><mi>X</mi><mo>⊤</mo></msup>" in response.text  # the transpose of ∂E/∂W₁
    title = derive(network="relu,sigmoid", loss="bce").title
    assert title in response.text
    assert "No plot: the derivation is of vectors or matrices." in response.text


@pytest.mark.parametrize("layer, title", [
    ("batchnorm", "Backpropagation through batch normalization"),
    ("conv2d", "Backpropagation through a 2-D convolution"),
    ("maxpool", "Backpropagation through max pooling"),
    ("lstm", "Backpropagation through time in an LSTM"),
])
def test_a_layer_derivation_is_shown_in_mathml(client, layer, title):
    response = client.get("/derive", params={"expression": layer})
    assert response.status_code == 200
    assert "<pre" not in response.text and "<math" in response.text
    assert title in response.text


def test_empty_form_fields_redirect_to_the_short_link(client):
    response = client.get("/derive?expression=tanh&activation=&loss=&method=&wrt=",
                          follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/derive?expression=tanh"
    assert client.get("/check?formula=&loss=", follow_redirects=False).headers[
        "location"] == "/"


def test_the_check_page_shows_the_verdict_and_the_findings(client):
    response = client.get("/check", params={"formula": "-(y/yhat + (1-y)/(1-yhat))",
                                            "loss": "bce"})
    assert response.status_code == 200
    assert 'data-correct="false"' in response.text
    assert "wrong sign" in response.text


def test_page_errors_are_shown_on_the_page(client):
    response = client.get("/derive", params={"expression": "x +"})
    assert response.status_code == 400
    assert 'class="error"' in response.text and "Traceback" not in response.text
    assert 'value="x +"' in response.text  # the input is kept for correcting


def test_api_json_parses_to_the_same_result_as_the_page_shows(client):
    data = client.get("/api/derive", params={"expression": "sigmoid"}).json()
    assert data["result_output_form"] == "yhat*(1 - yhat)"
    assert json.loads(json.dumps(data)) == data


# --- the "read as" line: how a typed formula was read ---------------------------------------------


def _read_as_line(html: str) -> ET.Element:
    start = html.index('<p class="read-as">')
    return ET.fromstring(html[start:html.index("</p>", start) + len("</p>")])


def test_the_derive_page_shows_how_the_formula_was_read(client):
    response = client.get("/derive", params={"expression": "2x(1 − x) + σ z"})
    assert response.status_code == 200
    line = _read_as_line(response.text)  # well-formed XML, MathML inside, no script
    math = line.find("{http://www.w3.org/1998/Math/MathML}math")
    assert math is not None and math.get("alttext") == "2*x*(1 - x) + sigmoid(z)"
    assert "".join(line.itertext()).count("·") == 2  # both products are shown
    # above the steps and the result
    assert response.text.index('class="read-as"') < response.text.index('class="steps"')
    assert response.text.index('class="read-as"') < response.text.index('class="result"')


def test_a_refused_formula_shows_how_it_was_read_above_the_error(client):
    response = client.get("/derive", params={"expression": "2ŷ + q"})
    assert response.status_code == 400
    html = response.text
    assert html.index('class="read-as"') < html.index('class="error"')
    assert _read_as_line(html).find(
        "{http://www.w3.org/1998/Math/MathML}math").get("alttext") == "2*yhat + q"
    assert "&#x27;q&#x27; at column 6" in html  # the column of the text as typed


def test_the_check_page_shows_how_the_derivative_was_read(client):
    response = client.get("/check", params={"formula": "ŷ - y", "loss": "mse", "half": "1"})
    assert response.status_code == 200
    assert 'data-correct="true"' in response.text
    assert _read_as_line(response.text).find(
        "{http://www.w3.org/1998/Math/MathML}math").get("alttext") == "yhat - y"


def test_a_name_is_not_read_as_a_formula(client):
    response = client.get("/derive", params={"expression": "sigmoid"})
    assert 'class="read-as"' not in response.text
