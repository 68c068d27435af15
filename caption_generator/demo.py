"""The web page (python -m caption_generator demo): drop photos, read their captions and how far to trust them,
and, with a collection, browse its most similar photos. A Gradio app over CaptionPipeline, Captioned.similar
and CaptionIndex, with no logic of its own. Gradio is optional (requirements-demo.txt): it is imported when
the page is built, so that importing this module stays light (hence the quoted "gradio" annotations; the
others are not quoted, so that Gradio sees gr.SelectData).
"""
import html
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CaptionError
from .layouts import list_images
from .pipeline import DEFAULT_BEAM, DEFAULT_LENGTH_PENALTY, CaptionPipeline, Captioned
from .similar import DEFAULT_THRESHOLD, CaptionIndex, Similar

if TYPE_CHECKING:
    import gradio

DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 shares the page on the network
DEFAULT_PORT = 7860  # Gradio's usual port
DEFAULT_SIMILAR = 6  # photos of the collection shown for each photo
QUEUE_SIZE = 64  # requests waiting for the model; beyond this, Gradio turns new ones away
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
INSTALL = "pip install -r requirements-demo.txt"

CSS = """
.photo-caption { font-size: 1.8rem; font-weight: 600; line-height: 1.3; margin: 0.1em 0 0.3em; }
.photo-name, .assessment { font-size: 1rem; color: var(--neutral-600); margin: 0; }
.warning { font-size: 1.05rem; background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5em 0.8em;
           margin: 0.6em 0 0; }
.error { font-size: 1.1rem; background: #fdecec; border-left: 4px solid #c62828; padding: 0.6em 0.9em; margin: 0; }
.placeholder { font-size: 1.1rem; color: var(--body-text-color-subdued); }
.similar label[data-testid="block-label"] { font-size: 0.95rem; }
.similar .caption-label { white-space: normal; overflow: visible; text-overflow: clip; }
#examples .grid-wrap, .similar .grid-wrap.fixed-height { overflow-y: auto; min-height: 0; max-height: none; }
"""

Shown = list[tuple[Captioned, Similar | None]]  # each photo as captioned, and its similar photos


def import_gradio() -> "gradio":
    """Gradio, imported with its usage reports off; without it, a CaptionError that says how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ModuleNotFoundError as e:
        if e.name != "gradio":
            raise
        raise CaptionError(f"the demo needs Gradio: {INSTALL}") from None
    return gradio


def build_page(captioner: CaptionPipeline, index: CaptionIndex | None = None, *, beam: int = DEFAULT_BEAM,
               length_penalty: float = DEFAULT_LENGTH_PENALTY, similar: int = DEFAULT_SIMILAR,
               by: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> "gradio.Blocks":
    """The page: photos in, their captions out (beam search of width `beam`, or greedy) and, with a
    collection's `index`, up to `similar` of its photos like each, ranked `by` as caption --similar does."""
    gr = import_gradio()
    examples = list_images(EXAMPLES_DIR) if EXAMPLES_DIR.is_dir() else []

    def caption(files: list[str] | None, width: int) -> tuple[list[dict], Shown]:
        try:
            shown = [(photo, photo.similar(index, similar, by, threshold) if index and not photo.error else None)
                     for photo in captioner(files or [], width, length_penalty, progress=False)]
        except CaptionError as e:  # e.g. --by image with an index without photo features: said on the page
            raise gr.Error(str(e)) from None
        return [photo.to_json(found) for photo, found in shown], shown

    with gr.Blocks(title="Image caption generator") as page:
        gr.Markdown("# Image caption generator\nDrop photos, or click an example, and read what a model trained on "
                    "Flickr8k writes about each, with how far to trust it"
                    + (", and the most similar photos of the collection." if index else "."))
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                files = gr.File(label="Photos", file_count="multiple", elem_id="photos")
                width = gr.Radio([(f"beam search (width {beam})", beam), ("greedy (faster)", 1)], value=beam,
                                 label="Decoding", elem_id="decoding")
                if examples:
                    picked = gr.Gallery([str(p) for p in examples], label="Examples: click one", columns=4,
                                        height=150, object_fit="cover", allow_preview=False, interactive=False,
                                        buttons=[], elem_id="examples")

                    def pick(event: gr.SelectData) -> list[str]:
                        return [str(examples[event.index])]

                    picked.select(pick, None, files, api_visibility="private")
            with gr.Column(scale=3, min_width=400):
                shown = gr.State([])

                @gr.render(inputs=shown)
                def show(results: Shown) -> None:
                    if not results:
                        gr.HTML('<p class="placeholder">The captions appear here.</p>')
                    for photo, found in results:
                        _show_photo(gr, photo, found)

                with gr.Accordion("As JSON (the caption command's --json)", open=False):
                    as_json = gr.JSON(show_label=False)
        gr.on([files.change, width.change], caption, [files, width], [as_json, shown], api_name="caption")
    return page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)  # one request at a time uses the model


def _show_photo(gr: "gradio", photo: Captioned, found: Similar | None) -> None:
    """One photo of the page's results: its caption, its assessment and warning, its similar photos; or its error."""
    name = html.escape(photo.path.name)
    if photo.error:
        gr.HTML(f'<p class="error">{html.escape(photo.error.replace(str(photo.path), photo.path.name))}</p>')
        return
    assessment = photo.assessment
    numbers = f"confidence {assessment.confidence:.2f}" + (
        "" if assessment.familiarity is None else f" · familiarity {assessment.familiarity:.2f}") + \
        " (higher is surer; a warning shows when the caption is doubtful)"
    warning = f'<p class="warning">⚠ {html.escape(assessment.warning)}</p>' if assessment.warning else ""
    with gr.Row(equal_height=False):
        gr.Image(str(photo.path), show_label=False, container=False, height=180, scale=1, min_width=160,
                 interactive=False, buttons=[])
        gr.HTML(f'<p class="photo-name">{name}</p><p class="photo-caption">{html.escape(photo.caption)}</p>'
                f'<p class="assessment">{numbers}</p>{warning}', elem_classes="result")
    if found is not None:
        gr.Gallery([(str(m.path), f"{m.score:.2f} · {m.caption}") for m in found.matches], label=found.heading(),
                   columns=3, fit_columns=False, height="auto", interactive=False, buttons=[], elem_classes="similar")


def photo_folders(index: CaptionIndex | None) -> list[str]:
    """The folders of the collection's photos, which the page may show."""
    return sorted({str(Path(p).parent) for p in index.paths}) if index and index.paths else []


def serve(captioner: CaptionPipeline, index: CaptionIndex | None = None, *, host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT, **options) -> None:
    """Serve the page (options as for build_page) until interrupted, after printing its address."""
    page = build_page(captioner, index, **options)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request Gradio makes to itself
    try:
        _, url, _ = page.launch(server_name=host, server_port=port, quiet=True, prevent_thread_lock=True,
                                allowed_paths=[str(EXAMPLES_DIR), *photo_folders(index)], css=CSS)
    except OSError:  # Gradio's "Cannot find empty port"
        raise CaptionError(f"cannot serve on {host}:{port}: the port is taken or the address is not this "
                           "machine's (give another --port or --host)") from None
    print(f"open {url} in a browser (Ctrl+C stops the server)", flush=True)
    page.block_thread()
