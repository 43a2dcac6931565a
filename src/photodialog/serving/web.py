"""The web chat page of ``photodialog serve`` (Gradio): upload photos, see the model's photos inline.

One ``ChatEngine`` (one model) serves every visitor. Each browser tab (each API client) has its
own ``ChatSession`` in Gradio's per-session state, with its own folder
``OUT/sessions/<random id>/``: histories never mix. Requests go through Gradio's queue with a
concurrency limit, and the engine's lock lets one reply generate at a time while the others
wait (and are told so). A reply is streamed into the page as it is generated.

Files: the server writes only under ``OUT``. Session photos get names the session chooses; Gradio
keeps uploads and the copies it serves in its cache folder, which ``build_app`` points at
``OUT/gradio-cache`` (the ``GRADIO_TEMP_DIR`` setting is process-wide, so one process serves one
page). Gradio names uploads by their content hash plus a sanitised file name, and refuses input
paths outside its cache, so a visitor never chooses where anything is written or read.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path

from photodialog.errors import UserError
from photodialog.models.generation import GenerationSettings, check_settings
from photodialog.serving.chat_view import chat_messages, pending_message
from photodialog.serving.engine import ChatEngine, DrawingStep, Finished, TextSoFar, Waiting
from photodialog.serving.limits import InputLimits, check_message, check_photo_file
from photodialog.serving.session import ChatSession

log = logging.getLogger(__name__)

SESSIONS_DIR = "sessions"
CACHE_DIR = "gradio-cache"
CACHE_CLEANUP = (3600, 24 * 3600)  # every hour, delete Gradio's cached copies older than a day
# Show a tiny model's 32-pixel photos at a visible size (larger photos are unaffected).
CSS = "#chat .image-frame img { min-width: 128px; min-height: 128px; object-fit: contain; }"
EMPTY_REPLY = "The model's reply was empty; say more, or raise the temperature in Settings."
INTRO = """## photodialog chat
Talk with the model: it sees the photos you attach (the clip in the message box) and may answer
with a photo of its own. Your conversation is yours alone; **New chat** starts over and **Save
dialogue** gives it to you in PhotoChat's format."""


class ChatPage:
    """The page's event handlers, bound to one engine and one output folder."""

    def __init__(self, engine: ChatEngine, out_dir: Path, defaults: GenerationSettings, limits: InputLimits):
        self.engine, self.out_dir, self.defaults, self.limits = engine, out_dir, defaults, limits

    def new_session(self) -> ChatSession:
        return ChatSession(self.out_dir / SESSIONS_DIR / uuid.uuid4().hex[:16])

    # ------------------------------------------------------------ events

    def send(self, message, session, temperature, diffusion_steps, guidance_scale, seed):
        """Check the message, then stream the reply: yields (chat, message box, session, status)."""
        import gradio as gr

        session = session or self.new_session()
        try:
            text, images = self.read_message(message)
            settings = self.settings(temperature, diffusion_steps, guidance_scale, seed)
        except UserError as err:
            yield chat_messages(session.history), gr.skip(), session, problem(err)
            return
        yield from self.reply(session, text, images, settings)

    def reply(self, session: ChatSession, text: str, images: list, settings: GenerationSettings):
        import gradio as gr

        before = session.snapshot()
        session.add_user_message(text, images)
        # The history does not change while the reply streams: build its messages once, not per event.
        asked = chat_messages(session.history)
        shown, status = "", ""
        yield [*asked, pending_message(shown)], {"text": "", "files": []}, session, status
        try:
            for event in self.engine.stream(session.history, settings):
                if isinstance(event, Finished):
                    session.add_reply(event.reply)
                    status = "" if event.reply.text.strip() else EMPTY_REPLY
                    break
                shown, status = progress(event, shown)
                yield [*asked, pending_message(shown)], gr.skip(), session, status
        except Exception as err:  # noqa: BLE001 - one failed reply must not take the page down
            log.exception("the reply failed")
            session.restore(before)
            failed = problem(f"the model failed to reply ({type(err).__name__}); try again")
            yield chat_messages(session.history), gr.skip(), session, failed
            return
        yield chat_messages(session.history), gr.skip(), session, status

    def new_chat(self, session):
        if session is not None:
            session.reset()
        return [], session, "New conversation: the model forgot everything said so far."

    def save(self, session):
        """The dialogue as a PhotoChat file to download (written in the session's folder)."""
        import gradio as gr

        if session is None or not session.history:
            return gr.update(value=None, visible=False), problem("nothing to save yet: send a message first")
        return gr.update(value=str(session.save()), visible=True), "Saved: download the dialogue below."

    # ------------------------------------------------------------ input

    def read_message(self, message) -> tuple[str, list]:
        """The checked text and decoded photos of a ``MultimodalTextbox`` value."""
        message = message or {}
        if not isinstance(message, dict):
            raise UserError("send a message as {\"text\": ..., \"files\": [...]}")
        files = [f for f in message.get("files") or [] if f]
        text = check_message(str(message.get("text") or ""), len(files), self.limits)
        images = [check_photo_file(path, self.limits, name=upload_name(path)) for path in files]
        return text, images

    def settings(self, temperature, diffusion_steps, guidance_scale, seed) -> GenerationSettings:
        """The page's settings over the server's defaults (a value left out keeps its default)."""
        base = self.defaults
        try:
            chosen = replace(
                base, diffusion_steps=base.diffusion_steps if diffusion_steps is None else int(diffusion_steps),
                guidance_scale=base.guidance_scale if guidance_scale is None else float(guidance_scale),
                seed=base.seed if seed is None else int(seed),
            )
            if temperature is not None:
                chosen = with_temperature(chosen, float(temperature))
        except (TypeError, ValueError) as err:
            raise UserError(f"a setting is not a number ({err})") from None
        return check_settings(chosen)


def with_temperature(settings: GenerationSettings, temperature: float) -> GenerationSettings:
    """Above 0: sampling at that temperature; 0: the server's deterministic decoding (greedy or beam)."""
    if temperature < 0:
        raise UserError(f"temperature must be 0 (no sampling) or more (got {temperature:g})")
    if temperature > 0:
        return replace(settings, decoding="sample", temperature=temperature)
    return replace(settings, decoding="greedy" if settings.decoding == "sample" else settings.decoding)


def progress(event, shown: str) -> tuple[str, str]:
    """(reply text so far, status line) after one engine event."""
    if isinstance(event, Waiting):
        return shown, "Waiting for the model: it is answering another conversation."
    if isinstance(event, TextSoFar):
        return event.text, ""
    if isinstance(event, DrawingStep):
        return shown, f"Drawing a photo: step {event.step} of {event.total}."
    return shown, ""


def problem(message) -> str:
    return f"**Could not send:** {message}"


def upload_name(path) -> str:
    """The name a visitor gave the file (Gradio keeps it, sanitised, as the last path part)."""
    return Path(str(path)).name


def use_cache_under(out_dir: Path) -> Path:
    """Point Gradio's upload and file cache at ``out_dir/gradio-cache`` (before any component exists)."""
    cache = out_dir / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    return cache


def build_app(engine: ChatEngine, out_dir: str | Path, defaults: GenerationSettings | None = None,
              limits: InputLimits | None = None, *, concurrency: int = 4, queue_size: int = 64, title: str = ""):
    """The Gradio ``Blocks`` of the chat page, queued; launch it with ``launch``."""
    import gradio as gr

    out_dir = Path(out_dir).absolute()
    use_cache_under(out_dir)
    defaults = defaults or GenerationSettings()
    page = ChatPage(engine, out_dir, defaults, limits or InputLimits())
    with gr.Blocks(title="photodialog chat", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(INTRO + (f"\n\nModel: `{title}`" if title else ""))
        chatbot = gr.Chatbot(label="conversation", height=520, elem_id="chat", feedback_options=None,
                             buttons=["copy", "copy_all"])
        message = gr.MultimodalTextbox(file_count="multiple", show_label=False, elem_id="message",
                                       placeholder="Type a message, attach photos with the clip, press Enter")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            new_chat = gr.Button("New chat", elem_id="new-chat")
            save = gr.Button("Save dialogue", elem_id="save")
        download = gr.File(label="dialogue (PhotoChat JSON)", visible=False, elem_id="download")
        with gr.Accordion("Settings", open=False):
            temperature = gr.Slider(0, 2, step=0.05, label="temperature (0: no sampling)",
                                    value=defaults.temperature if defaults.decoding == "sample" else 0)
            steps = gr.Slider(1, 100, step=1, value=defaults.diffusion_steps, label="diffusion steps per photo")
            guidance = gr.Slider(0, 15, step=0.5, value=defaults.guidance_scale, label="guidance scale")
            seed = gr.Number(value=defaults.seed, precision=0, minimum=0, label="seed")
        session = gr.State(None)
        message.submit(page.send, [message, session, temperature, steps, guidance, seed],
                       [chatbot, message, session, status], api_name="send")
        new_chat.click(page.new_chat, [session], [chatbot, session, status], api_name="new_chat")
        chatbot.clear(page.new_chat, [session], [chatbot, session, status], api_visibility="private")  # its bin icon
        save.click(page.save, [session], [download, status], api_name="save")
    app.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    return app


def launch(app, host: str, port: int, limits: InputLimits | None = None) -> str:
    """Start serving ``app`` on ``host:port`` in a background thread; returns the local URL.

    Stop it with ``app.close()``; ``serve_forever`` does both for the command line.
    """
    limits = limits or InputLimits()
    try:
        _, url, _ = app.launch(
            server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, show_error=False,
            max_file_size=limits.max_photo_bytes, ssr_mode=False, mcp_server=False, enable_monitoring=False, css=CSS,
        )
    except OSError as err:
        raise UserError(f"cannot serve on {host}:{port} ({err}); is another server using the port? Try --port") from None
    return url


def serve_forever(app) -> None:
    """Wait while ``app`` serves; Ctrl-C closes it cleanly."""
    import time

    try:
        while app.is_running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
