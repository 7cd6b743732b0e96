"""The OGC API: the ledger's layers as OGC API - Features collections (Part 1 Core, Part 2 CRS, Part 3
Filtering with CQL2) and Mapbox vector tiles.

- `collections`: each collection an object (source SQL, declared properties, geometry, extent) and the
  metadata documents;
- `crs`: CRS as the API names them, the CRS each collection lists (and so accepts), and the SQL of an
  output CRS;
- `filters`: the queryables, and CQL2 filters compiled to bound SQL;
- `params`: the request parameters, read and checked;
- `items`: the SQL of the items and single items, and their pages;
- `pages`: the generic COPY-to-spool page maker (takes SQL, knows nothing of collections);
- `tiles`: the vector tiles;
- `tilesets`: OGC API - Tiles metadata (tile matrix sets, tileset lists and documents, TileJSON);
- `html`: the HTML encoding (Jinja2 templates in `templates/`);
- `openapi30`: the OpenAPI document as 3.0.
"""
