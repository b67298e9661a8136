"""Evidence files: what a file must be (its name, its size, and really the type its extension
says — decoded, parsed or opened, ``check_content``) and where it is kept —
``<home>/evidence/<sha[:2]>/<sha>``, content-addressed, written to a temporary name and linked
into place, so a file is never half-written, overwritten or deleted.

Every page or command that takes a file calls ``check_file(upload, limits)`` (the hand-in page,
the hazard loop, ``pingan evidence``) and ``store_file``; files go back to a browser only as
attachments with ``download_headers`` (``default-src 'none'``, ``nosniff``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import urllib.parse
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pingan.core.i18n import register, t
from pingan.core.settings import Settings

register({
    "ev.err.max_files": {"zh-CN": "文件过多：一次最多上传 {n} 个", "en": "Too many files: at most {n} per hand-in"},
    "ev.err.file_size": {"zh-CN": "文件「{name}」过大（{size}，上限 {limit}）", "en": "File “{name}” is too large ({size}; the limit is {limit})"},
    "ev.err.total_size": {"zh-CN": "提交的文件合计过大（上限 {limit}）", "en": "The files together are too large (the limit is {limit})"},
    "ev.err.file_empty": {"zh-CN": "文件「{name}」是空文件", "en": "File “{name}” is empty"},
    "ev.err.file_name": {"zh-CN": "文件名「{name}」不可用：不能包含路径（/ \\ :）或控制字符", "en": "File name “{name}” cannot be used: no path parts (/ \\ :) or control characters"},
    "ev.err.file_name_long": {"zh-CN": "文件名过长（最多 {n} 字）：{name}", "en": "File name too long (at most {n} characters): {name}"},
    "ev.err.file_ext": {"zh-CN": "文件「{name}」的类型不允许；可上传：{allowed}", "en": "File “{name}”: this type is not allowed; allowed: {allowed}"},
    "ev.err.file_content": {"zh-CN": "文件「{name}」的内容不是 {ext} 文件", "en": "File “{name}” is not really a {ext} file"},
    "ev.err.file_active": {"zh-CN": "文件「{name}」除 {ext} 内容外还夹带网页、脚本或宏，不能接受",
                           "en": "File “{name}” carries a web page, a script or macros besides its {ext} content: not accepted"},
    "ev.err.file_encrypted": {"zh-CN": "文件「{name}」设有密码，请上传未加密的版本",
                              "en": "File “{name}” is password-protected: hand in an unprotected copy"},
})


CHUNK = 1 << 20


class EvidenceError(ValueError):
    """Bad input, as messages a person can act on; ``status`` is the HTTP status that fits it."""

    def __init__(self, messages: str | Sequence[str], status: int = 400):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        self.status = status
        super().__init__("; ".join(self.messages))


# Extension → (family the content must be, content type stored and served). Old binary Word
# and Excel files (.doc, .xls) and HEIC photos are not taken: nothing here can open them to
# check them (phones hand a browser JPEG when HEIC is not accepted).
TYPES: dict[str, tuple[str, str]] = {
    "jpg": ("jpeg", "image/jpeg"),
    "jpeg": ("jpeg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "pdf": ("pdf", "application/pdf"),
    "docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}

# What a browser would run if it ever took the file for a page: looked for where browsers look
# (the first kilobyte), in a format's metadata and after its end — never in compressed image
# data, where any byte sequence may occur by chance.
_MARKUP = re.compile(
    rb"<\s*(?:script|html|body|head|iframe|frame|object|embed|svg|img|meta|form|style|link|base|!doctype|\?php)"
    rb"[\s>/]|javascript:|vbscript:", re.I)
# PDF names of actions that run something, and of files carried inside (long names only: the
# raw bytes include compressed streams, where a short name like /JS turns up by chance).
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|Launch|EmbeddedFiles?|RichMedia)(?=[\s/<>\[\]()%]|$)")
_PDF_ACTIVE_NAMES = {"/JavaScript", "/Launch", "/RichMedia"}
_OOXML = "http://schemas.openxmlformats.org/package/2006/content-types"
_OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
# The main part's content type each family must declare (a macro-enabled package declares another).
_MAIN_PART = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
}
MAX_UNPACKED = 300_000_000  # an Office package larger than this unpacked is a zip bomb, not minutes
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def check_content(family: str, data: bytes) -> str | None:
    """Whether ``data`` really is a file of ``family`` and nothing else; None when it is.

    ``"type"``: it is not (images must decode with Pillow, a PDF must parse with pypdf and have
    pages, an Office file must be the zip package Word or Excel writes, its main part of the
    right content type, every member intact); ``"active"``: it is, but also carries a web page,
    a script or macros — a polyglot, an HTML/JPEG or a PDF with JavaScript; ``"encrypted"``: a
    PDF with a password. This is the one check every hand-in (evidence, hazard photos) goes through.
    """
    try:
        checker = {"jpeg": _image, "png": _image, "webp": _image, "pdf": _pdf, "docx": _office, "xlsx": _office}[family]
    except KeyError:
        return "type"
    return checker(family, data) or ("active" if _MARKUP.search(data[:1024]) else None)


def _scan(*parts: bytes) -> str | None:
    return "active" if any(_MARKUP.search(part) for part in parts) else None


def _image(family: str, data: bytes) -> str | None:
    import warnings

    from PIL import Image

    walk = {"jpeg": _jpeg_parts, "png": _png_parts, "webp": _webp_parts}[family](data)
    if walk is None:
        return "type"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[family]]) as image:
                if family == "jpeg":  # decode every block, at an eighth of the size (DCT scaling)
                    image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Exception:  # Pillow raises many kinds for a file that is not what it claims
        return "type"
    metadata, trailing = walk
    return _scan(*metadata, trailing)


def _jpeg_parts(data: bytes) -> tuple[list[bytes], bytes] | None:
    """(APPn and COM segment payloads, bytes after the end-of-image marker); None when malformed."""
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    n, i, metadata = len(data), 2, []
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker, i = data[i], i + 1
        if marker == 0xD9:
            return metadata, data[i:]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            return None
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata.append(data[i + 2:i + length])
        i += length
        if marker == 0xDA:  # entropy-coded data up to the next marker (FF00 and RSTn belong to it)
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return None
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    i = j + 2
                    continue
                i = j
                break
    return None


def _png_parts(data: bytes) -> tuple[list[bytes], bytes] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    n, i, metadata = len(data), 8, []
    while i + 12 <= n:
        length, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8]
        if i + 12 + length > n:
            return None
        if kind not in (b"IDAT", b"fdAT"):
            metadata.append(data[i + 8:i + 8 + length])
        i += 12 + length
        if kind == b"IEND":
            return metadata, data[i:]
    return None


def _webp_parts(data: bytes) -> tuple[list[bytes], bytes] | None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        return None
    i, metadata = 12, []
    while i + 8 <= end:
        kind, length = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        if i + 8 + length > end:
            return None
        if kind not in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            metadata.append(data[i + 8:i + 8 + length])
        i += 8 + length + (length & 1)
    return metadata, data[end:]


def _pdf(family: str, data: bytes) -> str | None:
    import logging

    from pypdf import PdfReader

    if not data.startswith(b"%PDF-"):
        return "type"
    end = data.rfind(b"%%EOF")
    if end < 0:
        return "type"
    if _scan(data[end + 5:]) or _PDF_ACTIVE.search(data):
        return "active"
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # a damaged file is our answer, not pypdf's warnings in the log
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return "encrypted"
        root = reader.trailer["/Root"].get_object()
        names = root.get("/Names")
        if names is not None and ({"/JavaScript", "/EmbeddedFiles"} & set(names.get_object().keys())):
            return "active"
        if _pdf_action(root.get("/OpenAction")) or root.get("/AA") is not None:
            return "active"
        pages = reader.pages
        if len(pages) < 1:
            return "type"
        for page in list(pages)[:2000]:
            page.mediabox  # noqa: B018 — every page must resolve
            if page.get("/AA") is not None:
                return "active"
            for annot in page.get("/Annots") or []:
                if _pdf_action(annot.get_object().get("/A")):
                    return "active"
    except Exception:  # pypdf raises many kinds for a damaged file
        return "type"
    finally:
        pypdf_log.setLevel(level)
    return None


def _pdf_action(action) -> bool:
    if action is None:
        return False
    action = action.get_object()
    return isinstance(action, dict) and str(action.get("/S")) in _PDF_ACTIVE_NAMES


def _office(family: str, data: bytes) -> str | None:
    import xml.etree.ElementTree as ET

    if not data.startswith(b"PK\x03\x04"):
        return "type"
    eocd = data.rfind(b"PK\x05\x06")
    if eocd < 0 or len(data) - eocd < 22:
        return "type"
    if eocd + 22 + int.from_bytes(data[eocd + 20:eocd + 22], "little") != len(data):
        return "active"  # something rides after the package
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
            if not members or min(m.header_offset for m in members) != 0:
                return "type"
            if sum(m.file_size for m in members) > MAX_UNPACKED:
                return "type"
            names = {m.filename for m in members}
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                return "active"
            types = ET.fromstring(_member(package, "[Content_Types].xml"))
            rels = ET.fromstring(_member(package, "_rels/.rels"))
            main = next((r.get("Target") for r in rels if r.get("Type") == _OFFICE_DOCUMENT), None)
            if not main:
                return "type"
            part = "/" + main.lstrip("/")
            declared = {o.get("PartName"): o.get("ContentType") for o in types.iter(f"{{{_OOXML}}}Override")}
            if declared.get(part) != _MAIN_PART[family] or part.lstrip("/") not in names:
                return "type"
            if package.testzip() is not None:
                return "type"
    except Exception:  # a damaged zip or XML
        return "type"
    return None


def _member(package: zipfile.ZipFile, name: str) -> bytes:
    info = package.getinfo(name)
    if info.file_size > 1_000_000:
        raise ValueError(f"{name} is too large")
    return package.read(info)


MAX_FILENAME = 200


@dataclass
class Upload:
    """One file as the browser sent it: the name it gave and the bytes (a seekable file)."""

    filename: str
    file: BinaryIO

    @classmethod
    def of(cls, filename: str, data: bytes) -> Upload:
        return cls(filename, io.BytesIO(data))


@dataclass(frozen=True)
class CheckedFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    upload: Upload = field(repr=False, compare=False)


@dataclass(frozen=True)
class Limits:
    max_file: int  # bytes
    max_total: int
    max_files: int
    types: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        types = tuple(x.lower().lstrip(".") for x in settings.evidence_types if x.lower().lstrip(".") in TYPES)
        return cls(int(settings.evidence_max_file_mb * 1e6), int(settings.evidence_max_total_mb * 1e6),
                   settings.evidence_max_files, types)


def human_size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{max(1, round(n / 1e3))} KB"


def check_filename(name: str) -> str:
    """The file's name as stored: NFC, stripped; refuses path parts and control characters."""
    name = unicodedata.normalize("NFC", name or "").strip()
    shown = "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in name)[:80]
    if (not name or name in (".", "..") or any(c in name for c in "/\\:")
            or any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name)):
        raise EvidenceError(t("ev.err.file_name", name=shown))
    if len(name) > MAX_FILENAME:
        raise EvidenceError(t("ev.err.file_name_long", n=MAX_FILENAME, name=shown))
    return name


def check_file(upload: Upload, limits: Limits) -> CheckedFile:
    """One file: its name, its extension among the allowed, its size, and its content matching its extension."""
    name = check_filename(upload.filename)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = "、".join(limits.types)
    if ext not in limits.types:
        raise EvidenceError(t("ev.err.file_ext", name=name, allowed=allowed), status=415)
    digest, size = hashlib.sha256(), 0
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK):
        size += len(chunk)
        if size > limits.max_file:
            upload.file.seek(0, os.SEEK_END)
            raise EvidenceError(t("ev.err.file_size", name=name, size=human_size(upload.file.tell()),
                                  limit=human_size(limits.max_file)), status=413)
        digest.update(chunk)
    if size == 0:
        raise EvidenceError(t("ev.err.file_empty", name=name))
    family, content_type = TYPES[ext]
    upload.file.seek(0)
    problem = check_content(family, upload.file.read())
    if problem:
        key = {"active": "ev.err.file_active", "encrypted": "ev.err.file_encrypted"}.get(problem, "ev.err.file_content")
        raise EvidenceError(t(key, name=name, ext=ext.upper()), status=415)
    return CheckedFile(name, content_type, size, digest.hexdigest(), upload)


def download_headers(filename: str) -> dict[str, str]:
    """Headers for sending a stored file back: always a download, never rendered by the browser
    (even a file that slipped through as something else cannot run in the page's origin)."""
    return {
        "content-disposition": f"attachment; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}",
        "content-security-policy": "default-src 'none'",
        "x-content-type-options": "nosniff",
        "cache-control": "private, no-store",
    }


def check_store(evidence_dir: Path) -> str | None:
    """Whether files can be stored now (a file written, synced and removed); the reason when not."""
    try:
        evidence_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=evidence_dir, prefix=".health-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def upload_size(upload: Upload) -> int:
    upload.file.seek(0, os.SEEK_END)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def blob_path(evidence_dir: Path, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256")
    return evidence_dir / sha256[:2] / sha256


def store_file(evidence_dir: Path, checked: CheckedFile) -> Path:
    """Write the file under its SHA-256, atomically; an existing file (same content) is left alone."""
    final = blob_path(evidence_dir, checked.sha256)
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            checked.upload.file.seek(0)
            while chunk := checked.upload.file.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != checked.sha256:
            raise RuntimeError("upload changed while it was stored")
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, final)  # never replaces: a concurrent writer of the same content wins harmlessly
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    _fsync_dir(final.parent)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
