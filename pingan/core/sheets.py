"""Spreadsheets in and out: the one reader and the one writer of every workbook pingan handles.

Reading (the organisation import, the risk-point register): an ``.xlsx`` workbook, a ``.csv``
file (UTF-8, with or without BOM, or GB18030, as Excel saves them) or a folder of CSV files
become :class:`Table` objects; :meth:`Table.rows` maps their headers onto a fixed set of
:class:`Column` specs (Chinese headers, English aliases, notes in parentheses ignored) and
yields one :class:`Row` per non-empty line. Every problem is collected with its :class:`Place`
— file, sheet, row and column, as the user sees them in Excel — so a bad file is reported
whole, and nothing is written.

Writing (exports, templates, the compliance report): :func:`write_xlsx`, :func:`put`,
:func:`append` and :func:`write_csv` write every text cell as text (:func:`inert`), so a unit
named ``=HYPERLINK(…)`` stays text in Excel and WPS instead of becoming a live formula
(spreadsheet injection) — and stays text when someone edits the cell (Excel's quote prefix).
Every workbook pingan writes goes through these.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Text that a spreadsheet would read as a formula (or DDE command) when it opens the file.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TRUE = frozenset({"是", "有", "true", "yes", "y", "1", "√", "✓", "t", "启用", "在用"})
FALSE = frozenset({"否", "无", "没有", "false", "no", "n", "0", "×", "✗", "f", "停用"})


class SheetError(ValueError):
    """A file that cannot be read as a table at all (missing, damaged, wrong type); one line."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # what templates and exports write
    aliases: tuple[str, ...] = ()
    required: bool = False
    help: str = ""
    width: int | None = None


def norm(header: Any) -> str:
    """A header as compared: notes in parentheses, spaces, ``*`` and slashes dropped, lower case."""
    text = re.sub(r"[（(].*?[)）]", "", str(header or ""))
    return re.sub(r"[\s*＊/／]", "", text).lower()


def text(value: Any) -> str | None:
    """A cell as text: None when empty; whole floats without ``.0``; booleans as 是/否."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    if out.startswith("'") and out[1:2] in _FORMULA_START:  # our own CSV guard, read back
        out = out[1:]
    return out or None


def boolean(value: str | None) -> bool | None:
    """是/否, yes/no, 1/0 … → True/False; None when it is neither."""
    if value is None:
        return None
    lowered = value.lower()
    return True if lowered in TRUE else False if lowered in FALSE else None


def letter(index: int) -> str:
    """The column letter of a 0-based index: 0 → A, 26 → AA."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(65 + rest) + out
    return out


@dataclass(frozen=True)
class Place:
    """Where a value is, as the user finds it: ``file [sheet]：第 3 行 B 列「编码」``."""

    file: str
    sheet: str | None = None
    row: int | None = None
    index: int | None = None  # 0-based column index, when the column exists
    header: str | None = None

    def __str__(self) -> str:
        where = f"{self.file} [{self.sheet}]" if self.sheet else self.file
        if self.row is None:
            return where
        if self.header is None:
            return f"{where}：第 {self.row} 行 / row {self.row}"
        if self.index is None:
            return f"{where}：第 {self.row} 行「{self.header}」列 / row {self.row}, column {self.header}"
        col = letter(self.index)
        return f"{where}：第 {self.row} 行 {col} 列「{self.header}」/ row {self.row}, column {col} ({self.header})"


@dataclass
class Problems:
    """Every problem of a file, each ``place：message``; raised together at the end."""

    lines: list[str] = field(default_factory=list)

    def add(self, place: Place | str, message: str) -> None:
        self.lines.append(f"{place}：{message}")

    def __bool__(self) -> bool:
        return bool(self.lines)


@dataclass
class Row:
    """One line of a table, its cells looked up by column key."""

    number: int  # as Excel shows it (the header is row 1)
    values: Sequence[Any]
    table: Table
    index: Mapping[str, int]

    def raw(self, key: str) -> Any:
        i = self.index.get(key)
        return self.values[i] if i is not None and i < len(self.values) else None

    def get(self, key: str) -> str | None:
        return text(self.raw(key))

    def place(self, key: str) -> Place:
        return self.table.place(self.number, key, self.index.get(key))


@dataclass
class Table:
    file: str
    sheet: str | None
    header: list[Any]
    lines: Iterable[tuple[int, Sequence[Any]]]  # (row number as Excel shows it, values)
    total: int | None = None  # data rows, when known (for progress)
    names: dict[str, str] = field(default_factory=dict)  # column key → its header in this file

    def place(self, row: int | None = None, key: str | None = None, index: int | None = None) -> Place:
        return Place(self.file, self.sheet, row, index, self.names.get(key, key) if key else None)

    def columns(self, specs: Sequence[Column], problems: Problems, *, optional: Iterable[str] = ()) -> dict[str, int] | None:
        """Map the header onto ``specs``; None (with the problems noted) when a required column is missing.

        Unknown columns (备注, a bureau's own) are ignored; ``optional`` names required columns
        the caller can do without this time.
        """
        lookup = {norm(name): col for col in specs for name in (col.header, col.key, *col.aliases)}
        found: dict[str, int] = {}
        for i, name in enumerate(self.header):
            col = lookup.get(norm(name))
            if col is None:
                continue
            if col.key in found:
                problems.add(Place(self.file, self.sheet, 1, i, str(name).strip()), _t("duplicate_column"))
            found[col.key] = i
        self.names = {c.key: (str(self.header[found[c.key]]).strip() if c.key in found else c.header) for c in specs}
        skip = set(optional)
        missing = [c for c in specs if c.required and c.key not in found and c.key not in skip]
        for col in missing:
            problems.add(Place(self.file, self.sheet, 1, None, col.header), _t("missing_column"))
        return None if missing else found

    def rows(self, specs: Sequence[Column], problems: Problems, *, optional: Iterable[str] = (),
             progress: Callable[[str, int, int | None], None] | None = None) -> Iterator[Row]:
        """Every non-empty line as a :class:`Row` (none when a required column is missing).

        Control characters in a cell are a problem of that cell: PostgreSQL refuses NUL in text,
        and none belongs in a spreadsheet cell.
        """
        index = self.columns(specs, problems, optional=optional)
        if index is None:
            return
        for n, (number, values) in enumerate(self.lines, start=1):
            if progress and n % 2000 == 0:
                progress(self.sheet or self.file, n, self.total)
            if all(text(v) is None for v in values):
                continue
            row = Row(number, values, self, index)
            for key, i in index.items():
                if i < len(values) and isinstance(values[i], str) and _CONTROL.search(values[i]):
                    problems.add(row.place(key), _t("control_char"))
            yield row


# --------------------------------------------------------------------------- opening files

def open_tables(path: str | Path, *, sheets: Mapping[str, Sequence[str]], csv_kind: Callable[[list[Any]], str | None],
                opened: list) -> list[tuple[str, Table]]:
    """The tables of a workbook, a CSV file or a folder of CSV files, each with its kind.

    ``sheets`` maps a kind to the sheet names it may have (``{"units": ("单位", "units")}``);
    ``csv_kind`` tells the kind of a CSV file from its header (None: not ours). Workbooks
    stay open until the caller closes those appended to ``opened``.
    """
    path = Path(path)
    name = path.name or str(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise SheetError(f"{name}：{_t('empty_dir')}")
        return [_csv(p, f"{name}/{p.name}", csv_kind) for p in files]
    if not path.exists():
        raise SheetError(f"{name}：{_t('not_found')}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _workbook(path, name, sheets, opened)
    if suffix == ".csv":
        return [_csv(path, name, csv_kind)]
    raise SheetError(f"{name}：{_t('unsupported')}")


def _workbook(path: Path, name: str, sheets: Mapping[str, Sequence[str]], opened: list) -> list[tuple[str, Table]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise SheetError(f"{name}：{_t('cannot_read', reason=type(exc).__name__)}") from None
    opened.append(wb)  # read-only workbooks keep the file open until closed
    by_norm = {norm(s): s for s in wb.sheetnames}
    found = []
    for kind, names in sheets.items():
        sheet = next((by_norm[norm(n)] for n in names if norm(n) in by_norm), None)
        sheet = sheet or next((s for s in wb.sheetnames if any(norm(s).startswith(norm(n)) for n in names)), None)
        if sheet is None:
            continue
        ws = wb[sheet]
        lines = ws.iter_rows(min_row=1, values_only=True)
        header = list(next(lines, ()) or ())
        total = (ws.max_row - 1) if ws.max_row else None
        found.append((kind, Table(name, sheet, header, enumerate(lines, start=2), total)))
    if not found:
        raise SheetError(f"{name}：{_t('no_sheets', wanted='、'.join(n[0] for n in sheets.values()), found='、'.join(wb.sheetnames))}")
    return found


def _csv(path: Path, name: str, csv_kind: Callable[[list[Any]], str | None]) -> tuple[str, Table]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SheetError(f"{name}：{_t('cannot_read', reason=exc.strerror or type(exc).__name__)}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            decoded = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SheetError(f"{name}：{_t('cannot_read', reason='encoding (use UTF-8 or GB18030)')}")
    lines = csv.reader(io.StringIO(decoded, newline=""))
    header = next(lines, [])
    kind = csv_kind(header)
    if kind is None:
        raise SheetError(f"{name}：{_t('csv_kind')}")
    return kind, Table(name, None, header, enumerate(lines, start=2), decoded.count("\n"))


# --------------------------------------------------------------------------- writing

def _guard_csv(value: Any) -> Any:
    # A CSV cell has no type: a leading apostrophe is what Excel and WPS take as "this is text";
    # ``text()`` strips it again when pingan reads its own file back.
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        return "'" + value
    return value


@dataclass
class Sheet:
    title: str
    header: Sequence[str] | None
    rows: Iterable[Sequence[Any]]
    widths: Sequence[int] | None = None
    freeze: str | None = "A2"
    wrap: bool = False


def inert(cell: Any) -> Any:
    """Make an openpyxl cell holding text a text cell: never a formula when the file is opened,
    and marked with Excel's quote prefix when it looks like one, so editing it keeps it text."""
    if isinstance(cell.value, str):
        cell.data_type = "s"
        if cell.value[:1] in _FORMULA_START:
            cell.quotePrefix = True
    return cell


def put(ws: Any, row: int, column: int, value: Any) -> Any:
    """Set one cell of an openpyxl worksheet; text is always text, never a formula."""
    cell = ws.cell(row, column)
    cell.value = value
    return inert(cell)


def append(ws: Any, values: Sequence[Any]) -> None:
    """Append a row to an openpyxl worksheet (normal mode); text is always text, never a formula."""
    ws.append(list(values))
    for cell in ws[ws.max_row]:
        inert(cell)


def write_xlsx(path: str | Path, sheets: Sequence[Sheet], *, title: str | None = None,
               style: Callable[[Any, Sheet], None] | None = None) -> Path:
    """A workbook of ``sheets`` (bold frozen header, column widths); every text cell inert.

    Streams rows (openpyxl's write-only mode), so a province's 60,000 rows fit in memory;
    ``style(ws, sheet)`` may decorate a sheet before its rows are written.
    """
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    path = Path(path)
    wb = openpyxl.Workbook(write_only=True)
    if title:
        wb.properties.title = title
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    for sheet in sheets:
        ws = wb.create_sheet(sheet.title)
        widths = sheet.widths or ([max(10, len(h) * 2 + 4) for h in sheet.header] if sheet.header else [])
        for i, width in enumerate(widths):
            ws.column_dimensions[letter(i)].width = width
        if sheet.freeze and sheet.header:
            ws.freeze_panes = sheet.freeze
        if style:
            style(ws, sheet)

        def cell(value: Any, *, head: bool = False) -> WriteOnlyCell:
            c = inert(WriteOnlyCell(ws, value))  # text, never a formula (spreadsheet injection)
            if head:
                c.font = bold
            elif sheet.wrap:
                c.alignment = wrap
            return c

        if sheet.header:
            ws.append([cell(h, head=True) for h in sheet.header])
        for values in sheet.rows:
            ws.append([cell(v) for v in values])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV file Excel opens as UTF-8 (with BOM); text that would start a formula is quoted as text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_guard_csv(h) for h in header])
        writer.writerows([_guard_csv(v) for v in row] for row in rows)
    return path


# --------------------------------------------------------------------------- texts

def _t(key: str, /, **values: Any) -> str:
    from pingan.core.i18n import t

    return t(f"sheets.{key}", **values)


def _register() -> None:
    from pingan.core.i18n import register

    register({
        "sheets.duplicate_column": {"zh-CN": "列重复", "en": "column appears twice"},
        "sheets.missing_column": {"zh-CN": "缺少必需的列", "en": "required column missing"},
        "sheets.control_char": {"zh-CN": "含有控制字符", "en": "contains a control character"},
        "sheets.empty_dir": {"zh-CN": "文件夹中没有 .csv 文件", "en": "the folder holds no .csv file"},
        "sheets.not_found": {"zh-CN": "文件不存在", "en": "no such file"},
        "sheets.unsupported": {"zh-CN": "只支持 .xlsx 工作簿或 .csv 文件", "en": "only .xlsx workbooks and .csv files are read"},
        "sheets.cannot_read": {"zh-CN": "无法读取（{reason}）", "en": "cannot be read ({reason})"},
        "sheets.no_sheets": {"zh-CN": "没有工作表 {wanted}（有：{found}）", "en": "no sheet {wanted} (found: {found})"},
        "sheets.csv_kind": {"zh-CN": "无法从列名判断是哪一张表", "en": "cannot tell from its header which table this is"},
    })


_register()
