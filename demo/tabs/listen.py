"""A listening study's participant page (blind): the study's instructions and consent, a
screen of clips (a pair, or several clips of one prompt), a rating of each clip on each of the
study's criteria and a preference, one screen after another. Layout and wiring only; the store
is ``demo.listening``.

Blind by construction: the browser receives audio files named by opaque per-rater clip ids
(``StudyStore.clip_id``) whose bytes differ per rater (up to 0.1 s of trailing silence drawn
from the id), so neither a URL, a file name nor a content hash links a clip to a system, a
prompt or another rater's clip; the study's title (its researchers' name for it) is not shown.

An answer names the screen it is for by a server-signed item token (``StudyStore.item_token``)
that the page holds in a hidden component and sends with the submit: the request itself says
which screen was heard, so a replayed submit (a double click, a network retry) repeats the
answer to that screen and shows the same next one, and never counts as the answer to another.

Listening events bypass the generation queue (``queue=False``: they are short database calls),
so a flood of generations cannot lock raters out.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gradio as gr
from gradio.components import Component
from gradio.context import Context

from demo.guard import Radio, log_refusal, validator
from demo.limits import client_of
from demo.listening import LABELS, StudyStore, Trial
from demo.listening.clips import ClipServer
from demo.listening.study import Criterion
from fgg.checks import InputError, boolean, one_of, text

NEW_RATERS_PER_CLIENT_PER_HOUR = 5
ONE_LINE = ["one-line-scale"]  # demo.ui.CSS keeps a scale's points on one line on a phone
log = logging.getLogger("fgg.listening")


class ClientLimiter:
    """At most ``limit`` events per client in any ``window`` seconds (sliding window)."""

    def __init__(self, limit: int, window: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        self._events: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        with self._lock:
            now = self._clock()
            recent = [t for t in self._events.get(client, []) if now - t < self.window]
            allowed = len(recent) < self.limit
            if allowed:
                recent.append(now)
            self._events[client] = recent
            return allowed


@dataclass(frozen=True)
class ParticipantPage:
    """The page's components, by name."""

    consent: gr.Checkbox
    start_button: gr.Button
    token: gr.BrowserState  # the rater's token, kept in this browser only
    draft: gr.BrowserState  # consent and the answers entered on the screen, kept over a reload
    item_token: gr.Textbox  # hidden: the signed token of the screen shown, "" before Start and after the last one
    status: gr.Markdown
    notice: gr.Markdown
    players: dict[str, gr.Audio]  # label -> its player
    ratings: dict[str, dict[str, gr.Radio]]  # label -> criterion -> its scale
    preference: gr.Radio | None  # None: the study asks none
    submit_button: gr.Button

    @property
    def named_answers(self) -> dict[str, gr.Radio]:
        """Every answer by its submit parameter's name (``a_harmony``, …, ``preference``)."""
        named = {answer_name(label, c): radio for label, scales in self.ratings.items() for c, radio in scales.items()}
        return named | ({"preference": self.preference} if self.preference is not None else {})

    @property
    def answers(self) -> list[gr.Radio]:
        """Every control the rater must set before submitting."""
        return list(self.named_answers.values())

    @property
    def shown(self) -> list[Component]:
        """What showing a screen (or a message instead) may change."""
        return [self.item_token, self.status, self.notice, *self.players.values(), *self.answers, self.submit_button]


def answer_name(label: str, criterion: str) -> str:
    return f"{label.lower()}_{criterion}"


def scale_info(criterion: Criterion) -> str:
    """The question, and what the scale's labelled points mean."""
    points = " · ".join(f"{point} = {name}" for point, name in sorted(criterion.labels.items()))
    return criterion.question + (f" ({points})" if points else "")


def participant_layout(store: StudyStore) -> ParticipantPage:
    """The page's components for ``store``'s study, inside the current ``gr.Blocks``/``gr.Tab``."""
    study = store.study
    gr.Markdown(study.instructions)
    consent = gr.Checkbox(label=study.consent, value=False, elem_id="listening-consent")
    start_button = gr.Button("Start / continue", variant="primary", elem_id="listening-start")
    # Kept per study, under a key that does not spell the study's id (it may name a system).
    key = hashlib.sha256(study.id.encode()).hexdigest()[:12]
    token = gr.BrowserState(None, storage_key=f"listening-rater-{key}")
    draft = gr.BrowserState({}, storage_key=f"listening-draft-{key}")
    item_token = gr.Textbox("", visible="hidden", interactive=False, show_label=False, elem_id="listening-item")
    status = gr.Markdown(elem_id="listening-status")
    # Messages go to the page, not to toasts: these events skip the queue, which carries toasts.
    notice = gr.Markdown(elem_id="listening-notice")
    labels = LABELS[: store.built.clips_per_item]
    players, ratings = {}, {}
    # The radios (demo.guard's) pass a value not among their choices on to the page's check
    # (``submit_values``), whose message names the rating, instead of Gradio's error.
    with gr.Row():
        for label in labels:
            with gr.Column(min_width=320):
                players[label] = gr.Audio(
                    label=label, type="filepath", interactive=False, elem_id=f"listening-{label.lower()}"
                )
                ratings[label] = {
                    c.name: Radio(
                        list(c.points),
                        value=None,
                        label=f"{label} · {c.name}",
                        info=scale_info(c),
                        elem_id=f"listening-{label.lower()}-{c.name}",
                        elem_classes=ONE_LINE,
                    )
                    for c in study.criteria
                }
    preference = None
    if store.preferences is not None:
        preference = Radio(list(store.preferences), value=None, label=study.preference, elem_id="listening-preference")
    submit_button = gr.Button("Submit and next", interactive=False, elem_id="listening-submit")
    return ParticipantPage(
        consent=consent,
        start_button=start_button,
        token=token,
        draft=draft,
        item_token=item_token,
        status=status,
        notice=notice,
        players=players,
        ratings=ratings,
        preference=preference,
        submit_button=submit_button,
    )


def screen_word(store: StudyStore) -> str:
    """What the page calls one screen: a pair, or a page of several clips."""
    return "pair" if store.built.clips_per_item == 2 else "page"


def next_trial_view(page: ParticipantPage, store: StudyStore, clips: ClipServer, rater: str) -> dict:
    """Updates for ``page.shown``: the rater's next screen (``trial_view``)."""
    return trial_view(page, store, clips, rater, store.next_trial(rater))


def trial_view(page: ParticipantPage, store: StudyStore, clips: ClipServer, rater: str, trial: Trial | None) -> dict:
    """Updates for ``page.shown``: ``trial`` with its clips and its signed item token (or a
    closing message when it is None: none left), every answer unset, submit disabled."""
    cleared = {control: None for control in page.answers} | {page.submit_button: gr.update(interactive=False)}
    word = screen_word(store)
    if trial is None:
        done = len(store.answered(rater))
        message = (
            f"**All {done} {word}s rated — thank you!** Your answers are saved."
            if done
            else "This study has nothing to rate: build it with `python -m demo.listening build`."
        )
        players = dict.fromkeys(page.players.values())
        return {page.item_token: "", page.status: message, page.notice: "", **players, **cleared}
    players = {
        page.players[label]: clips.clip(rater, trial.item_id, label, midi)
        for label, midi in zip(trial.labels, trial.midis, strict=True)
    }
    return {
        page.item_token: store.item_token(rater, trial.item_id),
        page.status: f"**{word.capitalize()} {trial.number} of {trial.total}**",
        page.notice: "",
        **players,
        **cleared,
    }


@dataclass(frozen=True)
class AnswerForm:
    """What a submit of a study's page carries: its parameters by name (the two tokens, then a
    score per clip and criterion, then the preference if asked), each answer's options and label."""

    names: tuple[str, ...]
    options: dict[str, tuple]  # answer name -> what it may be
    labels: dict[str, str]  # answer name -> how the page names it ("A · harmony")

    @classmethod
    def of(cls, store: StudyStore) -> AnswerForm:
        options: dict[str, tuple] = {}
        labels: dict[str, str] = {}
        for label in LABELS[: store.built.clips_per_item]:
            for c in store.study.criteria:
                options[answer_name(label, c.name)] = c.points
                labels[answer_name(label, c.name)] = f"{label} · {c.name}"
        if store.preferences is not None:
            options["preference"], labels["preference"] = store.preferences, "preference"
        return cls(("rater_token", "item_token", *options), options, labels)

    def scores(self, values: dict, store: StudyStore) -> dict[str, list]:
        """The checked values as ``StudyStore.answer`` takes them: criterion -> a score per clip."""
        labels = LABELS[: store.built.clips_per_item]
        return {c.name: [values[answer_name(label, c.name)] for label in labels] for c in store.study.criteria}


def restored_answers(page: ParticipantPage, form: AnswerForm, draft, item_token: str) -> dict:
    """The answers this browser kept (``page.draft``) for the screen now shown, if it is the one
    they were entered on; a value that is not a valid answer is dropped (the draft is the
    browser's to change)."""
    if not item_token or not isinstance(draft, dict) or draft.get("item") != item_token:
        return {}
    kept = draft.get("answers")
    if not isinstance(kept, dict):
        return {}
    return {control: kept[name] for name, control in page.named_answers.items() if kept.get(name) in form.options[name]}


def warning_view(page: ParticipantPage, message: str) -> dict:
    """Updates that say what is wrong and change nothing else (the screen and the answers stay)."""
    return {page.notice: f"⚠️ {message}"}


MAX_TOKEN_CHARS = 64  # a rater token is 24 characters, an item token 32
START_PARAMETERS = ("consent", "rater_token", "draft")


def start_values(values: dict) -> tuple[bool, str | None]:
    """A start's values (by ``START_PARAMETERS``), checked before anything uses them: the
    consent is true or false, the rater token the browser keeps is short text or null (the
    draft is read only for valid answers: ``restored_answers``)."""
    agreed = boolean(values["consent"], "consent")
    token = text(values["rater_token"], "rater_token", MAX_TOKEN_CHARS) or None
    if values.get("draft") is not None and not isinstance(values["draft"], dict):
        raise InputError("draft", "draft must be the page's kept answers (an object) or null")
    return agreed, token


def submit_values(form: AnswerForm, values: dict) -> dict:
    """A submit's values (by ``form.names``), checked before anything uses them: the tokens are
    text of bounded length (or null), each rating a point of its scale and the preference one
    of the labels or "same", or null (not answered yet). A bad value is an ``InputError``
    naming its parameter ("A · harmony must be one of 1, 2, 3, 4, 5 (got 3.5)")."""
    checked: dict = {name: text(values[name], name, MAX_TOKEN_CHARS) for name in form.names[:2]}
    for name, options in form.options.items():
        try:
            checked[name] = None if values[name] is None else one_of(values[name], options, form.labels[name])
        except InputError as err:
            raise InputError(name, str(err)) from None
    return checked


def wire_participant_page(
    page: ParticipantPage, store: StudyStore, clips: ClipServer, new_raters: ClientLimiter
) -> None:
    """Start (or continue) a rater, enable submit once everything is answered, store an answer.

    Start and submit check their values before use (``start_values``, ``submit_values``): the
    page itself never sends a bad one, so a refusal answers an API caller — at once with a 422
    naming the parameter when it joins the queue (the validator), and in the page's notice
    (``warning_view``) when it calls the event directly, as the browser does (Gradio runs no
    validator there). Either way one log line, the value cut, no traceback."""

    form = AnswerForm.of(store)

    def refused(event: str, err: InputError) -> dict:
        log_refusal(f"listening {event}", str(err))
        return warning_view(page, str(err))

    def start(consent, rater_token, draft, request: gr.Request) -> dict:
        try:
            agreed, stored_token = start_values({"consent": consent, "rater_token": rater_token, "draft": draft})
        except InputError as err:
            return refused("start", err)
        if not agreed:
            return warning_view(page, "Please tick the consent box first.")
        try:
            rater = store.resume_rater(stored_token) if stored_token else None
        except ValueError:
            rater = None  # a token from an older database: start afresh
        if rater is None:
            if not new_raters.allow(client_of(request)):
                return warning_view(
                    page, "Too many new sessions from your network in the last hour; please try again later."
                )
            rater = store.new_rater()
        view = next_trial_view(page, store, clips, rater)
        return {page.token: rater} | view | restored_answers(page, form, draft, view[page.item_token])

    page.start_button.click(
        start,
        [page.consent, page.token, page.draft],
        [page.token, *page.shown],
        queue=False,
        api_visibility="private",
        validator=validator("listening start", START_PARAMETERS, start_values, None),
    )

    _wire_answers_and_draft(page)

    def submit(*sent) -> dict:
        """Store the answer to the screen the request's token names; a repeat shows the same next one."""
        try:
            values = submit_values(form, dict(zip(form.names, sent, strict=True)))
        except InputError as err:
            return refused("submit", err)
        rater, item_token = values["rater_token"], values["item_token"]
        try:
            if not rater or not item_token:
                raise ValueError("press Start first")
            if any(values[name] is None for name in form.options):
                asked = " and choose a preference" if "preference" in form.options else ""
                raise ValueError(f"rate every clip on every question{asked} first")
            answered = store.answer(rater, item_token, form.scores(values, store), values.get("preference"))
        except ValueError as err:
            return warning_view(page, str(err))
        return trial_view(page, store, clips, rater, answered.next)

    # Its parameters by name: a validator's 422 names each by the handler's signature.
    submit.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in form.names]
    )
    page.submit_button.click(
        submit,
        [page.token, page.item_token, *page.answers],  # in the order of form.names
        page.shown,
        queue=False,
        api_visibility="private",
        validator=validator("listening submit", form.names, partial(submit_values, form), None),
    )


def _wire_answers_and_draft(page: ParticipantPage) -> None:
    """Submit enabled once everything is answered; the consent and the answers kept in the
    browser (``page.draft``) as they change, and the consent restored after a reload."""

    def answers_changed(values: dict) -> dict:
        """Submit enabled once everything is answered; the answers kept for a reload."""
        complete = bool(values[page.item_token]) and all(values[control] is not None for control in page.answers)
        entered = {name: values[control] for name, control in page.named_answers.items()}
        draft = (values[page.draft] if isinstance(values[page.draft], dict) else {}) | {
            "item": values[page.item_token],
            "answers": entered,
        }
        return {page.submit_button: gr.update(interactive=complete), page.draft: draft}

    for control in page.answers:
        control.change(
            answers_changed,
            {page.item_token, page.draft, *page.answers},
            [page.submit_button, page.draft],
            queue=False,
            api_visibility="private",
        )

    def consent_changed(consent, draft) -> dict:
        return (draft if isinstance(draft, dict) else {}) | {"consent": consent is True}

    page.consent.change(consent_changed, [page.consent, page.draft], page.draft, queue=False, api_visibility="private")
    root = Context.root_block  # the page's Blocks: after a reload, its load restores the consent
    if root is not None:
        root.load(
            lambda draft: isinstance(draft, dict) and draft.get("consent") is True,
            page.draft,
            page.consent,
            queue=False,
            api_visibility="private",
        )


def build_participant_page(
    store: StudyStore, clips: ClipServer | None = None, new_raters: ClientLimiter | None = None
) -> ParticipantPage:
    """A study's participant page, inside the current ``gr.Blocks``/route (its components
    returned). The clips' folder is served as static: Gradio sends each clip file as it is,
    instead of copying every clip into its cache."""
    if clips is None:
        clips = ClipServer(store)
        clips.prerender()
    gr.set_static_paths([clips.folder])
    page = participant_layout(store)
    wire_participant_page(page, store, clips, new_raters or ClientLimiter(NEW_RATERS_PER_CLIENT_PER_HOUR))
    return page
