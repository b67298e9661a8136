"""Traceability: every numbered clause of the source documents, and what pingan does with it.

``clauses(text)`` finds the numbered clauses of a document as the catalog cites them — parts
(``七、``), items (``七（四）``) and points (``六（二）4`` inside an item, ``5`` at the top level of
a document numbered by points only). ``catalog/coverage.yaml`` maps each one to the duties that
encode it, or says why none does: ``not time-bound: …`` (a standing obligation with no period,
date or deadline) or ``out of scope: …``. ``render`` writes ``docs/COVERAGE.md`` from both.

Pure: the caller reads the files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pingan.duties.catalog import Catalog, CatalogError

_SPACE = re.compile(r"\s+")
_DIGITS = "一二三四五六七八九"
REASONS = ("not time-bound:", "out of scope:")


def numeral(n: int) -> str:
    """1 → 一, 10 → 十, 14 → 十四 (the documents' numbering)."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens - 1] + "十")
    return head + ("" if ones == 0 else _DIGITS[ones - 1])


@dataclass(frozen=True)
class Clause:
    key: str     # as the catalog cites it: 七（四）, 六（二）4, 5
    text: str    # its wording, whitespace removed
    leaf: bool   # has no numbered clauses inside


def _point(n: int) -> re.Pattern[str]:
    # "5." but not "“5.12”", "15." or "2021."
    return re.compile(rf"(?<![\d.]){n}\.(?!\d)")


def _bare_point(n: int) -> re.Pattern[str]:
    # a point whose full stop was lost in transcription: "10 负责" (whitespace already removed)
    return re.compile(rf"(?<![\d.]){n}(?=[\u4e00-\u9fff])")


def _sequence(text: str, start: int, end: int, marker) -> list[tuple[int, int]]:
    """(start, end) of the markers 1, 2, … found in order within [start, end)."""
    found: list[int] = []
    pos, n = start, 1
    while True:
        m = marker(n, pos, end)
        if m is None:
            break
        found.append(m)
        pos, n = m + 1, n + 1
    return [(a, found[i + 1] if i + 1 < len(found) else end) for i, a in enumerate(found)]


def clauses(document: str) -> list[Clause]:
    """Every numbered clause of ``document`` in reading order."""
    text = _SPACE.sub("", document)

    def literal(fmt: str):
        def find(n: int, pos: int, end: int) -> int | None:
            i = text.find(fmt.format(numeral(n)), pos, end)
            return i if i >= 0 else None
        return find

    def point(n: int, pos: int, end: int) -> int | None:
        m = _point(n).search(text, pos, end)
        if m is not None:
            return m.start()
        nxt = _point(n + 1).search(text, pos, end)
        if nxt is not None:  # the numbering goes on: look for the point that lost its full stop
            bare = _bare_point(n).search(text, pos, nxt.start())
            return bare.start() if bare else None
        return None

    out: list[Clause] = []
    parts = _sequence(text, 0, len(text), literal("{}、"))
    top_points = _sequence(text, 0, len(text), point)
    items_anywhere = any(_sequence(text, a, b, literal("（{}）")) for a, b in parts)
    if not items_anywhere:  # numbered by points only (the Erdao work points)
        for n, (a, b) in enumerate(top_points, 1):
            out.append(Clause(str(n), text[a:b], True))
        return out
    for p, (pa, pb) in enumerate(parts, 1):
        part = numeral(p)
        items = _sequence(text, pa, pb, literal("（{}）"))
        if not items:
            out.append(Clause(part, text[pa:pb], True))
            continue
        for i, (ia, ib) in enumerate(items, 1):
            key = f"{part}（{numeral(i)}）"
            points = _sequence(text, ia, ib, point)
            out.append(Clause(key, text[ia:ib], not points))
            for n, (na, nb) in enumerate(points, 1):
                out.append(Clause(f"{key}{n}", text[na:nb], True))
    return out


# --------------------------------------------------------------------------- the mapping

def load_mapping(path: Path) -> dict[str, dict[str, list[str] | str]]:
    """``catalog/coverage.yaml``: {document: {clause: [duty keys] | "not time-bound: why" | "out of scope: why"}}."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    docs = data.get("documents") if isinstance(data, dict) else None
    if not isinstance(docs, dict):
        raise CatalogError(f"{path}: needs 'documents', a mapping of source file to clauses")
    out: dict[str, dict[str, list[str] | str]] = {}
    for doc, entries in docs.items():
        if not isinstance(entries, dict):
            raise CatalogError(f"{path}: {doc}: must map clauses to duties or a reason")
        out[str(doc)] = {}
        for clause, value in entries.items():
            if isinstance(value, str) and value.startswith(REASONS) and len(value.split(":", 1)[1].strip()) >= 4:
                out[doc][str(clause)] = value
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                out[doc][str(clause)] = list(value)
            else:
                raise CatalogError(f"{path}: {doc} {clause}: give duty keys, or 'not time-bound: why' / 'out of scope: why'")
    return out


def problems(catalog: Catalog, sources: Mapping[str, str], mapping: Mapping[str, Mapping[str, list[str] | str]]) -> list[str]:
    """What is wrong between the documents, the mapping and the catalog (empty: complete)."""
    out: list[str] = []
    for doc, text in sources.items():
        entries = mapping.get(doc, {})
        found = {c.key for c in clauses(text)}
        out += [f"{doc} {key}: not in the mapping" for key in sorted(found - set(entries), key=_order)]
        out += [f"{doc} {key}: no such clause in the document" for key in sorted(set(entries) - found, key=_order)]
        for key, value in entries.items():
            if isinstance(value, list):
                out += [f"{doc} {key}: no duty {d!r} in the catalog" for d in value if d not in catalog.duties]
    for duty in catalog.duties.values():
        listed = mapping.get(duty.source.document, {}).get(duty.source.clause)
        if not isinstance(listed, list) or duty.key not in listed:
            out.append(f"{duty.source.document} {duty.source.clause}: duty {duty.key!r} cites it but is not listed")
    return out


def _order(key: str) -> tuple:
    return (len(key), key)


# --------------------------------------------------------------------------- docs/COVERAGE.md

def render(catalog: Catalog, sources: Mapping[str, str], mapping: Mapping[str, Mapping[str, list[str] | str]]) -> str:
    lines = [
        "# Coverage: every clause of both documents",
        "",
        "Generated by `pingan catalog coverage --write` from `catalog/coverage.yaml` and the catalog;",
        "do not edit by hand. Each numbered clause and sub-clause of the source documents",
        "(`catalog/sources/`) with the duties that encode it, or why none does. A duty marked",
        "(off) is switched off in this installation (`catalog/local/`); ※ marks local defaults.",
        "",
    ]
    for doc, text in sources.items():
        title = catalog.documents.get(doc, doc)
        found = clauses(text)
        entries = mapping.get(doc, {})
        mapped = sum(isinstance(entries.get(c.key), list) for c in found)
        lines += [f"## {title}", "", f"`{doc}` — {len(found)} clauses, {mapped} encoded by duties.", "",
                  "| Clause | Wording (start) | Duties or reason |", "| --- | --- | --- |"]
        for c in found:
            value = entries.get(c.key, "**missing**")
            if isinstance(value, list):
                cells = []
                for key in value:
                    d = catalog.duties.get(key)
                    if d is None:
                        cells.append(f"`{key}` (unknown)")
                        continue
                    flags = (" (off)" if not d.enabled else "") + (f" ※{','.join(d.local_defaults)}" if d.local_defaults else "")
                    cells.append(f"`{key}` {d.cadence.every}{flags}")
                shown = "<br>".join(cells)
            else:
                shown = value
            wording = c.text[:40].replace("|", "｜") + ("…" if len(c.text) > 40 else "")
            lines.append(f"| {c.key} | {wording} | {shown} |")
        lines.append("")
    return "\n".join(lines)
