#!/usr/bin/env bash
# Restores a backup made by ops/backup.sh into the database at DATABASE_URL (or --database-url),
# replacing what is there. Stop the api and worker processes first.
#   ops/restore.sh [--database-url URL] IN_FILE
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }
me=restore.sh
# shellcheck source=ops/db-args.sh
. "$(dirname "$0")/db-args.sh"
in="$file"
[ -f "$in" ] || { echo "restore.sh: no such file: $in" >&2; exit 1; }

case "$url" in
  postgres://*|postgresql://*)
    need pg_restore postgresql-client
    pg_restore --clean --if-exists --no-owner --exit-on-error --dbname "$url" "$in"
    ;;
  sqlite:*)
    need sqlite3 sqlite3
    sqlite3 "$(sqlite_file_of "$url")" ".restore '$in'"
    ;;
esac
echo "restore.sh: restored $in"
