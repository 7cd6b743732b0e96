"""The Committee's figures: what the Article 5 Committee reads of each State, and in which forms.

The package reads the ledger (app.ledger, app.models) and never writes it, except the Article 5
decisions and work plans that are the Committee's own facts.

- `article5`: each State's deadline as a history of decisions (original deadline, extensions,
  completion, reopening, withdrawal) and their work-plan milestones; where a State stands at a date.
- `summaries`: SQL aggregates over the ledger at a date: remaining contamination (SHA, CHA, by
  contamination type and region), land release by method and year, the deadline outlook; the
  Committee's overview (one row per State) and the Article 7 mined-areas report.
- `charts`: the burn-down chart of one State (series, deadlines, milestones, projection), built on
  the typed summary so that chart and summary never disagree; drawn as SVG or PNG.
- `results`: the typed results these functions return (pydantic models); the routes declare them as
  `response_model`, so the OpenAPI document describes every answer.
- `formats`: the one registry of output formats (JSON, CSV; later XLSX, PDF): media type, renderer
  of a typed result and file name per format; the routes and their OpenAPI `responses` come from it.
- `spreadsheet`: spreadsheet-safe CSV (no cell a spreadsheet would run as a formula), also used by
  the field-file export.
- `units`: `M2_PER_KM2` and the one rounding rule for km2.

Which event kinds release land is declared once, in `app.models.RELEASE_KINDS`; the SQL here is
built from it.
"""
