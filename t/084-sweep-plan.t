#!/usr/bin/perl
# The sweep's page: bd_upload_sweep_list(), as the module calls it (a
# prepared statement, custom or generic plan), lists the rows past their
# expiry and the rows out of views, each once, at most a page of them,
# and nothing else; and with a large backlog of due rows it reads about a
# page of rows, not the table.  Expired rows go oldest first, and a page
# holds both kinds while both wait: neither starves the other.
#
# No nginx: the database alone, as the sweep drives it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();

use BulletDrop::Test;

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

    is(scalar @{ page(3) }, 3, 'at most the page asked for');
    is(scalar @{ page(0) }, 0, 'a page of none: none');

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

for my $mode (qw(force_custom_plan force_generic_plan)) {
    subtest "a page reads a page's worth of rows, not the table "
            . "($mode)" => sub {
        # this backend's counts for the table, exact within a transaction
        # (they reach the shared statistics only between transactions)
        my $counts = sub {
            $pg->query('SELECT seq_scan, seq_tup_read, idx_tup_fetch '
                       . 'FROM pg_stat_xact_user_tables '
                       . "WHERE relname = 'uploads'")->[0];
        };

        $pg->query("SET plan_cache_mode = $mode");
        $pg->query('BEGIN');
        my $before = $counts->();
        my $json = join "\n", map { $_->[0] } @{ $pg->query(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
            . "EXECUTE sweep_page($PAGE)") };
        my $after = $counts->();
        $pg->query('ROLLBACK');
        $pg->query('RESET plan_cache_mode');

        my $plan = JSON::PP::decode_json($json)->[0]{Plan};
        my ($seq, $seq_read, $fetched) =
            map { ($after->[$_] || 0) - ($before->[$_] || 0) } 0 .. 2;
        my $buffers = $plan->{'Shared Hit Blocks'}
                      + $plan->{'Shared Read Blocks'};
        my @scans = map { "$_->{'Node Type'} on $_->{'Relation Name'}"
                          . ($_->{'Index Name'} ? " ($_->{'Index Name'})"
                                                : '') }
                    grep { ($_->{'Relation Name'} // '') eq 'uploads' }
                    nodes($plan);

        my $ok = is($plan->{'Actual Rows'}, $PAGE,
                    "a full page: $PAGE rows");
        $ok = is($seq, 0, 'no sequential scan of uploads') && $ok;
        $ok = cmp_ok($fetched + $seq_read, '<=', 2 * $PAGE + 2,
                     'rows read from uploads: at most a page of each kind')
              && $ok;
        $ok = cmp_ok($buffers, '<=', 4 * $PAGE,
                     "buffers touched: at most 4 a row ($pages in the "
                     . 'table)') && $ok;
        note "plan: @scans; $buffers buffers; rows: $fetched by index, "
             . "$seq_read in sequence; $plan->{'Actual Total Time'} ms";
        diag $json unless $ok;
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
