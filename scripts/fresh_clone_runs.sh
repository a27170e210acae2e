#!/usr/bin/env bash
# The README's two commands, `make demo` and `make test`, from fresh clones of this
# repository's committed HEAD, in the places people clone to:
#
#   root-private   as root, in a mode-0700 folder (what `mktemp -d` and /root are): the
#                  embedded server's user must not need to enter it.
#   user-home      as an unprivileged user, in that user's (private) home; created when
#                  this runs as root (IDENTITY_STORE_CI_USER, default identity-store-ci), with
#                  its own pip and Go caches (filled from the package registries).
#   database-url   with DATABASE_URL naming a second server: Debian's PostgreSQL 15
#                  (PG15_BIN), started here on 127.0.0.1, as a managed service's admin
#                  role is (CREATEDB, CREATEROLE, pg_monitor, pg_signal_backend, no superuser)
#                  whose password needs percent-encoding; asserts that no embedded server
#                  started (no cluster in the clone, no postgres process from its .venv).
#
# Usage: scripts/fresh_clone_runs.sh [PLACE...]        (default: all three)
#   FRESH_CLONE_TEST=full|fast  per place, as PLACE=full|fast (default: full everywhere)
#     e.g. scripts/fresh_clone_runs.sh root-private=full user-home=fast database-url=full
#     `fast` runs `make demo` and `make test-fast` (unit tests + the integration tests of
#     the embedded server, settings and make) instead of `make test`.
# Prints one timing line per step and a summary; exits non-zero on the first failure.
# Stops every server it started and removes its clones, whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG15_BIN="${PG15_BIN:-/usr/lib/postgresql/15/bin}"
CI_USER="${IDENTITY_STORE_CI_USER:-identity-store-ci}"
PLACES=("$@")
[ ${#PLACES[@]} -gt 0 ] || PLACES=(root-private user-home database-url)

WORK="$(mktemp -d /tmp/fresh-clones.XXXXXX)"
chmod 755 "$WORK"   # the bundle must be readable by the unprivileged user
SUMMARY="$WORK/summary"
: >"$SUMMARY"
PG15_DATA=""
PG15_OWNER=""
SAMPLER_PID=""
CLONES=()

now() { date +%s; }
say() { printf '\n--- %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

cleanup() {
  local rc=$?
  set +e
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  for clone in "${CLONES[@]}"; do
    [ -d "$clone" ] || continue
    if [ -x "$clone/.venv/bin/python" ]; then
      owner="$(stat -c %U "$clone")"
      if [ "$owner" = "$(id -un)" ]; then
        (cd "$clone" && .venv/bin/python -m identity_store.dev db destroy >/dev/null 2>&1)
      else
        runuser -u "$owner" -- bash -c "cd '$clone' && .venv/bin/python -m identity_store.dev db destroy" >/dev/null 2>&1
      fi
    fi
    rm -rf "$clone"
  done
  if [ -n "$PG15_DATA" ] && [ -f "$PG15_DATA/postmaster.pid" ]; then
    as_pg15_owner "$PG15_BIN/pg_ctl" stop --wait --mode fast --pgdata "$PG15_DATA" >/dev/null 2>&1
  fi
  # Copies of the server binaries made for these clones (see README, "Which PostgreSQL"),
  # and only those: another run on this machine may be using copies of its own.
  for copy in /var/lib/identity-store-pg/pg-*; do
    [ -f "$copy/source" ] || continue
    source="$(cat "$copy/source")"
    for clone in "${CLONES[@]}"; do
      case "$source" in "$clone"/*) rm -rf "$copy"; break ;; esac
    done
  done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

as_pg15_owner() {
  if [ -n "$PG15_OWNER" ]; then runuser -u "$PG15_OWNER" -- "$@"; else "$@"; fi
}

# One step: run it, record its duration, fail loudly.
step() {
  local place="$1" name="$2"
  shift 2
  say "$place: $name"
  local start rc=0
  start="$(now)"
  "$@" || rc=$?
  local took=$(( $(now) - start ))
  printf '%-14s %-28s %5ss %s\n' "$place" "$name" "$took" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")" | tee -a "$SUMMARY"
  return $rc
}

# The clone's tests: the full suite, or a fast subset (see the header).
test_command() {
  if [ "$1" = fast ]; then echo "make test-fast"; else echo "make test"; fi
}

git -C "$ROOT" bundle create "$WORK/repo.bundle" HEAD >/dev/null 2>&1
chmod 644 "$WORK/repo.bundle"
echo "fresh clones of $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" log -1 --format=%s | cut -c1-70))"

run_root_private() {
  local depth="$1"
  [ "$(id -u)" -eq 0 ] || { echo "root-private: SKIPPED (needs root)" | tee -a "$SUMMARY"; return 0; }
  local private
  private="$(mktemp -d)"   # mode 0700, as mktemp makes it
  CLONES+=("$private")
  [ "$(stat -c %a "$private")" = 700 ] || { echo "mktemp -d gave $(stat -c %a "$private")"; return 1; }
  step root-private "git clone" git -c advice.detachedHead=false clone -q "$WORK/repo.bundle" "$private/identity-store"
  cd "$private/identity-store"
  step root-private "make demo" make demo
  step root-private "$(test_command "$depth")" $(test_command "$depth")
  step root-private "make db-down" make db-down
  cd "$ROOT"
}

ensure_ci_user() {
  if ! id -u "$CI_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$CI_USER"
  fi
  local home
  home="$(getent passwd "$CI_USER" | cut -d: -f6)"
  chmod 700 "$home"   # a private home, as on most systems
}

# The environment a login of that user would have, plus the machine's registry settings.
user_env() {
  local home="$1"
  local keep=()
  local var
  for var in $(compgen -e); do
    case "$var" in
      PIP_*|SSL_CERT_*|REQUESTS_CA_BUNDLE|HTTPLIB2_CA_CERTS|GOPROXY|GOSUMDB|GONOSUMDB|GOPRIVATE|GOFLAGS|GOTOOLCHAIN|CI|LANG|LC_ALL|TZ)
        keep+=("$var=${!var}") ;;
    esac
  done
  env -i HOME="$home" USER="$CI_USER" LOGNAME="$CI_USER" SHELL=/bin/bash \
    PATH="/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin" \
    GOFLAGS="${GOFLAGS:-$(go env GOFLAGS 2>/dev/null)}" \
    GOTOOLCHAIN="${GOTOOLCHAIN:-$(go env GOTOOLCHAIN 2>/dev/null)}" \
    "${keep[@]}" env
}

run_user_home() {
  local depth="$1" tests
  tests="$(test_command "$depth")"
  if [ "$(id -u)" -ne 0 ]; then
    # Already unprivileged: this user, in their own home.
    local clone="$HOME/identity-store-fresh-$$"
    CLONES+=("$clone")
    step user-home "git clone" git -c advice.detachedHead=false clone -q "$WORK/repo.bundle" "$clone"
    cd "$clone"
    step user-home "make demo" make demo
    step user-home "$tests" $tests
    step user-home "make db-down" make db-down
    cd "$ROOT"
    return 0
  fi
  ensure_ci_user
  local home clone
  home="$(getent passwd "$CI_USER" | cut -d: -f6)"
  clone="$home/identity-store"
  CLONES+=("$clone")
  rm -rf "$clone"
  local -a envs
  mapfile -t envs < <(user_env "$home")
  as_user() { runuser -u "$CI_USER" -- env -i "${envs[@]}" bash -c "$1"; }
  step user-home "git clone" as_user "git -c advice.detachedHead=false clone -q '$WORK/repo.bundle' '$clone'"
  step user-home "make demo" as_user "cd '$clone' && make demo"
  step user-home "$tests" as_user "cd '$clone' && $tests"
  step user-home "make db-down" as_user "cd '$clone' && make db-down"
}

start_pg15() {
  [ -x "$PG15_BIN/postgres" ] || return 1
  local folder="$WORK/pg15"
  mkdir -p "$folder"
  if [ "$(id -u)" -eq 0 ]; then
    ensure_ci_user
    PG15_OWNER="$CI_USER"
    chown "$CI_USER" "$folder"
  fi
  chmod 700 "$folder"
  PG15_DATA="$folder/data"
  # A password that must be percent-encoded in a URL: / ? # @ : all in it.
  PG15_PASSWORD="ci/$(openssl rand -hex 6 2>/dev/null || echo 5f3a9c1e7b2d)?#@:x"
  printf '%s\n' "$PG15_PASSWORD" >"$folder/pw"
  [ -n "$PG15_OWNER" ] && chown "$PG15_OWNER" "$folder/pw"
  # The superuser stays the server's; the clone gets only an admin role, as on RDS,
  # Cloud SQL or Azure (same password: the encoding is what is tested).
  as_pg15_owner "$PG15_BIN/initdb" --pgdata "$PG15_DATA" --username ci_super \
    --pwfile "$folder/pw" --auth scram-sha-256 --encoding UTF8 --locale C.UTF-8 >/dev/null
  rm -f "$folder/pw"
  PG15_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  as_pg15_owner "$PG15_BIN/pg_ctl" start --wait --pgdata "$PG15_DATA" --log "$folder/server.log" \
    -o "-p $PG15_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200" >/dev/null
  PGPASSWORD="$PG15_PASSWORD" "$PG15_BIN/psql" --host 127.0.0.1 --port "$PG15_PORT" \
    --username ci_super --dbname postgres --quiet --set ON_ERROR_STOP=1 \
    --set pw="$PG15_PASSWORD" >/dev/null <<'SQL'
CREATE ROLE ci_admin LOGIN CREATEDB CREATEROLE PASSWORD :'pw';
GRANT pg_monitor, pg_signal_backend TO ci_admin;
SQL
  # The application's database, made empty by its administrator as before a first deploy.
  PGPASSWORD="$PG15_PASSWORD" "$PG15_BIN/createdb" --host 127.0.0.1 --port "$PG15_PORT" \
    --username ci_admin identity
  local encoded
  encoded="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$PG15_PASSWORD")"
  # sslmode=disable: this server has no TLS, and Atlas (lib/pq, like the official CLI)
  # defaults to sslmode=require.
  PG15_URL="postgresql://ci_admin:$encoded@127.0.0.1:$PG15_PORT/identity?sslmode=disable"
}

# Every half second: the pids of postgres processes run from the clone's own .venv.
sample_embedded() {
  local clone="$1" out="$2"
  while :; do
    for exe in /proc/[0-9]*/exe; do
      target="$(readlink "$exe" 2>/dev/null)" || continue
      case "$target" in "$clone"/*postgres*) echo "${exe%/exe} $target" >>"$out" ;; esac
    done
    sleep 0.5
  done
}

run_database_url() {
  local depth="$1" tests
  tests="$(test_command "$depth")"
  if ! step database-url "start PostgreSQL 15" start_pg15; then
    echo "database-url: SKIPPED: Debian's PostgreSQL 15 is not at $PG15_BIN" | tee -a "$SUMMARY"
    return 0
  fi
  local private clone
  private="$(mktemp -d)"
  CLONES+=("$private")
  clone="$private/identity-store"
  step database-url "git clone" git -c advice.detachedHead=false clone -q "$WORK/repo.bundle" "$clone"
  : >"$WORK/embedded-seen"
  sample_embedded "$clone" "$WORK/embedded-seen" &
  SAMPLER_PID=$!
  cd "$clone"
  step database-url "make demo" env DATABASE_URL="$PG15_URL" make demo
  step database-url "$tests" env DATABASE_URL="$PG15_URL" $tests
  cd "$ROOT"
  kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
  check_nothing_embedded() {
    local bad=0 entry
    if [ -s "$WORK/embedded-seen" ]; then
      echo "an embedded server ran:"; sort -u "$WORK/embedded-seen"; bad=1
    fi
    for entry in data server.json password; do
      if [ -e "$clone/.devdb/$entry" ] || [ -L "$clone/.devdb/$entry" ]; then
        echo "$clone/.devdb/$entry exists: an embedded server was set up"; bad=1
      fi
    done
    [ $bad -eq 0 ] && echo "no embedded server started; the demo and tests ran on PostgreSQL 15 at 127.0.0.1:$PG15_PORT"
    return $bad
  }
  step database-url "assert nothing embedded" check_nothing_embedded
  step database-url "stop PostgreSQL 15" as_pg15_owner "$PG15_BIN/pg_ctl" stop --wait --mode fast --pgdata "$PG15_DATA"
}

total_start="$(now)"
for spec in "${PLACES[@]}"; do
  place="${spec%%=*}"
  depth="full"
  [ "$spec" != "$place" ] && depth="${spec#*=}"
  case "$place" in
    root-private) run_root_private "$depth" ;;
    user-home) run_user_home "$depth" ;;
    database-url) run_database_url "$depth" ;;
    *) echo "unknown place: $place (root-private, user-home, database-url)"; exit 2 ;;
  esac
done
echo
echo "=== fresh-clone runs: summary"
cat "$SUMMARY"
echo "total $(( $(now) - total_start ))s"
