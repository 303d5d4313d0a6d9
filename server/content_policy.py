"""What files the service takes: the allowed types (what a translation platform works with), the type a file gets
when the browser reports none, and whether its first bytes are what its type says.

The type is checked twice: when a session is created (the declared type, or the one its name implies, must be
allowed) and at completion, by sniffing the object's first bytes: binary formats by their signature (``puremagic``),
text formats by being text (UTF-8 or UTF-16 with a BOM, no NUL bytes; XML kinds start with ``<``, JSON with ``{`` or
``[``). A file whose bytes are not its type fails with the reason.
"""

from __future__ import annotations

import codecs
import functools
import mimetypes
from dataclasses import dataclass
from pathlib import PurePosixPath

import puremagic

#: Types a browser reports when it does not know: the file name decides then.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
SAFE_DOWNLOAD_TYPE = "application/octet-stream"
#: How many leading bytes are sniffed at completion.
SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Kind:
    """One family of files: its MIME types, the extensions that imply it, and how its bytes are recognised."""

    label: str
    #: The first is the canonical one (given to files whose type the name implies).
    types: tuple[str, ...]
    extensions: frozenset[str]
    #: "zip", "ole", "pdf", "rtf", "image", "text", "xml" or "json".
    check: str


def _kind(label: str, types: str, extensions: str, check: str) -> Kind:
    return Kind(label, tuple(types.split()), frozenset(extensions.split()), check)


KINDS: tuple[Kind, ...] = (
    _kind("PDF", "application/pdf", ".pdf", "pdf"),
    _kind(
        "an Office document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document "
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet "
        "application/vnd.openxmlformats-officedocument.presentationml.presentation "
        "application/vnd.oasis.opendocument.text application/vnd.oasis.opendocument.spreadsheet "
        "application/vnd.oasis.opendocument.presentation",
        ".docx .xlsx .pptx .odt .ods .odp",
        "zip",
    ),
    _kind(
        "an Office 97-2003 document",
        "application/msword application/vnd.ms-excel application/vnd.ms-powerpoint",
        ".doc .xls .ppt",
        "ole",
    ),
    _kind("RTF", "application/rtf text/rtf", ".rtf", "rtf"),
    _kind("ZIP", "application/zip application/x-zip-compressed", ".zip", "zip"),
    _kind(
        "an image",
        "image/png image/jpeg image/gif image/webp image/tiff image/bmp",
        ".png .jpg .jpeg .gif .webp .tif .tiff .bmp",
        "image",
    ),
    _kind(
        "XLIFF",
        "application/xliff+xml application/x-xliff+xml",
        ".xlf .xliff .sdlxliff .mqxliff",
        "xml",
    ),
    _kind("TMX", "application/x-tmx+xml", ".tmx", "xml"),
    _kind("XML", "application/xml text/xml", ".xml .resx", "xml"),
    _kind("JSON", "application/json", ".json", "json"),
    _kind("PO", "text/x-gettext-translation text/x-po application/x-po", ".po .pot", "text"),
    _kind("CSV", "text/csv", ".csv", "text"),
    _kind("text", "text/plain", ".txt .strings .properties .srt .md", "text"),
)

DEFAULT_ALLOWED_TYPES: tuple[str, ...] = tuple(t for kind in KINDS for t in kind.types)
_BY_TYPE = {t: kind for kind in KINDS for t in kind.types}
_BY_EXTENSION = {e: kind.types[0] for kind in KINDS for e in kind.extensions}
_ZIP = {".zip", ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".jar", ".xlsb"}


def resolve_type(file_name: str, declared: str) -> str:
    """The type a new session stores: what the browser said, or (when it said nothing useful) what the name says."""
    declared = declared.split(";")[0].strip().lower()
    if declared not in GENERIC_TYPES:
        return declared
    extension = PurePosixPath(file_name.lower()).suffix
    if extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    guessed, _ = mimetypes.guess_type(file_name, strict=False)
    return guessed or SAFE_DOWNLOAD_TYPE


def describe(allowed: frozenset[str]) -> str:
    labels = list(dict.fromkeys(k.label for k in KINDS if allowed.intersection(k.types)))
    return ", ".join(labels) if labels else "none"


def refusal(file_name: str, content_type: str, allowed: frozenset[str]) -> str | None:
    """Why a new session is refused, or None when its type is allowed."""
    if content_type in allowed:
        return None
    return f"{file_name!r} is a file of type {content_type}, which is not accepted here (accepted: {describe(allowed)})"


def _signature_extensions(head: bytes) -> list[str]:
    """What the signature says the bytes are, most confident first (extensions like ``.png``)."""
    try:
        return list(dict.fromkeys(m.extension.lower() for m in puremagic.magic_string(head) if m.extension))
    except puremagic.PureError:
        return []


def _text(head: bytes, complete: bool) -> str | None:
    """The head decoded as text (UTF-8, or UTF-16 with its BOM), or None when it is not text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoder = codecs.getincrementaldecoder("utf-16")()
    else:
        if b"\x00" in head:
            return None
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return text


def mismatch(content_type: str, head: bytes, *, complete: bool) -> str | None:
    """Why ``head`` (a file's first bytes; ``complete`` when it is the whole file) is not ``content_type``, or None
    when it is. Types outside :data:`KINDS` are not sniffed (an operator allowed them knowingly)."""
    kind = _BY_TYPE.get(content_type)
    if kind is None:
        return None
    # The signature search (puremagic) is the costly part: only the checks that need it, or a refusal, pay for it.
    signature = functools.cache(lambda: _signature_extensions(head) if head else [])
    if kind.check in ("text", "xml", "json"):
        text = _text(head, complete)
        ok = text is not None
        if ok and text is not None and kind.check != "text":
            start = text.lstrip()[:1]
            ok = start == "<" if kind.check == "xml" else start in ("{", "[")
    elif kind.check == "zip":
        ok = bool(_ZIP.intersection(signature()))
    elif kind.check == "ole":
        ok = head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    elif kind.check == "pdf":
        ok = head.startswith(b"%PDF-")
    elif kind.check == "rtf":
        ok = head.startswith(b"{\\rtf")
    else:  # image: the signature must be this image type
        ok = any(content_type in (_BY_EXTENSION.get(e), mimetypes.guess_type(f"x{e}")[0]) for e in signature())
    if ok:
        return None
    looks = signature()[:3]
    seen = f" (it looks like {', '.join(looks)})" if looks else ""
    return f"the file's content is not {kind.label}, as its type {content_type} says{seen}"


def download_type(content_type: str, allowed: frozenset[str]) -> str:
    """The type a download is served with: the stored (checked) type if allowed, else plain bytes."""
    return content_type if content_type in allowed else SAFE_DOWNLOAD_TYPE
