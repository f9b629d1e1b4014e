#!/usr/bin/perl
# Limits on a file: an expiry (X-BulletDrop-Expires: a duration, an RFC
# 3339 time or never; bulletdrop_default_expiry for uploads without one)
# and a view limit (X-BulletDrop-Max-Views).  Bad values are refused
# before the body is read.  A file with a view limit is never cached, one
# with an expiry never past it (t/085); either is a 404 from the moment it
# expires or its views run out, whatever the sweep has done yet;
# burn-after-read lets exactly one viewer in, however many come at once,
# and removes the file right after.  Views of other files are counted in
# batches: a GET, or a range from byte 0, is a view; a HEAD or a later
# range is not.  The sweep deletes expired and used-up
# rows with their files and refunds their owner, page after page; a
# restarted nginx knows every file's state from the database.
#
# Two workers throughout.  First with a sweep far away (only the one a
# starting worker makes), so that a 404 is the serving's own doing; then
# with a sweep every second and a default expiry of an hour.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

use BulletDrop::Stack ();
use BulletDrop::Test qw(wait_until is_error iso_time leaves_nothing
                        sample);

my %conf = (files => 1, base_domain => 'localhost', registration => 'open',
            workers => 2, sweep_interval => '1h');
my $t = BulletDrop::Test->new;
$t->start_nginx(%conf);
$t->add_domains('img.localhost');

my $alice = $t->new_user('alice', key => 1);

my $FILES = 'img.localhost';
my $LONG = qr/\bmax-age=[1-9][0-9]*/;

# permanent files of the first nginx, which no sweep may take
my @permanent;

# an upload's record (dies unless stored: set-up, not the story)
sub upload_ok {
    my ($user, $name, $data, @headers) = @_;
    my $res = $t->upload($user->{key}, $name, $data, as => 'raw',
                         headers => \@headers);
    die "upload $name: $res->{status} $res->{body}"
        unless $res->{status} == 201 && ref $res->{json} eq 'HASH';
    return $res->{json};
}

sub path_of { ($_[0]{url} // '') =~ m{\Ahttps?://[^/]+(/.*)\z} ? $1 : '/' }
sub fetch   { $t->get(path_of($_[0]), host => $FILES, @_[1 .. $#_]) }
sub peek    { $t->request('HEAD', path_of($_[0]), host => $FILES) }
sub on_disk { -e $t->stored_path($_[0]) }
sub me      { $t->get('/api/users/me', token => $_[0]{token})->{json} }
sub utc     { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $_[0]) }

# the record as the owner reads it through the API
sub record {
    my ($user, $rec) = @_;
    return $t->get("/api/uploads/$rec->{id}", token => $user->{token})
             ->{json} // {};
}

# the row's columns, or undef once it is gone
sub row_of {
    my ($rec) = @_;
    return $t->row('SELECT views, max_views, expires_at IS NULL '
                   . "FROM uploads WHERE id = '$rec->{id}'",
                   qw(views max_views never));
}

# how many of the answers are a 200 with all of $data, and how many are
# the API's 404 not_found
sub tally {
    my ($data, @res) = @_;
    my $ok = grep { $_->{status} == 200 && $_->{body} eq $data } @res;
    my $gone = grep { $_->{status} == 404
                      && ref $_->{json} eq 'HASH'
                      && ($_->{json}{error} // '') eq 'not_found' } @res;
    return ($ok, $gone);
}

# what came back, for a diagnosis: "status type bytes" => how many times
sub summary {
    my %seen;
    $seen{"$_->{status} " . ($_->{headers}{'content-type'} // '-') . ' '
          . length $_->{body}}++ for @_;
    return \%seen;
}

# $n GETs of a file, each on its own connection, all sent before any
# answer is read
sub stampede {
    my ($rec, $n) = @_;
    return $t->http->parallel(map { [ 'GET', path_of($rec),
                                      host => $FILES ] } 1 .. $n);
}

subtest 'X-BulletDrop-Expires: durations, RFC 3339 times and never; the '
        . 'record says when' => sub {
    my %unit = (s => 1, m => 60, h => 3600, d => 86400, w => 604800);
    for my $v (qw(30s 10m 1h 7d 2w)) {
        my ($n, $u) = $v =~ /\A(\d+)([smhdw])\z/;
        my $t0 = int time;
        my $res = $t->upload($alice->{key}, "in$v.txt", "expires $v\n",
                             as => 'raw',
                             headers => [ 'X-BulletDrop-Expires' => $v ]);
        my $t1 = time;
        is($res->{status}, 201, "$v: 201");
        my $at = iso_time($res->{json}{expires_at});
        ok($at && $at >= $t0 + $n * $unit{$u}
               && $at <= $t1 + $n * $unit{$u} + 1,
           "$v: expires_at is $v from now, in UTC")
            or diag 'expires_at: ' . ($res->{json}{expires_at} // 'null');
        is($res->{json}{max_views}, undef, "$v: no view limit");
    }

    my %at = ('2030-01-01T00:00:00Z' => '2030-01-01T00:00:00',
              '2030-01-01T05:30:00+05:30' => '2030-01-01T00:00:00',
              '2029-12-31T20:00:00-04:00' => '2030-01-01T00:00:00',
              '2030-06-15T12:34:56.789Z' => '2030-06-15T12:34:56',
              '2030-06-15T12:34:56.5+00:00' => '2030-06-15T12:34:56');
    for my $v (sort keys %at) {
        my $res = upload_ok($alice, 'at.txt', "until $v\n",
                            'X-BulletDrop-Expires' => $v);
        like($res->{expires_at} // 'null',
             qr/\A\Q$at{$v}\E(?:\.\d+)?Z\z/,
             "$v: expires_at says $at{$v} UTC");
        is(row_of($res)->{views}, 0, "$v: stored");
    }

    my $soon = utc(int(time) + 9 * 365 * 86400);
    is(upload_ok($alice, 'nine.txt', "nine years\n",
                 'X-BulletDrop-Expires' => $soon)->{expires_at},
       $soon, 'nine years ahead is allowed');
    ok(upload_ok($alice, 'weeks.txt', "500 weeks\n",
                 'X-BulletDrop-Expires' => '500w')->{expires_at},
       '500w (under ten years) is allowed');

    my $never = upload_ok($alice, 'never.txt', "forever\n",
                          'X-BulletDrop-Expires' => 'never');
    is($never->{expires_at}, undef, 'never: expires_at is null');
    is_deeply(row_of($never), { views => 0, max_views => '', never => 't' },
              'never: the row has no expiry and no view limit');
    my $plain = upload_ok($alice, 'plain.txt', "no header\n");
    is($plain->{expires_at}, undef,
       'no header and no default: expires_at is null');
    is(record($alice, $never)->{expires_at}, undef,
       'GET /api/uploads/ID says the same');
    push @permanent, $never, $plain;
};

subtest 'X-BulletDrop-Max-Views: 1 to 2147483647' => sub {
    for my $v (1, 5, 2147483647) {
        my $rec = upload_ok($alice, 'mv.txt', "views $v\n",
                            'X-BulletDrop-Max-Views' => $v);
        is($rec->{max_views}, $v, "$v: max_views $v");
        is($rec->{views}, 0, "$v: no views yet");
        is($rec->{expires_at}, undef, "$v: no expiry");
        is(row_of($rec)->{max_views}, $v, "$v: in the row");
        is(record($alice, $rec)->{max_views}, $v,
           "$v: in GET /api/uploads/ID");
    }
    my $both = upload_ok($alice, 'both.txt', "both\n",
                         'X-BulletDrop-Max-Views' => 3,
                         'X-BulletDrop-Expires' => '1h');
    ok($both->{max_views} == 3 && iso_time($both->{expires_at}),
       'both headers at once: both limits');
};

subtest 'bad limits are refused with 400 before the body is read, and '
        . 'leave nothing' => sub {
    my $body = sample('png', 200_000, 'refused');
    my $before = $t->uploads_state;
    my $usage = me($alice)->{usage};

    my $past = utc(int(time) - 60);
    my $far = utc(int(time) + 11 * 365 * 86400);
    my @cases = (
        (map { [ 'X-BulletDrop-Expires', $_, 'invalid_expiry' ] }
         '5x', '0s', '-5m', 'tomorrow', '', '1.5h', 'h', '10',
         '2030-13-01T00:00:00Z',
         '2020-01-01T00:00:00Z', $past, $far, '600w', '3653d',
         '99999999999999999999s'),
        (map { [ 'X-BulletDrop-Max-Views', $_, 'invalid_max_views' ] }
         '0', '-1', '2147483648', 'abc', '1.5', '', '5abc',
         '99999999999999999999', '4294967297'),
    );
    for my $c (@cases) {
        my ($h, $v, $code) = @$c;
        my $x = $t->begin_upload($alice->{key}, 'refused.png', $body,
                                 as => 'raw', headers => [ $h => $v ]);
        my $res = $x->answer(5) // { status => 'no answer', headers => {} };
        is_error($res, 400, $code, "$h: '$v': 400 $code");
        is($x->unsent, length $body, "$h: '$v': before any of the body")
            if $res->{status} eq '400';
        $x->close;
    }

    leaves_nothing($t, $before, 'no row, no file');
    is_deeply(me($alice)->{usage}, $usage, 'the usage is unchanged');
};

subtest 'an expired file is a 404 at once, before any sweep' => sub {
    my $data = sample('png', 5000, 'short');
    my $rec = upload_ok($alice, 'short.png', $data,
                        'X-BulletDrop-Expires' => '2s');
    my $t1 = time;

    my $res = fetch($rec);
    is($res->{status}, 200, 'before: 200');
    is($res->{body}, $data, 'before: the bytes');
    like($res->{headers}{'cache-control'} // '',
         qr/\A(?:max-age=[012]|no-cache)\z/,
         'before: cached 2 s at most, never past its expiry');
    is(peek($rec)->{status}, 200, 'before: HEAD 200');

    my $left = $t1 + 2.1 - time;
    sleep $left if $left > 0;
    is_error(fetch($rec), 404, 'not_found', 'right after it expired: 404');
    is(peek($rec)->{status}, 404, 'HEAD: 404');
    ok(row_of($rec) && on_disk($rec),
       'its row and file are still there: no sweep did this');
    is_error(fetch($rec), 404, 'not_found', 'and again 404 (both workers)');
};

subtest 'a view limit: HEAD is free, the GET after the last view is a '
        . '404' => sub {
    my $data = sample('png', 8000, 'three');
    my $rec = upload_ok($alice, 'three.png', $data,
                        'X-BulletDrop-Max-Views' => 3);

    my $head = peek($rec);
    is($head->{status}, 200, 'HEAD with views left: 200');
    is($head->{headers}{'cache-control'}, 'no-store', 'HEAD: no-store');
    is(peek($rec)->{status}, 200, 'and another HEAD: 200');

    for my $i (1 .. 3) {
        my $res = fetch($rec);
        ok($res->{status} == 200 && $res->{body} eq $data,
           "GET $i of 3: 200 with the bytes")
            or diag "status $res->{status}";
        is($res->{headers}{'cache-control'}, 'no-store',
           "GET $i: Cache-Control: no-store");
    }
    is_error(fetch($rec), 404, 'not_found', 'GET 4: 404');
    is(peek($rec)->{status}, 404, 'HEAD now: 404');
    is(row_of($rec)->{views}, 3, 'the row counted 3 views');
    # views granted just before the last may still be opening it: a file
    # with more than one view leaves with the sweep (an hour here)
    sleep 0.5;
    ok(on_disk($rec), 'the file waits for the sweep');
};

subtest 'burn after read: one GET gets it, the file goes at once' => sub {
    my $data = sample('jpg', 6000, 'burn');
    my $rec = upload_ok($alice, 'burn.jpg', $data,
                        'X-BulletDrop-Max-Views' => 1);
    my $path = $t->stored_path($rec);
    ok(on_disk($rec), 'stored');
    is(peek($rec)->{status}, 200, 'HEAD first: 200, and no view spent');

    my $res = fetch($rec);
    is($res->{status}, 200, 'the first GET: 200');
    is($res->{body}, $data, 'with all the bytes');
    is($res->{headers}{'cache-control'}, 'no-store', 'not to be cached');

    ok(wait_until(sub { !-e $path }, 2), 'the file is off the disk at once');
    ok(!grep({ $_ eq "$rec->{category}/$rec->{id}.jpg" } $t->stored_files),
       'stored_files has it no more');
    is_error(fetch($rec), 404, 'not_found', 'the second GET: 404');
    is_error(fetch($rec), 404, 'not_found', 'the third GET: 404');
    is(peek($rec)->{status}, 404, 'HEAD: 404');
    is(row_of($rec)->{views}, 1, 'the row says 1 view');
    ok(!grep({ /\Q$rec->{id}\E/ }
             BulletDrop::Stack::fsck_report(pg => $t->pg,
                                            upload_dir => $t->upload_dir)),
       'make fsck: its row, waiting for the sweep, needs no file');
};

# Rounds of $n GETs at once, each round on a file of its own with a view
# limit of $max: in every round, exactly $max get the whole file and the
# rest the API's 404; the row counts $max views, and a file of one view
# goes at once (others wait for the sweep).  (A race between viewers
# shows in some rounds, not in each: hence rounds.)
sub race {
    my ($max, $n, $rounds, @headers) = @_;
    for my $round (1 .. $rounds) {
        my $data = sample('png', 40_000, "race$max.$round");
        my $rec = upload_ok($alice, "race$max.png", $data,
                            'X-BulletDrop-Max-Views' => $max, @headers);
        my @res = stampede($rec, $n);
        my ($ok, $gone) = tally($data, @res);
        my $views = row_of($rec)->{views};
        is($ok, $max, "round $round: $max × 200 with the whole file")
            or diag explain { answers => summary(@res), views => $views };
        is($gone, $n - $max, "round $round: " . ($n - $max)
                             . ' × 404 not_found')
            or diag explain summary(@res);
        is($views, $ok, "round $round: the row counted a view for each "
                        . '200, no more');
        if ($max == 1) {
            ok(wait_until(sub { !on_disk($rec) }, 2),
               "round $round: the file is off the disk");
        }
        is_error(fetch($rec), 404, 'not_found', "round $round: a later "
                                                . 'GET: 404')
            if $round == 1;
    }
}

subtest 'burn after read under 24 GETs at once: exactly one wins' => sub {
    race(1, 24, 4);
};

subtest 'max_views 5 under 30 GETs at once: exactly 5 win' => sub {
    race(5, 30, 30, 'X-BulletDrop-Expires' => '1h');
};

# Where many views are left, the database gives a few ahead (leased) to
# this server's shared memory: still never more answers than the limit,
# and on one server none lost
subtest 'max_views 50 under 60 GETs at once: leased views, exactly 50 '
        . 'win' => sub {
    race(50, 60, 3);
};

subtest 'a large view limit: views are leased ahead, never past the '
        . 'limit' => sub {
    my $data = sample('png', 3000, 'lease');
    my $rec = upload_ok($alice, 'lease.png', $data,
                        'X-BulletDrop-Max-Views' => 100_000);
    my $ok = 0;
    for (1 .. 40) {
        $ok++ if fetch($rec)->{status} == 200;
    }
    is($ok, 40, '40 GETs: 40 × 200');
    my $views = row_of($rec)->{views};
    cmp_ok($views, '>=', 40, "the row counts them ($views)");
    cmp_ok($views, '<=', 40 + 64, 'and at most 64 more, leased ahead');
};

# Reads the views the API reports once they reach $n (up to 5 s), then
# again 1.5 s later: every worker has flushed what it had by then.
sub settled_views {
    my ($rec, $n) = @_;
    wait_until(sub { (record($alice, $rec)->{views} // 0) >= $n }, 5);
    sleep 1.5;
    return record($alice, $rec)->{views};
}

subtest 'views of a file without a view limit are counted in batches: '
        . 'GETs and ranges from 0, not HEADs or later ranges' => sub {
    my $data = sample('png', 5000, 'counted');
    my $rec = upload_ok($alice, 'counted.png', $data);
    push @permanent, $rec;

    my $res = fetch($rec);
    is($res->{status}, 200, 'a permanent file: 200');
    like($res->{headers}{'cache-control'} // '', $LONG,
         'with a long cache lifetime');
    unlike($res->{headers}{'cache-control'} // '', qr/no-store/,
           'not no-store');
    my $ok = 1;
    for (2 .. 5) {
        $ok &&= fetch($rec)->{body} eq $data;
    }
    ok($ok, '4 more GETs: the bytes');

    my $first = fetch($rec, headers => [ Range => 'bytes=0-99' ]);
    ok($first->{status} == 206 && $first->{body} eq substr($data, 0, 100),
       'a range from byte 0: 206, the first 100 bytes');
    my $later = fetch($rec, headers => [ Range => 'bytes=100-199' ]);
    ok($later->{status} == 206 && $later->{body} eq substr($data, 100, 100),
       'a range from byte 100: 206, those bytes');
    is(peek($rec)->{status}, 200, 'a HEAD: 200') for 1 .. 2;

    is(settled_views($rec, 6), 6,
       'GET /api/uploads/ID: 6 views (5 GETs and the range from 0)');

    my $limited = upload_ok($alice, 'hour.png', $data,
                            'X-BulletDrop-Expires' => '1h');
    is(fetch($limited)->{status}, 200, 'an expiry-only file: 200')
        for 1 .. 3;
    is(peek($limited)->{status}, 200, 'and a HEAD: 200');
    is(settled_views($limited, 3), 3, 'an expiry-only file: 3 views');
    is(row_of($limited)->{views}, 3, 'its row says 3');
};

subtest 'after a restart, the database says what each file may do' => sub {
    my $data = sample('png', 5000, 'restart');
    my $valid = upload_ok($alice, 'valid.png', $data,
                          'X-BulletDrop-Expires' => '1h',
                          'X-BulletDrop-Max-Views' => 4);
    my $hour = upload_ok($alice, 'hour.png', $data,
                         'X-BulletDrop-Expires' => '1h');
    my $expired = upload_ok($alice, 'expired.png', $data,
                            'X-BulletDrop-Expires' => '1s');
    my $burned = upload_ok($alice, 'burned.png', $data,
                           'X-BulletDrop-Max-Views' => 1);
    my $t1 = time;

    is(fetch($valid)->{status}, 200, "the valid one's view 1: 200");
    is(fetch($valid)->{status}, 200, "the valid one's view 2: 200");
    is(fetch($burned)->{status}, 200, 'the burned one, read once: 200');
    is(fetch($burned)->{status}, 404, 'then 404');
    my $left = $t1 + 1.2 - time;
    sleep $left if $left > 0;
    is(fetch($expired)->{status}, 404, 'the expired one: 404');

    $t->restart_nginx(%conf);

    my $res = fetch($valid);
    is($res->{status}, 200, 'the valid one: 200');
    is($res->{body}, $data, 'the bytes');
    is($res->{headers}{'cache-control'}, 'no-store', 'still no-store');
    is(fetch($hour)->{status}, 200, 'the expiry-only one: 200');
    is_error(fetch($expired), 404, 'not_found', 'the expired one: 404');
    is_error(fetch($burned), 404, 'not_found', 'the burned one: 404');
    is(fetch($valid)->{status}, 200, "the valid one's view 4: 200");
    is_error(fetch($valid), 404, 'not_found',
             'view 5: 404 (the views before the restart counted)');
    is(row_of($valid)->{views}, 4, 'its row says 4 views');
};

# Now a sweep every second, and uploads without an expiry get an hour.
%conf = (%conf, sweep_interval => '1s', default_expiry => '1h');
$t->restart_nginx(%conf);

subtest 'bulletdrop_default_expiry: uploads without the header expire, '
        . 'never opts out' => sub {
    my $t0 = int time;
    my $rec = upload_ok($alice, 'default.png', sample('png', 3000));
    my $t1 = time;
    my $at = iso_time($rec->{expires_at});
    ok($at && $at >= $t0 + 3600 && $at <= $t1 + 3601,
       'no header: expires in an hour')
        or diag 'expires_at: ' . ($rec->{expires_at} // 'null');
    is($rec->{max_views}, undef, 'no view limit');
    is(fetch($rec)->{headers}{'cache-control'}, 'max-age=300',
       'an hour left: cached five minutes, as a file without limits');

    my $never = upload_ok($alice, 'never.png', sample('png', 3000),
                          'X-BulletDrop-Expires' => 'never');
    is($never->{expires_at}, undef, 'never: expires_at is null');
    is(row_of($never)->{never}, 't', 'never: the row has no expiry');
    like(fetch($never)->{headers}{'cache-control'} // '', $LONG,
         'never: served with a long cache lifetime');

    my $short = upload_ok($alice, 'short.png', sample('png', 3000),
                          'X-BulletDrop-Expires' => '30s');
    $at = iso_time($short->{expires_at});
    ok($at && $at >= $t0 + 30 && $at <= time + 31,
       'an Expires header wins over the default');

    my $views = upload_ok($alice, 'views.png', sample('png', 3000),
                          'X-BulletDrop-Max-Views' => 2);
    ok($views->{max_views} == 2 && iso_time($views->{expires_at}),
       'a view limit alone: the default expiry too');
};

subtest 'the sweep deletes expired and used-up files, and refunds '
        . 'their owner; it keeps the rest' => sub {
    my $bob = $t->new_user('bob', key => 1);
    my %data = map { $_ => sample('png', 2000 + 1000 * length, $_) }
               qw(e ee v keep live);

    my $e1 = upload_ok($bob, 'e1.png', $data{e},
                       'X-BulletDrop-Expires' => '2s');
    my $e2 = upload_ok($bob, 'e2.png', $data{ee},
                       'X-BulletDrop-Expires' => '2s');
    my $t1 = time;
    my $v = upload_ok($bob, 'v.png', $data{v},
                      'X-BulletDrop-Expires' => 'never',
                      'X-BulletDrop-Max-Views' => 2);
    my $keep = upload_ok($bob, 'keep.png', $data{keep},
                         'X-BulletDrop-Expires' => 'never');
    my $live = upload_ok($bob, 'live.png', $data{live},
                         'X-BulletDrop-Expires' => '1h',
                         'X-BulletDrop-Max-Views' => 5);
    my $all = 0;
    $all += length for values %data;
    is_deeply(me($bob)->{usage}, { bytes => $all, files => 5 },
              'five files charged');

    is(fetch($v)->{status}, 200, 'the view-limited one, seen twice')
        for 1 .. 2;
    is(fetch($live)->{status}, 200, 'the live one, seen once');

    ok(wait_until(sub { !row_of($e1) && !row_of($e2) && !row_of($v) }, 8),
       'the expired and the used-up rows are deleted');
    cmp_ok(time - $t1, '<', 2 + 5, 'within a few seconds of the expiry');
    ok(!on_disk($_), "$_->{name}: its file is off the disk")
        for $e1, $e2, $v;
    is_deeply(me($bob)->{usage},
              { bytes => length($data{keep}) + length($data{live}),
                files => 2 }, 'the usage is refunded');
    is_deeply($t->usage_of($bob->{id}),
              { bytes => length($data{keep}) + length($data{live}),
                files => 2 }, 'in the table too');
    is(record($bob, $e1)->{error}, 'not_found',
       'GET /api/uploads/ID of a swept one: not_found');

    sleep 1.2;
    for my $r ($keep, $live) {
        ok(row_of($r) && on_disk($r),
           "$r->{name}: row and file stay after more sweeps");
        is(fetch($r)->{body}, $r eq $keep ? $data{keep} : $data{live},
           "$r->{name}: served");
    }
    is(row_of($keep)->{never}, 't', 'keep.png: permanent still');
};

subtest 'a permanent file is never swept' => sub {
    is(scalar @permanent, 3, "the first nginx's three permanent files");
    for my $r (@permanent) {
        my $row = row_of($r);
        ok($row && $row->{never} eq 't' && $row->{max_views} eq '',
           "$r->{name}: its row stays, without limits");
        ok(on_disk($r), "$r->{name}: its file stays");
        is(fetch($r)->{status}, 200, "$r->{name}: served");
    }
};

subtest 'a sweep of 250 files that expire together: every page goes'
        => sub {
    my $carol = $t->new_user('carol', key => 1);
    my $when = int(time) + 7;
    my $at = utc($when);
    my @recs;
    for my $batch (0 .. 9) {
        my @res = $t->http->parallel(map {
            [ $t->upload_request($carol->{key}, "many$_.txt",
                                 "file $_ of 250\n", as => 'raw',
                                 headers => [ 'X-BulletDrop-Expires'
                                              => $at ]) ]
        } $batch * 25 + 1 .. $batch * 25 + 25);
        push @recs, map { $_->{status} == 201 ? $_->{json} : () } @res;
    }
    is(scalar @recs, 250, "250 uploads stored, all to expire at $at");
    cmp_ok(time, '<', $when, 'all before that moment');
    is(me($carol)->{usage}{files}, 250, 'carol has 250 files');
    is(scalar(grep { on_disk($_) } @recs), 250, 'all on disk');

    my $left = $when - time;
    sleep $left if $left > 0;
    my $gone = wait_until(sub {
        !$t->pg->query('SELECT count(*) FROM uploads WHERE user_id = '
                       . (0 + $carol->{id}))->[0][0] }, 10);
    ok($gone, 'every row goes')
        or diag $t->pg->query('SELECT count(*) FROM uploads WHERE user_id = '
                              . (0 + $carol->{id}))->[0][0] . ' left';
    cmp_ok(time - $when, '<', 6, 'within a few seconds');
    is(scalar(grep { on_disk($_) } @recs), 0, 'every file is off the disk');
    is_deeply(me($carol)->{usage}, { bytes => 0, files => 0 },
              "carol's usage is back to nothing");
    is_error(fetch($recs[-1]), 404, 'not_found', 'the last one: 404');
};

done_testing;
