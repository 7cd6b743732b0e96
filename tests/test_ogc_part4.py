"""OGC API - Features Part 4 (draft) on the ledger's layers, through plain HTTP against a live server as QGIS sends
it (GeoJSON bodies, Content-Crs, If-Match, OPTIONS before editing): every write is one of the ledger's own."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy.orm import Session

from app import access, database
from tests.conftest import auth_headers, make_api_key
from tests.ledger_scenarios import rect, rect_lonlat, true_area

GEOJSON = "application/geo+json"
UTM_URI = "<http://www.opengis.net/def/crs/EPSG/0/32648>"
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"


@pytest.fixture
def http(live_server: str) -> Iterator:
    """`http(secret)`: a plain HTTP client of the live server sending that key (None: none)."""
    made: list[httpx.Client] = []

    def _make(secret: str | None) -> httpx.Client:
        client = httpx.Client(base_url=live_server, headers=auth_headers(secret), timeout=60)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


def operator_key(admin: httpx.Client, iso3: str = "KHM") -> str:
    organisation = admin.post(f"/api/v1/states/{iso3}/organisations", json={"name": "HALO Trust", "kind": "ngo"})
    assert organisation.status_code == 201, organisation.text
    with Session(database.get_engine()) as session:
        _, secret = access.create_key(session, name="HALO field office", role="operator",
                                      organisation_id=organisation.json()["id"])
    return secret


def hazard_body(external_id: str, geometry: dict, **properties) -> dict:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"state": "KHM", "external_id": external_id, "classification": "SHA",
                           "recorded_on": "2015-01-01", **properties}}


def post(client: httpx.Client, collection: str, body: dict, crs: str | None = UTM_URI, **params) -> httpx.Response:
    headers = {"Content-Type": GEOJSON, **({"Content-Crs": crs} if crs else {})}
    return client.post(f"/collections/{collection}/items", json=body, headers=headers, params=params)


def allow(client: httpx.Client, path: str) -> set[str]:
    response = client.options(path)
    assert response.status_code == 204, response.text
    return {m.strip() for m in response.headers["allow"].split(",")}


def test_options_answer_allow_for_the_key(http, admin_key) -> None:
    admin = http(admin_key)
    hazard = post(admin, "hazardous_areas", hazard_body("KHM-P4-0", rect(0, 0, 1000, 1000)), border="accept").json()
    event = post(admin, "land_release_events", {"type": "Feature", "geometry": rect(0, 0, 200, 1000), "properties": {
        "hazard_id": hazard["id"], "kind": "cancellation", "date": "2016-01-01"}}).json()
    read = {"GET", "HEAD", "OPTIONS"}
    keys = {"anonymous": None, "viewer": make_api_key("viewer", "KHM"), "editor": make_api_key("editor", "KHM"),
            "editor of THA": make_api_key("editor", "THA"), "operator": operator_key(admin), "admin": admin_key}
    expected = {  # items of hazards, of events; a hazard; an event
        "anonymous": (read, read, read, read),
        "viewer": (read, read, read, read),
        "editor": (read | {"POST"}, read | {"POST"}, read | {"PUT", "PATCH"}, read | {"DELETE"}),
        "editor of THA": (read | {"POST"}, read | {"POST"}, read, read),
        "operator": (read | {"POST"}, read | {"POST"}, read, read),
        "admin": (read | {"POST"}, read | {"POST"}, read | {"PUT", "PATCH"}, read | {"DELETE"}),
    }
    for name, secret in keys.items():
        client = http(secret)
        paths = ("/collections/hazardous_areas/items", "/collections/land_release_events/items",
                 f"/collections/hazardous_areas/items/{hazard['id']}",
                 f"/collections/land_release_events/items/{event['id']}")
        assert tuple(allow(client, p) for p in paths) == expected[name], name
        assert allow(client, "/collections/countries/items") == read, name
    # every other path keeps the methods its routes declare
    assert allow(http(None), "/api/v1/keys") == {"GET", "HEAD", "OPTIONS", "POST"}


def test_a_round_trip_as_qgis_makes_it(http, admin_key) -> None:
    editor = http(make_api_key("editor", "KHM"))
    # create, in UTM 48N as the Content-Crs says
    created = post(editor, "hazardous_areas", hazard_body("KHM-P4-1", rect(0, 0, 1000, 1000), name="Phum Thmay"),
                   border="accept")
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    hazard_id = created.json()["id"]
    assert location.endswith(f"/collections/hazardous_areas/items/{hazard_id}")
    assert created.json()["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1000, 1000), abs=1.0)

    # read, with a strong ETag that a conditional GET honours
    read = editor.get(location)
    assert read.status_code == 200
    tag = read.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")
    assert editor.get(location, headers={"If-None-Match": tag}).status_code == 304
    projected = editor.get(location, params={"crs": "http://www.opengis.net/def/crs/EPSG/0/32648"})
    assert projected.headers["etag"] != tag and projected.headers["etag"].startswith(tag[:-1])

    # update with If-Match: a correction through the ledger, its reason in X-Reason
    patched = editor.patch(location, json={"properties": {"name": "Phum Thmei"}},
                           headers={"Content-Type": "application/merge-patch+json", "If-Match": tag,
                                    "X-Reason": "spelling%20of%20the%20survey%20report"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["after"] == {"name": "Phum Thmei"}
    new_tag = patched.headers["etag"]
    assert new_tag != tag and editor.get(location).headers["etag"] == new_tag
    assert editor.get(location).json()["properties"]["name"] == "Phum Thmei"

    # a stale ETag is a 412 and changes nothing
    stale = editor.patch(location, json={"properties": {"name": "Other"}},
                         headers={"Content-Type": "application/merge-patch+json", "If-Match": tag, "X-Reason": "r"})
    assert stale.status_code == 412, stale.text
    assert editor.get(location).json()["properties"]["name"] == "Phum Thmei"

    # replace, the whole feature as QGIS sends it back (the computed properties unchanged), a wider polygon
    feature = editor.get(location).json()
    feature["geometry"] = rect_lonlat(0, 0, 1200, 1000)
    feature.pop("links")
    replaced = editor.put(location, json=feature, headers={"Content-Type": GEOJSON, "If-Match": new_tag},
                          params={"reason": "the surveyed perimeter is 1200 m wide", "border": "accept"})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["polygon_corrected"] is True
    assert replaced.json()["baseline_area_m2"] == pytest.approx(true_area(0, 0, 1200, 1000), abs=1.0)
    history = editor.get(f"/api/v1/hazards/{hazard_id}/corrections").json()["corrections"]
    assert [c["reason"] for c in history] == ["spelling of the survey report", "the surveyed perimeter is 1200 m wide"]

    # an event, its hazard a property; then voided by DELETE: the remaining area is back within 1 m2
    event = post(editor, "land_release_events", {"type": "Feature", "geometry": rect(0, 0, 400, 1000), "properties": {
        "hazard_id": hazard_id, "kind": "clearance", "date": "2018-05-01", "ap_mines": 3}})
    assert event.status_code == 201, event.text
    event_location = event.headers["location"]
    assert event.json()["released_area_m2"] == pytest.approx(true_area(0, 0, 400, 1000), abs=1.0)
    remaining = editor.get(location).json()["properties"]["remaining_area_m2"]
    assert remaining == pytest.approx(true_area(400, 0, 800, 1000), abs=1.0)
    assert editor.get(f"/api/v1/hazards/{hazard_id}").json()["properties"]["events"][0]["items_destroyed"][
        "ap_mines"] == 3
    event_tag = editor.get(event_location).headers["etag"]
    no_reason = editor.delete(event_location, headers={"If-Match": event_tag})
    assert no_reason.status_code == 400 and "X-Reason" in no_reason.json()["detail"]
    en_francais = editor.delete(event_location, headers={"If-Match": event_tag, "Accept-Language": "fr"})
    assert en_francais.status_code == 400 and en_francais.headers["content-language"] == "fr"
    assert en_francais.json()["title"] == "Raison requise" and "l’en-tête X-Reason" in en_francais.json()["detail"]
    voided = editor.delete(event_location, headers={"If-Match": event_tag, "X-Reason": "recorded on the wrong hazard"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided"] is True
    assert editor.get(location).json()["properties"]["remaining_area_m2"] == pytest.approx(
        replaced.json()["baseline_area_m2"], abs=1.0)
    kept = editor.get(event_location)
    assert kept.status_code == 200 and kept.json()["properties"]["voided"] is True
    assert kept.json()["properties"]["void_reason"] == "recorded on the wrong hazard"
    again = editor.delete(event_location, headers={"If-Match": event_tag, "X-Reason": "twice"})
    assert again.status_code == 412  # it changed: voided

    # a hazard is not deleted: 405, saying what to do instead
    refused = editor.delete(location, headers={"X-Reason": "mistake"})
    assert refused.status_code == 405 and "Correct it" in refused.json()["detail"]
    assert "DELETE" not in refused.headers["allow"] and "PATCH" in refused.headers["allow"]
    # the audit log has every write
    actions = [(e["table"], e["action"]) for e in http(admin_key).get("/api/v1/audit").json()["entries"]]
    for done in (("hazardous_areas", "create"), ("hazardous_areas", "correct"), ("land_release_events", "create"),
                 ("land_release_events", "void")):
        assert done in actions


def test_an_operator_post_is_a_pending_submission_not_a_feature(http, admin_key) -> None:
    admin = http(admin_key)
    operator = http(operator_key(admin))
    held = post(operator, "hazardous_areas", hazard_body("KHM-P4-OP", rect_lonlat(0, 0, 500, 500)), crs=None)
    assert held.status_code == 202, held.text
    assert "/api/v1/submissions/" in held.headers["location"]
    submission = operator.get(held.headers["location"])
    assert submission.status_code == 200 and submission.json()["properties"]["status"] == "submitted"
    layer = admin.get("/collections/hazardous_areas/items").json()
    assert layer["numberMatched"] == 0 and layer["features"] == []
    # a land-release report of an operator is held too
    hazard = post(admin, "hazardous_areas", hazard_body("KHM-P4-2", rect(0, 0, 1000, 1000)), border="accept").json()
    report = post(operator, "land_release_events", {"type": "Feature", "geometry": rect(0, 0, 300, 1000),
                                                     "properties": {"hazard_id": hazard["id"], "kind": "cancellation",
                                                                    "date": "2016-01-01"}})
    assert report.status_code == 202, report.text
    assert admin.get("/collections/land_release_events/items").json()["numberMatched"] == 0
    # an operator corrects or voids nothing directly
    patched = operator.patch(f"/collections/hazardous_areas/items/{hazard['id']}",
                             json={"properties": {"name": "x"}}, headers={"X-Reason": "r"})
    assert patched.status_code == 403


def test_wrong_state_and_bad_bodies_are_refused_with_what_to_fix(http, admin_key) -> None:
    admin = http(admin_key)
    tha = http(make_api_key("editor", "THA"))
    refused = post(tha, "hazardous_areas", hazard_body("KHM-P4-3", rect(0, 0, 500, 500), state="KHM"))
    assert refused.status_code == 403 and "THA" in refused.json()["detail"]
    viewer = http(make_api_key("viewer", "KHM"))
    assert post(viewer, "hazardous_areas", hazard_body("KHM-P4-3", rect(0, 0, 500, 500))).status_code == 403
    assert post(http(None), "hazardous_areas", hazard_body("KHM-P4-3", rect(0, 0, 500, 500))).status_code == 401

    editor = http(make_api_key("editor", "KHM"))
    not_a_feature = post(editor, "hazardous_areas", {"type": "FeatureCollection", "features": []})
    assert not_a_feature.status_code == 400 and "Feature" in not_a_feature.json()["detail"]
    bad_class = post(editor, "hazardous_areas", hazard_body("KHM-P4-4", rect(0, 0, 500, 500), classification="XHA"))
    assert bad_class.status_code == 422 and "properties.classification" in bad_class.json()["detail"]
    computed = post(editor, "hazardous_areas", hazard_body("KHM-P4-4", rect(0, 0, 500, 500), remaining_area_m2=5))
    assert computed.status_code == 422 and "remaining_area_m2" in computed.json()["detail"]
    unknown = post(editor, "hazardous_areas", hazard_body("KHM-P4-4", rect(0, 0, 500, 500), colour="red"))
    assert unknown.status_code == 422 and "colour" in unknown.json()["detail"]
    bad_crs = post(editor, "hazardous_areas", hazard_body("KHM-P4-4", rect(0, 0, 500, 500)), crs="<EPSG:nothing>")
    assert bad_crs.status_code == 400 and "Content-Crs" in bad_crs.json()["detail"]
    no_hazard = post(editor, "land_release_events", {"type": "Feature", "geometry": rect(0, 0, 100, 100),
                                                     "properties": {"kind": "clearance", "date": "2016-01-01"}})
    assert no_hazard.status_code == 422 and "hazard_id" in no_hazard.json()["detail"]
    read_only = post(editor, "countries", hazard_body("KHM-P4-4", rect(0, 0, 500, 500)))
    assert read_only.status_code == 405 and read_only.headers["allow"] == "GET, HEAD, OPTIONS"
    not_json = editor.post("/collections/hazardous_areas/items", content=b"<xml/>",
                           headers={"Content-Type": "application/xml"})
    assert not_json.status_code == 415
    # EPSG:4326 in Content-Crs is latitude first (Part 2)
    lon_lat = rect_lonlat(0, 0, 500, 500)
    lat_lon = {"type": "Polygon", "coordinates": [[[y, x] for x, y in lon_lat["coordinates"][0]]]}
    made = post(editor, "hazardous_areas", hazard_body("KHM-P4-5", lat_lon),
                crs="<http://www.opengis.net/def/crs/EPSG/0/4326>", border="accept")
    assert made.status_code == 201, made.text
    assert made.json()["baseline_area_m2"] == pytest.approx(true_area(0, 0, 500, 500), abs=1.0)
    # a correction of the class is refused, saying how the class changes
    location = made.headers["location"]
    reclassified = editor.patch(location, json={"properties": {"classification": "CHA"}}, headers={"X-Reason": "r"})
    assert reclassified.status_code == 422 and "reclassification" in reclassified.json()["detail"]
    # and an editor of another State cannot see it to change it
    assert tha.patch(location, json={"properties": {"name": "x"}}, headers={"X-Reason": "r"}).status_code == 404
    assert admin.get(location).json()["properties"]["name"] is None


def test_the_api_document_and_conformance_declare_the_writes(http, admin_key) -> None:
    client = http(admin_key)
    document = client.get("/api").json()
    validate(document)
    item = document["paths"]["/collections/{collectionId}/items/{featureId}"]
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert "post" in document["paths"]["/collections/{collectionId}/items"]
    headers = {p["name"] for p in item["patch"]["parameters"] if p["in"] == "header"}
    assert {"If-Match", "X-Reason", "Content-Crs"} <= headers
    classes = client.get("/conformance").json()["conformsTo"]
    for name in ("create-replace-delete", "update", "features"):
        assert PART4 + name in classes


def test_two_writers_with_one_etag_one_wins_the_other_is_412(http, admin_key) -> None:
    """If-Match is compared under the hazard's row lock: of two corrections sent with the same ETag at once,
    exactly one is applied."""
    editor_key = make_api_key("editor", "KHM")
    created = post(http(editor_key), "hazardous_areas", hazard_body("KHM-P4-6", rect(0, 0, 1000, 1000)),
                   border="accept")
    location = created.headers["location"]
    tag = http(editor_key).get(location).headers["etag"]

    def patch(name: str) -> int:
        return http(editor_key).patch(location, json={"properties": {"name": name}},
                                      headers={"If-Match": tag, "X-Reason": f"named {name}"}).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(patch, ["A", "B", "C", "D"]))
    assert statuses == [200, 412, 412, 412]
    history = http(editor_key).get(f"/api/v1/hazards/{created.json()['id']}/corrections").json()["corrections"]
    assert len(history) == 1
    assert http(editor_key).get(location).json()["properties"]["name"] == history[0]["after"]["name"]
