"""Field data as files: hazards in (`imports`: reading in a worker process with `reader`, the column
matching of `columns`, the row checks of `checks`, the COPY of `bulk_load`) and the ledger out (`export`)."""
