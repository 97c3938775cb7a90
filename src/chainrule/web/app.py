"""The web page and JSON API of ``chainrule serve`` (Starlette).

Routes
------
``/``                 the page: a derive panel and a check panel, empty
``/derive?...``       the page with a derivation (the query is the derive panel's fields)
``/check?...``        the page with a check of a hand-derived gradient
``/api/derive?...``   exactly what ``chainrule derive ... --format json`` prints
``/api/check?...``    exactly what ``chainrule check ... --format json`` prints
``/api``              the parameters of both, as JSON

Query names are the parameters of the library functions the panels call, which are also the
command line's option names (``expression``, ``activation``, ``loss``, ``weights``, ``method``,
``half``, ``wrt``; ``formula``, ``function``, ``mean``, ``layer``, ``network``, ``sum``), so
every result has a link that reproduces it and ``/derive?...`` and ``/api/derive?...`` take the
same query. The panels' inputs are declared once, in :mod:`chainrule._panels`, for the page and
the command line alike: the forms, the API's parameter check and ``/api`` are built from them,
and the workers call the library through the same functions as ``chainrule derive`` and
``chainrule check``, so a new option of either is one more :class:`~chainrule._panels.Option`
there.

Safety: the engine runs in :class:`~chainrule.web.worker.EnginePool`'s processes under a
time budget; queries longer than :data:`MAX_QUERY_BYTES` and bodies longer than
:data:`MAX_BODY_BYTES` are refused; every error is a one-line message (JSON on ``/api``, the
page otherwise), never a traceback; nothing is written to disk.
"""

from __future__ import annotations

import contextlib
import json
from html import escape
from importlib import resources
from string import Template
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chainrule._panels import CHECK, DERIVE, PANELS, Option
from chainrule.web.worker import QUICK_SECONDS, Busy, EnginePool, TaskError, TaskTimeout

__all__ = ["create_app"]

#: Longest query string accepted, in bytes (a formula is at most 500 characters).
MAX_QUERY_BYTES = 4096
#: Longest request body accepted, in bytes (no route reads one).
MAX_BODY_BYTES = 16 * 1024
_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; "
                                 b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BadQuery(ValueError):
    """A query the page or the API cannot use; the message says what to change."""


def parse_query(fields: tuple[Option, ...], items: list[tuple[str, str]], strict: bool) -> dict:
    """The panel's values from the query ``items``: empty fields are left out; with ``strict``
    (the API), an unknown or repeated name is an error."""
    known = {f.name: f for f in fields}
    values: dict[str, str | bool] = {}
    seen = set()
    for name, raw in items:
        field = known.get(name)
        if field is None:
            if strict:
                raise BadQuery(f"Unknown parameter {name!r}; the known ones are "
                               f"{', '.join(known)}.")
            continue
        if name in seen and strict:
            raise BadQuery(f"The parameter {name!r} is given twice; give it once.")
        seen.add(name)
        try:
            value = field.parse(raw)
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
        if value:
            values[name] = value
        else:
            values.pop(name, None)
    return values


def canonical_query(fields: tuple[Option, ...], values: dict) -> str:
    """The query that reproduces ``values``, in the panel's field order."""
    pairs = [(f.name, "1" if values[f.name] is True else values[f.name])
             for f in fields if values.get(f.name)]
    return urlencode(pairs)


# --- HTML ---------------------------------------------------------------------------------------


def _template(name: str) -> Template:
    return Template(resources.files("chainrule.web").joinpath("templates", name).read_text(
        encoding="utf-8"))


def _control(panel: str, field: Option, value) -> str:
    ident = f"{panel}-{field.name}"
    title = f' title="{escape(field.help)}"' if field.help else ""
    if field.kind == "flag" and field.values:  # no, yes (the first value) or another value
        chosen = field.values[0] if value is True else value
        options = ['<option value="">—</option>'] + [
            f'<option value="{escape(c)}"{" selected" if c == chosen else ""}>{escape(c)}</option>'
            for c in field.values]
        return (f'<label for="{ident}"{title}>{escape(field.label)}</label>'
                f'<select id="{ident}" name="{field.name}">{"".join(options)}</select>')
    if field.kind == "flag":
        checked = " checked" if value else ""
        return (f'<label class="flag"{title}><input type="checkbox" id="{ident}" '
                f'name="{field.name}" value="1"{checked}> {escape(field.label)}</label>')
    label = f'<label for="{ident}"{title}>{escape(field.label)}</label>'
    if field.kind == "choice":
        options = ['<option value="">—</option>'] + [
            f'<option value="{escape(c)}"{" selected" if c == value else ""}>{escape(c)}</option>'
            for c in field.choices]
        if value and value not in field.choices:  # an alias typed in the URL
            options.append(f'<option value="{escape(value)}" selected>{escape(value)}</option>')
        return f'{label}<select id="{ident}" name="{field.name}">{"".join(options)}</select>'
    return (f'{label}<input type="text" id="{ident}" name="{field.name}" '
            f'value="{escape(value or "")}" placeholder="{escape(field.placeholder)}" '
            f'autocomplete="off" spellcheck="false" maxlength="500">')


def render_form(panel: str, values: dict, button: str) -> str:
    """The panel's form, built from its fields; GET, so the address is the shareable link."""
    fields = PANELS[panel]
    main = [f'<div class="field">{_control(panel, f, values.get(f.name))}</div>'
            for f in fields if not f.advanced]
    extra = [f'<div class="field">{_control(panel, f, values.get(f.name))}</div>'
             for f in fields if f.advanced]
    opened = " open" if any(values.get(f.name) for f in fields if f.advanced) else ""
    return (f'<form method="get" action="/{panel}" id="{panel}-form" class="panel-form">'
            + "".join(main)
            + f'<details{opened}><summary>Options</summary>{"".join(extra)}</details>'
            f'<button type="submit" id="{panel}-submit">{escape(button)}</button></form>')


def _links(request: Request, panel: str, query: str) -> str:
    page = f"/{panel}?{query}"
    absolute = str(request.base_url).rstrip("/") + page
    return (f'<p class="links">Link to this result: <a class="share" href="{escape(page)}">'
            f'{escape(absolute)}</a> · <a class="api" href="/api{escape(page)}">JSON</a></p>')


def _error(message: str) -> str:
    return f'<div class="error" role="alert"><strong>Error:</strong> {escape(message)}</div>'


def render_page(request: Request, *, derive_values=None, check_values=None,
                derive_result="", check_result="", title="chainrule") -> str:
    return _template("page.html").substitute(
        title=escape(title),
        derive_form=render_form("derive", derive_values or {}, "Derive"),
        check_form=render_form("check", check_values or {}, "Check"),
        derive_result=derive_result,
        check_result=check_result,
    )


# --- handlers -----------------------------------------------------------------------------------


def _status(exc: Exception) -> int:
    if isinstance(exc, BadQuery | TaskError):
        return 400
    if isinstance(exc, TaskTimeout):
        return 422
    return 503


def _message(exc: Exception, pool: EnginePool) -> str:
    if isinstance(exc, TaskTimeout):
        return (f"Gave up after {pool.timeout:g} s: the formula is too nested or too large for "
                "SymPy in that time; write it with less nesting, or split it into parts.")
    if isinstance(exc, Busy):
        return f"The server is busy ({exc}); try again in a few seconds."
    return str(exc)


def _json_error(message: str, status: int) -> Response:
    headers = {"retry-after": "5"} if status == 503 else None
    body = json.dumps({"error": message}, ensure_ascii=False) + "\n"
    return Response(body, status, headers=headers, media_type="application/json")


async def _api(request: Request, panel: str, task: str) -> Response:
    pool: EnginePool = request.app.state.pool
    try:
        values = parse_query(PANELS[panel], request.query_params.multi_items(), strict=True)
        if panel == "check" and "formula" not in values:
            raise BadQuery("Give the derivative to check: formula=...")
        text = await pool.run(task, values)
    except (BadQuery, TaskError, TaskTimeout, Busy) as exc:
        return _json_error(_message(exc, pool), _status(exc))
    return Response(text, media_type="application/json")


async def api_derive(request: Request) -> Response:
    return await _api(request, "derive", "derive_json")


async def api_check(request: Request) -> Response:
    return await _api(request, "check", "check_json")


async def api_index(request: Request) -> Response:
    def describe(fields):
        return {f.name: {"label": f.label, "type": {"flag": "boolean"}.get(f.kind, "string"),
                         "help": f.help, **({"choices": list(f.choices)} if f.choices else {}),
                         **({"values": list(f.values)} if f.values else {})}
                for f in fields}

    body = {"derive": {"path": "/api/derive", "parameters": describe(DERIVE),
                       "returns": "what `chainrule derive ... --format json` prints"},
            "check": {"path": "/api/check", "parameters": describe(CHECK),
                      "returns": "what `chainrule check ... --format json` prints"}}
    return Response(json.dumps(body, indent=2, ensure_ascii=False) + "\n",
                    media_type="application/json")


async def home(request: Request) -> Response:
    return HTMLResponse(render_page(request))


async def _page(request: Request, panel: str) -> Response:
    pool: EnginePool = request.app.state.pool
    items = request.query_params.multi_items()
    try:
        values = parse_query(PANELS[panel], items, strict=False)
    except BadQuery as exc:
        kwargs = {f"{panel}_result": _error(str(exc))}
        return HTMLResponse(render_page(request, **kwargs), 400)
    query = canonical_query(PANELS[panel], values)
    if urlencode(items) != query:  # empty form fields: show the short, shareable address
        return RedirectResponse(f"/{panel}?{query}" if query else "/", 303)
    if panel == "check" and "formula" not in values:
        return HTMLResponse(render_page(request, check_values=values, check_result=_error(
            "type the derivative you worked out by hand in “Your derivative”.")), 400)
    task = "derive_page" if panel == "derive" else "check_page"
    try:
        answer = await pool.run(task, values)
    except (TaskError, TaskTimeout, Busy) as exc:
        read = await _read_as(pool, values) if isinstance(exc, TaskError) else ""
        kwargs = {f"{panel}_values": values,
                  f"{panel}_result": read + _error(_message(exc, pool))}
        return HTMLResponse(render_page(request, **kwargs), _status(exc))
    links = _links(request, panel, query)
    if panel == "derive":
        plot = (f'<figure class="plot">{answer["plot"]}<figcaption>{escape(answer["caption"])}'
                "</figcaption></figure>" if answer["plot"] else
                f'<p class="no-plot">{escape(answer["caption"])}</p>')
        result = f'<div class="result-block" id="derive-result">{links}{answer["html"]}{plot}</div>'
        return HTMLResponse(render_page(
            request, derive_values=values, check_values=answer["check"], derive_result=result,
            title=f"{answer['title']} · chainrule"))
    result = f'<div class="result-block" id="check-result">{links}{answer["html"]}</div>'
    return HTMLResponse(render_page(request, check_values=values, check_result=result,
                                    title="Check · chainrule"))


async def _read_as(pool: EnginePool, values: dict) -> str:
    """The "read as" lines of a refused formula (how it was read, up to where it failed), or
    nothing when even that cannot be had in time."""
    try:
        return await pool.run("read_as", values)
    except (TaskError, TaskTimeout, Busy):
        return ""


async def derive_page(request: Request) -> Response:
    return await _page(request, "derive")


async def check_page(request: Request) -> Response:
    return await _page(request, "check")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: "no such page: the page is /, the API is under /api",
               405: "only GET is served here"}.get(exc.status_code, str(exc.detail))
    if request.url.path.startswith("/api"):
        return _json_error(message, exc.status_code)
    return HTMLResponse(render_page(request, derive_result=_error(message)), exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    message = "internal error; please report the address that caused it"
    if request.url.path.startswith("/api"):
        return _json_error(message, 500)
    return HTMLResponse(f"<!doctype html><title>Error</title><p>{escape(message)}</p>", 500)


# --- limits and headers -------------------------------------------------------------------------


class LimitsMiddleware:
    """Refuse long queries (414) and bodies (413) before routing; add the security headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api")
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            await self._refuse(send, 414, f"the query is longer than {MAX_QUERY_BYTES} bytes; "
                               "a formula has at most 500 characters", api)
            return
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            await self._refuse(send, 413, f"the request body is longer than {MAX_BODY_BYTES} "
                               "bytes; send the inputs in the query", api)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(send, status: int, message: str, api: bool) -> None:
        if api:
            body = (json.dumps({"error": message}) + "\n").encode()
            kind = b"application/json"
        else:
            body = f"<!doctype html><title>Error</title><p>{escape(message)}</p>".encode()
            kind = b"text/html; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *_SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": body})


# --- the application ----------------------------------------------------------------------------


def create_app(pool: EnginePool | None = None, *, workers: int = 2, timeout: float = 10.0):
    """The ASGI application; its lifespan starts the worker pool and stops it (every worker
    process ends with the server). The pool made here keeps one more worker for quick
    requests (:data:`~chainrule.web.worker.QUICK_SECONDS`), so that runaway formulas on the
    others never hold up an ordinary derivation."""
    pool = pool or EnginePool(workers, timeout, quick=QUICK_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pool.start(wait=False)  # serve at once; the first requests wait for a worker
        try:
            yield
        finally:
            await pool.close()

    static = resources.files("chainrule.web").joinpath("static")
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/derive", derive_page),
            Route("/check", check_page),
            Route("/api", api_index),
            Route("/api/derive", api_derive),
            Route("/api/check", api_check),
            Mount("/static", StaticFiles(directory=str(static)), name="static"),
        ],
        middleware=[Middleware(LimitsMiddleware)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.pool = pool
    return app
