"""Generate tab: "Melody: upload / from a segment / generate one".

Where the melody comes from is decided by the model: a melody+accompaniment model writes it,
an accompaniment model takes an uploaded or a segment's melody. The radio is the visible
switch for that choice, kept in step with the Model dropdown both ways: choosing "generate
one" selects the first melody-writing model, choosing a given melody while a writer is
selected goes back to the default accompaniment model, and picking a model, a file or a
segment moves the radio. It is UI state only — the API's parameter is ``model``.
"""

from __future__ import annotations

import gradio as gr

from demo.controller import Controller
from demo.guard import PRIVATE

UPLOAD, SEGMENT, GENERATE = "upload", "segment", "generate"
CHOICES = [("upload a MIDI", UPLOAD), ("from a POP909 segment", SEGMENT), ("generate one", GENERATE)]


def melody_source_radio(controller: Controller) -> gr.Radio:
    """The radio; shown only where the app serves both kinds of model."""
    writers = controller.melody_writers()
    both = bool(writers) and len(writers) < len(controller.generators)
    return gr.Radio(
        CHOICES,
        value=GENERATE if controller.default_model in writers else SEGMENT,
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


def source_for_model(controller: Controller, model: str | None, source: str | None) -> str:
    """The radio's value once ``model`` is selected."""
    if model in controller.melody_writers():
        return GENERATE
    return SEGMENT if source in (None, GENERATE) else source


def wire_melody_source(
    controller: Controller, radio: gr.Radio, model: gr.Dropdown, melody_file: gr.File, segment_picker: gr.Dropdown
) -> None:
    """Keep ``radio`` and ``model`` in step (``.input`` for the visitor's own clicks, so one
    side's update does not bounce back)."""
    private = dict(PRIVATE, show_progress="hidden")
    radio.input(lambda source, name: model_for_source(controller, source, name), [radio, model], model, **private)
    model.change(lambda name, source: source_for_model(controller, name, source), [model, radio], radio, **private)

    def given(source_when_set: str):
        def update(value, name):
            if not value:
                return gr.skip(), gr.skip()
            return source_when_set, model_for_source(controller, source_when_set, name)

        return update

    melody_file.upload(given(UPLOAD), [melody_file, model], [radio, model], **private)
    segment_picker.input(given(SEGMENT), [segment_picker, model], [radio, model], **private)
