#!/usr/bin/env bash
# Restores a backup made by ops/backup.sh into the database at DATABASE_URL (or --database-url),
# replacing what is there. Stop the api and worker processes first.
#   ops/restore.sh [--database-url URL] IN_FILE
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }
url="${DATABASE_URL:-}"
in=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --database-url) url="${2:?--database-url needs a value}"; shift 2 ;;
    -*) echo "restore.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$in" ] || { echo "restore.sh: one input file only (see --help)" >&2; exit 2; }; in="$1"; shift ;;
  esac
done
[ -n "$in" ] || { echo "restore.sh: name the backup file (see --help)" >&2; exit 2; }
[ -f "$in" ] || { echo "restore.sh: no such file: $in" >&2; exit 1; }
[ -n "$url" ] || { echo "restore.sh: set DATABASE_URL or pass --database-url" >&2; exit 2; }

case "$url" in
  postgres://*|postgresql://*)
    command -v pg_restore >/dev/null || { echo "restore.sh: pg_restore not found: install postgresql-client" >&2; exit 1; }
    pg_restore --clean --if-exists --no-owner --exit-on-error --dbname "$url" "$in"
    ;;
  sqlite:*)
    command -v sqlite3 >/dev/null || { echo "restore.sh: sqlite3 not found: install sqlite3" >&2; exit 1; }
    file="${url#sqlite:}"; file="${file#//}"; file="${file%%\?*}"
    sqlite3 "$file" ".restore '$in'"
    ;;
  *) echo "restore.sh: DATABASE_URL must be postgres://… or sqlite://…" >&2; exit 2 ;;
esac
echo "restore.sh: restored $in"
