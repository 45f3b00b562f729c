"""The listening test's two pages: the participant's (blind) and the admin's (results, plots,
export). Layout and wiring only; the store is ``demo.listening``.

Blind by construction: the browser receives audio files named by opaque per-rater clip ids
(``ListeningStore.clip_id``) whose bytes differ per rater (up to 0.1 s of trailing silence
drawn from the id), so neither a URL, a file name nor a content hash links a clip to a
system, a segment or another rater's clip. Listening events bypass the generation queue
(``queue=False``: they are short database calls), so a flood of generations cannot lock
raters out.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from scipy.io import wavfile

from demo.audio import write_wav
from demo.limits import client_of
from demo.listening import CRITERIA, PREFERENCES, AdminGate, ListeningStore

SCORES = [1, 2, 3, 4, 5]
NEW_RATERS_PER_CLIENT_PER_HOUR = 5
CONSENT = (
    "I agree that my ratings are stored anonymously (with a random token, no name, no address) "
    "and used for research on music generation."
)
INSTRUCTIONS = """**Blind listening test.** Each pair plays the same melody and chords with two
different accompaniments, A and B, in random order. Listen to both, rate each from 1 (poor) to
5 (excellent) on creativity, harmony (does it fit the chords and melody?) and naturalness
(could a person have played it?), then say which you prefer. About 1 minute per pair; you can
stop and come back later in this browser."""


class ClientLimiter:
    """At most ``limit`` events per client in any ``window`` seconds (sliding window)."""

    def __init__(self, limit: int, window: float = 3600.0, clock=time.monotonic):
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


class ClipServer:
    """Renders each pool MIDI once, then writes what one rater hears under an opaque name.
    Gradio copies each served clip into its own cache, so only the last ``keep`` clips are
    kept here (a clip asked for again is simply written again): temp space stays bounded
    however many raters come."""

    def __init__(self, store: ListeningStore, folder: Path | None = None, keep: int = 64):
        self.store = store
        self.folder = folder or Path(tempfile.mkdtemp(prefix="clips-"))
        self.keep = keep
        self._written: deque[Path] = deque()
        self._lock = threading.Lock()

    def _rendered(self, midi_path: str) -> Path:
        wav = self.folder / "rendered" / (hashlib.sha256(midi_path.encode()).hexdigest()[:32] + ".wav")
        with self._lock:
            if not wav.is_file():
                import pretty_midi

                write_wav(pretty_midi.PrettyMIDI(midi_path), wav)
        return wav

    def prerender(self) -> threading.Thread:
        """Render the whole pool in the background at start-up, so no rater waits for it."""

        def run():
            for pair in self.store.pairs():
                for name in (pair.midi_x, pair.midi_y):
                    try:
                        self._rendered(str(self.store.pool_dir / name))
                    except Exception as err:  # a broken pool file: the rater who reaches it gets the error
                        import logging

                        logging.getLogger("fgg.listening").warning("cannot render %s: %s", name, err)

        thread = threading.Thread(target=run, name="listening-prerender", daemon=True)
        thread.start()
        return thread

    def clip(self, rater: str, pair_id: int, side: str, midi_path: str) -> str:
        """The WAV ``rater`` hears as ``side``: named by the clip id, with 1–2,048 samples (≤ 0.1 s) of
        trailing silence (inaudible) so its bytes are this rater's own."""
        clip_id = self.store.clip_id(rater, pair_id, side)
        out = self.folder / "clips" / f"{clip_id}.wav"
        if not out.is_file():
            rate, audio = wavfile.read(self._rendered(midi_path))
            pad = np.zeros((1 + int(clip_id[:6], 16) % 2048,) + audio.shape[1:], dtype=audio.dtype)
            out.parent.mkdir(parents=True, exist_ok=True)
            wavfile.write(out, rate, np.concatenate([audio, pad]))
            with self._lock:
                self._written.append(out)
                stale = [self._written.popleft() for _ in range(max(0, len(self._written) - self.keep))]
            for old in stale:
                old.unlink(missing_ok=True)
        return str(out)


def build_participant_page(
    store: ListeningStore, clips: ClipServer | None = None, new_raters: ClientLimiter | None = None
) -> None:
    """The participant's page, inside the current ``gr.Blocks``/``gr.Tab``."""
    if clips is None:
        clips = ClipServer(store)
        clips.prerender()
    new_raters = new_raters or ClientLimiter(NEW_RATERS_PER_CLIENT_PER_HOUR)
    gr.Markdown(INSTRUCTIONS)
    consent = gr.Checkbox(label=CONSENT, value=False, elem_id="listening-consent")
    start_btn = gr.Button("Start / continue", variant="primary", elem_id="listening-start")
    token = gr.BrowserState(None, storage_key="listening-rater")  # the rater's token, in this browser only
    pair_state = gr.State(None)
    status = gr.Markdown(elem_id="listening-status")
    # Messages go to the page, not to toasts: these events skip the queue, which carries toasts.
    notice = gr.Markdown(elem_id="listening-notice")
    with gr.Row():
        with gr.Column():
            listen_a = gr.Audio(label="A", type="filepath", interactive=False, elem_id="listening-a")
            ratings_a = [gr.Radio(SCORES, value=None, label=f"A · {c}", elem_id=f"listening-a-{c}") for c in CRITERIA]
        with gr.Column():
            listen_b = gr.Audio(label="B", type="filepath", interactive=False, elem_id="listening-b")
            ratings_b = [gr.Radio(SCORES, value=None, label=f"B · {c}", elem_id=f"listening-b-{c}") for c in CRITERIA]
    preference = gr.Radio(
        list(PREFERENCES), value=None, label="Which do you prefer overall?", elem_id="listening-preference"
    )
    submit_btn = gr.Button("Submit and next", interactive=False, elem_id="listening-submit")
    answers = ratings_a + ratings_b + [preference]
    shown = [pair_state, status, notice, listen_a, listen_b] + answers + [submit_btn]

    def show_next(rater: str):
        """Values for ``shown``: the next pair, its clips, every answer unset, submit disabled."""
        trial = store.next_trial(rater)
        cleared = [None] * len(answers) + [gr.update(interactive=False)]
        if trial is None:
            done = len(store.answered(rater))
            msg = (
                f"**All {done} pairs rated — thank you!** Your answers are saved."
                if done
                else "The listening pool is empty: build it with `python -m demo.listening build`."
            )
            return [None, msg, "", None, None] + cleared
        return [
            trial.pair_id,
            f"**Pair {trial.number} of {trial.total}**",
            "",
            clips.clip(rater, trial.pair_id, "A", trial.midi_a),
            clips.clip(rater, trial.pair_id, "B", trial.midi_b),
        ] + cleared

    def keep_page(message: str):
        """Values for ``shown`` that say what is wrong and change nothing else (the pair and
        the answers stay)."""
        return [gr.skip(), gr.skip(), f"⚠️ {message}"] + [gr.skip()] * (len(shown) - 3)

    def start(agreed: bool, stored_token: str | None, request: gr.Request):
        if not agreed:
            return [gr.skip()] + keep_page("Please tick the consent box first.")
        try:
            rater = store.resume_rater(stored_token) if stored_token else None
        except ValueError:
            rater = None  # a token from an older database: start afresh
        if rater is None:
            if not new_raters.allow(client_of(request)):
                return [gr.skip()] + keep_page(
                    "Too many new sessions from your network in the last hour; please try again later."
                )
            rater = store.new_rater()
        return [rater] + show_next(rater)

    start_btn.click(start, [consent, token], [token] + shown, queue=False, api_visibility="private")

    def toggle_submit(pair, *values):
        return gr.update(interactive=pair is not None and all(v is not None for v in values))

    for control in answers:
        control.change(toggle_submit, [pair_state] + answers, submit_btn, queue=False, api_visibility="private")

    def submit(rater: str | None, pair, *values):
        try:
            if not rater or pair is None:
                raise ValueError("press Start first")
            if any(v is None for v in values):
                raise ValueError("rate A and B on every criterion and choose a preference first")
            store.submit(
                rater,
                int(pair),
                dict(zip(CRITERIA, values[:3], strict=True)),
                dict(zip(CRITERIA, values[3:6], strict=True)),
                values[6],
            )
        except ValueError as err:
            return keep_page(str(err))
        return show_next(rater)

    submit_btn.click(submit, [token, pair_state] + answers, shown, queue=False, api_visibility="private")


def rating_figure(systems: pd.DataFrame):
    """Per-system mean rating with 95 % CI, one group of bars per criterion."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for _, row in systems.iterrows():
        fig.add_bar(
            name=f"{row['system']} (n = {row['answers']})",
            x=list(CRITERIA),
            y=[row[c] for c in CRITERIA],
            error_y=dict(type="data", array=[row[f"{c}_ci95"] for c in CRITERIA]),
        )
    fig.update_layout(
        barmode="group",
        yaxis=dict(range=[0, 5.2], title="mean rating (1-5) ± 95 % CI"),
        title="Ratings per system",
        height=380,
        margin=dict(t=50, b=40),
    )
    return fig


def preference_figure(tests: pd.DataFrame):
    """For each baseline: share of answers preferring FGG, the baseline, or neither."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, name in (("fgg_preferred", "FGG"), ("same", "same"), ("baseline_preferred", "baseline")):
        share = tests[column] / tests["answers"].clip(lower=1)
        fig.add_bar(
            name=name,
            y=[f"vs {b} (n = {n})" for b, n in zip(tests["baseline"], tests["answers"], strict=True)],
            x=share,
            orientation="h",
        )
    fig.update_layout(
        barmode="stack",
        xaxis=dict(range=[0, 1], tickformat=".0%", title="share of answers"),
        title="Preferences per pair type",
        height=300,
        margin=dict(t=50, b=40),
    )
    return fig


def answers_over_time_figure(answers: list[dict]):
    """Cumulative answers over time (UTC)."""
    import plotly.graph_objects as go

    times = sorted(a["submitted_at"] for a in answers)
    fig = go.Figure(go.Scatter(x=times, y=list(range(1, len(times) + 1)), mode="lines+markers", name="answers"))
    fig.update_layout(
        title="Answers over time (UTC)", yaxis_title="answers so far", height=300, margin=dict(t=50, b=40)
    )
    return fig


def results_figures(result: dict, answers: list[dict]) -> tuple[str, list]:
    """The admin's summary line and figures (ratings, preferences, answers over time) from
    ``ListeningStore.results`` and ``answers``."""
    systems, tests = pd.DataFrame(result["systems"]), pd.DataFrame(result["preference"])
    counts = result["raters"]
    first = min((a["submitted_at"] for a in answers), default="–")
    last = max((a["submitted_at"] for a in answers), default="–")
    text = (
        f"**{counts['answers']} answers from {counts['raters']} raters**, {first} → {last} (UTC); "
        f"{counts['flagged_raters']} rater(s) failed the attention check and are left out, "
        f"{counts['answers_used']} answers used."
    )
    figures = [
        rating_figure(systems) if len(systems) else None,
        preference_figure(tests) if len(tests) else None,
        answers_over_time_figure(answers) if answers else None,
    ]
    return text, figures


def build_admin_page(store: ListeningStore, gate: AdminGate | None = None) -> None:
    """Results, plots and export behind ``FGG_ADMIN_PASSWORD`` (``AdminGate``)."""
    gate = gate or AdminGate()
    gr.Markdown(
        "Results of the listening test (needs `FGG_ADMIN_PASSWORD` on the server)."
        + (f"\n\n⚠️ **Storage:** {store.warning}." if store.warning else "")
    )
    password = gr.Textbox(label="Admin password", type="password", elem_id="admin-password")
    show_btn = gr.Button("Show results", elem_id="admin-show")
    summary = gr.Markdown()
    ratings_plot = gr.Plot(label="Ratings")
    preference_plot = gr.Plot(label="Preferences")
    time_plot = gr.Plot(label="Answers over time")
    systems_table = gr.DataFrame(label="Ratings per system (mean, 95 % CI)", interactive=False)
    tests_table = gr.DataFrame(label="FGG vs each baseline (sign test, Wilcoxon)", interactive=False)
    export_csv = gr.Code(label="Answers (CSV, formula-safe)", language=None, interactive=False)
    export_json = gr.Code(label="Answers (JSON)", language="json", interactive=False)

    def show(pw: str, request: gr.Request):
        try:
            gate.check(pw, client_of(request))
        except PermissionError as err:  # said on the page (these events skip the queue, which carries toasts)
            return [f"⚠️ {err}"] + [None] * 7
        answers = store.answers()
        result = store.results(answers)
        text, figures = results_figures(result, answers)
        return (
            text,
            *figures,
            pd.DataFrame(result["systems"]).round(3),
            pd.DataFrame(result["preference"]).round(4),
            store.export_csv(),
            store.export_json(),
        )

    show_btn.click(
        show,
        password,
        [summary, ratings_plot, preference_plot, time_plot, systems_table, tests_table, export_csv, export_json],
        queue=False,
        api_visibility="private",
    )
