"""Evidence files: what a file must be (its type by content, its size, its name) and where it
is kept — ``<home>/evidence/<sha[:2]>/<sha>``, content-addressed, written to a temporary name and
linked into place, so a file is never half-written, overwritten or deleted.

The hand-in page, the hazard loop and ``pingan evidence`` check and store files here.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
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
})


CHUNK = 1 << 20


class EvidenceError(ValueError):
    """Bad input, as messages a person can act on; ``status`` is the HTTP status that fits it."""

    def __init__(self, messages: str | Sequence[str], status: int = 400):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        self.status = status
        super().__init__("; ".join(self.messages))


# Extension → (family the content must sniff as, content type stored and served).
TYPES: dict[str, tuple[str, str]] = {
    "jpg": ("jpeg", "image/jpeg"),
    "jpeg": ("jpeg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "heic": ("heic", "image/heic"),
    "pdf": ("pdf", "application/pdf"),
    "doc": ("doc", "application/msword"),
    "xls": ("xls", "application/vnd.ms-excel"),
    "docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/pdf"})


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sniff(file: BinaryIO) -> str | None:
    """The family of a file by its content (``jpeg``, ``pdf``, ``docx`` …), or None when unknown."""
    file.seek(0)
    head = file.read(1024)
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heic"
    if b"%PDF-" in head:  # the header may follow a little junk within the first 1024 bytes
        return "pdf"
    if head.startswith(_OLE):
        return _ole_family(file)
    if head.startswith(b"PK\x03\x04"):
        return _ooxml_family(file)
    return None


def _ole_family(file: BinaryIO) -> str | None:
    """Word or Excel 97-2003: the compound file names its main stream (UTF-16LE) in its directory."""
    file.seek(0)
    data = file.read()
    if "WordDocument".encode("utf-16-le") in data:
        return "doc"
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return "xls"
    return None


def _ooxml_family(file: BinaryIO) -> str | None:
    """Word or Excel 2007+: a zip whose parts say which (only the directory is read, nothing unpacked)."""
    file.seek(0)
    try:
        names = set(zipfile.ZipFile(file).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


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
    if sniff(upload.file) != family:
        raise EvidenceError(t("ev.err.file_content", name=name, ext=ext.upper()), status=415)
    return CheckedFile(name, content_type, size, digest.hexdigest(), upload)


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
