#!/usr/bin/perl
# The database failing in every way we can make it fail: nginx keeps
# answering, health says 503 within the query timeout, and the pool comes
# back by itself without a restart.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);

use BulletDrop::Test qw(wait_until free_port);
use BulletDrop::Util qw(slurp);

sub health_ok {
    my ($t) = @_;
    return wait_until(sub { $t->get('/api/health')->{status} == 200 }, 15);
}

my $t = BulletDrop::Test->new;
$t->start_nginx(workers => 2, db_pool => 2, db_timeout => '1s');
my $pg = $t->pg;

ok(health_ok($t), 'health is ok to begin with');

subtest 'stopped database: 503 at once, and back without a restart' => sub {
    my @workers = sort $t->nginx->worker_pids;

    $pg->stop;

    my $res = $t->get('/api/health');
    is($res->{status}, 503, 'status 503');
    is($res->{json}{status}, 'degraded', 'status "degraded"');
    is($res->{json}{db}, 'down', 'db "down"');
    like($res->{json}{detail}, qr/no connection|lost|answer/, 'a detail');
    cmp_ok($res->{elapsed}, '<', 1, 'answered before the query timeout');

    my @again = map { $t->get('/api/health') } 1 .. 5;
    is(scalar(grep { $_->{status} == 503 } @again), 5,
       'and again, every time, while it is down');

    $pg->start;

    ok(health_ok($t), 'ok again after PostgreSQL starts');
    is_deeply([sort $t->nginx->worker_pids], \@workers,
              'with the same nginx workers, never restarted');
};

subtest 'connections PostgreSQL terminates are replaced, no request fails'
=> sub {
    my @before = wait_until(sub { my @b = $t->db_backends; @b == 4 && \@b });
    is(scalar @{ $before[0] || [] }, 4, '4 connections to begin with');

    for my $round (1 .. 3) {
        $pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  . "WHERE application_name = 'bulletdrop'",
                  dbname => 'postgres', user => 'postgres');

        my @res = map { $t->get('/api/health') } 1 .. 4;
        is(scalar(grep { $_->{status} == 200 } @res), 4,
           "round $round: the next requests all succeed");
    }

    my %old = map { $_ => 1 } @{ $before[0] };
    my $after = wait_until(sub {
        my @b = $t->db_backends;
        @b == 4 && !grep { $old{$_} } @b;
    });
    ok($after, 'the pool is back to 4 connections, all of them new');
};

subtest 'frozen database: 503 within the timeout, static files at once'
=> sub {
    $pg->freeze;

    my @res = $t->http->parallel(['GET', '/api/health'],
                                 ['GET', '/api/health']);
    my $static = $t->get('/static/hello.txt');

    is($static->{status}, 200, 'a static file is served meanwhile');
    is($static->{body}, "hello\n", 'whole');
    cmp_ok($static->{elapsed}, '<', 0.5, 'at once');

    for my $res (@res) {
        is($res->{status}, 503, 'health: 503');
        is($res->{json}{db}, 'down', 'db "down"');
        like($res->{json}{detail}, qr/did not answer in time/,
             'the detail says it timed out');
        cmp_ok($res->{elapsed}, '>=', 0.9, 'not before the timeout');
        cmp_ok($res->{elapsed}, '<', 3, 'soon after the timeout');
    }

    my $api404 = $t->get('/api/nothing-here');
    is($api404->{status}, 404, 'API routes that need no database answer');
    cmp_ok($api404->{elapsed}, '<', 0.5, 'at once');

    $pg->thaw;
    ok(health_ok($t), 'ok again after the database thaws');
};

subtest 'a full wait queue is refused at once, not after the timeout' => sub {
    my $t2 = BulletDrop::Test->new;
    $t2->start_nginx(workers => 1, db_pool => 1, db_queue => 2,
                     db_timeout => '1500ms');
    ok(health_ok($t2), 'ok to begin with');

    $t2->pg->freeze;
    my @res = $t2->http->parallel(map { ['GET', '/api/health'] } 1 .. 6);
    $t2->pg->thaw;

    my @busy = grep { ($_->{json}{detail} // '') =~ /too many/ } @res;
    my @late = grep { ($_->{json}{detail} // '') =~ /in time/ } @res;

    is(scalar @busy, 3, '1 runs, 2 wait, 3 are refused as too many');
    is(scalar(grep { $_->{status} == 503 && $_->{elapsed} < 0.5 } @busy), 3,
       'the refused ones get 503 at once');
    is(scalar @late, 3, 'the running and the waiting ones time out');
    is(scalar(grep { $_->{status} == 503 } @late), 3, 'with 503');

    ok(health_ok($t2), 'and the pool recovers after the thaw');
    $t2->teardown;
};

subtest 'a client that leaves mid-query: its reply is drained, the '
        . 'connection kept' => sub {
    my $t3 = BulletDrop::Test->new;
    $t3->start_nginx(workers => 1, db_pool => 1, db_timeout => '10s');
    ok(health_ok($t3), 'ok to begin with');

    my ($backend) = $t3->db_backends;
    ok($backend, "one backend: $backend");

    # only that backend stops: the query waits on it, the server lives
    kill 'STOP', $backend;

    my $sock = $t3->http->connect;
    print {$sock} "GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    close $sock;

    # nginx sent the query when it read the request, before it saw the close
    my $log = $t3->nginx->prefix . '/logs/access.log';
    ok(wait_until(sub { -f $log && slurp($log) =~ / 499 / }, 10),
       'nginx saw the client leave while the query was stuck');

    kill 'CONT', $backend;

    my $res = $t3->get('/api/health');
    is($res->{status}, 200, 'the next request is served');
    is_deeply([$t3->db_backends], [$backend],
              'by the same backend: the connection was reused');
    unlike($t3->nginx->log_text, qr/timed out|connection lost/,
           'no timeout, no lost connection');

    like(slurp($log), qr/"GET \/api\/health HTTP\/1\.1" 499 /,
         'the abandoned request is logged as 499');

    $t3->teardown;
};

subtest 'an unreachable server: 503 at once, nothing else suffers' => sub {
    my $port = free_port();    # nothing listens there
    my $t4 = BulletDrop::Test->new(pg => 0);
    $t4->start_nginx(db => "host=127.0.0.1 port=$port dbname=x user=x",
                     db_timeout => '2s');

    my $res = $t4->get('/api/health');
    is($res->{status}, 503, 'status 503');
    is($res->{json}{db}, 'down', 'db "down"');
    cmp_ok($res->{elapsed}, '<', 1, 'at once, not at the timeout');

    is($t4->get('/static/hello.txt')->{status}, 200, 'static files served');
    like($t4->nginx->log_text, qr/bulletdrop db #0: cannot connect: .*refused/,
         'the error log says why');
    $t4->teardown;
};

subtest 'a host name resolved at start connects over TCP' => sub {
    my $t5 = BulletDrop::Test->new(pg_tcp => 1);
    $t5->start_nginx(db => 'host=localhost port=' . $t5->pg->port
                           . ' dbname=bulletdrop user=bulletdrop');

    ok(health_ok($t5), 'health is ok through host=localhost');
    my $rows = $t5->pg->psql(
        "SELECT count(*) FROM pg_stat_activity "
        . "WHERE application_name = 'bulletdrop' AND client_port IS NOT NULL "
        . "AND client_port > 0", dbname => 'postgres', user => 'postgres');
    cmp_ok($rows->[0][0], '>', 0, 'over TCP, not the Unix socket');
    $t5->teardown;
};

done_testing;
