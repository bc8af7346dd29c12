# One image for every `ohttp` subcommand: `docker run IMAGE gateway ...`, `... relay ...`,
# `... keygen ...`. Dependencies come from the hash-locked files only (--require-hashes); the
# final stage holds the Python runtime and one virtual environment, no compiler, no build tools.
# See docs/deploy.md (this image was linted with hadolint, not built, where it was written).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock \
    && python -m venv /opt/ohttp \
    && /opt/ohttp/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY ohttp ohttp
COPY gateway gateway
COPY relay relay
# The commit's time (`git log -1 --format=%ct`), so the wheel is the one `make release` builds.
ARG SOURCE_DATE_EPOCH=315532800
RUN SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH}" /opt/build/bin/python -m build \
        --no-isolation --wheel --outdir /dist . \
    && /opt/ohttp/bin/pip install --no-deps --no-index /dist/*.whl \
    && /opt/ohttp/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/ohttp/bin/ohttp release measure > /opt/ohttp/MEASUREMENT

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ohttp" \
      org.opencontainers.image.description="Oblivious HTTP (RFC 9458) gateway, relay and client" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/ohttp /opt/ohttp
# Listen on all of the container's addresses; nothing is written at run time (read-only root).
ENV PATH=/opt/ohttp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OHTTP_GATEWAY_LISTEN=0.0.0.0:8080 \
    OHTTP_RELAY_LISTEN=0.0.0.0:8080 \
    OHTTP_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
# A fixed numeric user, not root ("nonroot" of distroless images); no home, no shell needed.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9100
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['OHTTP_HEALTHCHECK_URL'], timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["ohttp"]
CMD ["--help"]
