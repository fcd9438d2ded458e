#!/usr/bin/env bash
# The images the `node` tests run, made without any image registry:
#
#   base   Debian bookworm (python3, venv, pip) from Debian's packages with mmdebstrap, imported
#          into buildah as localhost/llmcache-base:bookworm: it stands in for python:3.11-slim.
#   pause  the pod sandbox image: busybox-static's `sleep` as /pause.
#   app    python + the official anthropic SDK: the application of the tests.
#   llmcache sidecar and operator: the repository's Dockerfile, unchanged, through
#          scripts/image.sh (`make image`) with PYTHON_IMAGE=<base>.
#
# Each ends as an OCI archive in $OUT (default ~/.cache/llmcache/node/images), which the test
# fixture imports into its own containerd. Base, pause and app are cached; the llmcache images
# are rebuilt when the sources they copy changed (a hash of them is in the archive's name).
#
#   bash tests/node/images.sh            # make what is missing, print the archive directory
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${LLMCACHE_NODE_IMAGES:-$HOME/.cache/llmcache/node/images}"
BASE=localhost/llmcache-base:bookworm
START=$SECONDS
log() { printf 'images.sh: [%4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
mkdir -p "$OUT"

for tool in buildah mmdebstrap; do
    command -v "$tool" >/dev/null || {
        echo "images.sh: $tool not found: apt-get install buildah mmdebstrap busybox-static (make system-deps)" >&2
        exit 2
    }
done

# The host's CA bundle goes into the base (test-only, never pushed) so pip behind a
# TLS-intercepting egress proxy trusts what the host trusts.
CA=/etc/ssl/certs/ca-certificates.crt

# buildah: chroot isolation and the host network, which work in containers and VMs without
# cgroup delegation or a CNI configuration for buildah's own networks.
export BUILDAH_ISOLATION=chroot
BUD=(buildah bud --layers --network host)

archive() {  # archive <image ref> <file>: the image as an OCI archive, atomically.
    rm -f "$2.tmp"
    buildah push --quiet "$1" "oci-archive:$2.tmp:$1" >/dev/null
    mv "$2.tmp" "$2"
}

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# ---- base
if ! have_image "$BASE"; then
    tarball="$OUT/base-bookworm.tar"
    if [[ ! -f "$tarball" ]]; then
        log "base: mmdebstrap bookworm (minbase + python3, venv, pip)"
        mmdebstrap --quiet --variant=minbase \
            --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
            --customize-hook="cp $CA \"\$1$CA\"" \
            --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
            bookworm "$OUT/base-bookworm.tmp.tar"   # (the .tar suffix picks the format)
        mv "$OUT/base-bookworm.tmp.tar" "$tarball"
    fi
    log "base: import $tarball as $BASE"
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$tarball" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd python3 "$ctr"
    buildah commit --quiet --rm "$ctr" "$BASE" >/dev/null
fi

# ---- pause
if [[ ! -s "$OUT/pause.tar" ]]; then
    log "pause: busybox-static sleep"
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    install -D -m 0755 /bin/busybox "$mnt/bin/busybox"
    buildah umount "$ctr" >/dev/null
    buildah config --entrypoint '["/bin/busybox","sleep","2147483647"]' --user 65535:65535 "$ctr"
    buildah commit --quiet --rm "$ctr" localhost/llmcache-test/pause:1 >/dev/null
    archive localhost/llmcache-test/pause:1 "$OUT/pause.tar"
fi

# ---- app: python + the anthropic SDK
if [[ ! -s "$OUT/app.tar" ]]; then
    log "app: $BASE + anthropic"
    "${BUD[@]}" --quiet --build-arg "BASE=$BASE" -t localhost/llmcache-test/app:1 \
        -f "$HERE/app.Containerfile" "$HERE" >/dev/null
    archive localhost/llmcache-test/app:1 "$OUT/app.tar"
fi

# ---- llmcache sidecar + operator: the Dockerfile via `make image`
sources=$(cd "$REPO" && find Dockerfile pyproject.toml setup.py README.md llmcache sidecar operator bench \
    -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path 'bench/results/*' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
if [[ ! -e "$OUT/llmcache-$sources.stamp" || ! -s "$OUT/operator.tar" ]]; then
    log "llmcache: make image (sources $sources)"
    IMAGE=localhost/llmcache TAG=test PYTHON_IMAGE="$BASE" BUILDER=buildah \
        BUILD_FLAGS="--network host" bash "$REPO/scripts/image.sh" >&2
    rm -f "$OUT"/llmcache-*.stamp
    buildah push --quiet localhost/llmcache:test "oci-archive:$OUT/sidecar.tar.tmp:localhost/llmcache:test" >/dev/null
    buildah push --quiet localhost/llmcache:test-operator "oci-archive:$OUT/operator.tar.tmp:localhost/llmcache:test-operator" >/dev/null
    mv "$OUT/sidecar.tar.tmp" "$OUT/sidecar.tar"
    mv "$OUT/operator.tar.tmp" "$OUT/operator.tar"
    : >"$OUT/llmcache-$sources.stamp"
fi
log "done: $(du -sh "$OUT" | cut -f1) in $OUT"
echo "$OUT"
