"""The Committee's three languages: English, French and Spanish (the Convention's working languages).

- The language of an answer is `?lang=en|fr|es`, else the best of the request's `Accept-Language`
  (Babel's negotiation), else English. The route dependency `use_language` sets it for the request
  (a context variable: an async dependency, so the endpoint's worker thread sees it).
- Messages are looked up with `_("English text {name}", name=value)`: the English text is the message
  id, the values are put in after translation. The catalogues are Babel PO files kept in the
  repository (`app/committee/locales/<lang>/LC_MESSAGES/messages.po`), read at start-up; no network.
- IMAS vocabulary as the standards' own French and Spanish editions name it: suspected / confirmed
  hazardous area = zone dangereuse soupçonnée / confirmée, área peligrosa sospechosa / confirmada;
  cancelled, reduced, cleared = annulée, réduite, dépolluée; cancelada, reducida, despejada.
- Dates in text: ISO 8601 in English (as the API gives them), the locale's long form in French and
  Spanish (Babel, CLDR); numbers with the locale's separators. Data cells (JSON, CSV, XLSX) keep typed
  values: only their labels and sentences are translated (a CSV's header row: the columns' titles, or with
  `?headers=names` their machine names, app.committee.formats).
- The dashboard's HTML marks its texts `{{English text}}`; its scripts look them up with `t("...")`
  from the messages the page carries (`page_messages`). `dashboard_messages` extracts both for the test
  that every message has a translation (tests/test_i18n.py).
- Problems (app/problems.py) come in the request's language whatever raised them: the handlers translate
  the detail, the title and each `errors[].message` with `translate`, which knows a message made elsewhere
  with an f-string by its template (the f-string with each value written `{name}`, as tests/test_i18n.py
  extracts it from the code), and the request-validation messages by pydantic's own templates.
- A new message: write it in English with `_()` (or `{{...}}`, `t("...")`), then add its `msgid`/`msgstr`
  to both PO files; tests/test_i18n.py names every message that has no translation, and where it is.
"""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from fastapi import Query, Request

LANGUAGES = ("en", "fr", "es")
DEFAULT = "en"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
WEB_DIR = Path(__file__).resolve().parents[1] / "web"

_language: ContextVar[str] = ContextVar("language", default=DEFAULT)


def _load(language: str) -> dict[str, str]:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


CATALOGS: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES if lang != DEFAULT}


def current() -> str:
    return _language.get()


def set_language(language: str) -> None:
    _language.set(language if language in LANGUAGES else DEFAULT)


def negotiate(lang: str | None, accept_language: str | None) -> str:
    """`lang` when it is one of ours, else the best match of an Accept-Language header, else English."""
    if lang and lang.lower()[:2] in LANGUAGES:
        return lang.lower()[:2]
    preferred = []
    for part in (accept_language or "").split(","):
        tag, _sep, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        if tag and tag != "*" and weight > 0:
            preferred.append((weight, tag.replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred, key=lambda p: -p[0])]
    found = negotiate_locale(ordered, list(LANGUAGES)) or negotiate_locale(
        [t.split("_")[0] for t in ordered], list(LANGUAGES))
    return found or DEFAULT


SCOPE_KEY = "landrelease.language"  # where a request's negotiated language is kept for its answer's headers
LANG_QUERY = Query(None, description="Language of the texts: en, fr or es (default: from Accept-Language, else en)",
                   pattern="^(en|fr|es)$")


def of_request(request: Request) -> str:
    """The language of a request's answer (its problems too: app/problems.py), as `use_language` sets it."""
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


async def use_language(request: Request, lang: str | None = LANG_QUERY) -> AsyncIterator[str]:
    """The route dependency: the request's language for the texts of its answer."""
    token = _language.set(negotiate(lang, request.headers.get("accept-language")))
    request.scope[SCOPE_KEY] = _language.get()  # the answer's Content-Language (app.headers)
    try:
        yield _language.get()
    finally:
        _language.reset(token)


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """The texts made inside the block in `language` (a problem handler, outside the route's dependency)."""
    token = _language.set(language if language in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


_NAME = re.compile(r"\{(\w+)\}")
_ESCAPED_NAME = re.compile(r"\\\{(\w+)\\\}")


def _template(message: str) -> re.Pattern[str]:
    """The pattern of the English texts a message with placeholders stands for (a value may be empty: a
    plural's "s"; a name used twice is the same value twice)."""
    seen: set[str] = set()

    def group(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return f"(?P={name})"
        seen.add(name)
        return f"(?P<{name}>.*?)"

    return re.compile(f"^{_ESCAPED_NAME.sub(group, re.escape(message))}$", re.S)


def _templates(language: str) -> list[tuple[re.Pattern[str], str]]:
    """The catalogue's messages with placeholders, the most specific (most fixed text) first; one whose fixed
    text has no word ("{where}: {message}") would match any text, and is not one."""
    messages = [m for m in CATALOGS.get(language, {}) if _NAME.search(m) and re.search(r"[^\W\d_]", _NAME.sub("", m))]
    messages.sort(key=lambda m: -len(_NAME.sub("", m)))
    return [(_template(m), m) for m in messages]


_TEMPLATES = {language: _templates(language) for language in CATALOGS}


def translate(english: str) -> str:
    """An English text made elsewhere in the current language: a message of the catalogue, or one with
    placeholders whose values are taken from the text (each value translated too when it is a message:
    a status, a pydantic message inside "Value error, ..."); else the text as it is."""
    catalog = CATALOGS.get(current())
    if not catalog:
        return english
    if english in catalog:
        return catalog[english]
    for pattern, message in _TEMPLATES[current()]:
        match = pattern.match(english)
        if match:
            values = {name: translate(value) if value else value for name, value in match.groupdict().items()}
            return _fill(catalog[message], values)
    return english


def _fill(text: str, values: dict[str, str]) -> str:
    """The text with its {name} placeholders put in (str.format would read other braces in it too)."""
    return _NAME.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _(message: str, **values: Any) -> str:
    """The message in the current language, with `values` put in ({name} placeholders)."""
    text = CATALOGS.get(current(), {}).get(message, message)
    return text.format(**values) if values else text


def day(value: date | None) -> str:
    """A date for a sentence: ISO 8601 in English, the locale's long form otherwise."""
    if value is None:
        return ""
    language = current()
    return value.isoformat() if language == DEFAULT else format_date(value, format="long", locale=language)


def number(value: float | int | None, decimals: int = 2) -> str:
    """A number with the locale's separators and `decimals` places."""
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=Locale.parse(current()))


# --- the dashboard ------------------------------------------------------------------------------------
_HTML_MESSAGE = re.compile(r"\{\{(.+?)\}\}", re.S)
_JS_MESSAGE = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")


def dashboard_messages() -> Iterator[tuple[str, str]]:
    """Every message of the dashboard pages and scripts, with the file it is in."""
    for page in sorted(WEB_DIR.glob("*.html")):
        for m in _HTML_MESSAGE.finditer(page.read_text(encoding="utf-8")):
            yield page.name, " ".join(m.group(1).split())
    for script in sorted((WEB_DIR / "static").glob("*.js")):
        for m in _JS_MESSAGE.finditer(script.read_text(encoding="utf-8")):
            yield script.name, json.loads(f'"{m.group(1)}"')  # a JS string literal is a JSON one here


def page_messages() -> dict[str, str]:
    """The scripts' messages in the current language (English: empty, the scripts fall back on the id)."""
    catalog = CATALOGS.get(current(), {})
    return {message: catalog[message] for name, message in dashboard_messages()
            if name.endswith(".js") and message in catalog}


def render_page(html: str) -> str:
    """A dashboard page in the current language: its `{{...}}` texts translated, `lang` set."""
    from html import escape

    catalog = CATALOGS.get(current(), {})

    def translated(match: re.Match[str]) -> str:
        message = " ".join(match.group(1).split())
        return escape(catalog.get(message, message), quote=False)

    text = _HTML_MESSAGE.sub(translated, html)
    return text.replace('<html lang="en">', f'<html lang="{current()}">', 1)
