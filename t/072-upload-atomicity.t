#!/usr/bin/perl
# An upload is all or nothing.  Under way it is a file with no name in
# <upload dir>/.tmp (or, where unnamed files cannot be had, one named
# there, which nobody can fetch); a worker killed mid-upload leaves
# nothing; a client that goes away at any byte, or a database that stops
# or freezes before the upload is recorded, leaves no file (in .tmp or
# anywhere) and no row, and the user's usage as it was.
# Six uploads racing for room for three: exactly three are kept, and the
# usage is exactly theirs.  Temp files a crash left behind are swept away
# when nginx starts; younger ones are not.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Fcntl qw(:flock);
use Digest::SHA qw(sha256_hex);

use BulletDrop::HTTP qw(multipart);
use BulletDrop::Test qw(wait_until is_error leaves_nothing sample);
use BulletDrop::Util qw(slurp spew);

my %conf = (registration => 'open', workers => 2, db_timeout => '1s');
my $t = BulletDrop::Test->new;
$t->start_nginx(%conf);

my $alice = $t->new_user('alice', key => 1);
my $key = $alice->{key};
my $dir = $t->upload_dir;

sub answer_of { $_[0] // { status => 'no answer', headers => {} } }

sub under_way {
    my ($n) = @_;
    return wait_until(sub { $t->temp_files >= ($n // 1) }, 10);
}

sub health_ok {
    return wait_until(sub { $t->get('/api/health')->{status} == 200 }, 15);
}

subtest 'nginx makes the upload dirs at start, for its workers' => sub {
    my ($worker) = $t->nginx->worker_pids;
    my $uid = (stat "/proc/$worker")[4];
    for my $sub (qw(.tmp images documents other)) {
        ok(-d "$dir/$sub", "$sub/ is there");
        is((stat "$dir/$sub")[4], $uid, "$sub/ belongs to the worker's user");
    }
};

# An upload under way, slowed down: what is in .tmp, and what can be got
sub slow_upload_shows {
    my ($what, $named) = @_;
    my $before = $t->uploads_state;
    my $png = sample('png', 300_000, $what);
    my $x = $t->begin_upload($key, 'slow.png', $png, as => 'raw',
                             send => 100_000);

    ok(under_way(), "$what: a temp file appears while the body arrives");
    my @tmp = $t->temp_files;
    is(scalar @tmp, 1, "$what: one");
    opendir my $dh, "$dir/.tmp" or die "$dir/.tmp: $!";
    my @listed = grep { !/\A\.\.?\z/ } readdir $dh;

    if ($named) {
        like($tmp[0] // '', qr/\.part\z/, "$what: named *.part");
        ok(wait_until(sub { -s "$dir/.tmp/$tmp[0]" }, 5),
           "$what: holding the bytes that came") if @tmp;
        is($t->get("/static/.tmp/$tmp[0]")->{status}, 404,
           "$what: GET /static/.tmp/<it>: 404") if @tmp;
    } else {
        like($tmp[0] // '', qr/\A#\d+\z/,
             "$what: open in a worker, with no name");
        is_deeply(\@listed, [], "$what: so .tmp lists nothing");
        ok(wait_until(sub { ($t->unnamed_size($tmp[0]) // 0) > 0 }, 5),
           "$what: holding the bytes that came") if @tmp;
    }

    is($t->get('/static/.tmp/')->{status}, 404,
       "$what: GET /static/.tmp/: 404");
    is_deeply([ $t->stored_files ], $before->{files},
              "$what: nothing in the category dirs yet");
    is($t->uploads_state->{rows}, $before->{rows}, "$what: and no row");

    ok($x->send_rest, "$what: the rest of the body goes");
    my $res = answer_of($x->answer(10));
    is($res->{status}, 201, "$what: then 201");
    ok(wait_until(sub { !$t->temp_files }, 5), "$what: .tmp is empty again");
    my $file = $res->{json} ? $t->stored_path($res->{json}) : '';
    ok(-f $file && slurp($file) eq $png,
       "$what: and the file is in place, whole");
    $x->close;
}

my $unnamed = $t->unnamed_temp_files;

subtest 'an upload under way is a file with no name in .tmp' => sub {
    plan skip_all => 'this file system has no unnamed files' unless $unnamed;
    slow_upload_shows('unnamed', 0);
};

subtest 'a worker killed mid-upload leaves nothing behind' => sub {
    plan skip_all => 'this file system has no unnamed files' unless $unnamed;
    my $before = $t->uploads_state;
    my $x = $t->begin_upload($key, 'killed.png', sample('png', 300_000),
                             as => 'raw', send => 150_000);
    ok(under_way(), 'the upload is under way');

    my @old = $t->nginx->worker_pids;
    $t->expect_log(qr/worker process \d+ exited on signal 9/);
    kill 'KILL', @old;
    ok(wait_until(sub {
        my @now = $t->nginx->worker_pids;
        @now == @old && !grep { my $o = $_; grep { $_ == $o } @now } @old
    }, 10), 'its workers are killed, and new ones started');
    $x->close;

    leaves_nothing($t, $before, 'no temp file, no file, no row, at once');
    ok(health_ok(), 'and the new workers serve');
};

subtest 'with bulletdrop_unnamed_temp_files off: named in .tmp, and '
        . 'still nothing left behind' => sub {
    for my $fsync (qw(on off)) {
        $t->restart_nginx(%conf, unnamed_temp_files => 'off',
                          fsync => $fsync);
        slow_upload_shows("named, fsync $fsync", 1);

        my $before = $t->uploads_state;
        my $x = $t->begin_upload($key, 'gone.png', sample('png', 200_000),
                                 as => 'raw', send => 100_000);
        ok(under_way(), "fsync $fsync: an upload under way");
        $x->close;
        leaves_nothing($t, $before,
                       "fsync $fsync: the client goes: its .part goes");
    }

    $t->restart_nginx(%conf);
};

subtest 'a client that goes away at any byte leaves nothing' => sub {
    my $usage = $t->usage_of($alice->{id});
    my $png = sample('png', 200_000);
    my $b = 'AbortBoundary';
    my (undef, $form) = multipart(boundary => $b,
                                  parts => [ { name => 'file',
                                               filename => 'abort.png',
                                               data => $png } ]);
    my $data_at = index($form, "\r\n\r\n") + 4;
    my $closing = length "\r\n--$b--";
    my $raw_chunked = BulletDrop::HTTP::chunked($png, sizes => [ 16384 ]);

    # what is sent, how much of it, and whether the file had begun
    my @points = (
        [ 'a form: after the head, before any body',  {}, 0, 0 ],
        [ 'a form: inside the part headers',          {}, 40, 0 ],
        [ 'a form: right after the part headers',     {}, $data_at, 0 ],
        [ 'a form: in the middle of the file',        {},
          $data_at + 100_000, 1 ],
        [ 'a form: just before the closing boundary', {},
          length($form) - $closing, 1 ],
        [ 'a form: one byte before the end',          {},
          length($form) - 1, 1 ],
        [ 'raw: after the head',                      { as => 'raw' }, 0, 0 ],
        [ 'raw: in the middle',                       { as => 'raw' },
          100_000, 1 ],
        [ 'raw: one byte before the end',             { as => 'raw' },
          length($png) - 1, 1 ],
        [ 'raw chunked: in the middle',
          { as => 'raw', chunked => 16384 }, 100_000, 1 ],
        [ 'raw chunked: all but the last chunk',
          { as => 'raw', chunked => 16384 }, length($raw_chunked) - 5, 1 ],
    );

    for (@points) {
        my ($what, $how, $send, $begun) = @$_;
        my $before = $t->uploads_state;
        my $logged = $t->access_lines;

        my $x = $t->begin_upload($key, 'abort.png', $png, %$how,
                                 form => { boundary => $b });
        $x->send_more($send) if $send;
        if ($begun) {
            ok(under_way(), "$what: the upload was under way in .tmp");
        }
        $x->close;

        ok(wait_until(sub { $t->access_lines > $logged }, 10),
           "$what: the server saw the client go");
        leaves_nothing($t, $before, "$what: nothing left, no row");
    }

    is_deeply($t->usage_of($alice->{id}), $usage, 'the usage is unchanged');
};

subtest 'the database stops mid-upload: 503, and nothing left when it '
        . 'is back' => sub {
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($alice->{id});
    my $png = sample('png', 200_000);

    my $x = $t->begin_upload($key, 'stopped.png', $png, send => 100_000);
    ok(under_way(), 'the upload is under way');

    $t->pg->stop;
    ok($x->send_rest, 'the rest of the body goes while PostgreSQL is down');
    my $res = $x->answer(10);
    ok($res, 'an answer comes');
    is_error(answer_of($res), 503, 'database_unavailable',
             '503 database_unavailable');

    # the client has its answer but has not hung up (yet): the answer is
    # what counts
    is_deeply([ $t->stored_files ], $before->{files},
              'once the 503 is sent, no file is in place, though the '
              . 'client keeps the connection');
    is_deeply([ $t->temp_files ], [], 'nor in .tmp');

    $t->pg->start;
    ok(health_ok(), 'PostgreSQL is back');
    $x->close;
    leaves_nothing($t, $before, 'no file, no row');
    is_deeply($t->usage_of($alice->{id}), $usage, 'the usage is unchanged');

    my $again = $t->upload($key, 'after.png', sample('png', 3000));
    is($again->{status}, 201, 'and the next upload is stored');
};

subtest 'the database freezes mid-upload: 503 after the timeout, and '
        . 'nothing left once it thaws' => sub {
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($alice->{id});
    my $png = sample('png', 200_000);

    my $x = $t->begin_upload($key, 'frozen.png', $png, as => 'raw',
                             send => 100_000);
    ok(under_way(), 'the upload is under way');

    $t->pg->freeze;
    ok($x->send_rest, 'the rest of the body goes while PostgreSQL hangs');
    my $res = $x->answer(10);
    my @files = $t->stored_files;
    $t->pg->thaw;

    ok($res, 'an answer comes');
    is_error(answer_of($res), 503, 'database_unavailable',
             '503 database_unavailable');
    cmp_ok($res && $res->{elapsed}, '<', 5, 'soon after the 1 s timeout');
    is_deeply(\@files, $before->{files},
              'once the 503 is sent, no file is in place, though the '
              . 'client keeps the connection');

    ok(health_ok(), 'PostgreSQL answers again');
    ok($t->db_settled, 'and whatever nginx had sent it is done');
    $x->close;
    leaves_nothing($t, $before, 'no file, no row: what the client was '
                                . 'told is what happened');
    is_deeply($t->usage_of($alice->{id}), $usage, 'the usage is unchanged');
};

subtest 'six uploads at once with room for three: three are kept' => sub {
    my $size = 20_000;

    for my $round ('begun together, finished together', 'sent at once') {
        my $usage = $t->usage_of($alice->{id});
        $t->pg->psql('UPDATE users SET quota_bytes = '
                     . ($usage->{bytes} + 3 * $size)
                     . " WHERE id = $alice->{id}");
        my $before = $t->uploads_state;
        my %sent = map { ("race$_.png" => sample('png', $size, "$round$_")) }
                   1 .. 6;
        my (@res, @x);

        # the clients keep their connections until the end: the answers
        # are what counts
        if ($round =~ /together/) {
            @x = map { $t->begin_upload($key, $_, $sent{$_}, as => 'raw') }
                 sort keys %sent;
            $_->send_all_but(1) for @x;
            ok(under_way(6), "$round: all six are under way in .tmp");
            $_->send_rest for @x;
            @res = map { answer_of($_->answer(15)) } @x;
        } else {
            @res = $t->http->parallel(map {
                [ $t->upload_request($key, $_, $sent{$_}) ]
            } sort keys %sent);
        }

        my @kept = grep { $_->{status} == 201 } @res;
        my @refused = grep { $_->{status} != 201 } @res;
        is(scalar @kept, 3, "$round: three are stored");
        is(scalar(grep { ($_->{json}{error} // '') eq 'quota_exceeded'
                         && $_->{status} == 413 } @refused),
           3, "$round: three get 413 quota_exceeded");

        is_deeply($t->usage_of($alice->{id}),
                  { bytes => $usage->{bytes} + 3 * $size,
                    files => $usage->{files} + 3 },
                  "$round: the usage grew by exactly three files");
        leaves_nothing($t, { %$before,
                             rows => $before->{rows} + 3,
                             files => [ sort @{ $before->{files} },
                                        map { "images/$_->{json}{id}.png" }
                                        @kept ] },
                       "$round: three rows and three files, no more");
        is(scalar(grep { $t->get("/static/images/$_->{json}{id}.png")
                             ->{body} eq $sent{ $_->{json}{name} } } @kept),
           3, "$round: each kept file is the one its answer names");
        $_->close for @x;
    }

    $t->pg->psql("UPDATE users SET quota_bytes = NULL "
                 . "WHERE id = $alice->{id}");
};

subtest 'temp files no upload holds are swept at start; held ones stay'
=> sub {
    my $tmp = "$dir/.tmp";
    my $now = time;
    my %age = ('crashed.part' => 3600, 'stale.part' => 5 * 60,
               'held.part' => 3600, 'fresh.part' => 0);
    for my $name (keys %age) {
        spew("$tmp/$name", "left by someone\n");
        utime $now - $age{$name}, $now - $age{$name}, "$tmp/$name";
    }

    # what a live upload does with its temp file: it holds a lock on it
    open my $held, '<', "$tmp/held.part" or die $!;
    flock($held, LOCK_EX) or die $!;

    $t->restart_nginx(%conf);

    ok(wait_until(sub { !-e "$tmp/crashed.part" && !-e "$tmp/stale.part" },
                  10),
       'the .part files of 5 and 60 minutes ago that nobody holds go');
    ok(-e "$tmp/held.part", 'one an upload holds stays, however old');
    ok(-e "$tmp/fresh.part", 'one of just now stays (it may not be held '
       . 'yet)');

    close $held;
    unlink map { "$tmp/$_" } keys %age;
};

done_testing;
