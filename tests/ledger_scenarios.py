"""Small hand-made scenarios for ledger tests: squares in UTM zone 48N (Cambodia) with known areas."""
from __future__ import annotations

from typing import Any

from pyproj import Transformer
from shapely.geometry import Polygon, shape

from app.geometry import geodesic_area_m2, polygonal_part

UTM48N = "EPSG:32648"
X0, Y0 = 500_000.0, 1_450_000.0  # on the central meridian of zone 48N, in Battambang province
_TO_WGS84 = Transformer.from_crs(UTM48N, "EPSG:4326", always_xy=True)


def rect(x: float, y: float, w: float, h: float) -> dict[str, Any]:
    """A rectangle in UTM 48N metres, offset from (X0, Y0)."""
    x0, y0 = X0 + x, Y0 + y
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h], [x0, y0]]]}


def rect_lonlat(x: float, y: float, w: float, h: float) -> dict[str, Any]:
    ring = rect(x, y, w, h)["coordinates"][0]
    return {"type": "Polygon", "coordinates": [[list(_TO_WGS84.transform(px, py)) for px, py in ring]]}


def true_area(x: float, y: float, w: float, h: float) -> float:
    """Geodesic area of the UTM rectangle (the UTM grid is not exactly metres on the ground)."""
    return geodesic_area_m2(polygonal_part(shape(rect_lonlat(x, y, w, h))))


def hazard_feature(external_id: str, geometry: dict[str, Any], classification: str = "SHA",
                   recorded_on: str = "2015-01-01", **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"external_id": external_id, "classification": classification,
                           "recorded_on": recorded_on, **props}}


def post_hazard(client, external_id: str, geometry: dict[str, Any], iso3: str = "KHM", crs: str | None = UTM48N,
                **props: Any) -> dict[str, Any]:
    # The ledger's tests draw where their geometry needs (another State's hazards on the Cambodian squares, 60
    # degrees north, UTM 33N): what lies beyond the State goes in as a border polygon. app/places' own tests
    # (tests/test_places.py) check the boundary.
    params = {"crs": crs, "border": "accept"} if crs else {"border": "accept"}
    response = client.post(f"/api/v1/states/{iso3}/hazards", json=hazard_feature(external_id, geometry, **props),
                           params=params)
    assert response.status_code == 201, response.text
    return response.json()["hazards"][0]


def post_event(client, hazard_id: str, kind: str, date: str, geometry: dict[str, Any] | None,
               crs: str | None = UTM48N, expect: int = 201, **extra: Any) -> dict[str, Any]:
    params = {"crs": crs} if crs else {}
    response = client.post(f"/api/v1/hazards/{hazard_id}/events", params=params,
                           json={"kind": kind, "date": date, "geometry": geometry, **extra})
    assert response.status_code == expect, response.text
    return response.json()


__all__ = ["Polygon", "rect", "rect_lonlat", "true_area", "hazard_feature", "post_hazard", "post_event", "UTM48N"]
