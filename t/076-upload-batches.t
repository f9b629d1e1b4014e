#!/usr/bin/perl
# Group commit: uploads that finish while a worker's earlier commits run
# are written in one statement (src/ngx_http_bulletdrop_commit.c,
# bd_upload_commit_batch()).  Each upload in a batch keeps its own name
# and bytes and gets its own answer; owners' usage and quotas stay exact
# across a batch; a batch the database fails leaves nothing of any of its
# uploads, and one whose deadline passes in the queue or in PostgreSQL is
# not written, nor is any row of a batch that ends past one's deadline.
# One worker with two connections (one for batches), and PostgreSQL held
# still for a moment while the bodies end, so that batches form whatever
# the machine's speed.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use Encode qw(decode_utf8);
use Time::HiRes qw(sleep time);

use BulletDrop::Test qw(wait_until is_error leaves_nothing sample);

my %conf = (registration => 'open', workers => 1, db_pool => 2,
            db_timeout => '2s');
my $t = BulletDrop::Test->new;
$t->start_nginx(%conf);

my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);
my $carol = $t->new_user('carol', key => 1);

sub answer_of { $_[0] // { status => 'no answer', headers => {} } }

# the sizes of the batches the worker has sent so far (those of one)
sub batches {
    return map { /bulletdrop: (\d+) uploads sent in one statement/ ? $1 : () }
           split /\n/, $t->nginx->log_text;
}

# Sends every upload but its last byte, waits until all are under way,
# then the last bytes one right after another while PostgreSQL is stopped
# for half a second: the first commit waits on it and the rest queue.
sub together {
    my (@uploads) = @_;
    my @x = map { $t->begin_upload(@$_, as => 'raw') } @uploads;
    $_->send_all_but(1) for @x;
    ok(wait_until(sub { $t->temp_files >= @x }, 10),
       scalar(@x) . ' uploads under way');
    $t->pg->freeze;
    $_->send_rest for @x;
    sleep 0.5;
    $t->pg->thaw;
    my @res = map { answer_of($_->answer(15)) } @x;
    $_->close for @x;
    return @res;
}

subtest 'uploads that end together share a statement, and each keeps '
        . 'its own name and bytes' => sub {
    my $usage = $t->usage_of($alice->{id});
    my $before = () = batches();
    # what the array literals must carry through untouched
    my %name = ('q"uote.png' => 'q"uote.png', 'com,ma.png' => 'com,ma.png',
                '{brace}.png' => '{brace}.png', 'NULL.png' => 'NULL.png',
                "apos'trophe.png" => "apos'trophe.png",
                'sp  ace.png' => 'sp  ace.png',
                "\xc3\xbcn\xc3\xaf.png" => "\xc3\xbcn\xc3\xaf.png",
                'back\\slash.png' => 'slash.png');
    my @sent = map { [ $_, sample('png', 20_000 + length, $_) ] }
               sort keys %name;
    my @res = together(map { [ $alice->{key}, $_->[0], $_->[1] ] } @sent);

    my $bytes = 0;
    for my $i (0 .. $#sent) {
        my ($sent_name, $data) = @{ $sent[$i] };
        my $rec = $res[$i]{json} // {};
        is($res[$i]{status}, 201, "$name{$sent_name}: 201");
        is($rec->{name}, decode_utf8($name{$sent_name}),
           "$name{$sent_name}: its name");
        is($rec->{sha256}, sha256_hex($data), "$name{$sent_name}: its hash");
        is($rec->{id} && $t->get("/static/images/$rec->{id}.png")->{body},
           $data, "$name{$sent_name}: its bytes, served");
        is($rec->{id} && $t->pg->psql('SELECT name FROM uploads WHERE id = '
                                      . "'$rec->{id}'")->[0][0],
           $name{$sent_name}, "$name{$sent_name}: its row");
        $bytes += length $data;
    }

    my @sizes = (batches())[$before .. (() = batches()) - 1];
    cmp_ok((sort { $b <=> $a } @sizes, 0)[0], '>', 1,
           'some of them went in one statement')
        or diag "batches: @sizes";
    is_deeply($t->usage_of($alice->{id}),
              { bytes => $usage->{bytes} + $bytes,
                files => $usage->{files} + @sent },
              'the usage grew by exactly their bytes and number');
};

subtest 'one batch, two owners: a quota refuses only what it must' => sub {
    my $size = 30_000;
    my $alice_usage = $t->usage_of($alice->{id});
    my $bob_usage = $t->usage_of($bob->{id});
    $t->pg->psql('UPDATE users SET quota_bytes = '
                 . ($bob_usage->{bytes} + 2 * $size)
                 . " WHERE id = $bob->{id}");
    my $before = $t->uploads_state;
    my $batches = () = batches();

    my @uploads;
    for my $i (1 .. 4) {
        push @uploads,
             [ $alice->{key}, "a$i.png", sample('png', $size, "a$i") ],
             [ $bob->{key}, "b$i.png", sample('png', $size, "b$i") ];
    }
    my @res = together(@uploads);
    my @alice = @res[grep { $_ % 2 == 0 } 0 .. $#res];
    my @bob = @res[grep { $_ % 2 == 1 } 0 .. $#res];

    is(scalar(grep { $_->{status} == 201 } @alice), 4,
       'alice, without a quota: 4 of 4 kept');
    is(scalar(grep { $_->{status} == 201 } @bob), 2,
       'bob, with room for two: 2 kept');
    is(scalar(grep { $_->{status} == 413
                     && ($_->{json}{error} // '') eq 'quota_exceeded' } @bob),
       2, 'and 2 get 413 quota_exceeded');
    my @sizes = (batches())[$batches .. (() = batches()) - 1];
    cmp_ok((sort { $b <=> $a } @sizes, 0)[0], '>=', 4,
           "alice's and bob's, in turn, shared a statement")
        or diag "batches: @sizes";

    is_deeply($t->usage_of($alice->{id}),
              { bytes => $alice_usage->{bytes} + 4 * $size,
                files => $alice_usage->{files} + 4 }, "alice's usage: exact");
    is_deeply($t->usage_of($bob->{id}),
              { bytes => $bob_usage->{bytes} + 2 * $size,
                files => $bob_usage->{files} + 2 }, "bob's usage: exact");

    my @kept = grep { $_->{status} == 201 } @res;
    leaves_nothing($t, { %$before,
                         rows => $before->{rows} + @kept,
                         files => [ sort @{ $before->{files} },
                                    map { "images/$_->{json}{id}.png" }
                                    @kept ] },
                   'a row and a file for each upload kept, no more');

    $t->pg->psql("UPDATE users SET quota_bytes = NULL WHERE id = $bob->{id}");
};

# six of alice's uploads, all but their last bytes sent
sub six_under_way {
    my ($prefix) = @_;
    my @x = map { $t->begin_upload($alice->{key}, "$prefix$_.png",
                                   sample('png', 50_000, "$prefix$_"),
                                   as => 'raw') } 1 .. 6;
    $_->send_all_but(1) for @x;
    ok(wait_until(sub { $t->temp_files >= @x }, 10), '6 uploads under way');
    return @x;
}

subtest 'the database goes away under a batch: every upload in it gets '
        . '503, and nothing is left' => sub {
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($alice->{id});
    my @x = six_under_way('down');

    $t->pg->stop;
    $_->send_rest for @x;
    my @res = map { answer_of($_->answer(15)) } @x;
    is(scalar(grep { $_->{status} == 503
                     && ($_->{json}{error} // '') eq 'database_unavailable' }
              @res), 6, 'six 503 database_unavailable');
    is_deeply([ $t->stored_files ], $before->{files},
              'no file is in place once they are answered');

    $t->pg->start;
    ok(wait_until(sub { $t->get('/api/health')->{status} == 200 }, 15),
       'PostgreSQL is back');
    $_->close for @x;
    leaves_nothing($t, $before, 'no file, no row');
    is_deeply($t->usage_of($alice->{id}), $usage, 'the usage is unchanged');

    my $again = $t->upload($alice->{key}, 'after.png', sample('png', 3000));
    is($again->{status}, 201, 'and the next upload is stored');
};

subtest 'PostgreSQL freezes under a batch: 503 for the batch and for the '
        . 'rows queued behind it, and nothing written once it thaws' => sub {
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($alice->{id});
    my @x = six_under_way('frozen');

    $t->pg->freeze;
    $_->send_rest for @x;
    my @res = map { answer_of($_->answer(10)) } @x;
    my @files = $t->stored_files;
    $t->pg->thaw;

    is(scalar(grep { $_->{status} == 503
                     && ($_->{json}{error} // '') eq 'database_unavailable' }
              @res), 6, 'six 503 database_unavailable')
        or diag explain [ map { $_->{json} } @res ];
    cmp_ok((sort { $b <=> $a } map { $_->{elapsed} // 99 } @res)[0], '<', 5,
           'all within the 2 s timeout and a little');
    is_deeply(\@files, $before->{files},
              'no file is in place once they are answered');

    ok($t->db_settled, 'what nginx had sent is done');
    $_->close for @x;
    leaves_nothing($t, $before, 'no file, no row: what the clients were '
                                . 'told is what happened');
    is_deeply($t->usage_of($alice->{id}), $usage, 'the usage is unchanged');
};

# Holds the users rows of @ids (FOR UPDATE: an upload of theirs waits on
# it) for $secs seconds, from a psql of its own; its pid.
sub hold_users {
    my ($secs, @ids) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        exec 'psql', '-X', '-q', '-d', $t->pg->conninfo, '-c',
             'BEGIN; SELECT 1 FROM users WHERE id IN (' . join(',', @ids)
             . ") FOR UPDATE; SELECT pg_sleep($secs); COMMIT;";
        exit 127;
    }
    wait_until(sub {
        $t->pg->psql("SELECT count(*) FROM pg_stat_activity WHERE query "
                     . "LIKE '%pg_sleep($secs)%' AND pid <> pg_backend_pid()",
                     dbname => 'postgres', user => 'postgres')->[0][0] }, 10);
    return $pid;
}

# Uploads in one batch: alice's row is written at once, bob's waits on a
# lock past alice's deadline (1.6 s after she queued) but not past nginx's
# timeout (2 s after the batch went).  alice's row must not be written:
# by the time the batch could commit, nginx may have given up on it.
subtest 'a batch that ends past the deadline of a row it wrote writes '
        . 'nothing' => sub {
    $t->pg->psql('UPDATE users SET quota_bytes = 1000000000 '
                 . "WHERE id = $bob->{id}");
    my $before = $t->uploads_state;
    my %usage = map { $_->{id} => $t->usage_of($_->{id}) }
                $alice, $bob, $carol;

    # carol's upload takes the batch slot and waits on her row until 1.0 s;
    # alice's and bob's queue behind it, and go together at 1.0 s
    my $carol_hold = hold_users(1.0, $carol->{id});
    my $bob_hold = hold_users(2.2, $bob->{id});
    my $t0 = time;
    my $c = $t->begin_upload($carol->{key}, 'first.png',
                             sample('png', 10_000, 'first'), as => 'raw');
    $c->send_rest;
    sleep 0.2;
    my @x = map { $t->begin_upload($_->[0]{key}, $_->[1],
                                   sample('png', 10_000, $_->[1]),
                                   as => 'raw') }
            [ $alice, 'alice.png' ], [ $bob, 'bob.png' ];
    $_->send_rest for @x;

    my $first = answer_of($c->answer(10));
    my @res = map { answer_of($_->answer(10)) } @x;
    waitpid $_, 0 for $carol_hold, $bob_hold;
    ok($t->db_settled, 'PostgreSQL is done with them');

    is($first->{status}, 201, "carol's, ahead, is kept")
        or diag explain [ map { [ $_->{status}, $_->{json}, $_->{elapsed} ] }
                          $first, @res ];
    is($res[0]{status}, 503, "alice's gets 503: written before its "
       . 'deadline, but the batch ended after it');
    is($res[1]{status}, 503, "bob's gets 503: too late");
    cmp_ok(time - $t0, '<', 3.5, 'before nginx would have given up anyway');
    my @rows = @{ $t->pg->psql("SELECT name FROM uploads WHERE user_id IN "
                               . "($alice->{id}, $bob->{id}) AND name IN "
                               . "('alice.png', 'bob.png')") };
    is(scalar @rows, 0, 'neither has a row');
    is_deeply($t->usage_of($alice->{id}), $usage{ $alice->{id} },
              "alice's usage is unchanged");
    is_deeply($t->usage_of($bob->{id}), $usage{ $bob->{id} },
              "bob's usage is unchanged");
    $_->close for $c, @x;

    $t->pg->psql("UPDATE users SET quota_bytes = NULL WHERE id = $bob->{id}");
};

done_testing;
