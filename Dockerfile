# landrelease service image. The database is external here: DATABASE_URL is required
# (the embedded PostGIS cluster is for bare-metal runs only). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/landrelease

# Dependencies first (better layer caching), then the code, migrations and reference data.
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY geodata ./geodata
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /srv/landrelease landrelease

USER landrelease
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"

# `landrelease serve` migrates the database to head, then serves with uvicorn.
CMD ["sh", "-c", "if [ -z \"$DATABASE_URL\" ]; then echo 'landrelease: set DATABASE_URL to a PostGIS database (postgresql://user:pass@host:5432/db)' >&2; exit 1; fi; exec landrelease serve --host 0.0.0.0 --port 8000"]
