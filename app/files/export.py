"""The export of a State's layers as files (GeoPackage, zipped Shapefile, GeoJSON, CSV).

- `gpkg`: one GeoPackage with two layers, `hazardous_areas` and `land_release_events`;
  `shp`: a zip with one Shapefile per layer (short column names, see `SHAPEFILE_NAMES`);
  `geojson` and `csv` (geometry as WKT): one layer, `hazardous_areas` unless `layer` says otherwise.
- The CSV is spreadsheet-safe (app/committee/spreadsheet.py): every text cell is quoted, and one that a
  spreadsheet would run as a formula (a name `=HYPERLINK(...)`) begins with a `'`, kept on re-import.
- Geometry is WGS84 longitude/latitude; hazards carry their remaining geometry at `as_of` (today by
  default); events are the valid (not voided) events dated on or before `as_of`, with the land they
  released (a whole-hazard reclassification: the land it reclassified; an event that released
  nothing: the polygon it was recorded with), as the OGC layer shows them.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.committee import spreadsheet
from app.layers import EVENT_HAZARD_REFERENCE, EVENT_PROPERTIES, HAZARD_PROPERTIES, HAZARD_STATUSES, Property
from app.ledger import require_state
from app.ledger.as_of import hazards_sql, reclassified_land_sql, whole_reclassification_sql
from app.problems import Problem

EXPORT_FORMATS = {
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "geojson": ("application/geo+json", "geojson"),
    "shp": ("application/zip", "zip"),
    "csv": ("text/csv", "csv"),
}
EXPORT_LAYERS = ("hazardous_areas", "land_release_events")
# the 10-character Shapefile field names, as the layers declare them
SHAPEFILE_NAMES = {p.name: p.shapefile for p in (*HAZARD_PROPERTIES, *EVENT_PROPERTIES, EVENT_HAZARD_REFERENCE)
                   if p.shapefile}  # the events' export adds their hazard's reference


_ID = Property("id", "f.id", "uuid")


def _exported(properties: tuple[Property, ...]) -> tuple[Property, ...]:
    """The export's columns of a layer, as it declares them (app.layers): its id, then each exported property."""
    columns = tuple(p for p in (_ID, *properties) if p.export)
    if "hazard_id" not in [p.name for p in columns]:
        return columns
    after = [p.name for p in columns].index("hazard_id") + 1
    return (*columns[:after], EVENT_HAZARD_REFERENCE, *columns[after:])


_HAZARD_COLUMNS = _exported(HAZARD_PROPERTIES)
_EVENT_COLUMNS = _exported(EVENT_PROPERTIES)
_DATE_COLUMNS = tuple(p.name for p in (*_HAZARD_COLUMNS, *_EVENT_COLUMNS) if p.type == "date")


def _select(columns: tuple[Property, ...]) -> str:
    return ", ".join(f"{p.export_sql} AS {p.name}" for p in columns)


def _hazards_frame(session: Session, iso3: str, as_of: date | None, status: str | None) -> gpd.GeoDataFrame:
    params: dict[str, Any] = {"iso3": iso3, "as_of": as_of}
    condition = "f.state_iso3 = :iso3"
    if status:
        condition += " AND f.status = :status"
        params["status"] = status
    sql = f"""
        SELECT {_select(_HAZARD_COLUMNS)},
               CASE WHEN ST_IsEmpty(f.remaining_geom) THEN NULL ELSE ST_AsBinary(f.remaining_geom) END AS geom
        FROM ({hazards_sql(as_of is not None)}) f WHERE {condition} ORDER BY f.recorded_on, f.external_id
    """
    return _frame(session, sql, params)


def _events_frame(session: Session, iso3: str, as_of: date | None) -> gpd.GeoDataFrame:
    sql = f"""
        SELECT {_select(_EVENT_COLUMNS)},
               CASE WHEN {whole_reclassification_sql('f')} THEN ST_AsBinary({reclassified_land_sql('f')})
                    WHEN f.released_geom IS NULL OR ST_IsEmpty(f.released_geom) THEN ST_AsBinary(f.submitted_geom)
                    ELSE ST_AsBinary(f.released_geom) END AS geom
        FROM land_release_events f JOIN hazardous_areas h ON h.id = f.hazard_id
        WHERE f.state_iso3 = :iso3 AND f.voided_at IS NULL AND (CAST(:as_of AS date) IS NULL OR f.date <= :as_of)
        ORDER BY f.date, f.arrival
    """
    return _frame(session, sql, {"iso3": iso3, "as_of": as_of})


def _frame(session: Session, sql: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
    result = session.execute(text(sql), params)
    names = list(result.keys())
    rows = result.all()
    data = pd.DataFrame.from_records(rows, columns=names)
    wkb = data.pop("geom")
    geometry = shapely.from_wkb([bytes(g) if g is not None else None for g in wkb]) if len(data) else []
    for column in _DATE_COLUMNS:
        if column in data:
            data[column] = pd.to_datetime(data[column])  # a Date (or DateTime) field in every format
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _for_flat_files(frame: gpd.GeoDataFrame, short_names: bool) -> gpd.GeoDataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == bool:
            frame[column] = frame[column].astype(int)
    if short_names:
        frame = frame.rename(columns=SHAPEFILE_NAMES)
    return frame


def export_state(session: Session, iso3: str, fmt: str, as_of: date | None, layer: str | None = None,
                 status: str | None = None) -> tuple[Path, str, str]:
    """Write the State's layers into a new temporary directory; return (file, media type, download name).

    The caller removes `file.parent` when the file has been sent.
    """
    require_state(session, iso3)
    if fmt not in EXPORT_FORMATS:
        raise Problem(400, f"format '{fmt}' is not offered: use one of {', '.join(EXPORT_FORMATS)}",
                      invalid_params=[{"name": "format", "reason": "unknown format"}])
    if layer is not None and layer not in EXPORT_LAYERS:
        raise Problem(400, f"layer '{layer}' is not one of {', '.join(EXPORT_LAYERS)}",
                      invalid_params=[{"name": "layer", "reason": "unknown layer"}])
    if status is not None and status not in HAZARD_STATUSES:
        raise Problem(400, f"status '{status}' is not one of {', '.join(HAZARD_STATUSES)}",
                      invalid_params=[{"name": "status", "reason": "unknown status"}])
    several = list(EXPORT_LAYERS) if fmt in ("gpkg", "shp") else ["hazardous_areas"]
    layers = several if layer is None else [layer]
    frames = {name: (_hazards_frame(session, iso3, as_of, status) if name == "hazardous_areas"
                     else _events_frame(session, iso3, as_of)) for name in layers}
    media_type, extension = EXPORT_FORMATS[fmt]
    stem = f"{iso3}_{layers[0] if len(layers) == 1 else 'landrelease'}_{(as_of or date.today()).isoformat()}"
    folder = Path(tempfile.mkdtemp(prefix="landrelease-export-"))
    try:
        target = folder / f"{stem}.{extension}"
        if fmt == "gpkg":
            for name, frame in frames.items():
                pyogrio.write_dataframe(frame, target, layer=name, driver="GPKG", geometry_type="MultiPolygon",
                                        append=target.exists())
        elif fmt == "geojson":
            (name, frame), = frames.items()
            pyogrio.write_dataframe(frame, target, driver="GeoJSON", layer=name, geometry_type="MultiPolygon",
                                    layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "8"})
        elif fmt == "csv":
            (name, frame), = frames.items()
            pyogrio.write_dataframe(spreadsheet.safe_frame(_for_flat_files(frame, short_names=False)), target,
                                    driver="CSV", layer=name,
                                    layer_options={"GEOMETRY": "AS_WKT", **spreadsheet.GDAL_CSV_OPTIONS})
        else:
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for name, frame in frames.items():
                    shp = folder / f"{iso3}_{name}.shp"
                    pyogrio.write_dataframe(_for_flat_files(frame, short_names=True), shp, driver="ESRI Shapefile",
                                            layer=f"{iso3}_{name}", geometry_type="MultiPolygon", encoding="UTF-8")
                    for part in sorted(folder.glob(f"{iso3}_{name}.*")):
                        archive.write(part, part.name)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target, media_type, target.name
