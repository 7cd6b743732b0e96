"""Migration 0008 loads the boundaries as geodata/boundaries has them: every country and province of the
files, with its name, other names (the file's, then province_names.csv's) and polygon unchanged, its label
inside its largest part, and parts (at most 128 vertices each) that together cover the polygon."""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from sqlalchemy import create_engine, text

BOUNDARIES = Path(__file__).resolve().parents[1] / "geodata" / "boundaries"

# The features of a document that differ from the table's rows (or that one of the two lacks), by key.
_DIFFERENT = """
    WITH source AS (
        SELECT f -> 'properties' ->> '{key}' AS key,
               ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(f -> 'geometry'), 4326)) AS g
        FROM json_array_elements(CAST(:document AS json) -> 'features') f)
    SELECT coalesce(s.key, t.{key}) FROM source s FULL JOIN {table} t ON t.{key} = s.key
    WHERE s.key IS NULL OR t.{key} IS NULL OR NOT ST_OrderingEquals(s.g, t.geom)
"""
# Rows whose label is not in their largest part, or whose parts are not the polygon cut in small pieces.
_BADLY_CUT = """
    SELECT t.{key} FROM {table} t
    LEFT JOIN (SELECT {key}, sum(ST_Area(geom)) AS area, max(ST_NPoints(geom)) AS vertices
               FROM {parts} GROUP BY {key}) p ON p.{key} = t.{key}
    WHERE p.{key} IS NULL OR p.vertices > 128 OR abs(p.area - ST_Area(t.geom)) > 1e-6 * ST_Area(t.geom)
       OR NOT ST_Intersects(t.label, (SELECT d.geom FROM ST_Dump(t.geom) d ORDER BY ST_Area(d.geom) DESC LIMIT 1))
"""


def _features(name: str) -> tuple[str, list[dict]]:
    with gzip.open(BOUNDARIES / name, "rt", encoding="utf-8") as f:
        document = f.read()
    return document, json.loads(document)["features"]


def test_the_boundaries_are_the_source_files_features(database_url: str) -> None:
    aliases: dict[str, list[str]] = {}
    with (BOUNDARIES / "province_names.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            aliases.setdefault(row["code"], []).append(row["name"])
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            for table, key, parts, name in (("countries", "iso3", "country_parts", "countries.geojson.gz"),
                                            ("provinces", "code", "province_parts", "provinces.geojson.gz")):
                document, features = _features(name)
                assert conn.execute(text(_DIFFERENT.format(table=table, key=key)),
                                    {"document": document}).scalars().all() == [], table
                assert conn.execute(text(_BADLY_CUT.format(table=table, key=key, parts=parts))).scalars().all() == []
                if table == "countries":
                    stored = dict(conn.execute(text("SELECT iso3, name FROM countries")).all())
                    assert stored == {f["properties"]["iso3"]: f["properties"]["name"] for f in features}
                else:
                    stored_provinces = {row.code: (row.iso3, row.name, row.other_names) for row in conn.execute(
                        text("SELECT code, iso3, name, other_names FROM provinces"))}
                    assert stored_provinces == {
                        p["code"]: (p["iso3"], p["name"], p["other_names"] + aliases.get(p["code"], []))
                        for p in (f["properties"] for f in features)}
    finally:
        engine.dispose()
