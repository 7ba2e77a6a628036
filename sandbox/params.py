"""Decoding and validating Bot API requests the way Telegram's server sees them.

aiogram posts ``multipart/form-data`` in which every value is a string and every complex value
(reply_markup, media, entities, allowed_updates, ...) is a JSON-encoded string; other clients
post JSON or urlencoded bodies. All of them end up as one flat ``dict`` that is validated with
aiogram's own method models, so the sandbox rejects exactly the shapes aiogram would never
produce and accepts everything it does.
"""

from __future__ import annotations

import contextlib
import json
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

import aiogram.methods
from aiogram.methods.base import TelegramMethod
from aiohttp import BodyPartReader, MultipartReader, web
from pydantic import TypeAdapter, ValidationError


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


@dataclass
class Upload:
    """A file part of a request (``attach://<name>`` or the field itself)."""

    filename: str
    data: bytes
    content_type: str | None = None


MethodClass = type[TelegramMethod[Any]]


@cache
def method_registry() -> dict[str, MethodClass]:
    """Lower-cased API method name -> aiogram model; Telegram matches names case-insensitively."""
    registry: dict[str, MethodClass] = {}
    for name in aiogram.methods.__all__:
        candidate = getattr(aiogram.methods, name, None)
        if not isinstance(candidate, type) or not issubclass(candidate, TelegramMethod):
            continue
        api_name = candidate.__dict__.get("__api_method__")
        if isinstance(api_name, str):
            registry[api_name.lower()] = candidate
    return registry


@cache
def result_adapter(cls: MethodClass) -> TypeAdapter[Any]:
    return TypeAdapter(cls.__returning__)


def _accepts_plain_string(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(arg is str for arg in typing.get_args(annotation))
    return False


@cache
def _json_fields(cls: MethodClass) -> frozenset[str]:
    """Fields whose string form must be JSON-decoded (anything that cannot be a bare string)."""
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        if not _accepts_plain_string(info.annotation):
            names.add(name)
            if info.alias:
                names.add(info.alias)
    return frozenset(names)


def decode_params(cls: MethodClass, params: dict[str, Any]) -> dict[str, Any]:
    json_fields = _json_fields(cls)
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if key in json_fields and isinstance(value, str):
            # Undecodable values stay strings so validation produces the precise complaint.
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        decoded[key] = value
    return decoded


_EMPTY_REASONS = {
    "text": "message text is empty",
    "chat_id": "chat_id is empty",
    "message_id": "message_id is empty",
    "callback_query_id": "query_id is empty",
    "file_id": "file_id is empty",
}


def validate(cls: MethodClass, params: dict[str, Any]) -> TelegramMethod[Any]:
    try:
        return cls.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error.get("loc", ())]
        name = location[0] if location else "parameters"
        if error.get("type") == "missing" and len(location) == 1:
            raise bad_request(_EMPTY_REASONS.get(name, f"{name} is empty")) from exc
        where = ".".join(location) or "parameters"
        raise bad_request(f"can't parse {where}: {error.get('msg', 'invalid value')}") from exc


# Comfortably above the 50 MB bot upload limit, so that limit itself stays testable.
MAX_BODY_BYTES = 64 * 1024 * 1024


def _too_large() -> ApiError:
    return ApiError(413, "Request Entity Too Large")


async def _read_multipart(
    reader: MultipartReader, params: dict[str, Any], uploads: dict[str, Upload]
) -> None:
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        # Read in chunks so an oversized upload is refused before it is all in memory.
        buffer = bytearray()
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                raise _too_large()
            buffer.extend(chunk)
        data = bytes(part.decode(bytes(buffer)))
        if part.filename is not None:
            uploads[part.name] = Upload(part.filename, data, part.headers.get("Content-Type"))
        else:
            charset = part.get_charset(default="utf-8")
            params[part.name] = data.decode(charset)


async def read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Flatten query string and body (JSON, multipart or urlencoded) into params + uploads."""
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    content_type = request.content_type
    if content_type == "application/json":
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large() from None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise bad_request("can't parse JSON object") from exc
            if not isinstance(body, dict):
                raise bad_request("parameters must be a JSON object")
            params.update(body)
    elif content_type == "multipart/form-data":
        await _read_multipart(await request.multipart(), params, uploads)
    elif request.can_read_body:
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large() from None
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value
    return params, uploads


async def read_multipart_payload(
    reader: MultipartReader,
) -> tuple[dict[str, Any], dict[str, Upload]]:
    params: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    await _read_multipart(reader, params, uploads)
    return params, uploads


def link_uploads(cls: MethodClass, params: dict[str, Any], uploads: dict[str, Upload]) -> None:
    """A file posted under the field's own name is the same as ``attach://<field>``."""
    for name in uploads:
        if name in cls.model_fields:
            params.setdefault(name, f"attach://{name}")
