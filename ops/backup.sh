#!/usr/bin/env bash
# Backs up the AutoDevOps database (jobs, results, history) to one file.
#   ops/backup.sh [--database-url URL] OUT_FILE
# Postgres (postgres://…): pg_dump custom format (restore with ops/restore.sh).
# SQLite (sqlite://FILE): an online, consistent copy (sqlite3 .backup), safe while serving.
# DATABASE_URL is used when --database-url is not given. Redis needs no backup: the jobs table
# is the source of truth and the relay re-queues what Redis loses.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
url="${DATABASE_URL:-}"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --database-url) url="${2:?--database-url needs a value}"; shift 2 ;;
    -*) echo "backup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "backup.sh: one output file only (see --help)" >&2; exit 2; }; out="$1"; shift ;;
  esac
done
[ -n "$out" ] || { echo "backup.sh: name the output file (see --help)" >&2; exit 2; }
[ -n "$url" ] || { echo "backup.sh: set DATABASE_URL or pass --database-url" >&2; exit 2; }

case "$url" in
  postgres://*|postgresql://*)
    command -v pg_dump >/dev/null || { echo "backup.sh: pg_dump not found: install postgresql-client" >&2; exit 1; }
    pg_dump --format=custom --no-owner --file "$out" "$url"
    ;;
  sqlite:*)
    command -v sqlite3 >/dev/null || { echo "backup.sh: sqlite3 not found: install sqlite3" >&2; exit 1; }
    file="${url#sqlite:}"; file="${file#//}"; file="${file%%\?*}"
    [ -f "$file" ] || { echo "backup.sh: no SQLite database at $file" >&2; exit 1; }
    sqlite3 "$file" ".backup '$out'"
    ;;
  *) echo "backup.sh: DATABASE_URL must be postgres://… or sqlite://…" >&2; exit 2 ;;
esac
echo "backup.sh: wrote $out ($(wc -c <"$out") bytes)"
