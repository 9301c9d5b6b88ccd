#!/usr/bin/env bash
# Tests scripts/ci/bump-image-tag.sh on throwaway GitOps repositories (never this one's deploy/):
# the one line changes, comments and other images stay, `kubectl kustomize` renders the new tag,
# a missing newTag is added, bad input is refused, --push reaches a bare remote and rebases when
# someone else pushed first. When this repository has deploy/overlays, each real overlay is bumped
# on a copy and rendered too.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
bump=$repo/scripts/ci/bump-image-tag.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME="ticketgw CI" GIT_AUTHOR_EMAIL=ci@ticketgw.invalid
export GIT_COMMITTER_NAME="ticketgw CI" GIT_COMMITTER_EMAIL=ci@ticketgw.invalid

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
have_kubectl=0
command -v kubectl >/dev/null && have_kubectl=1

# A small GitOps repository: a base Deployment and two overlays shaped like deploy/'s.
git init --quiet --bare --initial-branch=main "$work/remote.git"
git clone --quiet "$work/remote.git" "$work/gitops" 2>/dev/null
g=$work/gitops
mkdir -p "$g/deploy/base" "$g/deploy/overlays/dev" "$g/deploy/overlays/staging"
cat >"$g/deploy/base/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
EOF
cat >"$g/deploy/base/deployment.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
spec:
  selector:
    matchLabels: {app: gateway}
  template:
    metadata:
      labels: {app: gateway}
    spec:
      containers:
        - name: ticketgw
          image: ghcr.io/ticket-gateway/ticketgw
        - name: sidecar
          image: docker.io/library/busybox
EOF
cat >"$g/deploy/overlays/dev/kustomization.yaml" <<'EOF'
# dev: automated sync.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: dev
resources:
  - ../../base
images:
  # The sidecar, pinned.
  - name: docker.io/library/busybox
    newTag: "1.36.1"
  - name: ghcr.io/ticket-gateway/ticketgw
    newTag: "0.1.0" # set by CI
labels:
  - pairs:
      env: dev
EOF
cat >"$g/deploy/overlays/staging/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: ghcr.io/ticket-gateway/ticketgw
    newName: ghcr.io/ticket-gateway/ticketgw
EOF
git -C "$g" add -A
git -C "$g" commit --quiet -m "initial"
git -C "$g" push --quiet origin HEAD:refs/heads/main 2>/dev/null
git -C "$g" branch --quiet --set-upstream-to=origin/main 2>/dev/null || true

render_has() { # overlay dir, expected image
  [ "$have_kubectl" -eq 1 ] || return 0
  kubectl kustomize "$1" >"$work/rendered.yaml" && grep -q "image: $2\$" "$work/rendered.yaml"
}

# 1. An existing newTag changes; exactly one line of the file differs.
cp "$g/deploy/overlays/dev/kustomization.yaml" "$work/dev.before"
GITOPS_DIR=$g "$bump" dev 1.2.3-abc >"$work/out" 2>&1 || fail "bump dev: $(cat "$work/out")"
diff "$work/dev.before" "$g/deploy/overlays/dev/kustomization.yaml" >"$work/diff" || true
if [ "$(grep -c '^[<>]' "$work/diff")" -eq 2 ] && grep -q '^> *newTag: "1.2.3-abc" # set by CI$' "$work/diff" &&
  grep -q '^< *newTag: "0.1.0" # set by CI$' "$work/diff"; then
  ok "dev: one line changed, its comment kept ($(tail -1 "$work/out"))"
else
  fail "dev: unexpected diff: $(cat "$work/diff")"
fi
if render_has "$g/deploy/overlays/dev" "ghcr.io/ticket-gateway/ticketgw:1.2.3-abc" &&
  render_has "$g/deploy/overlays/dev" "docker.io/library/busybox:1.36.1"; then
  ok "dev renders with ticketgw:1.2.3-abc and busybox untouched (kubectl kustomize: $have_kubectl)"
else
  fail "dev does not render the new tag"
fi

# 2. An entry without newTag gets one, right under its name.
GITOPS_DIR=$g "$bump" staging 9f8e7d6c5b4a >"$work/out" 2>&1 || fail "bump staging: $(cat "$work/out")"
if sed -n '6,7p' "$g/deploy/overlays/staging/kustomization.yaml" | grep -q '^    newTag: "9f8e7d6c5b4a"$' &&
  render_has "$g/deploy/overlays/staging" "ghcr.io/ticket-gateway/ticketgw:9f8e7d6c5b4a"; then
  ok "staging: newTag added and rendered"
else
  fail "staging: $(cat "$g/deploy/overlays/staging/kustomization.yaml")"
fi

# 3. The same tag again: nothing changes, nothing is committed.
git -C "$g" commit --quiet -am "by hand"
head_before=$(git -C "$g" rev-parse HEAD)
GITOPS_DIR=$g "$bump" --commit dev 1.2.3-abc >"$work/out" 2>&1 && grep -q "already has" "$work/out" &&
  [ "$(git -C "$g" rev-parse HEAD)" = "$head_before" ] && ok "the same tag: no change, no commit" ||
  fail "same tag: $(cat "$work/out")"

# 4. Bad input is refused and leaves the file alone.
expect_refused() { # what, args...
  local what=$1
  shift
  cp "$g/deploy/overlays/dev/kustomization.yaml" "$work/keep"
  if GITOPS_DIR=$g "$bump" "$@" >"$work/out" 2>&1; then
    fail "$what was accepted"
  elif cmp -s "$work/keep" "$g/deploy/overlays/dev/kustomization.yaml"; then
    ok "$what is refused: $(tail -1 "$work/out")"
  else
    fail "$what changed the file"
  fi
}
expect_refused "an unknown environment" prod 1.0.0
expect_refused "a tag with a slash" dev 'x/y'
expect_refused "a tag with a space" dev 'x y'
expect_refused "an option it does not know" --force dev 1.0.0
IMAGE_NAME=ghcr.io/other/image expect_refused "an image with no entry" dev 1.0.0

# 5. --push commits the one file and pushes; when someone pushed first, it rebases and pushes again.
git clone --quiet -b main "$work/remote.git" "$work/other" 2>/dev/null
echo "# unrelated change" >>"$work/other/deploy/base/kustomization.yaml"
git -C "$work/other" commit --quiet -am "someone else's change"
git -C "$work/other" push --quiet origin HEAD:refs/heads/main 2>/dev/null
echo "scratch" >"$g/untracked-file"
if GITOPS_DIR=$g GITOPS_BRANCH=main "$bump" --push dev 2.0.0 >"$work/out" 2>&1; then
  remote_file=$(git -C "$work/remote.git" show main:deploy/overlays/dev/kustomization.yaml)
  remote_base=$(git -C "$work/remote.git" show main:deploy/base/kustomization.yaml)
  subject=$(git -C "$work/remote.git" log -1 --format=%s main)
  files=$(git -C "$work/remote.git" show --name-only --format= main)
  if grep -q 'newTag: "2.0.0"' <<<"$remote_file" && grep -q "unrelated change" <<<"$remote_base" &&
    [ "$subject" = "deploy(dev): ticketgw 2.0.0 [skip ci]" ] && [ "$files" = "deploy/overlays/dev/kustomization.yaml" ]; then
    grep -q "push refused" "$work/out" && ok "--push: '$subject' on the remote, after rebasing on someone else's push, one file" || fail "--push: no rebase seen: $(cat "$work/out")"
  else
    fail "--push: remote has: $subject / $files"
  fi
else
  fail "--push failed: $(cat "$work/out")"
fi
git -C "$g" status --porcelain | grep -q '^?? untracked-file$' && ok "other files are not committed" ||
  fail "the untracked file was touched"

# 6. This repository's own overlays, on a copy.
if [ -d "$repo/deploy/overlays" ]; then
  cp -r "$repo/deploy" "$work/copy-deploy"
  mkdir -p "$work/copy" && mv "$work/copy-deploy" "$work/copy/deploy"
  for dir in "$work"/copy/deploy/overlays/*/; do
    env_name=$(basename "$dir")
    [ -f "$dir/kustomization.yaml" ] || continue
    grep -q "ghcr.io/ticket-gateway/ticketgw" "$dir/kustomization.yaml" || continue
    if GITOPS_DIR=$work/copy "$bump" "$env_name" selftest-0123abc >"$work/out" 2>&1 &&
      render_has "$dir" "ghcr.io/ticket-gateway/ticketgw:selftest-0123abc"; then
      ok "deploy/overlays/$env_name (copy) bumps and renders"
    else
      fail "deploy/overlays/$env_name: $(cat "$work/out")"
    fi
  done
else
  echo "note: no deploy/overlays in this repository yet; only the throwaway overlays were tested"
fi

echo "bump-image-tag: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
