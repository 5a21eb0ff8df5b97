#!/usr/bin/env bash
# Local PostgreSQL and MariaDB for patronkit's database test matrix
# (internal/dbtest).
#
#   source .ci/databases.sh        # start the servers, export the DSNs here
#   eval "$(bash .ci/databases.sh)"  # the same from any POSIX-ish shell
#
# Installs postgresql and mariadb-server from Debian when missing, starts them
# with `service` (no systemd needed), waits until they answer, and creates,
# idempotently, a login that works over TCP on 127.0.0.1:
#   - PostgreSQL: role patronkit (password patronkit, CREATEDB) owning the
#     UTF-8 database patronkit_test;
#   - MariaDB: 'patronkit'@'127.0.0.1' and 'patronkit'@'localhost' (password
#     patronkit) with ALL on *.*, since every test creates its own database,
#     and a database patronkit_test.
# It then exports PATRONKIT_TEST_POSTGRES_DSN and PATRONKIT_TEST_MYSQL_DSN.
#
# Executed, the script does the setup and prints `export ...` lines on
# stdout (everything else goes to stderr). Sourced, it runs itself as a child
# process, so the caller's shell options are left alone, and evaluates those
# lines. Safe to run any number of times. Needs root or sudo.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
	# Sourced.
	if _patronkit_db_exports=$(bash "${BASH_SOURCE[0]}"); then
		eval "$_patronkit_db_exports"
		unset _patronkit_db_exports
		echo "databases.sh: exported PATRONKIT_TEST_POSTGRES_DSN and PATRONKIT_TEST_MYSQL_DSN" >&2
		return 0
	else
		unset _patronkit_db_exports
		echo "databases.sh: database setup failed" >&2
		return 1
	fi
fi

set -euo pipefail

# stdout carries only the export lines; all chatter goes to stderr.
exec 3>&1 1>&2
cd /

readonly DB_USER=patronkit
readonly DB_PASSWORD=patronkit
readonly DB_NAME=patronkit_test
readonly MYSQL_PORT=3306

log() { echo "databases.sh: $*"; }
die() {
	echo "databases.sh: error: $*"
	exit 1
}

if [[ $(id -u) -eq 0 ]]; then
	as_root() { "$@"; }
	as_postgres() { runuser -u postgres -- "$@"; }
else
	command -v sudo >/dev/null || die "run as root (or install sudo)"
	as_root() { sudo "$@"; }
	as_postgres() { sudo -u postgres "$@"; }
fi

installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# wait_for SECONDS COMMAND...: retry COMMAND once a second until it succeeds.
wait_for() {
	local seconds=$1
	shift
	local i
	for ((i = 0; i < seconds; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

# start_service NAME: `service NAME start`, with the daemon detached from
# every file descriptor we hold. A server that inherited a pipe (our stdout
# captured by a sourcing shell, or the caller's own output) would keep it
# open for as long as it runs, and whoever reads that pipe would wait for
# end-of-file forever.
start_service() {
	local out status=0
	out=$(mktemp)
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			if ((fd > 2 && fd != 255)); then
				eval "exec $fd>&-"
			fi
		done
		as_root service "$1" start
	) </dev/null >"$out" 2>&1 || status=$?
	cat "$out"
	rm -f "$out"
	return "$status"
}

# --- install ---------------------------------------------------------------

missing=()
for pkg in postgresql mariadb-server; do
	installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	as_root apt-get update </dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql mariadb-server </dev/null
fi

# --- PostgreSQL ------------------------------------------------------------

if [[ -z $(pg_lsclusters -h 2>/dev/null) ]]; then
	pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n 1)
	[[ -n $pg_version ]] || die "no PostgreSQL server under /usr/lib/postgresql"
	log "creating PostgreSQL $pg_version cluster main"
	as_root pg_createcluster --locale C.UTF-8 "$pg_version" main </dev/null
fi
start_service postgresql
# The first cluster listed is the one the tests use.
read -r pg_version pg_cluster pg_port _ < <(pg_lsclusters -h | head -n 1)
if ! wait_for 60 pg_isready -q -h 127.0.0.1 -p "$pg_port" -t 2; then
	tail -n 30 "/var/log/postgresql/postgresql-$pg_version-$pg_cluster.log" || true
	die "PostgreSQL $pg_version/$pg_cluster did not answer on 127.0.0.1:$pg_port"
fi
log "PostgreSQL $pg_version/$pg_cluster is up on 127.0.0.1:$pg_port"

psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres "$@" </dev/null; }

psql_admin -c "DO \$\$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '$DB_USER') THEN
		CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
	ELSE
		ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
	END IF;
END
\$\$;"
pg_encoding=$(psql_admin -Atc "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '$DB_NAME'")
if [[ -n $pg_encoding && $pg_encoding != UTF8 ]]; then
	# A cluster initialised under the C locale makes SQL_ASCII databases.
	log "dropping $DB_NAME: encoding $pg_encoding, not UTF8"
	psql_admin -c "DROP DATABASE $DB_NAME"
	pg_encoding=
fi
if [[ -z $pg_encoding ]]; then
	psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0"
fi
psql_admin -c "ALTER DATABASE $DB_NAME OWNER TO $DB_USER"
PGPASSWORD=$DB_PASSWORD psql -X -q -h 127.0.0.1 -p "$pg_port" -U "$DB_USER" -d "$DB_NAME" -Atc 'SELECT 1' </dev/null >/dev/null ||
	die "$DB_USER cannot log in to PostgreSQL over TCP"

# --- MariaDB ---------------------------------------------------------------

start_service mariadb
# mariadb-admin ping succeeds as soon as the server answers, even when the
# login itself is refused.
if ! wait_for 60 as_root mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" ping; then
	tail -n 30 /var/log/mysql/error.log 2>/dev/null || true
	die "MariaDB did not answer on 127.0.0.1:$MYSQL_PORT"
fi
log "MariaDB is up on 127.0.0.1:$MYSQL_PORT"

# root logs in through the unix socket (unix_socket authentication).
as_root mariadb -uroot </dev/null -e "
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';
CREATE DATABASE IF NOT EXISTS $DB_NAME CHARACTER SET utf8mb4;
FLUSH PRIVILEGES;"
mariadb --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u "$DB_USER" -p"$DB_PASSWORD" "$DB_NAME" -e 'SELECT 1' </dev/null >/dev/null ||
	die "$DB_USER cannot log in to MariaDB over TCP"

# --- exports ---------------------------------------------------------------

printf 'export %s=%q\n' \
	PATRONKIT_TEST_POSTGRES_DSN "postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$pg_port/$DB_NAME?sslmode=disable" \
	PATRONKIT_TEST_MYSQL_DSN "$DB_USER:$DB_PASSWORD@tcp(127.0.0.1:$MYSQL_PORT)/$DB_NAME" >&3
