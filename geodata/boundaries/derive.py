"""Derive the service's country and province boundaries from Natural Earth (see README.md beside this file).

    python geodata/boundaries/derive.py [/usr/share/qgis/resources/data/world_map.gpkg]

Reads Natural Earth v4.1.0 1:10m admin 0 (`countries`) and admin 1 (`states_provinces`) as Debian's
`qgis-common` ships them in `world_map.gpkg`, and writes `countries.geojson.gz` and
`provinces.geojson.gz` here:

- every layer is simplified as a coverage (shared borders stay shared, no gaps or slivers between
  neighbours) with `shapely.coverage_simplify` at TOLERANCE_DEG, coordinates rounded to PRECISION
  decimals (about 11 m);
- a country is keyed by its ISO 3166-1 alpha-3 code (Kosovo, which has none, by XKX, the code the
  EU and the IMF use; the one unnamed feature without any code is left out);
- a province is keyed by `<ISO3>-<its name in ASCII capitals>` (e.g. KHM-BATDAMBANG), belongs to the
  country that holds its representative point (Natural Earth's own adm0_a3 uses non-ISO codes for some,
  e.g. SDS for South Sudan), and keeps Natural Earth's other names (woe_name, gn_name without its
  "Khett"/"Muhafazat" prefix) for the matching of a hazard's region.
"""
from __future__ import annotations

import gzip
import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pyogrio
import shapely

SOURCE = Path("/usr/share/qgis/resources/data/world_map.gpkg")
HERE = Path(__file__).resolve().parent
TOLERANCE_DEG = 0.001  # coverage simplification (Visvalingam-Whyatt, shared edges kept)
PRECISION = 4  # decimals of a degree kept, about 11 m
CODE_FIXES = {"XK": "XKX", "TK": "TKL"}  # countries without an ISO_A3 in the source, by their iso_a2
LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O", "đ": "d",
                           "Đ": "D", "ł": "l", "Ł": "L", "ı": "i"})
NAME_PREFIXES = re.compile(r"^(khett|muhafazat|kanton|krong|provincia de|province de|departamento de) ", re.I)


def ascii_key(name: str) -> str:
    """`Batdâmbâng` -> `BATDAMBANG`: the name in ASCII capitals, other characters as `-`."""
    plain = unicodedata.normalize("NFKD", name.translate(LIGATURES)).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", "-", plain.upper()).strip("-")


def simplified(geometries: np.ndarray) -> np.ndarray:
    """The geometries simplified as one coverage, valid, as MultiPolygons rounded to PRECISION decimals."""
    out = shapely.coverage_simplify(shapely.make_valid(geometries), TOLERANCE_DEG)
    out = shapely.set_precision(out, 10 ** -PRECISION)
    out = shapely.make_valid(out)
    return np.array([_multipolygon(g) for g in out], dtype=object)


def _multipolygon(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, shapely.Polygon) and not p.is_empty]
    parts = [q for p in parts for q in (p.geoms if isinstance(p, shapely.MultiPolygon) else [p])]
    if not parts and geometry.geom_type == "GeometryCollection":
        parts = [p for p in geometry.geoms if isinstance(p, shapely.Polygon)]
    return shapely.MultiPolygon(parts)


def write(path: Path, features: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write('{"type": "FeatureCollection", "features": [\n')
        f.write(",\n".join(json.dumps(feature, ensure_ascii=False, separators=(",", ":")) for feature in features))
        f.write("\n]}\n")


def _geojson(geometry: shapely.Geometry) -> dict:
    return json.loads(shapely.to_geojson(geometry, indent=None))


def main(source: Path) -> None:
    countries = pyogrio.read_dataframe(source, layer="countries")
    provinces = pyogrio.read_dataframe(source, layer="states_provinces")

    iso3 = [code if isinstance(code, str) and re.fullmatch("[A-Z]{3}", code) else CODE_FIXES.get(a2)
            for code, a2 in zip(countries["ISO_A3"], countries["iso_a2"], strict=True)]
    countries["iso3"] = iso3
    countries = countries[countries["iso3"].notna()].reset_index(drop=True)

    # each province belongs to the country holding its representative point
    tree = shapely.STRtree(countries.geometry.values)
    points = shapely.point_on_surface(shapely.make_valid(provinces.geometry.values))
    hit_province, hit_country = tree.query(points, predicate="intersects")
    owner = dict(zip(hit_province.tolist(), hit_country.tolist(), strict=True))
    by_a3 = {}
    for index, code in enumerate(countries["iso3"]):
        by_a3.setdefault(code, index)
    provinces["iso3"] = [countries["iso3"][owner[i]] if i in owner else
                         countries["iso3"][by_a3[a3]] if a3 in by_a3 else None
                         for i, a3 in enumerate(provinces["adm0_a3"])]
    provinces = provinces[provinces["iso3"].notna()].reset_index(drop=True)

    # the country's full name as its provinces give it ("Bosnia and Herzegovina", not "Bosnia and Herz.")
    full_names = provinces.groupby("iso3")["admin"].agg(lambda s: s.mode().iloc[0]).to_dict()

    features = []
    geometries = simplified(countries.geometry.values)
    merged: dict[str, list] = {}
    for code, name, geometry in zip(countries["iso3"], countries["NAME"], geometries, strict=True):
        merged.setdefault(code, [full_names.get(code) or name, []])[1].extend(geometry.geoms)
    for code, (name, parts) in sorted(merged.items()):
        features.append({"type": "Feature", "properties": {"iso3": code, "name": name},
                         "geometry": _geojson(shapely.MultiPolygon(parts))})
    write(HERE / "countries.geojson.gz", features)

    features = []
    seen: set[str] = set()
    for iso, group in provinces.groupby("iso3", sort=True):
        geometries = simplified(group.geometry.values)
        for (_, row), geometry in zip(group.iterrows(), geometries, strict=True):
            if geometry.is_empty:
                continue
            name = next((v for v in (row["name"], row["woe_name"], row["gn_name"]) if isinstance(v, str) and v),
                        None)
            if name is None:
                continue
            code = base = f"{iso}-{ascii_key(name)}"
            n = 2
            while code in seen:
                code, n = f"{base}-{n}", n + 1
            seen.add(code)
            other = [NAME_PREFIXES.sub("", v) for v in (row["woe_name"], row["gn_name"], row["woe_label"])
                     if isinstance(v, str) and v]
            other = list(dict.fromkeys(o.split(",")[0].strip() for o in other if o.split(",")[0].strip() != name))
            features.append({"type": "Feature", "properties": {"code": code, "name": name, "iso3": iso,
                                                               "other_names": other},
                             "geometry": _geojson(geometry)})
    write(HERE / "provinces.geojson.gz", features)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
