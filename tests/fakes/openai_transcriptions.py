"""``POST /v1/audio/transcriptions`` of the fake OpenAI: a multipart upload in, ``{"text"}`` out.

The answer is built as the SDK's own :class:`openai.types.audio.Transcription` (with token
usage, as the ``gpt-4o-*-transcribe`` models report it), so the client parses exactly what the
real API sends. What it says comes from ``fake.transcription_text`` (text, or a function of the
audio bytes); every upload is kept in ``fake.transcriptions`` for asserts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from openai.types.audio import Transcription

from .openai_common import error_response

if TYPE_CHECKING:
    from .openai_api import FakeOpenAI

TranscriptionText = str | Callable[[bytes], str]
FORMATS = ("json", "text")
MODELS = (
    "gpt-transcribe",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "whisper-1",
)
MAX_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class TranscriptionRequest:
    """One upload as the fake received it."""

    model: str
    filename: str
    audio: bytes


async def handle_transcriptions(fake: FakeOpenAI, request: web.Request) -> web.Response:
    """Transcribe one uploaded file (multipart: ``file``, ``model``, ``response_format``)."""
    if request.content_type != "multipart/form-data":
        return error_response(
            400, "Invalid Content-Type header, expected multipart/form-data.", param="file"
        )
    form = await request.post()
    upload, model = form.get("file"), form.get("model")
    if not isinstance(upload, web.FileField):
        return error_response(400, "Missing required parameter: 'file'.", param="file")
    if not isinstance(model, str) or not model:
        return error_response(400, "Missing required parameter: 'model'.", param="model")
    if model not in MODELS:
        return error_response(
            400,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    audio = upload.file.read()
    if not audio:
        return error_response(400, "Audio file might be corrupted or unsupported", param="file")
    if len(audio) > MAX_BYTES:
        return error_response(413, "Maximum content size limit (26214400) exceeded.")
    fmt = str(form.get("response_format") or "json")
    if fmt not in FORMATS:
        return error_response(400, f"Invalid value: '{fmt}'.", param="response_format")
    fake.transcriptions.append(TranscriptionRequest(model, str(upload.filename), audio))
    source = fake.transcription_text
    text = source(audio) if callable(source) else source
    if fmt == "text":
        return web.Response(text=text)
    words = max(1, len(text.split()))
    body = Transcription.model_validate(
        {
            "text": text,
            "usage": {
                "type": "tokens",
                "input_tokens": max(1, len(audio) // 100),
                "output_tokens": words,
                "total_tokens": max(1, len(audio) // 100) + words,
            },
        }
    )
    return web.json_response(body.model_dump(exclude_none=True))
