# syntax=docker/dockerfile:1
# mcp-operator image: a wheel built in a throw-away stage, installed into a slim runtime that runs as a
# non-root user and works with a read-only root filesystem (only /tmp needs to be writable).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin mcp-operator
USER 65532:65532
EXPOSE 8080 9090
# Liveness on :8080/healthz (kopf's probe), Prometheus metrics on :9090/metrics.
ENTRYPOINT ["mcp-operator", "--liveness", "http://0.0.0.0:8080/healthz"]
