"""Guarding a public Space: every queued endpoint is checked and admitted when a request joins
the queue, and refusals are one log line and a clear message.

The validator (``validator``) runs the controller's checks on the inputs as they arrive, so a
bad value is refused at once — naming the parameter and the limit — instead of after waiting
behind other work; then it admits the request against ``demo.limits.Admission`` (bounded work
per endpoint and per visitor). ``demo.serving.launch`` ties those admissions to the app's queue
(``follow_queue``), so a request the queue drops before its handler runs gives its place back.
The components here pass values Gradio's own preprocessing would refuse through to that
check, whose message says more.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from demo.limits import Admission, Busy, client_of
from fgg.checks import InputError, shown

LOG = logging.getLogger("fgg.app")
C = TypeVar("C", bound=gr.components.Component)
PRIVATE: dict[str, Any] = {
    "api_visibility": "private",
    "queue": False,
}  # UI-only events: not in the API, outside the queue


def _lenient(base: Callable[..., C]) -> Callable[..., C]:
    """``base``'s constructor, whose component passes its API input on as sent when Gradio's own
    preprocessing refuses it, so the server's check (``fgg.checks``) answers: Gradio's messages
    name neither the parameter nor the limit, say nothing for a non-number, and echo a huge
    value in full. The component stays a ``base`` (the config and the API's description are
    the same); only this instance's ``preprocess`` is wrapped (a subclass here would make Gradio
    write a type stub beside this file)."""

    def make(*args, **kwargs) -> C:
        component = base(*args, **kwargs)
        strict = component.preprocess

        def preprocess(payload):
            try:
                return strict(payload)
            except Exception:
                return payload

        component.preprocess = preprocess  # type: ignore[method-assign]
        return component

    return make


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
    """``work()`` for a request its validator admitted: a ``ValueError`` becomes the visitor's
    error (one log line, no traceback), the admission is released however the call ends, and
    the result's ``warnings`` are shown as toasts."""
    try:
        result = work()
    except ValueError as err:
        raise user_error(endpoint, err) from None
    finally:
        admission.release(client_of(request), job_of(request))
    for warning in result.warnings:
        gr.Warning(warning)
    return result


def validator(endpoint: str, names: tuple[str, ...], check: Callable[[dict[str, Any]], object], admission: Admission):
    """A Gradio validator for an endpoint with API parameters ``names``: runs ``check`` on
    the inputs by name (``{name: value}``; an ``InputError`` marks its parameter) and then
    admits the request."""

    def validate(*args):
        *values, request = args

        def only(index: int, message: str):
            log_refusal(endpoint, message)
            return [gr.validate(i != index, message if i == index else "") for i in range(len(names))]

        try:
            check(dict(zip(names, values, strict=True)))
        except InputError as err:
            return only(names.index(err.parameter) if err.parameter in names else 0, str(err))
        except ValueError as err:
            return only(0, str(err))
        try:
            admission.admit(client_of(request), job_of(request))
        except Busy as err:
            return only(0, str(err))
        return [gr.validate(True, "")] * len(names)

    # Gradio passes a gr.Request only to a parameter annotated so, found by signature.
    validate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
        + [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)]
    )
    validate.__annotations__ = {"request": gr.Request}
    validate.admission = admission  # type: ignore[attr-defined]  # found by follow_queue
    return validate


def job_of(request) -> object | None:
    """What identifies a request's job in Gradio's queue: the HTTP request that joined it (the
    validator's and the handler's ``gr.Request`` wrap the same one, and so does the queue's event)."""
    return getattr(request, "request", None)


def follow_queue(app: gr.Blocks) -> None:
    """Ties the admissions of ``app``'s endpoints (their validators') to its queue, so a place
    is given back however its job ends: each admission sees which jobs wait or run (``live``),
    and learns when a job's handler starts (from then on the handler releases it). A job the
    queue drops before its handler runs (its client left, it was cancelled) thereby frees its
    place at the next ``admit`` or ``held``."""
    queue = app._queue
    admissions = {getattr(fn.validator, "admission", None) for fn in app.fns.values()} - {None}

    def live() -> set[int]:  # snapshots: called from the validators' threads while the event loop mutates these
        events = list(queue.event_ids_to_events.values())
        events += [event for job in list(queue.active_jobs) if job for event in job]
        return {id(event.request) for event in events}

    for admission in admissions:
        admission.live = live  # type: ignore[union-attr]
    process_events = queue.process_events

    async def process_events_and_start(events, *args, **kwargs):
        for event in events:  # the queue runs the handler of exactly these (alive) events
            admission = getattr(event.fn.validator, "admission", None)
            if admission is not None and event.alive:
                admission.start(event.request)
        return await process_events(events, *args, **kwargs)

    queue.process_events = process_events_and_start  # type: ignore[method-assign]


def api_handler(parameters: list[inspect.Parameter], body: Callable[[dict[str, Any], Any, Any], Any]):
    """A queued endpoint's function whose API parameters are ``parameters`` (their names and
    defaults are what clients see), followed by the ``gr.Request`` and the ``gr.Progress``
    that Gradio injects, found by signature; it calls ``body(values, request, progress)``
    with ``values`` the bound API parameters by name."""
    signature = inspect.Signature(
        [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters]
        + [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
            inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
        ]
    )

    def handler(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        request, progress = values.pop("request"), values.pop("progress")
        return body(values, request, progress)

    handler.__signature__ = signature  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request}
    return handler
