#!/usr/bin/env bash
# The guestuser tool against the fixture cluster: commands, output, exit codes.
#   test_cli.sh TOOL CONNINFO_FILE
set -uo pipefail
tool=${1:?usage: test_cli.sh TOOL CONNINFO_FILE}
ci=$(cat "${2:?usage: test_cli.sh TOOL CONNINFO_FILE}")
schema=t_cli
down="host=127.0.0.1 port=1 connect_timeout=5"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset GUESTUSER_DB PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS
failures=0

psql_() { psql "$ci" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# run [STDIN_TEXT] -- ARGS...: runs the tool; sets rc, out (stdout), err.
run() {
  local input=
  if [ "$1" != -- ]; then input=$1; shift; fi
  shift
  printf '%s' "$input" | "$tool" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  last=$(tail -n 1 "$tmp/out")
  what="guestuser $*"
}

fail() {
  echo "FAIL: $what: $1"
  echo "  exit status: $rc"
  sed 's/^/  stdout: /' "$tmp/out"
  sed 's/^/  stderr: /' "$tmp/err"
  failures=$((failures + 1))
}
expect_rc() { [ "$rc" = "$1" ] || fail "exit status $rc, expected $1"; }
expect_last() { [ "$last" = "$1" ] || fail "last line \"$last\", expected \"$1\""; }
expect_out() { grep -qF -- "$1" "$tmp/out" || fail "stdout lacks \"$1\""; }
expect_err() { grep -qF -- "$1" "$tmp/err" || fail "stderr lacks \"$1\""; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got \"$1\", expected \"$2\""; }

usage_error() {
  run -- "$@"
  expect_rc 1
  expect_err "Usage: guestuser"
  [ -z "$out" ] || fail "a usage error printed on stdout"
}

# --- help, everywhere ---
run -- --help
expect_rc 0
expect_out "Usage: guestuser"
for c in migrate stats list-guests delete-expired create-user list-users delete-user set-password deactivate activate list-identities unlink-identity rate-limits mail-queue mail-retry; do
  run -- "$c" --help
  expect_rc 0
  expect_out "$c"
  [ -z "$err" ] || fail "--help wrote to stderr"
done
run -- --version
expect_rc 0
grep -Eq '^guestuser [0-9]+\.[0-9]+\.[0-9]+ \(libguestuser [0-9]+\.[0-9]+\.[0-9]+\)$' "$tmp/out" ||
  fail "--version printed \"$out\""
run -- -h delete-expired
expect_rc 0
expect_out "would delete: N"

# --- usage errors: exit 1 with the usage text ---
usage_error
usage_error frobnicate
usage_error --frob stats
usage_error stats extra-argument
usage_error create-user
usage_error create-user alice bob
usage_error list-users extra-argument
usage_error list-users --guests --registered
usage_error list-users --limit -1
usage_error list-users --expired
for c in delete-user set-password deactivate activate; do
  usage_error "$c"
  usage_error "$c" alice bob
  usage_error "$c" alice --limit 3
done
usage_error delete-expired --batch-size 0
usage_error delete-expired --batch-size 100001
usage_error delete-expired --batch-size abc
usage_error delete-expired --batch-size=
usage_error delete-expired --max-age 0
usage_error delete-expired --max-age -5
usage_error delete-expired --dry-run=yes
usage_error create-user alice --password-iterations 0
usage_error create-user alice --password-iterations 2147483648
usage_error set-password alice --password-iterations abc
usage_error create-user alice --password-iterations
usage_error stats --password-iterations 1000
usage_error list-guests --limit -1
usage_error list-guests --limit 1x
usage_error stats --dry-run
usage_error migrate --expired
usage_error stats --timeout 0
usage_error stats --db
# settings the library refuses are usage errors too, before any connection
usage_error --db "$ci" --schema Bad-Name stats
usage_error --db "this is not a conninfo" stats

# --- an unreachable database: exit 2 with libpq's message ---
for c in migrate stats list-guests delete-expired; do
  run -- --db "$down" "$c"
  expect_rc 2
  expect_err "port 1 failed"
  [ -z "$out" ] || fail "printed on stdout without a database"
done
run "secret-pass-123" -- --db "$down" create-user alice
expect_rc 2
for c in list-users "delete-user alice" "set-password alice" "deactivate alice" "activate alice"; do
  # shellcheck disable=SC2086
  run "secret-pass-123" -- --db "$down" $c
  expect_rc 2
  expect_err "port 1 failed"
done
# GUESTUSER_DB is used when --db is absent, and --db wins over it
GUESTUSER_DB=$down run -- stats
expect_rc 2
GUESTUSER_DB=$down run -- --db "$ci" --schema $schema migrate
expect_rc 0

# --- migrate ---
psql_ "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null
run -- --db "$ci" --schema $schema migrate
expect_rc 0
expect_out "$schema"
[ -z "$err" ] || fail "migrate was not quiet on stderr"
expect_eq "$(psql_ "SELECT count(*) FROM information_schema.tables WHERE table_schema = '$schema' AND table_name IN ('users', 'guests', 'sessions')")" 3 "tables"
run -- migrate --schema $schema --db "$ci" # options after the command; idempotent
expect_rc 0
[ -z "$err" ] || fail "a second migrate was not quiet on stderr"

# --- only migrate creates or alters a schema: the others refuse one that
#     is missing or at another version (exit 2) and change nothing ---
schemas() { psql_ "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't_cli_%'"; }
psql_ "DROP SCHEMA IF EXISTS t_cli_nosuch CASCADE; DROP SCHEMA IF EXISTS t_cli_bare CASCADE; DROP SCHEMA IF EXISTS t_cli_old CASCADE"
before=$(schemas)
for c in stats list-guests delete-expired "delete-expired --dry-run" list-users "delete-user alice" "deactivate alice" "activate alice"; do
  # shellcheck disable=SC2086
  run -- --db "$ci" --schema t_cli_nosuch $c
  expect_rc 2
  expect_err 'schema "t_cli_nosuch" does not exist'
  expect_err "run guestuser migrate"
  [ -z "$out" ] || fail "printed on stdout without a schema"
done
for c in create-user set-password; do
  run $'Correct-Horse-42\n' -- --db "$ci" --schema t_cli_nosuch $c alice
  expect_rc 2
  expect_err "guestuser: $c: schema \"t_cli_nosuch\" does not exist"
done
expect_eq "$(schemas)" "$before" "schemas after commands on a missing one"
expect_eq "$(psql_ "SELECT count(*) FROM pg_namespace WHERE nspname = 't_cli_nosuch'")" 0 "the mistyped schema"
# a schema that migrate never touched
psql_ "CREATE SCHEMA t_cli_bare"
run -- --db "$ci" --schema t_cli_bare stats
expect_rc 2
expect_err 'schema "t_cli_bare" has no schema_migrations table'
expect_err "run guestuser migrate"
expect_eq "$(psql_ "SELECT count(*) FROM pg_tables WHERE schemaname = 't_cli_bare'")" 0 "tables in the bare schema"
# an older version is not upgraded behind migrate's back, a newer one is
# refused too
run -- --db "$ci" --schema t_cli_old migrate
expect_rc 0
latest=$(psql_ "SELECT max(version) FROM t_cli_old.schema_migrations")
psql_ "DELETE FROM t_cli_old.schema_migrations WHERE version > 1"
run -- --db "$ci" --schema t_cli_old list-users
expect_rc 2
expect_err "schema \"t_cli_old\" is at version 1, this library needs $latest: run guestuser migrate"
expect_eq "$(psql_ "SELECT max(version) FROM t_cli_old.schema_migrations")" 1 "the old schema's version"
psql_ "INSERT INTO t_cli_old.schema_migrations (version) SELECT generate_series(2, $latest + 1)"
run -- --db "$ci" --schema t_cli_old stats
expect_rc 2
expect_err "is at version $((latest + 1)), newer than this library knows ($latest)"
psql_ "DROP SCHEMA t_cli_bare CASCADE; DROP SCHEMA t_cli_old CASCADE"
# the migrated schema serves every command, as below
run -- --db "$ci" --schema $schema stats
expect_rc 0
expect_out "users: 0"
[ -z "$err" ] || fail "stats on a migrated schema wrote to stderr"

# --- data: 3 expired guests (one with a session), 2 fresh guests,
#     1 registered user with an expired and a live session ---
psql_ "
WITH u AS (INSERT INTO $schema.users (username) VALUES ('old1'), ('old2'), ('old3') RETURNING id)
INSERT INTO $schema.guests (user_id, created_at) SELECT id, now() - interval '30 days' - id * interval '1 minute' FROM u;
WITH u AS (INSERT INTO $schema.users (username) VALUES ('new1'), ('new2') RETURNING id)
INSERT INTO $schema.guests (user_id, created_at) SELECT id, now() - interval '100 seconds' + id * interval '1 second' FROM u;
INSERT INTO $schema.users (username, password) VALUES ('registered', 'x');
INSERT INTO $schema.sessions (token_hash, user_id, expires_at)
  SELECT sha256(username::bytea), id, CASE WHEN username = 'registered' THEN now() - interval '1 hour' ELSE now() + interval '1 day' END
  FROM $schema.users WHERE username IN ('old1', 'registered');
INSERT INTO $schema.sessions (token_hash, user_id, expires_at)
  SELECT sha256('live'::bytea), id, now() + interval '1 day' FROM $schema.users WHERE username = 'registered';"
users() { psql_ "SELECT count(*) FROM $schema.users"; }
export GUESTUSER_DB=$ci

# --- stats ---
run -- --schema $schema stats
expect_rc 0
expect_eq "$out" $'users: 6\nguests: 5\nexpired guests: 3\nlive sessions: 2' "stats"
run -- --schema $schema stats --max-age 50
expect_rc 0
expect_out "expired guests: 5"

# --- list-guests: newest first ---
run -- --schema $schema list-guests
expect_rc 0
expect_eq "$(cut -f1,3 "$tmp/out" | tr '\t\n' ' ;')" "username expired;new2 no;new1 no;old1 yes;old2 yes;old3 yes;" "list"
# the new guests were made today, or yesterday when the run crossed
# midnight UTC
grep -qE -- "($(date -u -d yesterday +%Y-%m-%d)|$(date -u +%Y-%m-%d))T" "$tmp/out" ||
  fail "stdout lacks today's date in UTC"
run -- --schema $schema list-guests --expired --limit 2
expect_rc 0
expect_eq "$(cut -f1 "$tmp/out" | tr '\n' ' ')" "username old1 old2 " "expired, limit 2"
run -- --schema $schema list-guests --limit 0
expect_eq "$(wc -l <"$tmp/out")" 6 "limit 0 lists all"

# --- delete-expired ---
run -- --schema $schema delete-expired --dry-run
expect_rc 0
expect_last "would delete: 3"
expect_out "expired sessions: 1"
expect_eq "$(users)" 6 "users after a dry run"

# no guest is that old, but the expired session goes
run -- --schema $schema delete-expired --max-age 99999999
expect_rc 0
expect_last "deleted: 0"
expect_out "expired sessions deleted: 1"
expect_eq "$(users)" 6 "users after a long max-age"

run -- --schema $schema delete-expired --progress --batch-size 2
expect_rc 0
expect_last "deleted: 3"
expect_out "batches: 2"
expect_err "batch 1: 2 guests, 0 expired sessions deleted"
expect_err "batch 2: 3 guests, 0 expired sessions deleted"
expect_eq "$(psql_ "SELECT string_agg(username, ',' ORDER BY username) FROM $schema.users")" "new1,new2,registered" "users left"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.sessions")" 1 "sessions left"

run -- --schema $schema delete-expired
expect_rc 0
expect_last "deleted: 0"
[ -z "$err" ] || fail "delete-expired without --progress wrote to stderr"

run -- --schema $schema delete-expired --max-age 50
expect_rc 0
expect_last "deleted: 2"

# the abuse limits' window rows go once both their windows have passed
psql_ "INSERT INTO $schema.rate_windows (kind, client, bucket, window_secs, curr_count, stale_at) VALUES ('guest', '192.0.2.1', 1, 3600, 5, now() - interval '1 second'), ('guest', '192.0.2.2', 1, 3600, 5, now() + interval '1 hour')"
run -- --schema $schema delete-expired --dry-run
expect_rc 0
expect_out "stale rate windows: 1"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.rate_windows")" 2 "windows after a dry run"
run -- --schema $schema delete-expired
expect_rc 0
expect_out "stale rate windows deleted: 1"
expect_eq "$(psql_ "SELECT client FROM $schema.rate_windows")" 192.0.2.2 "the live window stays"

# --- create-user: the password is the first line of standard input ---
run $'Correct-Horse-42\nsecond line is ignored\n' -- --schema $schema create-user alice
expect_rc 0
expect_out "created user alice (id "
expect_eq "$(psql_ "SELECT count(*) FROM $schema.users u WHERE username = 'alice' AND password LIKE 'pbkdf2_sha256\$%' AND NOT EXISTS (SELECT 1 FROM $schema.guests g WHERE g.user_id = u.id)")" 1 "alice is a registered user with a hash"
if command -v python3 >/dev/null; then
  hash=$(psql_ "SELECT password FROM $schema.users WHERE username = 'alice'")
  python3 - "$hash" 'Correct-Horse-42' <<'PY' || fail "the stored hash is not of the first line"
import base64, hashlib, sys
algo, it, salt, digest = sys.argv[1].split('$')
dk = hashlib.pbkdf2_hmac('sha256', sys.argv[2].encode(), salt.encode(), int(it))
sys.exit(0 if base64.b64encode(dk).decode() == digest else 1)
PY
fi
run $'Another-Horse-43\r\n' -- --schema $schema create-user carol # CRLF
expect_rc 0
run 'No-Newline-Horse-44' -- --schema $schema create-user dave
expect_rc 0
run $'Correct-Horse-42\n' -- --schema $schema create-user alice
expect_rc 1
expect_err "username: A user with that username already exists."
run $'123\n' -- --schema $schema create-user 'bad name!'
expect_rc 1
expect_err "username: Enter a valid username"
expect_err "password: This password is too short"
expect_err "password: This password is entirely numeric"
run $'bob12345\n' -- --schema $schema create-user bob
expect_rc 1
expect_err "password:"
run -- --schema $schema create-user bob
expect_rc 1
expect_err "no password on standard input"
run "$(head -c 5000 /dev/zero | tr '\0' x)" -- --schema $schema create-user bob
expect_rc 1
expect_err "longer than 4096 bytes"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.users WHERE username IN ('bob', 'bad name!')")" 0 "refused users were not created"

# libpq's own environment when neither --db nor GUESTUSER_DB is given
unset GUESTUSER_DB
eval "$(tr ' ' '\n' <<<"$ci" | sed -n 's/^host=/PGHOST=/p; s/^port=/PGPORT=/p; s/^user=/PGUSER=/p; s/^dbname=/PGDATABASE=/p')"
PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER PGDATABASE=$PGDATABASE run -- --schema $schema stats
expect_rc 0
expect_out "users: 4"
export GUESTUSER_DB=$ci

# --- list-users: newest first, guests and registered users ---
psql_ "WITH u AS (INSERT INTO $schema.users (username, date_joined) VALUES ('guesty', now() + interval '1 minute') RETURNING id)
INSERT INTO $schema.guests (user_id, created_at) SELECT id, now() - interval '1 day' FROM u;
UPDATE $schema.users SET last_login = '2030-01-02T03:04:05Z' WHERE username = 'dave'"
run -- --schema $schema list-users
expect_rc 0
expect_eq "$(cut -f1,2,3 "$tmp/out" | tr '\t\n' ' ;')" "username kind active;guesty guest yes;dave registered yes;carol registered yes;alice registered yes;registered registered yes;" "list-users"
expect_eq "$(grep '^dave' "$tmp/out" | cut -f5,6)" $'2030-01-02T03:04:05Z\t-' "dave's last_login, no expiry"
expect_eq "$(grep '^alice' "$tmp/out" | cut -f5)" "-" "alice never logged in"
# a guest expires max_age after its creation
run -- --schema $schema list-users --guests --max-age 172800
expect_rc 0
expect_eq "$(cut -f1 "$tmp/out" | tr '\n' ' ')" "username guesty " "--guests"
expect_eq "$(cut -f6 "$tmp/out" | tail -n 1)" "$(psql_ "SELECT to_char((g.created_at + interval '2 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM $schema.guests g")" "a guest's expires_at"
# without --max-age, the age the site recorded in its schema, else
# $GUESTUSER_MAX_AGE wins over it, and the flag over both
expires_after() { psql_ "SELECT to_char((g.created_at + interval '$1 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM $schema.guests g"; }
psql_ "INSERT INTO $schema.site_settings (name, value) VALUES ('max_age', 259200)
       ON CONFLICT (name) DO UPDATE SET value = 259200"
run -- --schema $schema list-users --guests
expect_rc 0
expect_eq "$(cut -f6 "$tmp/out" | tail -n 1)" "$(expires_after 259200)" "expiry at the site's recorded max_age"
GUESTUSER_MAX_AGE=345600 run -- --schema $schema list-users --guests
expect_rc 0
expect_eq "$(cut -f6 "$tmp/out" | tail -n 1)" "$(expires_after 345600)" "expiry at GUESTUSER_MAX_AGE"
GUESTUSER_MAX_AGE=345600 run -- --schema $schema list-users --guests --max-age 172800
expect_rc 0
expect_eq "$(cut -f6 "$tmp/out" | tail -n 1)" "$(expires_after 172800)" "--max-age over GUESTUSER_MAX_AGE"
GUESTUSER_MAX_AGE=soon run -- --schema $schema list-users --guests
expect_rc 1
expect_err "GUESTUSER_MAX_AGE"
psql_ "DELETE FROM $schema.site_settings WHERE name = 'max_age'"
run -- --schema $schema list-users --registered --limit 2
expect_rc 0
expect_eq "$(cut -f1 "$tmp/out" | tr '\n' ' ')" "username dave carol " "--registered --limit 2"

# --- deactivate / activate: sessions end at once, login is refused ---
psql_ "INSERT INTO $schema.sessions (token_hash, user_id, expires_at) SELECT sha256(username::bytea), id, now() + interval '1 day' FROM $schema.users WHERE username IN ('alice', 'dave', 'carol')"
run -- --schema $schema deactivate dave
expect_rc 0
expect_out "deactivated user dave"
expect_eq "$(psql_ "SELECT is_active FROM $schema.users WHERE username = 'dave'")" f "dave is inactive"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.sessions s JOIN $schema.users u ON u.id = s.user_id WHERE u.username = 'dave'")" 0 "dave's sessions ended"
run -- --schema $schema list-users --registered --limit 1
expect_eq "$(tail -n 1 "$tmp/out" | cut -f1,3)" $'dave\tno' "list-users shows the inactive user"
run -- --schema $schema deactivate dave # idempotent
expect_rc 0
run -- --schema $schema activate dave
expect_rc 0
expect_out "activated user dave"
expect_eq "$(psql_ "SELECT is_active FROM $schema.users WHERE username = 'dave'")" t "dave is active again"
run -- --schema $schema deactivate nobody
expect_rc 1
expect_err 'deactivate: no user named "nobody"'
run -- --schema $schema activate nobody
expect_rc 1
expect_err "no user named"

# --- set-password: validated, hashed, every session ended ---
run $'Brand-New-Horse-77\n' -- --schema $schema set-password alice
expect_rc 0
expect_out "password changed for user alice"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.sessions s JOIN $schema.users u ON u.id = s.user_id WHERE u.username = 'alice'")" 0 "alice's sessions ended"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.sessions s JOIN $schema.users u ON u.id = s.user_id WHERE u.username = 'carol'")" 1 "carol's session stays"
if command -v python3 >/dev/null; then
  hash=$(psql_ "SELECT password FROM $schema.users WHERE username = 'alice'")
  python3 - "$hash" 'Brand-New-Horse-77' <<'PY' || fail "the stored hash is not of the new password"
import base64, hashlib, sys
algo, it, salt, digest = sys.argv[1].split('$')
dk = hashlib.pbkdf2_hmac('sha256', sys.argv[2].encode(), salt.encode(), int(it))
sys.exit(0 if base64.b64encode(dk).decode() == digest else 1)
PY
fi
before=$(psql_ "SELECT password FROM $schema.users WHERE username = 'alice'")
run $'123\n' -- --schema $schema set-password alice
expect_rc 1
expect_err "password: This password is too short"
expect_err "password: This password is entirely numeric"
run $'alice7Qz\n' -- --schema $schema set-password alice
expect_rc 1
expect_err "password: The password is too similar to the username."
run -- --schema $schema set-password alice
expect_rc 1
expect_err "set-password: no password on standard input"
# a NUL would cut the password short without a word: refused
printf 'Quartz-Lantern-63\0garbage\n' | "$tool" --schema $schema set-password alice >"$tmp/out" 2>"$tmp/err"
rc=$? err=$(cat "$tmp/err") what="guestuser set-password (a NUL in the password)"
expect_rc 1
expect_err "the password contains a NUL byte"
expect_eq "$(psql_ "SELECT password FROM $schema.users WHERE username = 'alice'")" "$before" "refused passwords changed nothing"
run $'Brand-New-Horse-77\n' -- --schema $schema set-password nobody
expect_rc 1
expect_err 'set-password: no user named "nobody"'
run $'Brand-New-Horse-77\n' -- --schema $schema set-password guesty
expect_rc 1
expect_err "is a guest"
expect_eq "$(psql_ "SELECT password FROM $schema.users WHERE username = 'guesty'")" "" "a guest gets no password"

# --- delete-user: guests and registered users, their sessions go too ---
run -- --schema $schema delete-user carol
expect_rc 0
expect_out "deleted user carol (id "
expect_eq "$(psql_ "SELECT count(*) FROM $schema.users WHERE username = 'carol'")" 0 "carol is gone"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.sessions s WHERE s.token_hash = sha256('carol'::bytea)")" 0 "carol's session is gone"
run -- --schema $schema delete-user guesty
expect_rc 0
expect_eq "$(psql_ "SELECT count(*) FROM $schema.guests")" 0 "the guest is gone"
run -- --schema $schema delete-user carol
expect_rc 1
expect_err 'delete-user: no user named "carol"'
[ -z "$out" ] || fail "an unknown user printed on stdout"
run -- --schema $schema delete-user "$(head -c 200 /dev/zero | tr '\0' x)"
expect_rc 1
expect_err "no user named"

# --- --password-iterations: the PBKDF2 cost of the new hash ---
iterations_of() { psql_ "SELECT split_part(password, '\$', 2) FROM $schema.users WHERE username = '$1'"; }
expect_eq "$(iterations_of alice)" 1500000 "the default iterations"
run $'Correct-Horse-42\n' -- --schema $schema --password-iterations 1000 create-user erin
expect_rc 0
expect_eq "$(iterations_of erin)" 1000 "create-user --password-iterations"
run $'Brand-New-Horse-78\n' -- --schema $schema set-password erin --password-iterations=2000
expect_rc 0
expect_eq "$(iterations_of erin)" 2000 "set-password --password-iterations"
if command -v python3 >/dev/null; then
  hash=$(psql_ "SELECT password FROM $schema.users WHERE username = 'erin'")
  python3 - "$hash" 'Brand-New-Horse-78' <<'PY' || fail "the stored hash does not verify at its iterations"
import base64, hashlib, sys
algo, it, salt, digest = sys.argv[1].split('$')
dk = hashlib.pbkdf2_hmac('sha256', sys.argv[2].encode(), salt.encode(), int(it))
sys.exit(0 if base64.b64encode(dk).decode() == digest else 1)
PY
fi
run -- --schema $schema delete-user erin
expect_rc 0
# without the flag, the count the site recorded (a site's guest_ctx_new does)
psql_ "INSERT INTO $schema.site_settings (name, value) VALUES ('password_iterations', 3000)
       ON CONFLICT (name) DO UPDATE SET value = 3000"
run $'Correct-Horse-42\n' -- --schema $schema create-user fay
expect_rc 0
expect_eq "$(iterations_of fay)" 3000 "create-user at the site's recorded count"
run -- --schema $schema delete-user fay
expect_rc 0
psql_ "DELETE FROM $schema.site_settings WHERE name = 'password_iterations'"

# --- identities from providers: list and unlink ---
run $'Correct-Horse-42\n' -- --schema $schema --password-iterations 1000 create-user ivy
expect_rc 0
psql_ "INSERT INTO $schema.identities (user_id, issuer, subject, email, email_verified)
       SELECT id, 'https://id.example.test', 'ivy-1', 'ivy@example.test', true
       FROM $schema.users WHERE username = 'ivy'"
psql_ "INSERT INTO $schema.identities (user_id, issuer, subject)
       SELECT id, 'https://other.example.test', 'ivy-2' FROM $schema.users WHERE username = 'ivy'"
run -- --schema $schema list-identities ivy
expect_rc 0
expect_out $'https://id.example.test\tivy-1\tivy@example.test\tverified'
expect_out $'https://other.example.test\tivy-2\t-\tunverified'
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "two identities, two lines"
run -- --schema $schema unlink-identity ivy https://id.example.test ivy-1
expect_rc 0
expect_out "unlinked https://id.example.test ivy-1 from user ivy"
run -- --schema $schema unlink-identity ivy https://id.example.test ivy-1
expect_rc 1
expect_err "no such identity"
# without a usable password the last identity stays
psql_ "UPDATE $schema.users SET password = '!unusable' WHERE username = 'ivy'"
run -- --schema $schema unlink-identity ivy https://other.example.test ivy-2
expect_rc 1
expect_err "only way to log in"
run -- --schema $schema list-identities ivy
expect_rc 0
expect_out "ivy-2"
run -- --schema $schema list-identities nobody-here
expect_rc 1
usage_error --schema $schema unlink-identity ivy https://other.example.test
usage_error --schema $schema list-identities
run -- --schema $schema delete-user ivy
expect_rc 0

# --- rate-limits: see who is limited, lift a lock-out ---
now_bucket="floor(extract(epoch FROM now()) / 3600)::bigint"
psql_ "INSERT INTO $schema.rate_windows (kind, client, subject, bucket, window_secs, curr_count, stale_at) VALUES
  ('login', '203.0.113.9', '', $now_bucket, 3600, 100, now() + interval '2 hours'),
  ('login', '2001:db8:1:2::/64', '', $now_bucket, 3600, 7, now() + interval '2 hours'),
  ('login', '2001:db8:1::/56', '', $now_bucket, 3600, 7, now() + interval '2 hours'),
  ('login', '2001:db8:1::/48', '', $now_bucket, 3600, 7, now() + interval '2 hours'),
  ('login_user', '198.51.100.4', sha256('mallory'::bytea), $now_bucket, 3600, 5, now() + interval '2 hours'),
  ('login_user', '198.51.100.5', sha256('mallory'::bytea), $now_bucket, 3600, 5, now() + interval '2 hours'),
  ('guest', '192.0.2.1', '', $now_bucket - 5, 3600, 9, now() - interval '1 hour')"
run -- --schema $schema rate-limits list
expect_rc 0
expect_out $'login\t203.0.113.9\t100.0\t3600'
expect_out $'login_user\t198.51.100.4\t5.0'
grep -q "192.0.2.1" "$tmp/out" && fail "a stale counter was listed"
[ "$(head -n 1 "$tmp/out" | cut -f2)" = 203.0.113.9 ] || fail "the highest count comes first"
run -- --schema $schema rate-limits list --limit 2
expect_rc 0
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "--limit 2 lists two"
run -- --schema $schema rate-limits reset 203.0.113.9
expect_rc 0
expect_last "reset: 1 counters"
run -- --schema $schema rate-limits reset 2001:db8:1:2::99
expect_rc 0
expect_last "reset: 3 counters"
run -- --schema $schema rate-limits reset mallory
expect_rc 0
expect_last "reset: 2 counters"
run -- --schema $schema rate-limits reset nobody-at-all
expect_rc 0
expect_last "reset: 0 counters"
expect_eq "$(psql_ "SELECT string_agg(kind || ' ' || client, ',') FROM $schema.rate_windows WHERE client IN ('203.0.113.9', '2001:db8:1:2::/64', '2001:db8:1::/56', '2001:db8:1::/48', '198.51.100.4', '198.51.100.5')")" "" "what reset left"
usage_error --schema $schema rate-limits
usage_error --schema $schema rate-limits reset
usage_error --schema $schema rate-limits reset a b
usage_error --schema $schema rate-limits reset 1.2.3.4 --limit 3
psql_ "DELETE FROM $schema.rate_windows"

# --- the mail outbox: what is pending or failed, and requeueing ---
psql_ "INSERT INTO $schema.outbox (message_id, to_addr, subject, body_text, attempts, next_attempt_at, failed_at, last_error, sent_at) VALUES
  ('<1@t>', 'p' || chr(64) || 'example.test', 'Pending one', 'b', 1, now() + interval '1 minute', NULL, '451 later', NULL),
  ('<2@t>', 'f' || chr(64) || 'example.test', 'Failed one', 'b', 12, now(), now(), '550 no such user', NULL),
  ('<3@t>', 's' || chr(64) || 'example.test', 'Sent one', 'b', 1, now(), NULL, NULL, now())"
run -- --schema $schema mail-queue
expect_rc 0
expect_out $'\tpending\t1\t'
expect_out $'\tfailed\t12\t'
expect_out "550 no such user"
grep -q "Sent one" "$tmp/out" && fail "a delivered mail was listed"
run -- --schema $schema mail-queue --limit 1
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "--limit 1 lists one"
run -- --schema $schema mail-retry
expect_rc 0
expect_last "requeued: 1"
expect_eq "$(psql_ "SELECT count(*) FROM $schema.outbox WHERE failed_at IS NULL AND sent_at IS NULL AND attempts = 0")" 1 "the failed mail is due again"
run -- --schema $schema mail-retry
expect_last "requeued: 0"
usage_error --schema $schema mail-retry extra
psql_ "DELETE FROM $schema.outbox"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "guestuser tool: all checks passed"
