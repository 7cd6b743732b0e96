"""English, French and Spanish: every message has its translation, the language comes from ?lang= or
Accept-Language, and the pages, charts, reports and problems of the report endpoints come in it."""
from __future__ import annotations

import ast
import csv
import io
import re
import subprocess
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from openpyxl import load_workbook
from pydantic_core._pydantic_core import list_all_errors
from shapely.geometry import box

from app.committee import i18n, summaries
from tests.conftest import auth_headers
from tests.headless_chromium import Chromium
from tests.ledger_scenarios import hazard_feature, post_event, post_hazard, rect
from tests.test_dashboard import PAGE_READY, STATUS, khm  # noqa: F401 - the fixture: KHM's hand-made history
from tests.test_quality import IN_BATTAMBANG, legacy
from tests.test_review_page import MAP_IDLE, READY, _operator

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
GRAMMAR = {"expected_plural"}  # pydantic's plural "s": a translation may write its plural its own way

# The code whose problems reach a reader: all of the service (every endpoint's problems, every problem handler,
# the data-quality report's messages).
PROBLEM_CODE = ("app",)
# The calls that make a problem's detail (or a validation or quality message), and the position of the text.
PROBLEM_CALLS = {"Problem": 1, "localised_problem": 2, "problem_response": 0, "_unauthorised": 0, "_forbidden": 0,
                 "ValueError": 0, "_": 0, "_hazard_row": 3}


def _placeholder(expr: ast.expr) -> str:
    name = re.sub(r"\W+", "_", ast.unparse(expr)).strip("_")
    return name if name and len(name) <= 30 and not name[0].isdigit() else "value"


def _texts(node: ast.expr) -> list[str]:
    """The English texts an expression makes, each value of an f-string written {name} (its template)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(part.value if isinstance(part, ast.Constant) else "{" + _placeholder(part.value) + "}"
                        for part in node.values if isinstance(part, (ast.Constant, ast.FormattedValue)))]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [left + right for left in _texts(node.left) for right in _texts(node.right)]
    if isinstance(node, ast.IfExp):
        return _texts(node.body) + _texts(node.orelse)
    return ["{" + _placeholder(node) + "}"]


def problem_messages() -> dict[str, str]:
    """Every problem detail and title the service can answer with (as templates), the
    HTTP status phrases (default titles) and pydantic's validation messages (the 422s)."""
    found: dict[str, str] = {}
    files = [path for name in PROBLEM_CODE for path in
             (sorted((ROOT / name).rglob("*.py")) if (ROOT / name).is_dir() else [ROOT / name])]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.Call, ast.Dict)):
                continue
            called = "" if isinstance(node, ast.Dict) else \
                node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            texts = []
            if isinstance(node, ast.Call) and called in PROBLEM_CALLS and len(node.args) > PROBLEM_CALLS[called]:
                texts += _texts(node.args[PROBLEM_CALLS[called]])
            if isinstance(node, ast.Call) and called in PROBLEM_CALLS:
                texts += [t for k in node.keywords if k.arg in ("detail", "title") for t in _texts(k.value)]
            if isinstance(node, ast.Dict):  # a row's "message" (a quality row, a validation error)
                texts += [t for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "message" for t in _texts(v)]
            for text in texts:
                # a text that is only values ("{detail}", "{where}: {message}") is made and translated elsewhere
                if re.search(r"[^\W\d_]", PLACEHOLDER.sub("", text)):
                    found.setdefault(text, f"{path.relative_to(ROOT)}:{node.lineno}")
    for status in HTTPStatus:
        if status >= 400:
            found.setdefault(status.phrase, "http.HTTPStatus")
    for error in list_all_errors():
        found.setdefault(error["message_template_python"], f"pydantic-core ({error['type']})")
    found.setdefault("JSON decode error", "fastapi")
    return found


def extracted_messages() -> dict[str, str]:
    """Every message of the code (`_("...")` in the Committee's package and routers, the problems of the review
    and report endpoints) and of the dashboard."""
    found: dict[str, str] = {}
    for folder in ("app/committee", "app/routers"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords={"_": None}):
            found.setdefault(message, f"{folder}/{filename}:{lineno}")
    for name, message in i18n.dashboard_messages():
        found.setdefault(message, f"app/web/{name}")
    for message, where in problem_messages().items():
        found.setdefault(message, where)
    return found


def test_every_message_has_a_french_and_a_spanish_translation() -> None:
    messages = extracted_messages()
    assert len(messages) > 100 and "Form C: mined areas" in messages and "on track" in messages
    for language in ("fr", "es"):
        catalog = i18n.CATALOGS[language]
        missing = {m: where for m, where in messages.items() if not catalog.get(m)}
        assert missing == {}, f"no {language} translation for: {missing}"
        for message in messages:
            # the same placeholders, so no value is lost or asked for in translation
            assert set(PLACEHOLDER.findall(catalog[message])) - GRAMMAR == \
                set(PLACEHOLDER.findall(message)) - GRAMMAR, message


def test_the_imas_vocabulary() -> None:
    fr, es = i18n.CATALOGS["fr"], i18n.CATALOGS["es"]
    assert fr["Suspected hazardous areas (SHA)"] == "Zones dangereuses soupçonnées (ZDS)"
    assert fr["Confirmed hazardous areas (CHA)"] == "Zones dangereuses confirmées (ZDC)"
    assert es["Suspected hazardous areas (SHA)"] == "Áreas peligrosas sospechosas (APS)"
    assert es["Confirmed hazardous areas (CHA)"] == "Áreas peligrosas confirmadas (APC)"
    for english, french, spanish in (("Cancelled (m²)", "Annulée", "Cancelada"),
                                     ("Reduced (m²)", "Réduite", "Reducida"),
                                     ("Cleared (m²)", "Dépolluée", "Despejada")):
        assert fr[english].startswith(french) and es[english].startswith(spanish)


@pytest.mark.parametrize(("lang", "accept", "expected"), [
    (None, None, "en"), ("fr", None, "fr"), ("es", "fr", "es"), (None, "fr-SN,fr;q=0.9,en;q=0.5", "fr"),
    (None, "es-CO", "es"), (None, "de-DE,de;q=0.9", "en"), (None, "de;q=0.9,es;q=0.8,fr;q=0.2", "es"),
    (None, "garbage;q=x", "en"),
])
def test_the_language_is_negotiated(lang, accept, expected) -> None:
    assert i18n.negotiate(lang, accept) == expected


def test_reasons_and_dates_in_the_language(client) -> None:
    def reason(**kwargs) -> str:
        response = client.get("/api/v1/states/UKR/summary", **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["article5"]["bound_reason"]

    assert reason(params={"as_of": "2026-06-30"}).startswith("bound since the entry into force on 2006-06-01")
    french = reason(params={"as_of": "2026-06-30", "lang": "fr"})
    assert french.startswith("lié depuis l'entrée en vigueur le 1 juin 2006") or \
        french.startswith("lié depuis l'entrée en vigueur le 1er juin 2006")
    assert "18 juillet 2025" in french and "n'a pas d'effet juridique" in french
    spanish = reason(params={"as_of": "2026-06-30"}, headers={"Accept-Language": "es-PE,es;q=0.9"})
    assert spanish.startswith("vinculado desde la entrada en vigor el 1 de junio de 2006")
    response = client.get("/api/v1/states/UKR/summary", params={"lang": "de"})
    assert response.status_code == 422 and "lang" in response.json()["detail"]


def test_answers_in_a_language_say_so_and_vary_with_accept_language(client) -> None:
    """A cache must not give one reader's French answer to the next reader: Content-Language and Vary."""
    def varies(response) -> bool:
        return "accept-language" in ",".join(response.headers.get_list("vary")).lower()

    spanish = client.get("/api/v1/states/UKR/summary", headers={"Accept-Language": "es"})
    assert spanish.status_code == 200 and spanish.headers["content-language"] == "es" and varies(spanish)
    english = client.get("/api/v1/states/UKR/summary")
    assert english.headers["content-language"] == "en" and varies(english)
    page = client.get("/dashboard", params={"lang": "fr"})
    assert page.headers["content-language"] == "fr" and varies(page)
    problem = client.get("/collections/nothing/items", headers={"Accept-Language": "fr"})
    assert problem.status_code == 404 and problem.headers["content-language"] == "fr" and varies(problem)
    assert problem.json()["detail"].startswith("Pas de collection 'nothing'")
    # `lang` is a parameter of the OGC items and tiles too (a page of the dashboard sends it with every request)
    bad_limit = client.get("/collections/hazardous_areas/items", params={"lang": "es", "limit": "0"})
    assert bad_limit.status_code == 400 and bad_limit.headers["content-language"] == "es", bad_limit.text
    assert bad_limit.json()["title"] == "Parámetro no válido"
    assert not varies(client.get("/conformance"))  # an answer in no language does not vary with it


def test_problems_of_the_report_endpoints_in_the_language(client) -> None:
    response = client.get("/api/v1/states/KHM/report", params={"year": 1990, "lang": "fr"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("l'année 1990 est hors limites")
    response = client.get("/api/v1/states/XXX/report", params={"year": 2022},
                          headers={"Accept-Language": "es"})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Estado desconocido «XXX»")
    response = client.get("/api/v1/states/XXX/summary", params={"lang": "fr"})
    assert response.json()["detail"].startswith("État inconnu « XXX »")
    assert client.get("/api/v1/states/XXX/summary").json()["detail"].startswith("Unknown State 'XXX'")


def test_reports_in_french_and_spanish(client, khm, tmp_path: Path) -> None:  # noqa: F811
    response = client.get("/api/v1/states/KHM/report", params={"year": 2023, "format": "xlsx", "lang": "fr"})
    assert response.status_code == 200, response.text
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Résumé", "Formulaire C", "Remise à disposition", "Formulaire G", "Plan de travail"]
    assert [c.value for c in book["Formulaire C"][1]][:4] == ["Identifiant de la zone", "Nom", "Province / région",
                                                              "Classification"]
    assert {row[3] for row in book["Formulaire C"].iter_rows(min_row=2, values_only=True)} <= {"ZDS", "ZDC", None}
    summary = dict(book["Résumé"].iter_rows(min_row=2, values_only=True))
    assert summary["Lié par la Convention"] == "oui" and summary["Pourquoi"].startswith("lié depuis")

    csv_text = client.get("/api/v1/states/KHM/report", params={"year": 2023, "format": "csv"},
                          headers={"Accept-Language": "es"}).text
    assert '"TOTAL","2 áreas"' in csv_text

    pdf = tmp_path / "informe.pdf"
    response = client.get("/api/v1/states/KHM/report", params={"year": 2023, "format": "pdf", "lang": "es"})
    pdf.write_bytes(response.content)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True,
                                   text=True).stdout.split())
    assert "Informe del artículo 7: Cambodia (KHM), año civil 2023" in text
    assert "Formulario C: zonas minadas" in text and "31 de diciembre de 2023" in text
    assert re.search(r"\d,\d\d", text)  # a decimal comma

    svg = client.get("/api/v1/states/KHM/chart.svg", params={"as_of": "2024-06-30", "lang": "fr"}).text
    assert re.search("échéance de l(&#x27;|')article 5 : 31 décembre 2025", svg)
    assert "ZDS restantes" in svg


@pytest.mark.parametrize("lang", ["fr", "es"])
def test_the_pages_in_the_language(client, lang: str) -> None:
    for path in ("/dashboard", "/dashboard/KHM"):
        response = client.get(path, params={"lang": lang})
        assert response.status_code == 200
        html = response.text
        assert f'<html lang="{lang}">' in html and "{{" not in html
        assert response.headers["content-language"] == lang
        assert i18n.CATALOGS[lang]["Article 5 implementation"] in html
    english = client.get("/dashboard", headers={"Accept-Language": "en-GB"}).text
    assert '<html lang="en">' in english and "Committee overview" in english


@pytest.mark.parametrize(("lang", "words"), [("fr", ("vue d'ensemble du Comité", "pas en bonne voie", "Échéance")),
                                             ("es", ("panorama del Comité", "no va en camino", "Plazo"))])
def test_browser_pages_in_french_and_spanish(live_server, admin_key, khm, artifacts_dir, lang: str,  # noqa: F811
                                             words: tuple[str, ...]) -> None:
    with Chromium() as browser:
        browser.open(f"{live_server}/dashboard?as_of=2024-06-30&lang={lang}#key={admin_key}")
        assert browser.wait_for(PAGE_READY) == "true", (browser.evaluate(STATUS), browser.console)
        browser.screenshot(artifacts_dir / f"dashboard_overview_{lang}.png")
        page = browser.evaluate("document.body.innerText")
        assert words[0] in page and words[2] in page
        link = browser.evaluate("document.querySelector('tr[data-state=KHM] a').getAttribute('href')")
        assert f"lang={lang}" in link
        browser.open(f"{live_server}{link}")
        assert browser.wait_for(PAGE_READY) == "true", (browser.evaluate(STATUS), browser.console)
        browser.wait_for("document.getElementById('map').dataset.state === 'idle'")
        browser.screenshot(artifacts_dir / f"dashboard_KHM_{lang}.png")
        page = browser.evaluate("document.body.innerText")
        assert words[1] in page or i18n.CATALOGS[lang]["on track"] in page
        chart = browser.evaluate("document.getElementById('chart').textContent")
        assert i18n.CATALOGS[lang]["SHA remaining"] in chart
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
    assert (artifacts_dir / f"dashboard_KHM_{lang}.png").stat().st_size > 10_000


# --- problems: the request-validation 422s and the review endpoints --------------------------------
def test_validation_problems_in_the_language(client) -> None:
    path = "/api/v1/states/KHM/submissions"
    english = client.get(path, params={"status": "pending"})
    assert english.status_code == 422 and english.headers["content-language"] == "en"
    assert english.json()["detail"].startswith("The request is not valid: query/status: Input should be 'submitted'")
    french = client.get(path, params={"status": "pending", "lang": "fr"})
    body = french.json()
    assert french.status_code == 422 and french.headers["content-type"].startswith("application/problem+json")
    assert french.headers["content-language"] == "fr"
    assert set(body) == set(english.json()) and body["status"] == 422 and body["type"] == "about:blank"
    assert body["title"] == "Requête non valide"
    assert body["detail"].startswith("La requête n'est pas valide : query/status: L'entrée doit être 'submitted'")
    assert body["errors"] == [{"field": "query/status", "message": body["errors"][0]["message"]}]
    assert body["errors"][0]["message"].startswith("L'entrée doit être")
    # a message of the service's own validators, inside pydantic's "Value error, ..."
    spanish = client.get("/api/v1/states/KHM/summary", params={"as_of": "20240630"},
                         headers={"Accept-Language": "es-CO,es;q=0.9"}).json()
    assert spanish["title"] == "Solicitud no válida"
    assert "query/as_of: Valor erróneo, indique una fecha con el formato AAAA-MM-DD" in spanish["detail"]
    assert client.get(path, params={"limit": "x", "lang": "es"}).json()["errors"][0]["message"] == \
        "La entrada debe ser un entero válido; no se puede leer la cadena como un entero"


def test_problems_of_the_review_endpoints_in_the_language(client) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    french = client.post(f"/api/v1/submissions/{missing}/approve", params={"lang": "fr"})
    assert french.status_code == 404 and french.headers["content-language"] == "fr"
    assert french.json()["title"] == "Introuvable"
    assert french.json()["detail"] == f"Aucune soumission avec l'identifiant {missing}"
    # the national centre's own entry is approved at once: approving it again is refused, in the language
    entry = client.post("/api/v1/states/KHM/submissions", params={"crs": "EPSG:32648"},
                        json=hazard_feature("H-1", rect(0, 0, 500, 500))).json()
    again = client.post(f"/api/v1/submissions/{entry['id']}/approve", headers={"Accept-Language": "es"})
    assert again.status_code == 409
    assert again.json()["detail"] == "La solicitud está aprobada: solo se revisa una solicitud enviada."
    assert client.post(f"/api/v1/submissions/{entry['id']}/approve", params={"lang": "fr"}).json()["detail"] == \
        "La soumission est approuvée : seule une soumission en attente est examinée."
    english = client.post(f"/api/v1/submissions/{entry['id']}/approve").json()
    assert english["detail"] == "The submission is approved: only a submitted submission is reviewed."
    # a route that does not exist, and a request without a key
    assert client.get("/api/v1/nowhere", headers={"Accept-Language": "es"}).json()["title"] == "No encontrado"
    client.headers.pop("Authorization", None)
    client.headers.pop("X-API-Key", None)
    refused = client.get("/api/v1/states/KHM/submissions", params={"lang": "fr"})
    assert refused.status_code == 401 and refused.json()["detail"].startswith("Ce point d'accès demande une clé d'API")


@pytest.mark.parametrize(("lang", "words"), [
    ("fr", ("soumissions de", "File d'attente", "Approuver", "remise à disposition de", "rapport de dépollution")),
    ("es", ("solicitudes de", "Cola", "Aprobar", "liberación de", "informe de despeje")),
])
def test_the_review_and_quality_pages_in_french_and_spanish(live_server, admin_key, artifacts_dir, lang: str,
                                                           words: tuple[str, ...]) -> None:
    admin = httpx.Client(base_url=live_server, headers=auth_headers(admin_key), timeout=60)
    hazard = admin.post("/api/v1/states/KHM/hazards", params={"crs": "EPSG:32648"},
                        json=hazard_feature("H-1", rect(0, 0, 500, 500))).json()["hazards"][0]
    _, halo_key = _operator(admin, "HALO")
    halo = httpx.Client(base_url=live_server, headers=auth_headers(halo_key), timeout=60)
    assert halo.post(f"/api/v1/hazards/{hazard['id']}/submissions", params={"crs": "EPSG:32648"}, json={
        "kind": "clearance", "date": "2016-01-01", "geometry": rect(0, 0, 200, 500)}).status_code == 201
    catalog = i18n.CATALOGS[lang]
    with Chromium() as browser:
        # the national centre's queue
        browser.open(f"{live_server}/dashboard/KHM/review?lang={lang}#key={admin_key}")
        assert browser.wait_for(READY) == "true", browser.evaluate("document.getElementById('status').textContent")
        browser.wait_for(MAP_IDLE)
        page = browser.evaluate("document.body.innerText")
        assert all(word in page for word in words), page
        assert catalog["submitted"] in browser.evaluate("document.getElementById('queue').textContent")
        browser.screenshot(artifacts_dir / f"review_queue_KHM_{lang}.png")
        # a return without its comment is refused, and the problem is in the page's language
        browser.evaluate("document.querySelector('#review-form [data-action=return]').click()")
        browser.wait_for("document.getElementById('review-result').dataset.outcome === 'refused'")
        refusal = browser.evaluate("document.getElementById('review-result').textContent")
        assert refusal.startswith(catalog["The request is not valid: {summary}"].split("{")[0]), refusal
        assert browser.page_csp_violations() == [] and browser.csp_violations == [], browser.csp_violations
        # the operator's own page
        browser.evaluate("sessionStorage.clear()")
        browser.open(f"{live_server}/dashboard/KHM/review?lang={lang}&operator=HALO#key={halo_key}")  # a new page
        assert browser.wait_for(READY) == "true"
        assert browser.evaluate("document.getElementById('queue').dataset.count") == "1"
        browser.wait_for(MAP_IDLE)
        details = browser.evaluate("document.getElementById('details').textContent")
        assert catalog["Submitted area"] in details and catalog["{status} (revision {revision})"].replace(
            "{status}", catalog["submitted"]).replace("{revision}", "1") in details
        browser.screenshot(artifacts_dir / f"review_operator_HALO_{lang}.png")
        # the data-quality page
        browser.open(f"{live_server}/dashboard/KHM/quality?lang={lang}")
        assert browser.wait_for(READY) == "true"
        assert catalog["data quality"] in browser.evaluate("document.body.innerText")
        browser.screenshot(artifacts_dir / f"quality_KHM_{lang}.png")
    assert (artifacts_dir / f"review_queue_KHM_{lang}.png").stat().st_size > 10_000


def test_the_csv_headers_are_the_columns_titles_or_their_names(client, khm) -> None:  # noqa: F811
    def header(path: str, **params) -> list[str]:
        response = client.get(path, params={"format": "csv", **params})
        assert response.status_code == 200, response.text
        return next(csv.reader(io.StringIO(response.text)))

    report = "/api/v1/states/KHM/report"
    assert header(report, year=2023) == ["Area ID", "Name", "Region", "Province code", "Province", "Classification",
                                         "Type of contamination", "Remaining area (m²)", "Remaining area (km²)",
                                         "Centroid longitude", "Centroid latitude"]
    assert header(report, year=2023, lang="fr")[:4] == ["Identifiant de la zone", "Nom", "Région",
                                                        "Code de la province"]
    assert header(report, year=2023, lang="es")[6] == "Tipo de contaminación"
    # for programs: the machine names, the same in every language
    assert header(report, year=2023, lang="fr", headers="names") == list(summaries.REPORT_COLUMNS)
    overview = header("/api/v1/summary", as_of="2024-06-30", lang="es")
    assert overview[:3] == ["Código ISO", "Estado", "Situación respecto del artículo 5"]
    assert "Annulée sur les 365 derniers jours (km²)" in header("/api/v1/summary", as_of="2024-06-30", lang="fr")
    assert header("/api/v1/summary", as_of="2024-06-30", headers="names") == list(summaries.OVERVIEW_COLUMNS)
    assert len(overview) == len(summaries.OVERVIEW_COLUMNS)
    assert client.get(report, params={"year": 2023, "format": "csv", "headers": "labels"}).status_code == 422


def test_the_quality_report_in_french_and_spanish(client) -> None:
    legacy("OUT", box(102.0, 14.0, 102.01, 14.01))  # in Thailand
    legacy("A", IN_BATTAMBANG)
    legacy("A-again", IN_BATTAMBANG)
    legacy("TINY", box(102.9, 13.0, 102.90002, 13.00002))
    hazard = post_hazard(client, "H", rect(0, 0, 100, 100))
    post_event(client, hazard["id"], "clearance", "2020-01-01", rect(50, 0, 200, 100))
    legacy("SWAPPED", box(43.85, 18.40, 43.86, 18.41), iso3="BIH")  # Sarajevo as lat/lon

    def messages(iso3: str, lang: str) -> dict[str, str]:
        response = client.get(f"/api/v1/states/{iso3}/quality", params={"lang": lang})
        assert response.status_code == 200, response.text
        return {f"{r['kind']} {r['external_id']}": r["message"] for r in response.json()["rows"]}

    for iso3 in ("KHM", "BIH"):
        english = messages(iso3, "en")
        for lang in ("fr", "es"):
            translated = messages(iso3, lang)
            assert translated.keys() == english.keys()
            assert all(translated[k] != english[k] for k in english), (lang, translated)
    french = messages("KHM", "fr")
    assert french["outside_state OUT"].startswith("OUT se trouve en THA, à ")
    assert "au-delà de la frontière de KHM" in french["outside_state OUT"]
    assert french["event_outside_hazard H"].startswith("L'événement (dépollution) du 2020-01-01 sur H se trouve à 7")
    assert "comptent deux fois" in next(m for k, m in french.items() if k.startswith("duplicate "))
    spanish = messages("BIH", "es")
    assert "con la longitud y la latitud intercambiadas, quedaría en BIH" in spanish["swapped_coordinates SWAPPED"]
    assert "revise el orden de las coordenadas" in spanish["outside_state SWAPPED"]
