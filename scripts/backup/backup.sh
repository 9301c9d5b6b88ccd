#!/usr/bin/env bash
# Back up one PostgreSQL database: a custom-format dump (pg_dump -Fc) with a SHA-256 checksum beside it.
#
#   scripts/backup/backup.sh [database-url] [out-dir]
#
# database-url  default $DATABASE_URL, e.g. postgres://user:pass@host:5432/ticketgw?sslmode=require
# out-dir       default $BACKUP_DIR, else ./backups
# Writes <out-dir>/<database>-<UTC time, YYYYmmddTHHMMSSZ>.dump and <same>.dump.sha256 (sha256sum's
# format, so `sha256sum -c` checks it in that folder), then prints the dump's path on stdout as its
# last line. The dump is one consistent snapshot (pg_dump runs in a repeatable-read transaction), so
# it is taken while the platform runs; it is written under a temporary name and renamed only once
# complete and readable (pg_restore --list), so a failed run never leaves a file that looks like a backup.
# BACKUP_KEEP=N keeps only the newest N dumps of that database in out-dir (default: keep all).
# Needs pg_dump and pg_restore of the server's major version or newer, and sha256sum.
set -euo pipefail

url=${1:-${DATABASE_URL:-}}
out_dir=${2:-${BACKUP_DIR:-./backups}}
if [ -z "$url" ]; then
  echo "usage: $0 <database-url> [out-dir]   (or set DATABASE_URL)" >&2
  exit 2
fi
case "$url" in
  postgres://* | postgresql://*) ;;
  *) echo "backup: not a PostgreSQL URL (postgres://…)" >&2; exit 2 ;;
esac

# The database's name: the URL's path, without query; the URL itself is never printed (it may hold a password).
path=${url#*://}
path=${path%%\?*}
db=${path#*/}
[ "$path" != "$db" ] && [ -n "$db" ] || { echo "backup: the URL names no database" >&2; exit 2; }
[[ "$db" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "backup: unusual database name; refusing to build a file name from it" >&2; exit 2; }
host=${path%%/*}
host=${host##*@}

mkdir -p "$out_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="$db-$stamp.dump"
final="$out_dir/$name"
[ -e "$final" ] && { echo "backup: $final exists already" >&2; exit 1; }
tmp="$out_dir/.$name.partial"
trap 'rm -f "$tmp"' EXIT

started=$(date +%s)
echo "backup: dumping $db on $host" >&2
pg_dump --format=custom --compress=6 --no-password --file="$tmp" --dbname="$url"
# A dump that pg_restore cannot list is no backup.
pg_restore --list "$tmp" >/dev/null
mv "$tmp" "$final"
trap - EXIT
(cd "$out_dir" && sha256sum "$name" >"$name.sha256")
size=$(wc -c <"$final")
echo "backup: wrote $final ($size bytes, $(($(date +%s) - started)) s), sha256 $(cut -d' ' -f1 "$final.sha256")" >&2

if [ -n "${BACKUP_KEEP:-}" ]; then
  [[ "$BACKUP_KEEP" =~ ^[1-9][0-9]*$ ]] || { echo "backup: BACKUP_KEEP must be a positive number" >&2; exit 2; }
  # Names sort by time; delete all but the newest BACKUP_KEEP of this database.
  (cd "$out_dir" && ls -1 -- "$db"-*.dump 2>/dev/null || true) | sort -r | tail -n "+$((BACKUP_KEEP + 1))" |
    while read -r old; do
      rm -f "$out_dir/$old" "$out_dir/$old.sha256"
      echo "backup: removed old $old" >&2
    done
fi
echo "$final"
