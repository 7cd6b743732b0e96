"""Service settings, read from the environment (and a `.env` file when present)."""
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Use this database. When unset the service runs its own private PostGIS cluster.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(default=Path("./.data"), validation_alias="LANDRELEASE_DATA_DIR")
    host: str = Field(default="127.0.0.1", validation_alias="LANDRELEASE_HOST")
    port: int = Field(default=8000, validation_alias="LANDRELEASE_PORT")
    log_level: str = Field(default="info", validation_alias="LANDRELEASE_LOG_LEVEL")
    # Every SQL statement is cut off after this many milliseconds.
    statement_timeout_ms: int = Field(default=60_000, validation_alias="LANDRELEASE_STATEMENT_TIMEOUT_MS")
    # Limits on what one request may carry.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, validation_alias="LANDRELEASE_MAX_BODY_BYTES")
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, validation_alias="LANDRELEASE_MAX_UPLOAD_BYTES")
    max_features_per_request: int = Field(default=10_000, validation_alias="LANDRELEASE_MAX_FEATURES")
    max_vertices_per_geometry: int = Field(default=100_000, validation_alias="LANDRELEASE_MAX_VERTICES")
    # File imports: rows and vertices per file, and what the worker that reads a file may use.
    max_import_features: int = Field(default=200_000, validation_alias="LANDRELEASE_MAX_IMPORT_FEATURES")
    max_import_vertices: int = Field(default=5_000_000, validation_alias="LANDRELEASE_MAX_IMPORT_VERTICES")
    import_memory_mb: int = Field(default=1024, validation_alias="LANDRELEASE_IMPORT_MEMORY_MB")
    import_cpu_seconds: int = Field(default=120, validation_alias="LANDRELEASE_IMPORT_CPU_SECONDS")
    import_seconds: int = Field(default=180, validation_alias="LANDRELEASE_IMPORT_SECONDS")
    import_readers: int = Field(default=2, validation_alias="LANDRELEASE_IMPORT_READERS")  # workers at once
    # The history import's replay runs its hazards on this many database connections at once (1: on the
    # import's own connection only); the others only compute, the import's transaction writes every result.
    history_workers: int = Field(default=2, ge=1, le=8, validation_alias="LANDRELEASE_HISTORY_WORKERS")
    max_page_size: int = Field(default=10_000, validation_alias="LANDRELEASE_MAX_PAGE_SIZE")
    # Open the reads of the OGC layers and the summaries to anyone (writes always need a key).
    public_read: bool = Field(default=False, validation_alias="LANDRELEASE_PUBLIC_READ")
    # A hot standby for the heavy reads (layers, tiles, summaries, exports; app/read_routing.py), and how far
    # behind the primary it may be, in seconds, before those reads go back to the primary.
    read_database_url: str | None = Field(default=None, validation_alias="LANDRELEASE_READ_DATABASE_URL")
    read_max_lag_s: float = Field(default=5.0, ge=0, validation_alias="LANDRELEASE_READ_MAX_LAG_S")
    # Origins whose pages may read this service from a browser (CORS): comma-separated, or `*`; default none
    # (app/http_cache.py).
    cors_origins: str = Field(default="", validation_alias="LANDRELEASE_CORS_ORIGINS")


@lru_cache
def get_settings() -> Settings:
    return Settings()
