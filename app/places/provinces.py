"""A hazard's region as a reference to one of its State's provinces.

Rules:
- A given region (a province's name, one of its other names or common spellings, or its code) is
  compared by its key: ASCII letters and digits only, in lower case, without accents, articles
  (al-, as-, an-, ...) and words such as "province", "district", "canton" or "governorate": so
  "BATTAMBANG", "Brcko District" and "al-Anbar" find Batdâmbâng, Brčko Distrikt and Al-Anbar.
- A key no name has is matched to the closest name when it is a plain misspelling (difflib ratio at
  least MATCH_RATIO, and clearly closer than any other province); otherwise it is refused (422) with
  the closest candidates.
- The region is kept as given; the province it names is the hazard's `province_code`. A hazard given
  no region gets the province holding most of its polygon (the trigger `hazard_province`, migration
  0008). A State without provinces in the boundaries keeps its regions as given, unmatched.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.problems import Problem

MATCH_RATIO = 0.85
MARGIN = 0.05  # how much closer than the next province a misspelling must be
CANDIDATES = 5
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O", "đ": "d",
                            "Đ": "D", "ł": "l", "Ł": "L", "ı": "i", "'": "", "’": "", "ʿ": "", "ʾ": ""})
_FILLER = frozenset({"al", "as", "an", "at", "ad", "ar", "ash", "az", "el", "the", "of", "province", "provincia",
                     "khett", "krong", "kanton", "canton", "district", "distrikt", "governorate", "muhafazat",
                     "region", "oblast", "state", "county", "zupanija"})


def name_key(name: str) -> str:
    """The key two spellings of one province share: `Al-Qādisiyyah` -> `qadisiyyah`."""
    plain = unicodedata.normalize("NFKD", name.translate(_LIGATURES)).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", plain)
    return "".join(w for w in words if w not in _FILLER) or "".join(words)


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    keys: frozenset[str]


def state_provinces(session: Session, iso3: str) -> list[Province]:
    rows = session.execute(text("SELECT code, name, other_names FROM provinces WHERE iso3 = :iso3 ORDER BY name"),
                           {"iso3": iso3}).all()
    return [Province(r.code, r.name, frozenset(name_key(n) for n in (r.name, r.code, *r.other_names)))
            for r in rows]


def _ratio(key: str, province: Province) -> float:
    return max(difflib.SequenceMatcher(None, key, k).ratio() for k in province.keys)


def match_region(region: str, provinces: list[Province]) -> Province | list[Province]:
    """The province `region` names, or the closest candidates when it names none."""
    key = name_key(region)
    exact = [p for p in provinces if key in p.keys]
    if len(exact) == 1:
        return exact[0]
    pool = exact or provinces
    ranked = sorted(pool, key=lambda p: -_ratio(key, p))
    if not exact and ranked:
        best = _ratio(key, ranked[0])
        second = _ratio(key, ranked[1]) if len(ranked) > 1 else 0.0
        if best >= MATCH_RATIO and best - second >= MARGIN:
            return ranked[0]
    return ranked[:CANDIDATES]


def match_regions(session: Session, iso3: str, regions: Iterable[str | None], strict: bool = True) -> dict[str, str]:
    """{given region: the province's code} for each distinct region given; a 422 listing the regions that
    name no province of `iso3`, each with its candidates (not `strict`: those are left out, kept as given).
    Empty when the State has no provinces."""
    given = sorted({r for r in regions if r is not None and r.strip()})
    if not given:
        return {}
    provinces = state_provinces(session, iso3)
    if not provinces:
        return {}
    found: dict[str, str] = {}
    unknown: list[dict[str, object]] = []
    for region in given:
        match = match_region(region, provinces)
        if isinstance(match, Province):
            found[region] = match.code
        else:
            unknown.append({"region": region,
                            "candidates": [{"code": p.code, "name": p.name} for p in match]})
    if unknown and strict:
        session.rollback()
        listed = "; ".join(f"'{u['region']}' (closest: "
                           + ", ".join(f"{c['name']} ({c['code']})" for c in u["candidates"])  # type: ignore[attr-defined]
                           + ")" for u in unknown[:10])
        raise Problem(422, f"{len(unknown)} region(s) name no province of {iso3}: {listed}. Give a province's name "
                           f"or code (GET /collections/provinces/items?state={iso3}), or leave region out: the "
                           "province holding most of the polygon is then assigned.",
                      title="Unknown region", unknown_regions=unknown)
    return found



def assign_provinces(session: Session, ids: list[uuid.UUID], codes: dict[str, str]) -> None:
    """The just-inserted hazards `ids` whose region was matched (`match_regions`) get that province."""
    if ids and codes:
        session.execute(text("UPDATE hazardous_areas h SET province_code = m.code "
                             "FROM unnest(CAST(:regions AS text[]), CAST(:codes AS text[])) AS m(region, code) "
                             "WHERE h.id = ANY(:ids) AND h.region = m.region "
                             "AND h.province_code IS DISTINCT FROM m.code"),  # most the trigger has found already
                        {"ids": ids, "regions": list(codes), "codes": list(codes.values())})
