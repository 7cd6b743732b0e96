"""Places: where a hazard lies. Country (admin 0) and province (admin 1) boundaries (Natural Earth 1:10m,
public domain, loaded by migration 0008 from geodata/boundaries), the checks every write goes through,
the matching of a hazard's region to a province, and the data-quality report.

- `boundaries`: a hazard or event whose polygon lies outside its State beyond `TOLERANCE_M` is a 422
  that names where it falls ("lies in THA") and says when swapping longitude and latitude, or the
  next UTM zone, would put it inside; `border=accept` records such a hazard flagged (`border_flag`).
- `provinces`: a given region (a name or code) is matched to the State's provinces (case, accents,
  articles and words such as "Province" aside, common spellings, close misspellings) or refused
  with the candidates; a hazard without one gets the province holding most of its polygon.
- `quality`: the data-quality report of what a State has stored (`GET /api/v1/states/{iso3}/quality`).
- `layers`: the properties of the `countries` and `provinces` OGC collections, as `app.layers` declares
  those of the ledger's layers.
"""
