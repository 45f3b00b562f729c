"""The listening test's participant page (blind): consent, a pair of clips, the ratings and a
preference, one pair after another. Layout and wiring only; the store is ``demo.listening``.

Blind by construction: the browser receives audio files named by opaque per-rater clip ids
(``ListeningStore.clip_id``) whose bytes differ per rater (up to 0.1 s of trailing silence
drawn from the id), so neither a URL, a file name nor a content hash links a clip to a
system, a segment or another rater's clip.

An answer names the pair it is for by a server-signed pair token (``ListeningStore.pair_token``)
that the page holds in a hidden component and sends with the submit: the request itself says
which pair was heard, so a replayed submit (a double click, a network retry) repeats the answer
to that pair and shows the same next pair, and never counts as the answer to a pair not heard.

Listening events bypass the generation queue (``queue=False``: they are short database calls),
so a flood of generations cannot lock raters out.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
from gradio.components import Component
from gradio.context import Context

from demo.guard import Radio, log_refusal, validator
from demo.limits import client_of
from demo.listening import CRITERIA, PREFERENCES, SCORES, ListeningStore, Trial
from demo.listening.clips import ClipServer
from fgg.checks import InputError, boolean, one_of, text

NEW_RATERS_PER_CLIENT_PER_HOUR = 5
ONE_LINE = ["one-line-scale"]  # demo.ui.CSS keeps the five on one line on a phone
CONSENT = (
    "I agree that my ratings are stored anonymously (with a random token, no name, no address) "
    "and used for research on music generation."
)
INSTRUCTIONS = """**Blind listening test.** Each pair plays the same melody and chords with two
different accompaniments, A and B, in random order. Listen to both, rate each from 1 (poor) to
5 (excellent) on creativity, harmony (does it fit the chords and melody?) and naturalness
(could a person have played it?), then say which you prefer. About 1 minute per pair; you can
stop and come back later in this browser."""
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
    draft: gr.BrowserState  # consent and the answers entered on the pair on screen, kept over a reload
    pair_token: gr.Textbox  # hidden: the signed token of the pair on screen, "" before Start and after the last one
    status: gr.Markdown
    notice: gr.Markdown
    listen_a: gr.Audio
    listen_b: gr.Audio
    ratings_a: dict[str, gr.Radio]  # criterion -> its 1-5 radio
    ratings_b: dict[str, gr.Radio]
    preference: gr.Radio
    submit_button: gr.Button

    @property
    def named_answers(self) -> dict[str, gr.Radio]:
        """Every answer by its submit parameter's name (``a_harmony``, …, ``preference``)."""
        return dict(zip(SUBMIT_PARAMETERS[2:], self.answers, strict=True))

    @property
    def answers(self) -> list[gr.Radio]:
        """Every control the rater must set before submitting."""
        return [*self.ratings_a.values(), *self.ratings_b.values(), self.preference]

    @property
    def shown(self) -> list[Component]:
        """What showing a pair (or a message instead) may change."""
        return [
            self.pair_token,
            self.status,
            self.notice,
            self.listen_a,
            self.listen_b,
            *self.answers,
            self.submit_button,
        ]


def participant_layout() -> ParticipantPage:
    """The page's components, inside the current ``gr.Blocks``/``gr.Tab``."""
    gr.Markdown(INSTRUCTIONS)
    consent = gr.Checkbox(label=CONSENT, value=False, elem_id="listening-consent")
    start_button = gr.Button("Start / continue", variant="primary", elem_id="listening-start")
    token = gr.BrowserState(None, storage_key="listening-rater")
    draft = gr.BrowserState({}, storage_key="listening-draft")
    pair_token = gr.Textbox("", visible="hidden", interactive=False, show_label=False, elem_id="listening-pair")
    status = gr.Markdown(elem_id="listening-status")
    # Messages go to the page, not to toasts: these events skip the queue, which carries toasts.
    notice = gr.Markdown(elem_id="listening-notice")
    # The radios (demo.guard's) pass a value not among their choices on to the page's check
    # (``submit_values``), whose message names the rating, instead of Gradio's error.
    with gr.Row():
        with gr.Column():
            listen_a = gr.Audio(label="A", type="filepath", interactive=False, elem_id="listening-a")
            ratings_a = {
                c: Radio(list(SCORES), value=None, label=f"A · {c}", elem_id=f"listening-a-{c}", elem_classes=ONE_LINE)
                for c in CRITERIA
            }
        with gr.Column():
            listen_b = gr.Audio(label="B", type="filepath", interactive=False, elem_id="listening-b")
            ratings_b = {
                c: Radio(list(SCORES), value=None, label=f"B · {c}", elem_id=f"listening-b-{c}", elem_classes=ONE_LINE)
                for c in CRITERIA
            }
    preference = Radio(
        list(PREFERENCES), value=None, label="Which do you prefer overall?", elem_id="listening-preference"
    )
    submit_button = gr.Button("Submit and next", interactive=False, elem_id="listening-submit")
    return ParticipantPage(
        consent=consent,
        start_button=start_button,
        token=token,
        draft=draft,
        pair_token=pair_token,
        status=status,
        notice=notice,
        listen_a=listen_a,
        listen_b=listen_b,
        ratings_a=ratings_a,
        ratings_b=ratings_b,
        preference=preference,
        submit_button=submit_button,
    )


def next_pair_view(page: ParticipantPage, store: ListeningStore, clips: ClipServer, rater: str) -> dict:
    """Updates for ``page.shown``: the rater's next pair (``trial_view``)."""
    return trial_view(page, store, clips, rater, store.next_trial(rater))


def trial_view(
    page: ParticipantPage, store: ListeningStore, clips: ClipServer, rater: str, trial: Trial | None
) -> dict:
    """Updates for ``page.shown``: ``trial`` with its clips and its signed pair token (or a
    closing message when it is None: none left), every answer unset, submit disabled."""
    cleared = {control: None for control in page.answers} | {page.submit_button: gr.update(interactive=False)}
    if trial is None:
        done = len(store.answered(rater))
        message = (
            f"**All {done} pairs rated — thank you!** Your answers are saved."
            if done
            else "The listening pool is empty: build it with `python -m demo.listening build`."
        )
        return {
            page.pair_token: "",
            page.status: message,
            page.notice: "",
            page.listen_a: None,
            page.listen_b: None,
            **cleared,
        }
    return {
        page.pair_token: store.pair_token(rater, trial.pair_id),
        page.status: f"**Pair {trial.number} of {trial.total}**",
        page.notice: "",
        page.listen_a: clips.clip(rater, trial.pair_id, "A", trial.midi_a),
        page.listen_b: clips.clip(rater, trial.pair_id, "B", trial.midi_b),
        **cleared,
    }


def restored_answers(page: ParticipantPage, draft, pair_token: str) -> dict:
    """The answers this browser kept (``page.draft``) for the pair now shown, if it is the one
    they were entered on; a value that is not a valid answer is dropped (the draft is the
    browser's to change)."""
    if not pair_token or not isinstance(draft, dict) or draft.get("pair") != pair_token:
        return {}
    kept = draft.get("answers")
    if not isinstance(kept, dict):
        return {}
    restored = {}
    for name, control in page.named_answers.items():
        options: tuple = PREFERENCES if name == "preference" else SCORES
        if kept.get(name) in options:
            restored[control] = kept[name]
    return restored


def warning_view(page: ParticipantPage, message: str) -> dict:
    """Updates that say what is wrong and change nothing else (the pair and the answers stay)."""
    return {page.notice: f"⚠️ {message}"}


MAX_TOKEN_CHARS = 64  # a rater token is 24 characters, a pair token 32
START_PARAMETERS = ("consent", "rater_token", "draft")
SUBMIT_PARAMETERS = ("rater_token", "pair_token", *(f"{side}_{c}" for side in "ab" for c in CRITERIA), "preference")


def start_values(values: dict) -> tuple[bool, str | None]:
    """A start's values (by ``START_PARAMETERS``), checked before anything uses them: the
    consent is true or false, the rater token the browser keeps is short text or null (the
    draft is read only for valid answers: ``restored_answers``)."""
    agreed = boolean(values["consent"], "consent")
    token = text(values["rater_token"], "rater_token", MAX_TOKEN_CHARS) or None
    if values.get("draft") is not None and not isinstance(values["draft"], dict):
        raise InputError("draft", "draft must be the page's kept answers (an object) or null")
    return agreed, token


def submit_values(values: dict) -> dict:
    """A submit's values (by ``SUBMIT_PARAMETERS``), checked before anything uses them: the
    tokens are text of bounded length (or null), each rating one of ``SCORES`` and the
    preference one of ``PREFERENCES``, or null (not answered yet). A bad value is an
    ``InputError`` naming its parameter ("A · harmony must be one of 1, 2, 3, 4, 5 (got 3.5)")."""
    checked: dict = {name: text(values[name], name, MAX_TOKEN_CHARS) for name in SUBMIT_PARAMETERS[:2]}
    for name in SUBMIT_PARAMETERS[2:]:
        side, _, criterion = name.partition("_")
        options, label = (PREFERENCES, name) if name == "preference" else (SCORES, f"{side.upper()} · {criterion}")
        try:
            checked[name] = None if values[name] is None else one_of(values[name], options, label)
        except InputError as err:
            raise InputError(name, str(err)) from None
    return checked


def wire_participant_page(
    page: ParticipantPage, store: ListeningStore, clips: ClipServer, new_raters: ClientLimiter
) -> None:
    """Start (or continue) a rater, enable submit once everything is answered, store an answer.

    Start and submit check their values before use (``start_values``, ``submit_values``): the
    page itself never sends a bad one, so a refusal answers an API caller — at once with a 422
    naming the parameter when it joins the queue (the validator), and in the page's notice
    (``warning_view``) when it calls the event directly, as the browser does (Gradio runs no
    validator there). Either way one log line, the value cut, no traceback."""

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
        view = next_pair_view(page, store, clips, rater)
        return {page.token: rater} | view | restored_answers(page, draft, view[page.pair_token])

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
        """Store the answer to the pair the request's token names; a repeat shows the same next pair."""
        try:
            values = submit_values(dict(zip(SUBMIT_PARAMETERS, sent, strict=True)))
        except InputError as err:
            return refused("submit", err)
        rater, pair_token = values["rater_token"], values["pair_token"]
        try:
            if not rater or not pair_token:
                raise ValueError("press Start first")
            if any(values[name] is None for name in SUBMIT_PARAMETERS[2:]):
                raise ValueError("rate A and B on every criterion and choose a preference first")
            answered = store.answer(
                rater,
                pair_token,
                {c: values[f"a_{c}"] for c in CRITERIA},
                {c: values[f"b_{c}"] for c in CRITERIA},
                values["preference"],
            )
        except ValueError as err:
            return warning_view(page, str(err))
        return trial_view(page, store, clips, rater, answered.next)

    # Its parameters by name: a validator's 422 names each by the handler's signature.
    submit.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in SUBMIT_PARAMETERS]
    )
    page.submit_button.click(
        submit,
        [page.token, page.pair_token, *page.answers],  # in the order of SUBMIT_PARAMETERS
        page.shown,
        queue=False,
        api_visibility="private",
        validator=validator("listening submit", SUBMIT_PARAMETERS, submit_values, None),
    )


def _wire_answers_and_draft(page: ParticipantPage) -> None:
    """Submit enabled once everything is answered; the consent and the answers kept in the
    browser (``page.draft``) as they change, and the consent restored after a reload."""

    def answers_changed(values: dict) -> dict:
        """Submit enabled once everything is answered; the answers kept for a reload."""
        complete = bool(values[page.pair_token]) and all(values[control] is not None for control in page.answers)
        entered = {name: values[control] for name, control in page.named_answers.items()}
        draft = (values[page.draft] if isinstance(values[page.draft], dict) else {}) | {
            "pair": values[page.pair_token],
            "answers": entered,
        }
        return {page.submit_button: gr.update(interactive=complete), page.draft: draft}

    for control in page.answers:
        control.change(
            answers_changed,
            {page.pair_token, page.draft, *page.answers},
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
    store: ListeningStore, clips: ClipServer | None = None, new_raters: ClientLimiter | None = None
) -> ParticipantPage:
    """The participant's page, inside the current ``gr.Blocks``/``gr.Tab`` (its components returned).
    The clips' folder is served as static: Gradio sends each clip file as it is, instead of
    copying every clip into its cache."""
    if clips is None:
        clips = ClipServer(store)
        clips.prerender()
    gr.set_static_paths([clips.folder])
    page = participant_layout()
    wire_participant_page(page, store, clips, new_raters or ClientLimiter(NEW_RATERS_PER_CLIENT_PER_HOUR))
    return page
