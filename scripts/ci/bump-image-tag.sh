#!/usr/bin/env bash
# Set the ticketgw image's tag in a GitOps overlay, the change ArgoCD then rolls out.
#
#   scripts/ci/bump-image-tag.sh [--commit] [--push] <env> <tag>
#
# Edits deploy/overlays/<env>/kustomization.yaml under $GITOPS_DIR (default: this repository): the
# `images:` entry named $IMAGE_NAME (default ghcr.io/ticket-gateway/ticketgw) gets `newTag: "<tag>"`
# (added if missing), keeping a comment after it. The rest of the file (comments, order, other images)
# is kept byte for byte.
# Without kustomize's `edit` command: a line-based edit in python, refusing any shape it does not know.
#   --commit   commit that one file ("deploy(<env>): ticketgw <tag> [skip ci]": the pipeline builds
#              nothing for it); nothing when the tag is unchanged
#   --push     commit, then push to $GITOPS_REMOTE (origin) $GITOPS_BRANCH (the current branch),
#              rebasing and retrying when someone pushed first
# GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL (default "ticketgw CI" / ci@ticketgw.invalid) sign the commit.
set -euo pipefail

commit=0
push=0
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) commit=1; shift ;;
    --push) commit=1; push=1; shift ;;
    --) shift; break ;;
    -*) echo "bump-image-tag: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then
  echo "usage: $0 [--commit] [--push] <env> <tag>" >&2
  exit 2
fi
env_name=$1
tag=$2
[[ "$env_name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "bump-image-tag: bad environment name '$env_name'" >&2; exit 2; }
# Docker's rule for a tag.
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || { echo "bump-image-tag: '$tag' is not a valid image tag" >&2; exit 2; }

root=${GITOPS_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
rel="deploy/overlays/$env_name/kustomization.yaml"
file="$root/$rel"
[ -f "$file" ] || { echo "bump-image-tag: no overlay $rel in $root" >&2; exit 1; }
image=${IMAGE_NAME:-ghcr.io/ticket-gateway/ticketgw}

result=$(IMAGE=$image TAG=$tag python3 - "$file" <<'PY'
import os, re, sys

path, image, tag = sys.argv[1], os.environ["IMAGE"], os.environ["TAG"]
with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines(keepends=True)

def fail(msg):
    sys.exit(f"bump-image-tag: {path}: {msg}")

def unquote(v):
    v = re.sub(r"\s+#.*$", "", v).strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        v = v[1:-1]
    return v

starts = [i for i, l in enumerate(lines) if re.match(r"^images:\s*(#.*)?$", l)]
if not starts:
    if any(re.match(r"^images:", l) for l in lines):
        fail("`images:` is not a block list (flow style is not supported)")
    fail("no `images:` list")
if len(starts) > 1:
    fail("more than one `images:` key")
# The list runs until the next top-level key.
start, end = starts[0] + 1, len(lines)
for i in range(start, len(lines)):
    l = lines[i]
    if l.strip() and not l.lstrip().startswith("#") and not l[0].isspace() and not l.startswith("-"):
        end = i
        break
# Its items: "- key: value" lines at the list's indentation.
items, indent = [], None
for i in range(start, end):
    m = re.match(r"^(\s*)-\s+(\S.*)$", lines[i])
    if m and (indent is None or len(m.group(1)) == indent):
        indent = len(m.group(1))
        items.append(i)
items.append(end)
matches = []
for a, b in zip(items, items[1:]):
    keys = {}
    for i in range(a, b):
        m = re.match(r"^(\s*(?:-\s+)?)(name|newName|newTag|digest):\s*(.*?)\s*$", lines[i].rstrip("\n"))
        if m:
            keys[m.group(2)] = (i, m.group(1), unquote(m.group(3)))
    if "name" in keys and keys["name"][2] == image:
        matches.append(keys)
if not matches:
    fail(f"no images entry named {image}")
if len(matches) > 1:
    fail(f"{len(matches)} images entries named {image}")
keys = matches[0]
if "digest" in keys:
    fail(f"the {image} entry pins a digest; remove it to pin by tag")
eol = "\n"
if "newTag" in keys:
    i, lead, old = keys["newTag"]
    if old == tag:
        print(f"unchanged {old}")
        sys.exit(0)
    # A comment after the value stays.
    comment = re.search(r"(\s+#.*)$", lines[i].rstrip("\n"))
    lines[i] = f'{lead}newTag: "{tag}"{comment.group(1) if comment else ""}{eol}'
else:
    old = "(none)"
    i, lead, _ = keys["name"]
    pad = " " * len(lead)
    lines.insert(i + 1, f'{pad}newTag: "{tag}"{eol}')
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(lines)
os.replace(tmp, path)
print(f"changed {old}")
PY
)
case "$result" in
  unchanged*) echo "bump-image-tag: $rel already has $image:$tag"; changed=0 ;;
  changed*) echo "bump-image-tag: $rel: $image ${result#changed } -> $tag"; changed=1 ;;
  *) echo "bump-image-tag: unexpected: $result" >&2; exit 1 ;;
esac

[ "$commit" -eq 1 ] || exit 0
git_() { git -C "$root" -c "user.name=${GIT_AUTHOR_NAME:-ticketgw CI}" -c "user.email=${GIT_AUTHOR_EMAIL:-ci@ticketgw.invalid}" "$@"; }
if [ "$changed" -eq 1 ]; then
  git_ add -- "$rel"
  git_ commit --quiet -m "deploy($env_name): ticketgw $tag [skip ci]" -- "$rel"
  echo "bump-image-tag: committed $(git_ rev-parse --short HEAD)"
fi
[ "$push" -eq 1 ] || exit 0
remote=${GITOPS_REMOTE:-origin}
branch=${GITOPS_BRANCH:-$(git_ rev-parse --abbrev-ref HEAD)}
for attempt in 1 2 3; do
  if git_ push --quiet "$remote" "HEAD:refs/heads/$branch"; then
    echo "bump-image-tag: pushed to $remote $branch"
    exit 0
  fi
  echo "bump-image-tag: push refused (attempt $attempt); rebasing on $remote/$branch" >&2
  git_ pull --quiet --rebase "$remote" "$branch"
done
echo "bump-image-tag: could not push to $remote $branch" >&2
exit 1
