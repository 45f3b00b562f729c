"""Guarding a public Space: every call is checked before Gradio or a handler uses its values,
every queued endpoint is admitted when a request joins the queue, and refusals are one log
line and a clear one-line message (values cut, never a path or a traceback).

Four layers, each in one place:

* the shape of every call, for every event (``check_calls``, installed by ``follow_queue``):
  as many values as the event has inputs (Gradio ignores extra ones), and a file only as one
  uploaded to this server (Gradio's own refusal echoes the server's path). A join of the queue
  is answered 422 naming the count or the parameter; a direct call (``/gradio_api/run/…``, how
  the browser sends the ``queue=False`` events) a one-line error.
* the admission, per endpoint: a join is admitted against the endpoint's
  ``demo.limits.Admission`` (bounded work per endpoint and per visitor) before anything else is
  done for it, so the excess costs nothing (``refuse_early``); ``follow_queue`` ties those
  admissions to the app's queue, so a request the queue drops before its handler runs gives
  its place back.
* the values, per endpoint: the validator (``validator``) runs the endpoint's checks on the
  inputs as they arrive, so a bad value is refused at once — naming the parameter and the limit
  — instead of after waiting behind other work. The components here pass values Gradio's own preprocessing would refuse
  (or round) through to that check, whose message says more.
* the handlers: a ``ValueError`` is the visitor's error (``user_error``, ``serve_admitted``).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Callable, Generator
from functools import partial
from numbers import Real
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from gradio import route_utils
from gradio.utils import get_upload_folder
from gradio_client.utils import is_http_url_like

from demo.limits import Admission, Busy, client_of
from demo.sessions import ReadySessions
from demo.workers import Outbox, at_low_priority, start_at_low_priority
from fgg.checks import InputError, shown

LOG = logging.getLogger("fgg.app")
C = TypeVar("C", bound=gr.components.Component)
PRIVATE: dict[str, Any] = {
    "api_visibility": "private",
    "queue": False,
}  # UI-only events: not in the API, outside the queue


def _lenient(base: Callable[..., C]) -> Callable[..., C]:
    """``base``'s constructor, whose component passes its API input on as sent when Gradio's own
    preprocessing refuses it or rounds it, so the server's check (``fgg.checks``) answers:
    Gradio's messages name neither the parameter nor the limit, say nothing for a non-number,
    and echo a huge value in full; and a ``gr.Number``/``gr.Slider`` rounds to its precision
    (``segment=1.5`` would be served as segment 2). The component stays a ``base`` (the config
    and the API's description are the same); only this instance's ``preprocess`` is wrapped (a
    subclass here would make Gradio write a type stub beside this file). A session's copy that
    Gradio makes anew for an update is made lenient again by ``check_calls``."""

    def make(*args, **kwargs) -> C:
        component = base(*args, **kwargs)
        make_lenient(component)
        return component

    return make


def make_lenient(component: gr.components.Component) -> None:
    """Wraps ``component.preprocess`` (see ``_lenient``) and marks it ``lenient``."""
    strict = component.preprocess

    def preprocess(payload):
        try:
            value = strict(payload)
        except Exception:
            return payload
        return payload if _rounded(payload, value) else value

    component.preprocess = preprocess  # type: ignore[method-assign]
    component.lenient = True  # type: ignore[attr-defined]


def _rounded(sent, value) -> bool:
    """Whether preprocessing changed the number ``sent`` (rounded it to the component's precision)."""
    numbers = [isinstance(x, Real) and not isinstance(x, bool) for x in (sent, value)]
    return all(numbers) and value != sent


Number, Slider, Dropdown, Radio, CheckboxGroup, Checkbox = (
    _lenient(gr.Number),
    _lenient(gr.Slider),
    _lenient(gr.Dropdown),
    _lenient(gr.Radio),
    _lenient(gr.CheckboxGroup),
    _lenient(gr.Checkbox),
)


def log_refusal(endpoint: str, message: str) -> None:
    """A refused request is one log line (no traceback; the value already cut in the message)."""
    LOG.info("refused %s: %s", endpoint, shown(message, 300))


def user_error(endpoint: str, err: Exception) -> gr.Error:
    """The error the page and the API client show, logged as one line."""
    log_refusal(endpoint, str(err))
    return gr.Error(str(err), print_exception=False)


def serve_admitted(endpoint: str, admission: Admission, request, work):
    """``work()`` (``at_low_priority``) for an admitted request: a ``ValueError`` becomes the
    visitor's error (one log line, no traceback), the admission is released however the call
    ends, and the result's ``warnings`` are shown as toasts."""
    try:
        result = at_low_priority(work)
    except ValueError as err:
        raise user_error(endpoint, err) from None
    finally:
        admission.release(client_of(request), job_of(request))
    for warning in result.warnings:
        gr.Warning(warning)
    return result


def stream_admitted(endpoint: str, admission: Admission, request, work: Callable[[Outbox], Any]) -> Generator[Any]:
    """``serve_admitted`` for work that hands on parts of its result as it goes: ``work(outbox)``
    runs at low priority; what it puts in the outbox is yielded as it comes, then its result.
    The admission is released when the work ends, however it ends. Closing this iterator (Gradio
    does when the visitor leaves or cancels) closes the outbox: the work stops at its next
    ``put`` or ``check`` (``demo.workers.Outbox``)."""
    outbox = Outbox()

    def ended() -> None:
        admission.release(client_of(request), job_of(request))
        outbox.ended()

    future = start_at_low_priority(partial(work, outbox), ended)
    try:
        yield from outbox
        try:
            result = future.result()
        except ValueError as err:
            raise user_error(endpoint, err) from None
    finally:
        outbox.close()
    for warning in result.warnings:
        gr.Warning(warning)
    yield result


def validator(
    endpoint: str, names: tuple[str, ...], check: Callable[[dict[str, Any]], object], admission: Admission | None
):
    """A Gradio validator for an endpoint with API parameters ``names``: runs ``check`` on
    the inputs by name (``{name: value}``; an ``InputError`` marks its parameter). Its
    ``admission`` (None: the endpoint admits everyone) is the endpoint's, applied by
    ``follow_queue`` when a request joins, before this runs."""

    def validate(*values):
        def only(index: int, message: str):
            log_refusal(endpoint, message)
            return [gr.validate(i != index, message if i == index else "") for i in range(len(names))]

        try:
            check(dict(zip(names, values, strict=True)))
        except InputError as err:
            return only(names.index(err.parameter) if err.parameter in names else 0, str(err))
        except ValueError as err:
            return only(0, str(err))
        return [gr.validate(True, "")] * len(names)

    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # Gradio names the 422's fields by it
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    )
    if admission is not None:
        validate.admission = admission  # type: ignore[attr-defined]  # found by follow_queue
    return validate


# -- the shape of every call

ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"]*[/\\][^\s'\"]*")
NOT_A_FILE = "must be a file (the FileData of an upload: the path /gradio_api/upload returned) or null"
NOT_UPLOADED = "names a file not uploaded to this server (upload it first: /gradio_api/upload returns its path)"


def event_name(fn) -> str:
    """How refusals name an event: its API name ("/generate"), else its function's name."""
    return f"/{fn.api_name}" if fn.api_name else str(fn.name)


def input_names(fn) -> list[str]:
    """The names of ``fn``'s inputs, as Gradio names them in a validator's 422 (its parameters')."""
    if fn.input_parameter_names:
        names = list(fn.input_parameter_names)
    else:
        try:
            names = list(inspect.signature(fn.fn).parameters) if fn.fn is not None else []
        except (TypeError, ValueError):
            names = []
    return [names[i] if i < len(names) else f"parameter_{i}" for i in range(len(fn.inputs))]


def call_refusal(fn, data) -> tuple[int | None, str] | None:
    """Why a call of event ``fn`` with ``data`` (the request's values, in order) is refused, as
    (the input's index, or None for the call as a whole; the one-line message), or None: it has
    as many values as ``fn`` has inputs, and every file in them is one uploaded to this server.
    Checked before Gradio moves files or preprocesses anything."""
    if fn.cancels or fn.batch:  # a cancel's values are its session (Gradio's); no batch events here
        return None
    if not isinstance(data, list) or len(data) != len(fn.inputs):
        got = len(data) if isinstance(data, list) else shown(data)
        return None, f"{event_name(fn)} takes {len(fn.inputs)} values, one per parameter in order (got {got})"
    for index, (name, block, value) in enumerate(zip(input_names(fn), fn.inputs, data, strict=True)):
        if getattr(block, "stateful", False) or value is None:
            continue  # Gradio uses the session's own value of a gr.State
        refusal = _file_refusal(block, value)
        if refusal is not None:
            return index, f"{name} {refusal}"
    return None


def _file_refusal(block, value) -> str | None:
    """Why ``value`` is refused as the value of ``block``, if for its files: a file component's
    value must be a well-formed FileData, and every file in any input (any dict with a path and
    a meta: Gradio moves each into its cache) one in Gradio's upload folder (or at a URL, which
    Gradio fetches itself). The path is never repeated."""
    model = getattr(block, "data_model", None)
    if model is not None:
        try:
            model.model_validate(value, context={"validate_meta": True})
        except Exception:
            return NOT_A_FILE
    uploads = Path(os.path.realpath(get_upload_folder()))
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and "path" in item and "meta" in item:
            path, meta = item["path"], item["meta"]
            if not isinstance(path, str) or not isinstance(meta, dict) or meta.get("_type") != "gradio.FileData":
                return NOT_A_FILE
            if not is_http_url_like(path) and not Path(os.path.realpath(path)).is_relative_to(uploads):
                return NOT_UPLOADED
        elif isinstance(item, dict):
            stack.extend(item.values())
    return None


def refusal_detail(fn, index: int | None, message: str) -> list[dict[str, Any]]:
    """A 422's detail in the validators' format (what clients show: "- name: message"): one entry
    per input, the refused one carrying ``message``; for the call as a whole (``index`` None),
    one entry named ``data``, the request's field."""
    names = ["data"] if index is None else input_names(fn)
    detail = [{"__type__": "validate", "is_valid": True, "message": "", "parameter_name": name} for name in names]
    detail[index or 0] |= {"is_valid": False, "message": message}
    return detail


def _keep_lenient(fn, state) -> None:
    """A lenient input of ``fn`` (``_lenient``) that Gradio has replaced in this session by a
    fresh instance of its class (it does so for every update of a component: an output not
    returned, a ``gr.update``) is made lenient again before it preprocesses."""
    session = getattr(getattr(state, "blocks_config", None), "blocks", {})
    for block in fn.inputs:
        copy = session.get(block._id, block)
        if getattr(block, "lenient", False) and not getattr(copy, "lenient", False):
            make_lenient(copy)


def one_line(message: str, limit: int = 200) -> str:
    """A message of Gradio's as one line of at most ``limit`` characters, server paths taken out."""
    lines = str(message).strip().splitlines()
    line = ABSOLUTE_PATH.sub("<path>", lines[0] if lines else "refused")
    return line if len(line) <= limit else f"{line[:limit]}…"


def check_calls(app: gr.Blocks) -> None:
    """Every call of every event of ``app`` is checked (``call_refusal``) before Gradio uses its
    values: a join of the queue (``/gradio_api/queue/join``, ``/gradio_api/call/…``) is refused
    with a 422 in the validators' format (the parameter named: ``data`` for the count), a
    direct call (``/gradio_api/run/…``) with a one-line ``gr.Error`` (that route answers every
    error with a 500). Any other refusal of a join by Gradio becomes one line without a path.
    Call after ``app.queue()`` (it makes the queue checked here)."""
    queue, process_api = app._queue, app.process_api
    push = queue.push

    async def checked_push(body, request, username):
        if body.fn_index is not None:
            try:
                fn = route_utils.get_fn(app, None, body)
            except (KeyError, IndexError, TypeError):
                log_refusal("queue/join", f"no event {shown(body.fn_index)}")
                return False, f"no event with fn_index {shown(body.fn_index)}", "error"
            refusal = call_refusal(fn, body.data)
            if refusal is not None:
                index, message = refusal
                log_refusal(event_name(fn), message)
                return False, refusal_detail(fn, index, message), "validator_error"
        success, detail, state = await push(body, request, username)
        if state == "error" and isinstance(detail, str):
            detail = one_line(detail)
            log_refusal("queue/join", detail)
        return success, detail, state

    signature = inspect.signature(process_api)

    async def checked_process_api(*args, **kwargs):
        call = signature.bind(*args, **kwargs).arguments
        fn = call["block_fn"]
        fn = app.fns[fn] if isinstance(fn, int) else fn
        if call.get("iterator") is None and not fn.is_validator_function:  # a validator's values: checked at the join
            refusal = call_refusal(fn, call["inputs"])
            if refusal is not None:
                log_refusal(event_name(fn), refusal[1])
                raise gr.Error(refusal[1], print_exception=False)
        _keep_lenient(fn, call.get("state"))
        return await process_api(*args, **kwargs)

    queue.push = checked_push  # type: ignore[method-assign]
    app.process_api = checked_process_api  # type: ignore[method-assign]


def http_error_handlers() -> dict[str, Any]:
    """``app_kwargs`` for ``Blocks.launch`` (``demo.serving.launch``): FastAPI answers a request
    body that is not its route's shape (``data`` not a list, ``fn_index`` not a number) with a
    422 that repeats the whole input, however big; this one says where and what in one line
    each (FastAPI's format, without the input), and logs one line."""

    async def malformed(request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": one_line(e.get("msg", ""))}
            for e in exc.errors()[:10]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "malformed request"}
        log_refusal(request.url.path, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
        return JSONResponse({"detail": errors}, status_code=422)

    return {"exception_handlers": {RequestValidationError: malformed}}


# -- admissions


def job_of(request) -> object | None:
    """What identifies a request's job in Gradio's queue: the HTTP request that joined it (the
    validator's and the handler's ``gr.Request`` wrap the same one, and so does the queue's event)."""
    return getattr(request, "request", None)


def follow_queue(app: gr.Blocks) -> None:
    """Ties the admissions of ``app``'s endpoints (their validators') to its queue, so a place
    is given back however its job ends: each admission sees which jobs wait or run (``live``),
    and learns when a job's handler starts (from then on the handler releases it). A job the
    queue drops before its handler runs (its client left, it was cancelled) thereby frees its
    place at the next ``admit`` or ``held``. Also checks the shape of every call
    (``check_calls``): ``demo.serving.launch`` calls this after ``app.queue()``."""
    check_calls(app)
    queue = app._queue
    found = (getattr(fn.validator, "admission", None) for fn in app.fns.values())
    admissions: set[Admission] = {admission for admission in found if admission is not None}

    joining: set[int] = set()  # the requests still inside their join (refuse_early): not in the queue yet

    def live() -> set[int]:  # snapshots: called from the validators' threads while the event loop mutates these
        events = list(queue.event_ids_to_events.values())
        events += [event for job in list(queue.active_jobs) if job for event in job]
        return {id(event.request) for event in events} | set(joining)

    for admission in admissions:
        admission.live = live
    process_events = queue.process_events

    async def process_events_and_start(events, *args, **kwargs):
        for event in events:  # the queue runs the handler of exactly these (alive) events
            admission = getattr(event.fn.validator, "admission", None)
            if admission is not None and event.alive:
                admission.start(event.request)
        return await process_events(events, *args, **kwargs)

    queue.process_events = process_events_and_start  # type: ignore[method-assign]
    refuse_early(app, joining, ReadySessions(app, size=sum(admission.total for admission in admissions)))


def refuse_early(app: gr.Blocks, joining: set[int], sessions: ReadySessions) -> None:
    """A join is admitted (``Admission.admit``) before anything else is done for it, and a join
    its visitor's or the endpoint's share refuses is answered at once — no preprocessing, no
    thread, no checks of its values — so a refusal stays cheap while a flood of joins competes
    with running generations for the cores (``python -m demo.bench --flood``). Admitting here,
    in the event loop, also makes a flood's joins see each other: checked in the validators'
    threads, 40 joins at once all passed before the first was admitted. Its answer is the
    validator's: a 422 naming the limit. A join then refused by its validator, or by the
    queue, gives its place back at once. While inside its join a request counts as live
    (``joining``, seen by ``follow_queue``'s ``live``), so its place is not forgotten however
    long its values take to check. An admitted join of a new session gets a session state
    made in advance (``sessions``), not one made in the event loop."""
    queue = app._queue
    push = queue.push

    async def admit_and_push(body, request, username):
        fn = app.fns.get(body.fn_index) if isinstance(body.fn_index, int) else None
        admission = getattr(getattr(fn, "validator", None), "admission", None)
        if admission is None:
            return await push(body, request, username)
        try:
            admission.admit(client_of(request), request)
        except Busy as err:
            log_refusal(event_name(fn), str(err))
            return False, refusal_detail(fn, 0, str(err)), "validator_error"
        joined = False
        joining.add(id(request))  # its values may take longer to check than the admission's grace
        try:
            await sessions.open(body.session_hash)
            joined, detail, state = await push(body, request, username)
        finally:
            joining.discard(id(request))
            if not joined:
                admission.release(client_of(request), request)
        return joined, detail, state

    queue.push = admit_and_push  # type: ignore[method-assign]


def api_handler(parameters: list[inspect.Parameter], body: Callable[[dict[str, Any], Any, Any], Any]):
    """A queued endpoint's function whose API parameters are ``parameters`` (their names and
    defaults are what clients see), followed by the ``gr.Request`` and the ``gr.Progress``
    that Gradio injects, found by signature; it calls ``body(values, request, progress)``
    with ``values`` the bound API parameters by name (a generator ``body`` makes a generator,
    whose yields Gradio streams)."""
    signature = inspect.Signature(
        [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters]
        + [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
            inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
        ]
    )

    def call(args, kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request, progress = values.pop("request"), values.pop("progress")
        return body(values, request, progress)

    if inspect.isgeneratorfunction(body):  # Gradio streams what a generator function yields

        def handler(*args, **kwargs):
            yield from call(args, kwargs)

    else:

        def handler(*args, **kwargs):
            return call(args, kwargs)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request}
    return handler
