"""The web chat page of ``photodialog serve`` (Gradio): upload photos, see the model's photos inline.

One ``ChatEngine`` (one model) serves every visitor. Each browser tab (each API client) has its
own ``ChatSession`` in Gradio's per-session state, with its own folder
``OUT/sessions/<server id>/<random id>/``: histories never mix. Each server process writes its
sessions under a folder of its own (locked while it runs), so two servers on one ``OUT`` never
remove each other's sessions, and nothing else under ``OUT/sessions/`` is ever removed. Requests go through Gradio's queue with a
concurrency limit, and the engine's lock lets one reply generate at a time while the others
wait (and are told so). A reply is streamed into the page as it is generated.

Files: the server writes only under ``OUT``. Session photos get names the session chooses; Gradio
keeps uploads and the copies it serves in its cache folder, which ``build_app`` points at
``OUT/gradio-cache`` (the ``GRADIO_TEMP_DIR`` setting is process-wide, so one process serves one
page). Gradio names uploads by their content hash plus a sanitised file name, and refuses input
paths outside its cache, so a visitor never chooses where anything is written or read.

Bounds (``InputLimits``): photos per message and their pixels together (from the headers, before
decoding), photos per conversation, megapixels decoded at once over all visitors
(``PixelBudget``), a person's photo kept at most ``kept_photo_side`` pixels wide. The
``DiskJanitor`` keeps the upload cache under ``max_upload_cache_bytes`` (oldest files first,
also uploads that were never sent) and removes a session's folder when the session ends (its
tab closed for an hour, or idle for ``SESSION_TTL``), and the folder of a server that is gone (its
lock free) once it has been idle as long. An upload the web framework cannot parse
(an empty file name) is answered with HTTP 400 and a message (``UploadErrors``), not 500.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from photodialog.errors import UserError
from photodialog.models.generation_settings import GenerationSettings, check_settings
from photodialog.output_files import LOCK_FILE, folder_is_locked, lock_folder
from photodialog.serving.chat_view import chat_messages, pending_message
from photodialog.serving.engine import ChatEngine, DrawingStep, Finished, TextSoFar, Waiting
from photodialog.serving.limits import InputLimits, PixelBudget, check_message, check_message_photos, check_photo_file
from photodialog.serving.session import ChatSession

log = logging.getLogger(__name__)

SESSIONS_DIR = "sessions"
SERVER_PREFIX = "server-"  # OUT/sessions/server-<pid>-<random>/: one server's sessions
CACHE_DIR = "gradio-cache"
CACHE_CLEANUP = (600, 6 * 3600)  # every 10 minutes, Gradio deletes its cached copies older than 6 hours
SESSION_TTL = 6 * 3600  # a conversation idle this long ends (its state and folder are removed)
JANITOR_EVERY = 30  # seconds between the janitor's sweeps
UPLOAD_GRACE = 300  # seconds an upload is safe from the janitor: time to type the message it goes with
# Show a tiny model's 32-pixel photos at a visible size (larger photos are unaffected).
CSS = "#chat .image-frame img { min-width: 128px; min-height: 128px; object-fit: contain; }"
EMPTY_REPLY = "The model's reply was empty; say more, or raise the temperature in Settings."
INTRO = """## photodialog chat
Talk with the model: it sees the photos you attach (the clip in the message box) and may answer
with a photo of its own. Your conversation is yours alone; **New chat** starts over and **Save
dialogue** gives it to you in PhotoChat's format."""


def server_sessions_dir(out_dir: Path) -> Path:
    """A new folder name for one server's sessions: ``OUT/sessions/server-<pid>-<random>``."""
    return Path(out_dir) / SESSIONS_DIR / f"{SERVER_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"


class SessionEnd:
    """Gradio's ``delete_callback`` of the session state: removes the ended session's folder
    (a folder ``new_session`` made: ``sessions_dir/<server>/<session>``, nothing else).

    It holds only the sessions' folder, never the page: Gradio copies a state component's
    attributes for every new visitor, and a callback bound to the page would drag the
    engine, and the whole model with it, into each copy (twenty visitors then time out).
    """

    def __init__(self, sessions_dir: Path):
        self.sessions_dir = sessions_dir

    def __call__(self, session) -> None:
        if (isinstance(session, ChatSession) and session.out_dir.parent.parent == self.sessions_dir
                and session.out_dir.parent.name.startswith(SERVER_PREFIX)):
            shutil.rmtree(session.out_dir, ignore_errors=True)


class ChatPage:
    """The page's event handlers, bound to one engine and one output folder."""

    def __init__(self, engine: ChatEngine, out_dir: Path, defaults: GenerationSettings, limits: InputLimits,
                 *, sessions_dir: Path | None = None):
        self.engine, self.out_dir, self.defaults, self.limits = engine, out_dir, defaults, limits
        self.sessions_dir = sessions_dir or server_sessions_dir(out_dir)  # this server's: OUT/sessions/server-.../
        self.decoding = PixelBudget(limits.max_decoding_pixels)

    def new_session(self) -> ChatSession:
        return ChatSession(self.sessions_dir / uuid.uuid4().hex[:16])

    def end_session(self, session) -> None:
        """Remove what an ended session wrote."""
        SessionEnd(self.out_dir / SESSIONS_DIR)(session)

    # ------------------------------------------------------------ events

    def send(self, message, session, temperature, diffusion_steps, guidance_scale, seed):
        """Check the message, then stream the reply: yields (chat, message box, session, status)."""
        # optional dependency (the [serve] extra), slow to import
        import gradio as gr

        session = session or self.new_session()
        try:
            settings = self.settings(temperature, diffusion_steps, guidance_scale, seed)
            text, images = self.read_message(message, held=session.photo_count)
        except UserError as err:
            yield chat_messages(session.history), gr.skip(), session, problem(err)
            return
        yield from self.reply(session, text, images, settings)

    def reply(self, session: ChatSession, text: str, images: list, settings: GenerationSettings):
        # optional dependency (the [serve] extra), slow to import
        import gradio as gr

        before = session.snapshot()
        try:
            session.add_user_message(text, images)
        except UserError as err:  # the photos could not be written: nothing changed
            yield chat_messages(session.history), gr.skip(), session, problem(err)
            return
        # The history does not change while the reply streams: build its messages once, not per event.
        asked = chat_messages(session.history)
        shown, status = "", ""
        yield [*asked, pending_message(shown)], {"text": "", "files": []}, session, status
        try:
            for event in self.engine.stream(session.history, settings):
                if isinstance(event, Finished):
                    session.add_reply(event.reply)
                    status = "" if event.reply.text.strip() else EMPTY_REPLY
                    unsaved = session.take_write_problems()
                    if unsaved:
                        log.warning("; ".join(unsaved))
                        status = "The model's photo could not be saved on the server; it is shown as its caption."
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
        """(the saved PhotoChat file's path or None, status): the dialogue written in the session's folder.

        The path itself, not a component update, so that ``/save`` of the page's API returns the
        file (``gradio_client`` downloads it); ``show_download`` then shows or hides the link.
        """
        if session is None or not session.history:
            return None, problem("nothing to save yet: send a message first")
        try:
            path = session.save()
        except UserError as err:
            log.warning("%s", err)
            return None, "**Could not save:** the server could not write the file; try again later."
        return str(path), "Saved: download the dialogue below."

    # ------------------------------------------------------------ input

    def read_message(self, message, held: int = 0) -> tuple[str, list]:
        """The checked text and decoded photos of a ``MultimodalTextbox`` value.

        ``held``: photos the conversation already holds. Sizes are checked from the files'
        headers before any is decoded, and the decoding counts against the server's budget.
        """
        message = message or {}
        if not isinstance(message, dict):
            raise UserError("send a message as {\"text\": ..., \"files\": [...]}")
        files = message.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, (str, os.PathLike)) for f in files):
            raise UserError("send photos as a list of uploaded files")
        uploads = [(Path(f), upload_name(f)) for f in files if str(f)]
        text = check_message(str(message.get("text") or ""), len(uploads), self.limits)
        for path, name in uploads:
            if not path.is_file():  # the janitor removed an upload left too long, or it never arrived
                raise UserError(f"the upload '{name}' is no longer on the server; attach it again")
        pixels = check_message_photos(uploads, self.limits, held=held)
        with self.decoding.reserve(pixels):
            images = [check_photo_file(path, self.limits, name=name) for path, name in uploads]
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


def show_download(saved):
    """The download link shown when a file was saved, hidden otherwise."""
    # optional dependency (the [serve] extra), slow to import
    import gradio as gr

    return gr.update(visible=saved is not None)


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


class DiskJanitor:
    """Keeps the server's files bounded: the upload cache under a byte budget, ended sessions removed.

    ``sweep`` deletes the oldest files of Gradio's cache (uploads never sent included) until it
    holds at most ``max_cache_bytes``, sparing files younger than ``grace`` seconds (an upload
    whose message is being typed) unless the cache holds over twice its budget, and removes this
    server's session folders (``sessions``) untouched for longer than ``session_ttl`` (their state
    has ended: Gradio drops it after ``SESSION_TTL``), and the sessions folder of a server that is
    gone (its lock free) untouched as long. A folder under ``OUT/sessions/`` that no server made
    is never removed. ``start`` locks this server's folder and sweeps every ``every`` seconds in a
    daemon thread until ``stop``; ``remove_sessions`` removes this server's folder.
    """

    def __init__(self, out_dir: Path, max_cache_bytes: int, *, grace: float = UPLOAD_GRACE,
                 session_ttl: float = SESSION_TTL + 3600, sessions_dir: Path | None = None):
        self.cache, self.sessions = out_dir / CACHE_DIR, sessions_dir or server_sessions_dir(out_dir)
        self.max_cache_bytes, self.grace, self.session_ttl = max_cache_bytes, grace, session_ttl
        self._stop = threading.Event()
        self._lock = None

    def sweep(self) -> int:
        """One pass; returns the bytes it freed."""
        return self._trim_cache() + self._remove_idle_sessions() + self._remove_abandoned_servers()

    def _trim_cache(self) -> int:
        files = []
        for path in self.cache.rglob("*") if self.cache.is_dir() else []:
            try:
                if path.is_file():
                    stat = path.stat()
                    files.append((stat.st_mtime, stat.st_size, path))
            except OSError:
                continue  # deleted meanwhile by Gradio's own clean-up
        total, freed, now = sum(size for _, size, _ in files), 0, time.time()
        for mtime, size, path in sorted(files):
            left = total - freed
            # Fresh uploads are spared, unless a flood of them has taken the cache past twice its budget.
            if left <= self.max_cache_bytes or (now - mtime < self.grace and left <= 2 * self.max_cache_bytes):
                break
            path.unlink(missing_ok=True)
            freed += size
            try:
                path.parent.rmdir()  # Gradio's per-upload folder, when it is now empty
            except OSError:
                pass
        if freed:
            log.info("upload cache over %d MB: removed %d MB of its oldest files", self.max_cache_bytes >> 20, freed >> 20)
        return freed

    def _remove_idle_sessions(self) -> int:
        folders = [f for f in self.sessions.iterdir() if f.is_dir()] if self.sessions.is_dir() else []
        return sum(self._remove_if_idle(folder) for folder in folders)

    def _remove_abandoned_servers(self) -> int:
        """The sessions folders of servers that are gone: named and locked by a server, the lock now free."""
        root = self.sessions.parent
        folders = [f for f in root.iterdir() if f.is_dir()] if root.is_dir() else []
        return sum(self._remove_if_idle(folder) for folder in folders
                   if folder != self.sessions and folder.name.startswith(SERVER_PREFIX)
                   and (folder / LOCK_FILE).is_file() and not folder_is_locked(folder))

    def _remove_if_idle(self, folder: Path) -> int:
        """Remove ``folder`` when nothing in it changed for ``session_ttl``; the bytes freed."""
        try:
            entries = [folder, *folder.rglob("*")]
            newest = max(entry.stat().st_mtime for entry in entries)
            size = sum(entry.stat().st_size for entry in entries if entry.is_file())
        except (OSError, ValueError):
            return 0
        if time.time() - newest <= self.session_ttl:
            return 0
        shutil.rmtree(folder, ignore_errors=True)
        return size

    def remove_sessions(self) -> None:
        """Remove this server's sessions folder (when the server stops, every session of it has ended)."""
        shutil.rmtree(self.sessions, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        try:
            self.sessions.parent.rmdir()  # OUT/sessions/, when no other server's folder is left
        except OSError:
            pass

    def start(self, every: float = JANITOR_EVERY) -> "DiskJanitor":
        self.sessions.mkdir(parents=True, exist_ok=True)
        # Held while the server runs (the kernel drops it if the process dies): other servers' janitors
        # leave this folder alone while it is held, and may remove it, once idle, when it is not.
        self._lock = lock_folder(self.sessions, "the server's sessions folder")
        def loop():
            while not self._stop.wait(every):
                try:
                    self.sweep()
                except Exception:  # noqa: BLE001 - a failed sweep must not end the sweeping
                    log.exception("the disk janitor failed; it tries again")

        threading.Thread(target=loop, name="photodialog-janitor", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


class UploadErrors:
    """ASGI middleware: an upload the web framework cannot read gets HTTP 400 and a message, not 500.

    Gradio's upload route raises ``TypeError`` for a file part with an empty file name (the
    multipart parser reads it as a text field); any such failure before a response started is
    answered here.
    """

    MESSAGE = "the upload could not be read: send each photo as a file with a name (e.g. photo.jpg)"

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or not scope.get("path", "").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as err:  # noqa: BLE001 - answered with a message; one line in the log
            if started:
                raise
            log.warning("an upload could not be read (%s: %s); answered 400", type(err).__name__, err)
            log.debug("the upload's error", exc_info=True)
            body = json.dumps({"detail": self.MESSAGE}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def use_cache_under(out_dir: Path) -> Path:
    """Point Gradio's upload and file cache at ``out_dir/gradio-cache`` (before any component exists)."""
    cache = out_dir / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache)
    return cache


def build_app(engine: ChatEngine, out_dir: str | Path, defaults: GenerationSettings | None = None,
              limits: InputLimits | None = None, *, concurrency: int = 4, queue_size: int = 64, title: str = ""):
    """The Gradio ``Blocks`` of the chat page, queued; launch it with ``launch``."""
    # optional dependency (the [serve] extra), slow to import
    import gradio as gr

    out_dir = Path(out_dir).absolute()
    use_cache_under(out_dir)
    defaults = defaults or GenerationSettings()
    page = ChatPage(engine, out_dir, defaults, limits or InputLimits())  # this server's sessions folder
    with gr.Blocks(title="photodialog chat", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(INTRO + (f"\n\nModel: `{title}`" if title else ""))
        chatbot = gr.Chatbot(label="conversation", height=520, elem_id="chat", feedback_options=None,
                             buttons=["copy", "copy_all"])
        # Labels name the API's parameters and results (gradio_client's view_api), shown or not.
        message = gr.MultimodalTextbox(file_count="multiple", show_label=False, label="message", elem_id="message",
                                       placeholder="Type a message, attach photos with the clip, press Enter")
        status = gr.Markdown(label="status", elem_id="status")
        with gr.Row():
            new_chat = gr.Button("New chat", elem_id="new-chat")
            save = gr.Button("Save dialogue", elem_id="save")
        download = gr.File(label="dialogue", visible=False, elem_id="download")
        with gr.Accordion("Settings", open=False):
            temperature = gr.Slider(0, 2, step=0.05, label="temperature (0: no sampling)",
                                    value=defaults.temperature if defaults.decoding == "sample" else 0)
            steps = gr.Slider(1, 100, step=1, value=defaults.diffusion_steps, label="diffusion steps per photo")
            guidance = gr.Slider(0, 15, step=0.5, value=defaults.guidance_scale, label="guidance scale")
            seed = gr.Number(value=defaults.seed, precision=0, minimum=0, label="seed")
        # Gradio drops a session's state an hour after its tab closed, or after SESSION_TTL
        # without a message; end_session then removes its folder.
        session = gr.State(None, time_to_live=SESSION_TTL, delete_callback=SessionEnd(out_dir / SESSIONS_DIR))
        message.submit(page.send, [message, session, temperature, steps, guidance, seed],
                       [chatbot, message, session, status], api_name="send")
        new_chat.click(page.new_chat, [session], [chatbot, session, status], api_name="new_chat")
        chatbot.clear(page.new_chat, [session], [chatbot, session, status], api_visibility="private")  # its bin icon
        save.click(page.save, [session], [download, status], api_name="save").then(
            show_download, [download], [download], api_visibility="private")
    app.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    app.photodialog_janitor = DiskJanitor(out_dir, page.limits.max_upload_cache_bytes, sessions_dir=page.sessions_dir)
    return app


def launch(app, host: str, port: int, limits: InputLimits | None = None) -> str:
    """Start serving ``app`` on ``host:port`` in a background thread; returns the local URL.

    Stop it with ``app.close()``; ``serve_forever`` does both for the command line.
    """
    # comes with gradio (the [serve] extra)
    from starlette.middleware import Middleware

    limits = limits or InputLimits()
    try:
        _, url, _ = app.launch(
            server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, show_error=False,
            max_file_size=limits.max_photo_bytes, ssr_mode=False, mcp_server=False, enable_monitoring=False, css=CSS,
            app_kwargs={"middleware": [Middleware(UploadErrors)]},
        )
    except OSError as err:
        raise UserError(f"cannot serve on {host}:{port} ({err}); is another server using the port? Try --port") from None
    janitor = getattr(app, "photodialog_janitor", None)
    if janitor is not None:
        janitor.start()
    return url


def serve_forever(app) -> None:
    """Wait while ``app`` serves; Ctrl-C (or SIGTERM) closes it cleanly and removes its sessions' folder."""
    def stop(_signal, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # `kill`, `docker stop`: the same clean stop as Ctrl-C
    try:
        while app.is_running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.close()
        janitor = getattr(app, "photodialog_janitor", None)
        if janitor is not None:
            janitor.stop()
            janitor.remove_sessions()
