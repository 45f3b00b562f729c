"""Generate tab: "Melody: none / upload / from a segment / generate one".

Where the melody comes from is decided by the model: a melody+accompaniment model writes it,
an accompaniment model takes an uploaded or a segment's melody, or plays to the chords alone.
The radio is the visible switch for that choice and always says the same as the line under
it: it shows where the melody comes from, or where the visitor said it will come from (an
upload or a segment chosen, not given yet: "none yet"). Choosing "generate one" selects the
first melody-writing model; choosing another source while a writer is selected goes back to
the default accompaniment model. It is UI state only: the API's parameter is ``model``.
"""

from __future__ import annotations

import gradio as gr

from demo.controller import Controller

NONE, UPLOAD, SEGMENT, GENERATE = "none", "upload", "segment", "generate"
CHOICES = [
    ("none (chords only)", NONE),
    ("upload a MIDI", UPLOAD),
    ("from a POP909 segment", SEGMENT),
    ("generate one", GENERATE),
]
WAITING = {
    UPLOAD: "Melody: none yet — upload a MIDI file below.",
    SEGMENT: "Melody: none yet — pick a POP909 song below, then one of its segments.",
}


def melody_source_radio(controller: Controller) -> gr.Radio:
    """The radio, agreeing with the melody line on first load; shown only where the app serves
    both kinds of model."""
    writers = controller.melody_writers()
    both = bool(writers) and len(writers) < len(controller.generators)
    return gr.Radio(
        CHOICES,
        value=source_shown(controller, controller.default_model, None, None),
        label="Melody",
        elem_id="melody-source",
        visible=both,
        info="generate one = a melody + accompaniment model writes both from the chords alone",
    )


def model_for_source(controller: Controller, source: str, model: str | None) -> str | None:
    """The model a source choice selects: a writer for "generate one", else an accompaniment
    model; ``model`` itself when it already fits (or nothing else does)."""
    writers = controller.melody_writers()
    others = [name for name in controller.generators if name not in writers]
    if source == GENERATE:
        return model if model in writers or not writers else writers[0]
    if model in writers and others:
        return controller.default_model if controller.default_model in others else others[0]
    return model


def source_shown(
    controller: Controller, model: str | None, upload: str | None, segment: int | None, chosen: str | None = None
) -> str:
    """The radio's value: where the melody comes from with this model, file and segment; or
    ``chosen``, an upload or a segment the visitor picked and has not given yet."""
    if model in controller.melody_writers():
        return GENERATE
    if upload:
        return UPLOAD
    if segment is not None:
        return SEGMENT
    return chosen if chosen in WAITING else NONE


def melody_line(
    controller: Controller, source: str | None, model: str | None, upload: str | None, segment: int | None
) -> str:
    """The line under the radio: where the melody comes from, or what is still to be given."""
    if source_shown(controller, model, upload, segment) == NONE and source in WAITING:
        return WAITING[source]
    return controller.melody_description(segment, upload, model)
