# Shared by ops/backup.sh and ops/restore.sh (sourced, not run): parses
#   [--database-url URL] FILE   (DATABASE_URL when --database-url is absent)
# into $url and $file, and offers sqlite_file_of and need. Expects $me and usage().

url="${DATABASE_URL:-}"
file=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --database-url) url="${2:?--database-url needs a value}"; shift 2 ;;
    -*) echo "$me: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$file" ] || { echo "$me: one file only (see --help)" >&2; exit 2; }; file="$1"; shift ;;
  esac
done
[ -n "$file" ] || { echo "$me: name the file (see --help)" >&2; exit 2; }
[ -n "$url" ] || { echo "$me: set DATABASE_URL or pass --database-url" >&2; exit 2; }
case "$url" in
  postgres://*|postgresql://*|sqlite:*) ;;
  *) echo "$me: DATABASE_URL must be postgres://… or sqlite://…" >&2; exit 2 ;;
esac

# The file of a sqlite://FILE URL.
sqlite_file_of() { local f="${1#sqlite:}"; f="${f#//}"; echo "${f%%\?*}"; }
# Fails with an install hint when a tool is missing.
need() { command -v "$1" >/dev/null || { echo "$me: $1 not found: install $2" >&2; exit 1; }; }
