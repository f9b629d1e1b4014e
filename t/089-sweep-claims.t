#!/usr/bin/perl
# Several servers sweep one database (sql/010): bd_upload_sweep_list()
# claims the rows it lists, so that each due row is listed to one server
# at a time.  Two servers asking at once get pages that do not meet and
# together hold every due row; one that holds its page in an open
# transaction does not make the other wait; a page another server is
# sweeping is not listed again until its claim runs out (five minutes),
# and then it is (that server died); rows not due are never listed; and
# bd_upload_sweep_delete() removes claimed rows and refunds their owners
# as before.
#
# No nginx: the database alone, each psql session standing for one
# server's sweep (the module sends each statement in autocommit).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);

use BulletDrop::Pg;
use BulletDrop::Test qw(wait_until);
use BulletDrop::Util qw(spew);

my $t = BulletDrop::Test->new;
my $pg_a = $t->pg;                                 # server A's sweep
my $pg_b = BulletDrop::Pg->new(dir => $pg_a->dir);  # server B's
my $q = \&BulletDrop::Pg::quote;

my ($owner) = map { $_->[0] } @{ $pg_a->query(
    "INSERT INTO users (username, password_hash) VALUES ('sweeper', 'x') "
    . 'RETURNING id') };

# the kinds of rows: expiry, max views, views
my %KIND = (
    expired    => [ "now() - interval '1 hour' - g * interval '1 s'",
                    'NULL', '0' ],
    spent      => [ 'NULL', '2', '2' ],
    live       => [ "now() + interval '1 hour'", 'NULL', '0' ],
    views_left => [ 'NULL', '3', '1' ],
    permanent  => [ 'NULL', 'NULL', '7' ],
);
my %DUE = (expired => 1, spent => 1);

# $n rows of a kind, ids "$tag----0000001" and on ($tag: 8 letters at
# most), their owner's usage charged as an upload charges it; returns
# their ids
sub add_rows {
    my ($tag, $n, $kind) = @_;
    my ($expires, $max, $views) = @{ $KIND{$kind} };
    my $id = "rpad('$tag', 9, '-') || lpad(g::text, 7, '0')";
    my $ours = "left(u.id, 9) = rpad('$tag', 9, '-')";

    $pg_a->query(<<"SQL");
INSERT INTO uploads (id, user_id, name, ext, category, content_type, size,
                     sha256, delete_token_hash, expires_at, max_views, views)
SELECT $id, $owner, 'f.png', 'png', 'images', 'image/png', 100 + g,
       repeat('a', 64), md5($id) || md5('$tag' || g), $expires, $max,
       $views
  FROM generate_series(1, $n) g
SQL
    $pg_a->query(<<"SQL");
INSERT INTO usage AS s (user_id, shard, bytes, files)
SELECT $owner, bd_usage_shard(u.id), sum(u.size), count(*)
  FROM uploads u WHERE $ours GROUP BY 2 ORDER BY 2
ON CONFLICT (user_id, shard)
DO UPDATE SET bytes = s.bytes + excluded.bytes,
              files = s.files + excluded.files
SQL
    return map { $_->[0] } @{ $pg_a->query(
        "SELECT u.id FROM uploads u WHERE $ours ORDER BY u.id") };
}

sub fresh {
    $pg_a->query('DELETE FROM uploads');
    $pg_a->query('DELETE FROM usage');
}

# a page as the module asks for it: the ids, in the page's order
sub page {
    my ($pg, $n) = @_;
    return map { $_->[0] } @{ $pg->query(
        "SELECT id, category, ext FROM bd_upload_sweep_list($n)") };
}

sub sorted { [ sort @_ ] }

sub overlap {
    my ($x, $y) = @_;
    my %in = map { $_ => 1 } @$x;
    return [ grep { $in{$_} } @$y ];
}

subtest 'two servers at once get pages that do not meet; a page held '
        . 'open does not make the other wait' => sub {
    fresh();
    my @due = (add_rows('exp', 20, 'expired'), add_rows('spe', 10, 'spent'));
    add_rows('live', 5, 'live');
    add_rows('left', 5, 'views_left');
    add_rows('perm', 5, 'permanent');

    # A lists its page and holds it: its transaction stays open
    $pg_a->query('BEGIN');
    my @first = page($pg_a, 12);
    is(scalar @first, 12, "A's page: the 12 it asked for");

    # B asks meanwhile; were it to wait for A's rows, the timeout ends it
    $pg_b->query("SET statement_timeout = '5s'");
    my $start = time;
    my @second = eval { page($pg_b, 100) };
    my $took = time - $start;
    is($@, '', 'B is answered while A holds its page (no lock wait)');
    cmp_ok($took, '<', 2, sprintf 'at once (%.3f s)', $took);
    cmp_ok(scalar @second, '>', 0,
           'with rows of its own (' . scalar(@second) . ')');
    is_deeply(overlap(\@first, \@second), [], 'no row in both pages');

    # A's statement locked a page of each kind and took a page of both:
    # the rows it locked and did not take are free once it commits (the
    # module's statements commit at once)
    $pg_a->query('COMMIT');
    my @third = page($pg_b, 100);
    is_deeply(overlap([ @first, @second ], \@third), [],
              "B's next page: none of the rows listed before");
    is_deeply(sorted(@first, @second, @third), sorted(@due),
              'together: every due row, and only those');

    is_deeply([ page($pg_a, 100) ], [], 'A again: nothing, all are claimed');
    is_deeply([ page($pg_b, 100) ], [], 'B again: nothing');
};

subtest 'four servers sweeping at once: each due row listed once' => sub {
    fresh();
    my @due = (add_rows('exp', 700, 'expired'),
               add_rows('spe', 300, 'spent'));
    add_rows('live', 50, 'live');
    add_rows('left', 50, 'views_left');
    add_rows('perm', 50, 'permanent');

    # each server: 30 pages of 10 in autocommit, from the same moment on
    my $GATE = 7_089_001;
    my $script = $t->dir . '/sweeper.sql';
    spew($script, join '',
         "\\o /dev/null\n",
         "SELECT pg_advisory_lock_shared($GATE);\n",
         "\\o\n",
         map { "SELECT id FROM bd_upload_sweep_list(10);\n" } 1 .. 30);

    $pg_a->query("SELECT pg_advisory_lock($GATE)");
    my @servers;
    for my $n (1 .. 4) {
        open my $fh, '-|', 'psql', '-X', '-q', '-A', '-t',
             '-v', 'ON_ERROR_STOP=1', '-d', $pg_a->conninfo, '-f', $script
            or die "psql: $!";
        push @servers, $fh;
    }
    ok(wait_until(sub {
        $pg_a->query("SELECT count(*) FROM pg_locks WHERE locktype = "
                  . "'advisory' AND objid = $GATE AND NOT granted")->[0][0]
            == 4 }), 'the four wait at the gate');
    $pg_a->query("SELECT pg_advisory_unlock($GATE)");

    my (@all, %per);
    for my $n (0 .. $#servers) {
        my @ids = grep { length } map { chomp; $_ } readline $servers[$n];
        ok(close($servers[$n]), "server ${n}'s psql succeeded");
        $per{$n} = scalar @ids;
        push @all, @ids;
    }
    note 'rows per server: ' . join ', ', map { "$_: $per{$_}" } sort keys %per;

    my %seen;
    my @twice = grep { $seen{$_}++ } @all;
    is_deeply(\@twice, [], 'no row listed to two servers (or twice to one)');
    is_deeply(sorted(@all), sorted(@due),
              'every due row listed, and only those');
    cmp_ok(scalar(grep { $per{$_} } keys %per), '>=', 2,
           'more than one server had a share');
};

subtest 'a claim lasts five minutes; one that ran out is listed again '
        . '(its server died)' => sub {
    fresh();
    my @due = (add_rows('exp', 6, 'expired'), add_rows('spe', 4, 'spent'));
    add_rows('live', 3, 'live');
    add_rows('left', 3, 'views_left');
    add_rows('perm', 3, 'permanent');

    my @first = page($pg_a, 4);
    is(scalar @first, 4, "A's page of 4");
    my $list = join ',', map { $q->($_) } @first;
    my ($min, $max) = @{ $pg_a->query(
        'SELECT min(sweep_claimed_until - now()), '
        . 'max(sweep_claimed_until - now()) '
        . "FROM uploads WHERE id IN ($list)")->[0] };
    ok($min ge '00:04:30' && $max le '00:05:00',
       "claimed for five minutes from the list ($min .. $max)");
    is($pg_a->query('SELECT count(*) FROM uploads '
                 . 'WHERE sweep_claimed_until IS NOT NULL')->[0][0], 4,
       'no other row is claimed');

    my @second = page($pg_b, 100);
    my %firsts = map { $_ => 1 } @first;
    is_deeply(sorted(@second), sorted(grep { !$firsts{$_} } @due),
              "B: the other due rows, not A's");

    # A died before deleting: its claims run out
    $pg_a->query("UPDATE uploads SET sweep_claimed_until = now() - "
              . "interval '1 s' WHERE id IN ($list)");
    is_deeply(sorted(page($pg_b, 100)), sorted(@first),
              "B, once A's claims ran out: A's rows, and only those");
    is_deeply([ page($pg_b, 100) ], [], 'and then nothing: B claimed them');

    # every claim run out, on every row, due or not: still only due rows
    $pg_a->query("UPDATE uploads SET sweep_claimed_until = now() - "
              . "interval '1 day'");
    is_deeply(sorted(page($pg_a, 100)), sorted(@due),
              'rows not due are never listed, whatever their claim');
};

subtest 'bd_upload_sweep_delete removes claimed rows and refunds their '
        . 'owner' => sub {
    fresh();
    my @due = (add_rows('exp', 8, 'expired'), add_rows('spe', 5, 'spent'));
    my @live = (add_rows('live', 4, 'live'), add_rows('left', 4, 'views_left'),
                add_rows('perm', 4, 'permanent'));

    my @mine = page($pg_a, 7);
    my @theirs = page($pg_b, 100);
    is(scalar(@mine) + scalar(@theirs), scalar @due,
       'the due rows, claimed by two servers');

    # a live row claimed (as if its expiry moved after a list): not removed
    $pg_a->query("UPDATE uploads SET sweep_claimed_until = now() + "
              . "interval '5 min' WHERE id = " . $q->($live[0]));

    my $ids = sub {
        'ARRAY[' . join(',', map { $q->($_) } @_) . ']::text[]';
    };
    is($pg_a->query('SELECT bd_upload_sweep_delete('
                 . $ids->(@mine, $live[0]) . ')')->[0][0],
       scalar @mine, "A removes its page's rows (not the live one)");
    # a server may remove rows another claimed: the claim spares work,
    # it does not guard the rows
    is($pg_b->query('SELECT bd_upload_sweep_delete('
                 . $ids->(@theirs) . ')')->[0][0],
       scalar @theirs, "B removes its page's rows");

    is_deeply([ map { $_->[0] } @{ $pg_a->query(
                  'SELECT id FROM uploads ORDER BY id') } ],
              sorted(@live), 'the live rows are left, and only they');
    is_deeply($pg_a->query(
                  'SELECT (SELECT sum(bytes) FROM usage), '
                  . '(SELECT sum(files) FROM usage), sum(size), count(*) '
                  . 'FROM uploads')->[0],
              do {
                  my $r = $pg_a->query('SELECT sum(size), count(*) '
                                    . 'FROM uploads')->[0];
                  [ @$r, @$r ];
              },
              "the owner's usage: exactly the live rows'");
};

done_testing;
