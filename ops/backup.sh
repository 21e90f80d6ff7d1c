#!/usr/bin/env bash
# Backs up the AutoDevOps database (jobs, results, history) to one file.
#   ops/backup.sh [--database-url URL] OUT_FILE
# Postgres (postgres://…): pg_dump custom format (restore with ops/restore.sh).
# SQLite (sqlite://FILE): an online, consistent copy (sqlite3 .backup), safe while serving.
# DATABASE_URL is used when --database-url is not given. Redis needs no backup: the jobs table
# is the source of truth and the relay re-queues what Redis loses.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
me=backup.sh
# shellcheck source=ops/db-args.sh
. "$(dirname "$0")/db-args.sh"
out="$file"

case "$url" in
  postgres://*|postgresql://*)
    need pg_dump postgresql-client
    pg_dump --format=custom --no-owner --file "$out" "$url"
    ;;
  sqlite:*)
    need sqlite3 sqlite3
    db="$(sqlite_file_of "$url")"
    [ -f "$db" ] || { echo "backup.sh: no SQLite database at $db" >&2; exit 1; }
    sqlite3 "$db" ".backup '$out'"
    ;;
esac
echo "backup.sh: wrote $out ($(wc -c <"$out") bytes)"
