"""Spreadsheet-safe CSV: the files the Committee and the field offices open in Excel or LibreOffice show
text as text, never as a formula to run.

The rule, from OWASP's CSV Injection guidance (https://owasp.org/www-community/attacks/CSV_Injection):
- a text cell that begins with `=`, `+`, `-`, `@`, TAB (0x09), CR (0x0D) or LF (0x0A) is read by a
  spreadsheet as a formula (`=HYPERLINK("http://x","y")` runs when the file is opened): it gets a single
  quote in front (`'=HYPERLINK(...)`), which makes the cell text (`text_cell`);
- every text cell is written between double quotes (a double quote inside doubled, RFC 4180), so that
  no field separator inside it (the `,` of the file, or the `;` of a spreadsheet set to a locale that
  uses it), no quote and no CR or LF can end the cell or the row and put a dangerous character at the
  start of a new one; Python's csv module quotes a bare CR only then (QUOTE_MINIMAL leaves it bare when
  the rows end in LF, and a bare CR splits the row in a spreadsheet);
- numbers are written bare and stay numbers (a negative longitude stays -104.2): only text is changed.

Reading such a file back gives the text with its quote: a name `=X` exported and imported again comes
back as `'=X` (the price OWASP accepts for a file that is safe to open).

Used by the Committee's CSV answers (`csv_text`, app/committee/summaries.py) and the CSV export, written by GDAL
(`safe_frame` and `GDAL_CSV_OPTIONS`, app/files/export.py).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
NEUTRALISER = "'"
# GDAL's CSV driver: every string field between double quotes (it quotes a CR and a LF in any case)
GDAL_CSV_OPTIONS = {"STRING_QUOTING": "ALWAYS"}


def text_cell(value: str) -> str:
    """The text as a spreadsheet shows it, never a formula: a quote in front of a dangerous first character."""
    return NEUTRALISER + value if value.startswith(FORMULA_STARTS) else value


def cell(value: Any) -> Any:
    """One value as a CSV cell: text made safe, booleans as true/false, nothing as empty, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return text_cell(value)
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV document (header row first, rows ending in LF): text quoted and made safe, numbers bare."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([text_cell(name) for name in header])
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame whose text columns are made safe (`text_cell`); other columns are untouched."""
    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype):
            safe[column] = values.map(lambda v: text_cell(v) if isinstance(v, str) else v)
    return safe
