#!/usr/bin/env bash
# Pipeline stage "build image": the release binary (with `cargo auditable`, so its dependency list
# travels inside it for `cargo audit bin` and image scanners), then the ticketgw image FROM scratch:
# the binary, the shared libraries it links and nothing else. No base image is pulled.
#
#   scripts/ci/build-image.sh [TAG]      # default tag: the short git revision
#
# Prints the image's size. Needs Docker (dockerd running) and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${1:-$(git rev-parse --short HEAD)}
image=${IMAGE:-ticketgw}
context=deploy/image
rootfs=$context/rootfs

# Tools, built once per machine (~/.cargo/bin).
command -v cargo-auditable >/dev/null || cargo install --locked --quiet cargo-auditable
command -v auditable2cdx >/dev/null || cargo install --locked --quiet auditable2cdx
cargo auditable build --release --locked -p ticketgw
binary=${CARGO_TARGET_DIR:-target}/release/ticketgw

rm -rf "$rootfs"
mkdir -p "$rootfs/tmp" "$rootfs/etc"
install -m 0755 "$binary" "$rootfs/ticketgw"
# Symbols off (a third of the size); the dependency list is a section of its own and stays.
strip "$rootfs/ticketgw"
# The dynamic loader and every library the binary links, at the paths the loader looks for them.
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
# A name for uid 65532 (logs and tools that look it up); no shell, no password.
echo 'nonroot:x:65532:65532:nonroot:/data:/sbin/nologin' >"$rootfs/etc/passwd"
echo 'nonroot:x:65532:' >"$rootfs/etc/group"
# The SBOM alongside the embedded one, in CycloneDX (from the same embedded data).
auditable2cdx "$rootfs/ticketgw" >"$rootfs/sbom.cdx.json"
chmod 1777 "$rootfs/tmp"
# /data, owned by the service's user (the Dockerfile copies it with --chown).
rm -rf "$context/data" && mkdir -m 0700 "$context/data" && touch "$context/data/.keep"

docker build --quiet \
  --build-arg VERSION="$(cargo pkgid -p ticketgw | sed 's/.*[#@]//')" \
  --build-arg REVISION="$(git rev-parse HEAD)" \
  --build-arg CREATED="$(git log -1 --format=%cI)" \
  -t "$image:$tag" "$context" >/dev/null
size=$(docker image inspect "$image:$tag" --format '{{.Size}}')
echo "built $image:$tag: $((size / 1024 / 1024)) MiB ($size bytes)"
