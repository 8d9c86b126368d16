"""Photos, documents and voice notes from the chat, made into turn input.

- A photo (its largest size) is saved under ``{storage.root}/chat-files`` and becomes an image
  input of the turn.
- A document up to ``[telegram] max_document_bytes`` is saved under the inbox directory
  (``[telegram] inbox_dir``, relative to the bound thread's working directory) and its path is
  named in the turn's text.
- A voice note is transcribed with ``realtime.transcription_model`` through the ``openai`` SDK
  (``OPENAI_BASE_URL`` is honoured); the transcript is the turn's text.

Each returns the inbox payload (``text``, ``images``) or raises :class:`AttachmentRefused`
with the sentence the chat gets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telegram import Message

if TYPE_CHECKING:
    from bridgehost.telegram.conversation import Conversation


class AttachmentRefused(RuntimeError):
    """The attachment cannot be used; ``str()`` is what the chat is told."""


def _safe_name(name: str | None, fallback: str) -> str:
    cleaned = re.sub(r"[^\w.\-]+", "_", (name or "").strip()).strip("._")
    return cleaned[:120] or fallback


async def photo_payload(conv: Conversation, message: Message, update_id: int) -> dict[str, Any]:
    """A photo: saved, then an image input (the caption, if any, is the text)."""
    photo = max(message.photo, key=lambda p: p.width * p.height)
    folder = Path(conv.rt.config.storage.root) / "chat-files"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photo-{update_id}.jpg"
    file = await photo.get_file()
    await file.download_to_drive(path)
    return {"text": message.caption or "The user sent this image.", "images": [str(path)]}


async def document_payload(conv: Conversation, message: Message, update_id: int) -> dict[str, Any]:
    """A document: saved under the inbox directory, its path named in the text."""
    document = message.document
    assert document is not None
    cap = conv.rt.config.telegram.max_document_bytes
    if document.file_size is not None and document.file_size > cap:
        raise AttachmentRefused(
            f"📎 That file is {document.file_size} bytes; I take files up to {cap} bytes "
            "([telegram] max_document_bytes)."
        )
    folder = await conv.workspace_inbox()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{update_id}-{_safe_name(document.file_name, 'document')}"
    file = await document.get_file()
    await file.download_to_drive(path)
    if path.stat().st_size > cap:
        path.unlink(missing_ok=True)
        raise AttachmentRefused(
            f"📎 That file is larger than {cap} bytes ([telegram] max_document_bytes)."
        )
    note = f"The user sent a file, saved at {path}."
    text = f"{message.caption}\n\n{note}" if message.caption else note
    return {"text": text}


async def voice_payload(conv: Conversation, message: Message, update_id: int) -> dict[str, Any]:
    """A voice note: transcribed, the transcript is the text."""
    key = conv.rt.secrets.get("OPENAI_API_KEY")
    if key is None:
        raise AttachmentRefused(
            "🎙 I cannot transcribe voice notes: no OPENAI_API_KEY is configured for the bridge. "
            "Add it to the bridge's secrets, or send text."
        )
    voice = message.voice
    assert voice is not None
    folder = Path(conv.rt.config.storage.root) / "chat-files"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"voice-{update_id}.ogg"
    file = await voice.get_file()
    await file.download_to_drive(path)
    from openai import AsyncOpenAI, OpenAIError

    client = AsyncOpenAI(api_key=key.get_secret_value())
    try:
        with path.open("rb") as audio:
            result = await client.audio.transcriptions.create(
                model=conv.rt.config.realtime.transcription_model, file=audio
            )
    except OpenAIError as exc:
        raise AttachmentRefused(f"🎙 Transcription failed: {exc}") from exc
    finally:
        await client.close()
    text = (result.text or "").strip()
    if not text:
        raise AttachmentRefused("🎙 I could not make out any words in that voice note.")
    return {"text": text}


async def accept_attachment(conv: Conversation, message: Message, update_id: int) -> bool:
    """Turn a photo, document or voice note into an inbox message; False for anything else.

    A refused attachment is answered with the reason (and counts as handled).
    """
    from bridgehost.telegram.sending import send_text

    if message.photo:
        reader = photo_payload
    elif message.document is not None:
        reader = document_payload
    elif message.voice is not None:
        reader = voice_payload
    else:
        return False
    try:
        payload = await reader(conv, message, update_id)
    except AttachmentRefused as exc:
        await send_text(conv.bot, conv.rt.chat_id, str(exc), reply_to=message.message_id)
        return True
    await conv.accept(update_id, payload, message.message_id)
    return True
