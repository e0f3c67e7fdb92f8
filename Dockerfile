# The registry image: `agentroster` with the `server` extra, nothing for development.
#   docker build -t agentroster .
#   docker run --rm -p 8000:8000 -e AGENTROSTER_BROKER_URL=... -e AGENTROSTER_REDIS_URL=... agentroster
# Default command: `agentroster up --host 0.0.0.0` (a worker and the HTTP API on port 8000);
# `agentroster worker` and `agentroster api` run the two halves separately.

# --- build: install the package and its server dependencies into a virtualenv ---
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
WORKDIR /src
# only what the wheel is built from (pyproject.toml names README.md as the readme)
COPY pyproject.toml README.md ./
COPY src ./src
# otel: tracing can be turned on with OTEL_* variables alone (README, Tracing)
RUN /opt/venv/bin/pip install ".[server,otel]"

# --- runtime: the virtualenv alone, run by an unprivileged user ---
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 agentroster \
    && useradd --system --uid 10001 --gid agentroster --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin agentroster
COPY --from=build /opt/venv /opt/venv

USER agentroster:agentroster

EXPOSE 8000

# liveness of the HTTP API (`up` and `api`); slim has no curl, so Python asks.
# A service running `agentroster worker` serves no HTTP: disable this check there.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AGENTROSTER_API_PORT', '8000') + '/healthz', timeout=3)"]

ENTRYPOINT ["agentroster"]
CMD ["up", "--host", "0.0.0.0"]
