#!/usr/bin/env bash
# Restore a dump made by backup.sh into a database, fresh unless told otherwise.
#
#   scripts/backup/restore.sh [--force] [--no-verify] <dump-file> <target-database-url>
#
# - Checks the dump against <dump-file>.sha256 first (--no-verify: restore a dump without its checksum).
# - Creates the target database (from template0) when it does not exist, through the server's
#   maintenance database ($MAINTENANCE_DB, default postgres) with the same credentials.
# - Refuses a target that already has tables, views or sequences (other than extensions' own) unless
#   --force, which first drops every object the dump holds (pg_restore --clean --if-exists; objects
#   the dump does not know stay). Stop every ticketgw process using that database before forcing.
# - Restores in one transaction (all or nothing), without the dump's owners and grants: the objects
#   belong to the URL's user. Then ANALYZE, since statistics are not in a dump.
# Afterwards check the platform's invariants on it: DATABASE_URL=<target> ticketgw check --settled
set -euo pipefail

force=0
verify=1
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --no-verify) verify=0; shift ;;
    --) shift; break ;;
    -*) echo "restore: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then
  echo "usage: $0 [--force] [--no-verify] <dump-file> <target-database-url>" >&2
  exit 2
fi
dump=$1
url=$2
[ -f "$dump" ] || { echo "restore: no dump at $dump" >&2; exit 1; }
case "$url" in
  postgres://* | postgresql://*) ;;
  *) echo "restore: not a PostgreSQL URL (postgres://…)" >&2; exit 2 ;;
esac

# Split the URL: scheme://authority/db?query; the maintenance URL names another database.
scheme=${url%%://*}
rest=${url#*://}
query=
case "$rest" in *\?*) query="?${rest#*\?}"; rest=${rest%%\?*} ;; esac
authority=${rest%%/*}
db=${rest#*/}
[ "$rest" != "$db" ] && [ -n "$db" ] || { echo "restore: the URL names no database" >&2; exit 2; }
maintenance_url="$scheme://$authority/${MAINTENANCE_DB:-postgres}$query"
host=${authority##*@}

if [ "$verify" -eq 1 ]; then
  [ -f "$dump.sha256" ] || { echo "restore: no checksum $dump.sha256 (--no-verify to restore anyway)" >&2; exit 1; }
  expected=$(cut -d' ' -f1 "$dump.sha256")
  actual=$(sha256sum "$dump" | cut -d' ' -f1)
  [ "$expected" = "$actual" ] || { echo "restore: $dump does not match its checksum; not restoring it" >&2; exit 1; }
  echo "restore: checksum ok ($actual)" >&2
fi
pg_restore --list "$dump" >/dev/null || { echo "restore: $dump is not a pg_dump archive" >&2; exit 1; }

psql_() { psql --no-psqlrc --no-password --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 "$@"; }
exists=$(psql_ --dbname="$maintenance_url" -v db="$db" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
if [ -z "$exists" ]; then
  psql_ --dbname="$maintenance_url" -v db="$db" <<<'CREATE DATABASE :"db" TEMPLATE template0;'
  echo "restore: created database $db on $host" >&2
else
  objects=$(psql_ --dbname="$url" <<'SQL'
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e');
SQL
  )
  if [ "$objects" -gt 0 ] && [ "$force" -eq 0 ]; then
    echo "restore: database $db on $host is not empty ($objects tables, views or sequences); refusing to restore over it (--force drops what the dump holds first)" >&2
    exit 1
  fi
  [ "$objects" -gt 0 ] && echo "restore: --force: replacing the dump's objects in $db ($objects objects there)" >&2
fi

started=$(date +%s)
clean=()
[ "$force" -eq 1 ] && clean=(--clean --if-exists)
pg_restore --no-owner --no-acl --exit-on-error --single-transaction "${clean[@]}" --dbname="$url" "$dump"
psql_ --dbname="$url" <<<'ANALYZE;'
tables=$(psql_ --dbname="$url" <<<"SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema');")
echo "restore: restored $(basename "$dump") into $db on $host ($tables tables, $(($(date +%s) - started)) s)" >&2
