#!/usr/bin/env bash
# Build llmcache's images from the Dockerfile, with buildah when it is installed, else docker.
#
#   make image                                         # ghcr.io/llmcache/llmcache:<appVersion>{,-operator}
#   make image IMAGE=registry.example.com/llmcache     # your registry; then push both tags
#   make image TARGETS="sidecar operator embed"        # also the -embed flavour
#   make image PYTHON_IMAGE=localhost/llmcache-base:bookworm   # a base built without a registry
#
# Tags follow the chart: <IMAGE>:<TAG> is the sidecar, <IMAGE>:<TAG>-operator the operator and
# <IMAGE>:<TAG>-embed the embedder, so `--set image.repository=<IMAGE>` is all the chart needs.
# TAG defaults to the chart's appVersion. BUILD_FLAGS adds flags to `buildah bud`/`docker build`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

IMAGE="${IMAGE:-ghcr.io/llmcache/llmcache}"
TAG="${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' charts/llmcache/Chart.yaml)}"
TARGETS="${TARGETS:-sidecar operator}"
BUILDER="${BUILDER:-$(command -v buildah >/dev/null && echo buildah || echo docker)}"
read -r -a extra <<<"${BUILD_FLAGS:-}"
[[ -n "${PYTHON_IMAGE:-}" ]] && extra+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")

case "$BUILDER" in
    buildah) build=(buildah bud --layers) ;;
    docker) build=(docker build) ;;
    *) echo "image.sh: BUILDER must be buildah or docker, not '$BUILDER'" >&2; exit 2 ;;
esac
command -v "$BUILDER" >/dev/null || {
    echo "image.sh: neither buildah nor docker found; install one (apt-get install buildah)" >&2
    exit 2
}

for target in $TARGETS; do
    case "$target" in
        sidecar) ref="$IMAGE:$TAG" ;;
        operator | embed) ref="$IMAGE:$TAG-$target" ;;
        *) echo "image.sh: unknown target '$target' (sidecar, operator, embed)" >&2; exit 2 ;;
    esac
    t0=$SECONDS
    "${build[@]}" "${extra[@]}" --target "$target" -t "$ref" -f Dockerfile .
    echo "image.sh: $ref built with $BUILDER in $((SECONDS - t0))s"
done
