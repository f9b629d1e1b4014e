#!/usr/bin/perl
# The sweep's page: bd_upload_sweep_list(), as the module calls it (a
# prepared statement, custom or generic plan), lists the rows past their
# expiry and the rows out of views, each once, at most a page of them,
# and nothing else; and with a large backlog of due rows it reads about a
# page of rows, not the table.  Expired rows go oldest first, and a page
# holds both kinds while both wait: neither starves the other.  Since
# 010 the page is claimed as it is listed (t/089 has what claims do): the
# plan locks the rows it read and writes their claims, by id.
#
# No nginx: the database alone, as the sweep drives it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();

use BulletDrop::Test;
use BulletDrop::Util qw(run_cmd);

my $PAGE = 200;    # NGX_HTTP_BULLETDROP_SWEEP_PAGE

# the backlog, 80,000 rows: of each 8, 5 expired, 1 used up, 2 not due
my $ROWS = 80_000;

my $t = BulletDrop::Test->new;
my $pg = $t->pg;

# one session throughout: its prepared statement is the module's
$pg->query('PREPARE sweep_page(integer) AS SELECT id, category, ext '
           . 'FROM bd_upload_sweep_list($1::integer)');

my ($owner) = map { $_->[0] } @{ $pg->query(
    "INSERT INTO users (username, password_hash) VALUES ('sweeper', 'x') "
    . 'RETURNING id') };

sub page {
    my ($n) = @_;
    return $pg->query("EXECUTE sweep_page($n)");
}

subtest 'due rows are listed, each once, and nothing else' => sub {
    $pg->query('BEGIN');

    # now() is this transaction's start throughout: one of them expires
    # at exactly that moment, and is due
    my @rows = (
        # id, category, ext, expires in, max views, views, due
        [ 'expired-old-0001', 'images',    'png',  '-2 days', undef, 0, 1 ],
        [ 'expired-new-0002', 'documents', 'pdf',  '-1 min',  undef, 0, 1 ],
        [ 'expired-now-0003', 'other',     'bin',  '0',       undef, 0, 1 ],
        [ 'expired-spent-04', 'images',    'gif',  '-1 hour', 2,     2, 1 ],
        [ 'spent-noexpiry05', 'documents', 'txt',  undef,     3,     3, 1 ],
        [ 'spent-over-00006', 'other',     'webm', undef,     5,     9, 1 ],
        [ 'spent-future-007', 'images',    'jpg',  '1 day',   1,     1, 1 ],
        [ 'live-future-0008', 'images',    'png',  '1 hour',  undef, 0, 0 ],
        [ 'live-views-00009', 'documents', 'md',   undef,     3,     2, 0 ],
        [ 'live-both-000010', 'other',     'mp4',  '1 day',   3,     0, 0 ],
        [ 'permanent-000011', 'images',    'webp', undef,     undef, 9, 0 ],
    );
    my $q = \&BulletDrop::Pg::quote;
    for my $r (@rows) {
        my ($id, $cat, $ext, $in, $max, $views) = @$r;
        $pg->query(sprintf
            'INSERT INTO uploads (id, user_id, name, ext, category, '
            . 'content_type, size, sha256, delete_token_hash, expires_at, '
            . "max_views, views) VALUES (%s, %d, %s, %s, %s, 'text/plain', "
            . "1, repeat('a', 64), md5(%s) || md5(%s), %s, %s, %d)",
            $q->($id), $owner, $q->("$id.$ext"), $q->($ext), $q->($cat),
            $q->($id), $q->("$id!"),
            defined $in ? "now() + interval '$in'" : 'NULL',
            $max // 'NULL', $views);
    }

    # a page claims its rows (010): the short one is taken back
    $pg->query('SAVEPOINT short');
    is(scalar @{ page(3) }, 3, 'at most the page asked for');
    $pg->query('ROLLBACK TO SAVEPOINT short');
    is(scalar @{ page(0) }, 0, 'a page of none: none');

    my $listed = page(1000);
    my %want = map { $_->[0] => "$_->[1] $_->[2]" } grep { $_->[6] } @rows;
    my %got;
    $got{ $_->[0] }++ for @$listed;
    is_deeply({ map { $_->[0] => "$_->[1] $_->[2]" } @$listed }, \%want,
              'the expired and the used-up rows, with category and ext; '
              . 'not the live or permanent ones');
    is(scalar @$listed, scalar keys %want,
       'a row both expired and used up is listed once')
        or diag explain \%got;

    $pg->query('ROLLBACK');
};

# The backlog: the kinds mixed on disk, and expiry in no order there (as
# uploads of many lifetimes arrive).  Expired rows have no view limit,
# used-up ones no expiry or a later one, so that each row is of one kind.
# Not due: permanent, expiring later, or with views left.
$pg->query(<<"SQL");
INSERT INTO uploads (id, user_id, name, ext, category, content_type, size,
                     sha256, delete_token_hash, expires_at, max_views, views)
SELECT lpad(to_hex(g), 16, '0'), $owner, 'f.png', 'png', 'images',
       'image/png', 1000, md5(g::text) || md5(g::text),
       md5(g::text) || md5((-g)::text),
       CASE WHEN g % 8 < 5
            THEN now() - (hashint4(g) & 2097151) * interval '1 s'
            WHEN g % 2 = 0
            THEN now() + interval '1 hour'
                 + (hashint4(g) & 2097151) * interval '1 s'
       END,
       CASE WHEN g % 8 = 5 THEN 3 WHEN g % 8 > 5 AND g % 3 = 0 THEN 3 END,
       CASE WHEN g % 8 = 5 THEN 3 WHEN g % 8 > 5 THEN g % 3 ELSE 0 END
  FROM generate_series(1, $ROWS) g
SQL
$pg->query('ANALYZE uploads');

my ($pages) = map { $_->[0] } @{ $pg->query(
    "SELECT pg_relation_size('uploads') / 8192") };
note "uploads: $ROWS rows in $pages pages";

# every plan node, depth first
sub nodes {
    my ($node) = @_;
    return ($node, map { nodes($_) } @{ $node->{Plans} // [] });
}

sub buffers {
    my ($node) = @_;
    return $node->{'Shared Hit Blocks'} + $node->{'Shared Read Blocks'};
}

# The page as the module asks for it, in one transaction rolled back
# (its claims with it): (the plan of the function's statement, the rows
# of the answer, and this backend's counts for uploads before and after,
# exact within a transaction).  The function writes, so PostgreSQL runs
# it as a call, not inlined, and its statement's plan is seen through
# auto_explain, which takes a superuser's session.  A page measured
# before, rolled back, left a dead version of each row it claimed, and
# their index entries, which the next page's index scans would step over
# (once: they mark them dead): vacuumed first, as they would be in time,
# indexes too (VACUUM skips them for a few dead rows).
sub page_plan {
    my ($mode) = @_;

    my $counts = 'SELECT seq_scan, seq_tup_read, idx_tup_fetch '
                 . 'FROM pg_stat_xact_user_tables '
                 . "WHERE relname = 'uploads'";
    my ($status, $out, $err) = run_cmd(
        [ 'psql', '-X', '-q', '-A', '-t', '-F', "\t",
          '-v', 'ON_ERROR_STOP=1',
          '-d', $pg->conninfo(user => 'postgres'), '-f', '-' ],
        check => 0, stdin => <<"SQL");
LOAD 'auto_explain';
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_format = json;
SET auto_explain.log_level = notice;
SET plan_cache_mode = $mode;
VACUUM (INDEX_CLEANUP ON) uploads;
PREPARE sweep_page(integer) AS SELECT id, category, ext
    FROM bd_upload_sweep_list(\$1::integer);
BEGIN;
$counts;
SET auto_explain.log_min_duration = 0;
\\o /dev/null
EXECUTE sweep_page($PAGE);
\\o
SET auto_explain.log_min_duration = -1;
$counts;
ROLLBACK;
SQL
    die "psql failed:\n$err$out" if $status;

    # the function's statement, which ends first; then the EXECUTE
    my ($inner, $outer, @more) =
        map { JSON::PP::decode_json($_) }
        $err =~ /NOTICE:\s+duration: \S+ ms\s+plan:\n(\{\n.*?^\})$/msg;
    die "not two plans from auto_explain:\n$err" if !$outer || @more;

    my ($before, $after) = map { [ split /\t/, $_, -1 ] } split /\n/, $out;
    return ($inner->{Plan}, $outer->{Plan}{'Actual Rows'}, $before, $after);
}

for my $mode (qw(force_custom_plan force_generic_plan)) {
    subtest "a page reads a page's worth of rows, not the table "
            . "($mode)" => sub {
        my ($plan, $rows, $before, $after) = page_plan($mode);

        my ($seq, $seq_read, $fetched) =
            map { ($after->[$_] || 0) - ($before->[$_] || 0) } 0 .. 2;
        my @nodes = nodes($plan);
        my @scans = map { "$_->{'Node Type'} on $_->{'Relation Name'}"
                          . ($_->{'Index Name'} ? " ($_->{'Index Name'})"
                                                : '') }
                    grep { ($_->{'Relation Name'} // '') eq 'uploads'
                           && $_->{'Node Type'} =~ /Scan/ } @nodes;
        my @locks = grep { $_->{'Node Type'} eq 'LockRows' } @nodes;
        my @ranges = map { @{ $_->{Plans} } } @locks;
        my ($update) = grep { ($_->{'Operation'} // '') eq 'Update' } @nodes;
        my ($read, $locked, $locking) = (0, 0, 0);
        $read += buffers($_) for @ranges;
        $locked += $_->{'Actual Rows'} for @locks;
        $locking += buffers($_) for @locks;
        $locking -= $read;

        my $ok = is($rows, $PAGE, "a full page: $PAGE rows");
        $ok = is($seq, 0, 'no sequential scan of uploads') && $ok;
        $ok = is_deeply([ sort @scans ],
                        [ 'Index Scan on uploads (uploads_limited)',
                          'Index Scan on uploads (uploads_pkey)',
                          'Index Scan on uploads (uploads_spent)' ],
                        'the expired by expiry, the used-up by their '
                        . 'index, the claimed page by id') && $ok;
        $ok = cmp_ok($fetched + $seq_read, '<=', 3 * $PAGE + 2,
                     'rows read from uploads: at most a page of each kind, '
                     . 'and the page again to claim it') && $ok;
        $ok = cmp_ok($read, '<=', 4 * $PAGE,
                     "buffers read by the two ranges: at most 4 a row "
                     . "($pages in the table)") && $ok;
        # the row's page, and the visibility map's (its row is no longer
        # frozen)
        $ok = cmp_ok($locking, '<=', 2 * $locked + 2,
                     "buffers touched to lock the $locked rows: at most 2 "
                     . 'a row') && $ok;
        $ok = is($update->{'Actual Rows'}, $PAGE, 'the page is claimed')
              && $ok;
        # a new version of each row, and its entries in the five indexes
        # (the pages are full: no HOT update)
        $ok = cmp_ok(buffers($update), '<=', 32 * $PAGE,
                     'buffers touched to claim: at most 32 a row') && $ok;
        note "plan: @scans; buffers: $read to read, $locking to lock "
             . "$locked, " . buffers($update) . ' to claim, ' . buffers($plan)
             . " in all; rows: $fetched by index, $seq_read in sequence; "
             . "$plan->{'Actual Total Time'} ms";
        diag(JSON::PP->new->pretty->canonical->encode($plan)) unless $ok;
    };
}

subtest 'a page holds both kinds, the oldest expired first, and the next '
        . 'page moves on' => sub {
    my $kinds = sub {
        my ($ids) = @_;
        my $list = join ',', map { BulletDrop::Pg::quote($_) } @$ids;
        return $pg->query(<<"SQL")->[0];
SELECT count(*) FILTER (WHERE u.expires_at <= now()),
       count(*) FILTER (WHERE u.views >= u.max_views),
       count(*) FILTER (WHERE NOT (coalesce(u.expires_at <= now(), false)
                                   OR coalesce(u.views >= u.max_views,
                                               false))),
       (SELECT max(expires_at) FROM uploads
         WHERE expires_at <= now() AND id IN ($list))
         <= (SELECT min(expires_at) FROM uploads
              WHERE expires_at <= now() AND id NOT IN ($list))
  FROM uploads u WHERE u.id IN ($list)
SQL
    };

    my @first = map { $_->[0] } @{ page($PAGE) };
    is(scalar @first, $PAGE, "a full page of $PAGE");
    my %seen = map { $_ => 1 } @first;
    is(scalar keys %seen, $PAGE, 'each row once');

    my ($expired, $spent, $neither, $oldest) = @{ $kinds->(\@first) };
    cmp_ok($expired, '>=', $PAGE / 4, "expired rows in it ($expired)");
    cmp_ok($spent, '>=', $PAGE / 4, "used-up rows in it ($spent)");
    is($neither, 0, 'no row that is not due');
    is($oldest, 't', 'its expired rows are the oldest ones');

    my ($removed) = map { $_->[0] } @{ $pg->query(
        'SELECT bd_upload_sweep_delete(ARRAY['
        . join(',', map { BulletDrop::Pg::quote($_) } @first)
        . ']::text[])') };
    is($removed, $PAGE, 'the page is deleted');

    my @next = map { $_->[0] } @{ page($PAGE) };
    is(scalar @next, $PAGE, 'the next page is full too');
    is(scalar(grep { $seen{$_} } @next), 0, 'with none of the first');
    ($expired, $spent, $neither, $oldest) = @{ $kinds->(\@next) };
    ok($expired >= $PAGE / 4 && $spent >= $PAGE / 4 && !$neither
       && $oldest eq 't', 'again both kinds, the oldest expired first');
};

done_testing;
