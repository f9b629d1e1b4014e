#!/bin/bash
# BulletDrop sweep benchmark: the sweep's page, bd_upload_sweep_list(200)
# sent as the module sends it (a prepared statement), on tables of a
# million rows, with the migrations up to 007 and the same database
# migrated to 008; then what 008 costs the statements that write views.
# See bench/README.md.
#
#   bench/sweep.sh                                # about six minutes
#   BENCH_SCENARIOS=expired BENCH_VIEWS=0 bench/sweep.sh
#
# Needs PostgreSQL's server binaries (make deps) and, as root, the postgres
# user.  Runs its own cluster on a Unix socket in a temp directory, and
# leaves nothing running or on disk.  No nginx: files are not unlinked,
# only the rows listed and deleted.

set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ROWS=${BENCH_ROWS:-1000000}       # rows of each table
PAGE=${BENCH_PAGE:-200}           # NGX_HTTP_BULLETDROP_SWEEP_PAGE
LIST=${BENCH_LIST:-10}            # seconds of listing the same page
DRAIN=${BENCH_DRAIN:-10}          # seconds of listing and deleting pages
BEFORE=${BENCH_BEFORE:-7}         # the migrations of "before"
AFTER=${BENCH_AFTER:-8}           # and of "after"
SCENARIOS=${BENCH_SCENARIOS-expired,spent,few}    # '': none
VIEWS=${BENCH_VIEWS:-200000}      # rows of the views' table (0: none)
CALLS=${BENCH_CALLS:-2000}        # calls of each views statement a round
ROUNDS=${BENCH_ROUNDS:-3}         # rounds of the views' part

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -1)
for tool in "$bin/initdb" "$(command -v pgbench)" "$(command -v psql)"; do
    [ -x "$tool" ] || { echo "bench: PostgreSQL is missing (make deps)" >&2
                        exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/bulletdrop-sweep-XXXXXX")
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    as_pg=(runuser -u postgres --)
fi

stop() {
    [ -f "$dir/data/postmaster.pid" ] &&
        "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
            >/dev/null 2>&1
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
# the test suite's settings (Pg.pm); the rest are the defaults
cat >> "$dir/data/postgresql.auto.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
timezone = 'UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/log" -w start \
    >/dev/null

export PGHOST=$dir PGUSER=postgres
psql() { command psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# migration directories: sql/ up to a version
for n in "$BEFORE" "$AFTER"; do
    mkdir "$dir/sql$n"
    for f in "$top"/sql/[0-9]*_*.sql; do
        v=$(basename "$f"); v=$((10#${v%%_*}))
        [ "$v" -le "$n" ] && ln -s "$f" "$dir/sql$n/"
    done
done

migrate() {    # db, version
    perl -I"$top/t/lib" -MBulletDrop::Migrate -e '
        BulletDrop::Migrate::apply(conninfo => $ARGV[0], dir => $ARGV[1],
                                   log => sub {})' \
        "host=$dir dbname=$1 user=postgres" "$dir/sql$2"
}

# expired, spent, live rows; in an order on disk unrelated to expiry, as
# uploads of many lifetimes arrive.  Expired rows have no view limit;
# spent ones no expiry or a later one; live ones are permanent, expire
# later, or have views left.
fill() {    # db, expired, spent, live
    psql -d "$1" -v e="$2" -v s="$3" -v l="$4" <<'SQL'
INSERT INTO users (username, password_hash) VALUES ('bench', 'x');
INSERT INTO uploads (id, user_id, name, ext, category, content_type, size,
                     sha256, delete_token_hash, expires_at, max_views, views)
SELECT lpad(to_hex(g), 16, '0'), (SELECT id FROM users), 'f.png', 'png',
       'images', 'image/png', 1000, md5(g::text) || md5(g::text),
       md5(g::text) || md5((-g)::text),
       CASE WHEN k = 'e' THEN now() - (hashint4(g) & 2097151) * interval '1 s'
            WHEN g % 2 = 0 THEN now() + interval '1 hour'
                                + (hashint4(g) & 2097151) * interval '1 s'
       END,
       CASE k WHEN 's' THEN 3 WHEN 'l' THEN (CASE WHEN g % 3 = 0 THEN 3 END)
       END,
       CASE k WHEN 's' THEN 3 WHEN 'l' THEN g % 3 ELSE 0 END
  FROM (SELECT g, CASE WHEN g <= :e THEN 'e' WHEN g <= :e + :s THEN 's'
                       ELSE 'l' END AS k
          FROM generate_series(1, :e + :s + :l) g) s
 ORDER BY hashint4(g + 1);
SQL
    psql -d "$1" -c 'VACUUM ANALYZE uploads'
}

# what the module sends, and what its sweep does with the answer
cat > "$dir/list.sql" <<EOF
\set page $PAGE
SELECT id, category, ext FROM bd_upload_sweep_list(:page::integer);
EOF
cat > "$dir/drain.sql" <<EOF
\set page $PAGE
SELECT coalesce(string_agg(id, ','), '') AS ids
  FROM (SELECT id, category, ext FROM bd_upload_sweep_list(:page::integer)) p
\gset
SELECT bd_upload_sweep_delete(('{' || :ids || '}')::text[]);
EOF

# pgbench's per-transaction log (one client: in order), in ms: "median
# max median-of-the-first-ten median-of-the-last-ten"
latencies() {
    awk '{print $3 / 1000}' "$dir"/log.* > "$dir/ms"
    rm -f "$dir"/log.*
    printf '%s %s %s %s' \
        "$(sort -n "$dir/ms" | median)" \
        "$(sort -n "$dir/ms" | tail -1 | median)" \
        "$(head -10 "$dir/ms" | sort -n | median)" \
        "$(tail -10 "$dir/ms" | sort -n | median)"
}
median() { awk '{a[NR] = $1} END {printf "%.1f", a[int((NR + 1) / 2)]}'; }

# the scans of the plan the prepared statement settles on (after five
# custom plans), and the buffers of one page
plan() {
    psql -d "$1" <<SQL | grep -E 'Scan|Buffers' | head -20 |
PREPARE s(integer) AS
    SELECT id, category, ext FROM bd_upload_sweep_list(\$1::integer);
\o /dev/null
EXECUTE s($PAGE); EXECUTE s($PAGE); EXECUTE s($PAGE);
EXECUTE s($PAGE); EXECUTE s($PAGE); EXECUTE s($PAGE);
\o
EXPLAIN (ANALYZE, BUFFERS, COSTS off, TIMING off) EXECUTE s($PAGE);
SQL
        awk '/Buffers/ && !b { b = $0; sub(/.*Buffers: /, "", b) }
             /Scan/ && !/Subquery/ { s = $0; sub(/^ *(-> *)?/, "", s);
                      sub(/ *\(actual.*/, "", s); sub(/ u(_[0-9])?$/, "", s);
                      scans = scans (scans ? "; " : "") s }
             END { print scans " (" b ")" }'
}

measure() {    # db, label
    local n0 n1 t0 t1 list del first last rate
    plan=$(plan "$1")

    pgbench -n -M prepared -c 1 -T "$LIST" -f "$dir/list.sql" \
        -l --log-prefix="$dir/log" "$1" >/dev/null 2>&1
    read -r list_med list_max _ <<<"$(latencies)"

    n0=$(psql -d "$1" -c 'SELECT count(*) FROM uploads')
    t0=$(date +%s.%N)
    pgbench -n -M prepared -c 1 -T "$DRAIN" -f "$dir/drain.sql" -r \
        -l --log-prefix="$dir/log" "$1" > "$dir/drain.out" 2>&1
    t1=$(date +%s.%N)
    n1=$(psql -d "$1" -c 'SELECT count(*) FROM uploads')
    read -r drain_med drain_max first last <<<"$(latencies)"
    # a drain that ran out of due rows says nothing of a rate
    rate=-
    if [ "$(psql -d "$1" -c 'SELECT count(*) FROM bd_upload_sweep_list(1)')" \
         != 0 ]; then
        rate=$(awk -v n=$((n0 - n1)) -v a="$t0" -v b="$t1" 'BEGIN {
                   printf "%d", n / (b - a) }')
    fi
    list=$(awk '/SELECT coalesce/ {print $1}' "$dir/drain.out")
    del=$(awk '/bd_upload_sweep_delete/ {print $1}' "$dir/drain.out")

    printf '%-8s %-4s %9s %9s %9s %10s %10s %8s %9s\n' "$scenario" "$2" \
        "$list_med" "$list_max" \
        "$(awk -v p="$PAGE" -v m="$list_med" 'BEGIN {
             printf "%d", (m > 0) ? p * 1000 / m : 0 }')" \
        "$drain_med" "$drain_max" "$((n0 - n1))" "$rate"
    echo "              drain: mean ms of each statement: list $list," \
         "delete $del; a page's median: first ten $first ms, last ten" \
         "$last ms"
    echo "              plan: $plan"
}

echo "sweep benchmark: PostgreSQL" \
     "$(psql -d postgres -c 'SHOW server_version'), $(nproc) cores," \
     "pages of $PAGE, $ROWS rows a table;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "list: the same page, again, for ${LIST}s: ms a page (median, max)," \
     "rows/s at the median"
echo "drain: list a page and delete its rows, again, for ${DRAIN}s: ms a" \
     "page (median, max), rows deleted, rows/s"
echo
printf '%-8s %-4s %9s %9s %9s %10s %10s %8s %9s\n' scenario sql \
    "list med" "list max" "list r/s" "drain med" "drain max" deleted \
    "drain r/s"

IFS=, read -r -a scenarios <<<"$SCENARIOS"
for scenario in "${scenarios[@]}"; do
    case $scenario in
        expired) counts="$ROWS 0 0" ;;
        spent)   counts="0 $ROWS 0" ;;
        few)     counts="$((PAGE / 2)) $((PAGE / 2)) $ROWS" ;;
        *) echo "bench: no scenario $scenario" >&2; exit 1 ;;
    esac

    psql -d postgres -c "CREATE DATABASE filled"
    migrate filled "$BEFORE"
    # shellcheck disable=SC2086
    fill filled $counts

    psql -d postgres -c \
        "CREATE DATABASE run TEMPLATE filled STRATEGY FILE_COPY"
    measure run "$(printf '%03d' "$BEFORE")"
    psql -d postgres -c "DROP DATABASE run"

    psql -d postgres -c \
        "CREATE DATABASE run TEMPLATE filled STRATEGY FILE_COPY"
    t0=$(date +%s.%N)
    migrate run "$AFTER"
    t1=$(date +%s.%N)
    measure run "$(printf '%03d' "$AFTER")"
    echo "              migrating to $(printf '%03d' "$AFTER") took" \
         "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    psql -d postgres -c "DROP DATABASE run" -c "DROP DATABASE filled"
done

[ "$VIEWS" -gt 0 ] || {
    echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    exit 0
}

# The views' side: the index of used-up rows has `views` in its condition,
# so that an update of a row's views is no longer a HOT update.  Measured
# on the two statements that write views: a worker's counts of files
# without a limit (bd_upload_views(), here 50 rows a call), and a view
# batch of a limited file (bd_upload_view_batch(), one row, the module's
# lease of 64); and an upload's commit (bd_upload_commit_batch(), one
# row), which has one more index to consider.  Of every 4 rows: 3 without a limit (permanent, or
# expiring in a month), 1 with views left.  Autovacuum is off on the
# table, so that the figures are the statements' own; a non-HOT update
# leaves more for VACUUM besides (its index entries).
psql -d postgres -c "CREATE DATABASE filled"
migrate filled "$BEFORE"
psql -d filled -v n="$VIEWS" <<'SQL'
INSERT INTO users (username, password_hash) VALUES ('bench', 'x');
INSERT INTO uploads (id, user_id, name, ext, category, content_type, size,
                     sha256, delete_token_hash, expires_at, max_views, views)
SELECT lpad(to_hex(g), 16, '0'), (SELECT id FROM users), 'f.png', 'png',
       'images', 'image/png', 1000, md5(g::text) || md5(g::text),
       md5(g::text) || md5((-g)::text),
       CASE WHEN g % 4 = 2 THEN now() + interval '30 days' END,
       CASE WHEN g % 4 = 0 THEN 1000000000 END, 0
  FROM generate_series(1, :n) g;
ALTER TABLE uploads SET (autovacuum_enabled = false);
VACUUM ANALYZE uploads;
SQL

# rows 4k + 1 to 4k + 3 have no limit, rows 4k a limit
free=$((VIEWS / 4 * 3)) limited=$((VIEWS / 4))
cat > "$dir/flush.sql" <<EOF
\set i random(0, $((free - 1)))
SELECT bd_upload_views(array_agg(lpad(to_hex(n / 3 * 4 + n % 3 + 1), 16,
                                      '0')),
                       array_agg(1::bigint))
  FROM (SELECT (:i + k * $((free / 50 - 1))) % $free AS n
          FROM generate_series(1, 50) k) s;
EOF
cat > "$dir/batch.sql" <<EOF
\set m random(1, $limited)
SELECT * FROM bd_upload_view_batch(ARRAY[lpad(to_hex(:m * 4), 16, '0')],
                                   ARRAY[true], 64);
EOF

cat > "$dir/commit.sql" <<EOF
\set n random(1, 999999999999999)
SELECT * FROM bd_upload_commit_batch(
    ARRAY[lpad(to_hex(:n::bigint), 16, 'x')], ARRAY[1]::bigint[],
    ARRAY['new.png'], ARRAY['png'], ARRAY['images'], ARRAY['image/png'],
    ARRAY[1000]::bigint[], ARRAY[repeat('a', 64)],
    ARRAY[md5(:n::text) || md5((:n::bigint + 1)::text)],
    ARRAY[4e9]::float8[], ARRAY[NULL]::text[], ARRAY[1]::bigint[],
    ARRAY[NULL]::text[], ARRAY[NULL]::float8[], ARRAY[NULL]::integer[]);
EOF

# the CPU time of the whole cluster, in clock ticks: the postmaster, the
# children it has reaped (backends that ended), and those alive
ticks() {
    local pm t c
    pm=$(head -1 "$dir/data/postmaster.pid")
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
    for c in $(cat "/proc/$pm/task/"*/children); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null ||
                   echo 0)))
    done
    echo "$t"
}

updates() {    # db: "updates HOT-updates" of uploads
    psql -d "$1" -F ' ' -c "SELECT n_tup_upd, n_tup_hot_upd
                              FROM pg_stat_user_tables
                             WHERE relname = 'uploads'"
}

writes() {    # db, script, rows a call: "us/row WAL-bytes/row HOT%"
    local c0 c1 w0 w1 u0 u1 h0 h1
    psql -d "$1" -c 'CHECKPOINT'
    read -r u0 h0 <<<"$(updates "$1")"
    w0=$(psql -d "$1" -c 'SELECT pg_current_wal_lsn()')
    # a backend's time reaches the postmaster's account when it has ended
    # and been reaped: no psql between the two counts, and time to end
    sleep 1
    c0=$(ticks)
    pgbench -n -M prepared -c 1 -t "$CALLS" -f "$dir/$2" "$1" >/dev/null
    sleep 1
    c1=$(ticks)
    w1=$(psql -d "$1" -c 'SELECT pg_current_wal_lsn()')
    read -r u1 h1 <<<"$(updates "$1")"
    awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$CALLS" \
        -v r="$3" -v u=$((u1 - u0)) -v h=$((h1 - h0)) \
        -v w="$(psql -d "$1" -c "SELECT pg_wal_lsn_diff('$w1', '$w0')")" \
        'BEGIN { printf "%7.1f %9.0f %5.0f%%", c * 1e6 / hz / n / r,
                        w / n / r, u ? 100 * h / u : 0 }'
}

echo
echo "views: PostgreSQL's CPU (the whole cluster's) and WAL a row" \
     "updated, and the share of HOT updates; $VIEWS rows, $CALLS calls"
printf '%-5s %-4s   %-24s   %-24s   %s\n' round sql \
    "bd_upload_views(), 50" "bd_upload_view_batch(), 1" "commit, 1"
printf '%-5s %-4s %7s %9s %6s %7s %9s %6s %7s %9s\n' "" "" \
    us/row "WAL B/row" HOT us/row "WAL B/row" HOT us/row "WAL B/row"
for round in $(seq "$ROUNDS"); do
    for n in "$BEFORE" "$AFTER"; do
        psql -d postgres -c \
            "CREATE DATABASE run TEMPLATE filled STRATEGY FILE_COPY"
        [ "$n" = "$BEFORE" ] || migrate run "$n"
        printf '%-5s %-4s %s %s %s\n' "$round" "$(printf '%03d' "$n")" \
            "$(writes run flush.sql 50)" "$(writes run batch.sql 1)" \
            "$(writes run commit.sql 1 | awk '{printf "%7s %9s", $1, $2}')"
        psql -d postgres -c "DROP DATABASE run"
    done
done
psql -d postgres -c "DROP DATABASE filled"

echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
