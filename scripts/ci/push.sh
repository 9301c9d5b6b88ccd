#!/usr/bin/env bash
# Publish the image that scripts/ci/build-image.sh built.
#
#   scripts/ci/push.sh <tag>
#
# With $REGISTRY (e.g. ghcr.io/ticket-gateway): tags $IMAGE:<tag> (default image ticketgw) as
# $REGISTRY/$IMAGE:<tag> and pushes it; logs in first when REGISTRY_USER and REGISTRY_PASSWORD are
# set (the password goes on stdin). Prints the pushed digest (what a GitOps overlay can pin).
# Without $REGISTRY: `docker save` to $ARTIFACT_DIR (default target/ci)/<image>-<tag>.tar with a
# SHA-256 beside it, to archive or `docker load` elsewhere; the tarball is checked to hold the image.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ $# -eq 1 ] || { echo "usage: $0 <tag>" >&2; exit 2; }
tag=$1
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || { echo "push: '$tag' is not a valid image tag" >&2; exit 2; }
image=${IMAGE:-ticketgw}
local_ref="$image:$tag"
docker image inspect "$local_ref" >/dev/null 2>&1 || { echo "push: no local image $local_ref (run scripts/ci/build-image.sh $tag)" >&2; exit 1; }
id=$(docker image inspect --format '{{.Id}}' "$local_ref")

if [ -n "${REGISTRY:-}" ]; then
  remote_ref="${REGISTRY%/}/$image:$tag"
  if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
    printf '%s' "$REGISTRY_PASSWORD" | docker login --username "$REGISTRY_USER" --password-stdin "${REGISTRY%%/*}"
  fi
  docker tag "$local_ref" "$remote_ref"
  docker push "$remote_ref"
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$remote_ref" |
    grep -F "${REGISTRY%/}/$image@" | head -1 || true)
  echo "push: pushed $remote_ref (${digest:-digest unknown})"
  exit 0
fi

out_dir=${ARTIFACT_DIR:-target/ci}
mkdir -p "$out_dir"
tarball="$out_dir/$image-$tag.tar"
started=$(date +%s)
docker save --output "$tarball.partial" "$local_ref"
mv "$tarball.partial" "$tarball"
(cd "$out_dir" && sha256sum "$(basename "$tarball")" >"$(basename "$tarball").sha256")
# The tarball names the image and its config is the image's: `docker load` would give back the same image.
python3 - "$tarball" "$local_ref" "${id#sha256:}" <<'PY'
import json, sys, tarfile
path, ref, image_id = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(path) as t:
    manifest = json.load(t.extractfile("manifest.json"))
entry = next((m for m in manifest if ref in (m.get("RepoTags") or []) or f"docker.io/library/{ref}" in (m.get("RepoTags") or [])), None)
assert entry, f"{ref} is not in {path}: {manifest}"
config = entry["Config"]
assert image_id in config, f"config {config} is not image {image_id}"
PY
echo "push: no REGISTRY set; saved $local_ref ($id) to $tarball ($(du -h "$tarball" | cut -f1), $(($(date +%s) - started)) s)"
