#!/usr/bin/perl
# GET /api/health is a real round trip through the worker's connection
# pool; everything else under /api/ that is not a route gets a JSON 404 or
# 405; and a small pool serves many concurrent requests through its queue.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(wait_until);

my $t = BulletDrop::Test->new;
$t->start_nginx(workers => 2, db_pool => 2);

subtest 'health answers ok when the database answers' => sub {
    my $res = $t->get('/api/health');
    is($res->{status}, 200, 'status 200');
    is($res->{body}, qq({"status":"ok","db":"ok"}\n), 'the exact body');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    is($res->{headers}{'content-length'}, length $res->{body},
       'with its length');
};

subtest 'each worker holds its own pool of connections' => sub {
    my @backends = wait_until(sub {
        my @b = $t->db_backends;
        @b == 4 ? \@b : undef;
    }, 10);
    is(scalar @{ $backends[0] // [] }, 4,
       '2 workers x bulletdrop_db_pool 2 = 4 backends named "bulletdrop"');
};

subtest 'HEAD is answered like GET, without a body' => sub {
    my $res = $t->request('HEAD', '/api/health');
    is($res->{status}, 200, 'status 200');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON type');
    is($res->{body}, '', 'no body');
};

subtest 'unknown API paths are a JSON 404' => sub {
    for my $path ('/api/', '/api/nope', '/api/health/', '/api/health/x',
                  '/api/healthz', '/api/%68ealthx', '/api/health?x=1/../y')
    {
        my $res = $t->get($path);
        my $want = $path =~ /\?/ ? 200 : 404;
        is($res->{status}, $want, "$path: $want");
        next if $want != 404;
        is($res->{json}{error}, 'not_found', "$path: error code");
        ok(length $res->{json}{detail}, "$path: a detail");
    }
};

subtest 'a known path with the wrong method is a JSON 405 with Allow' => sub {
    for my $method (qw(POST PUT DELETE PATCH OPTIONS)) {
        my $res = $t->request($method, '/api/health');
        is($res->{status}, 405, "$method: 405");
        is($res->{headers}{allow}, 'GET, HEAD', "$method: Allow");
        is($res->{json}{error}, 'method_not_allowed', "$method: error code");
    }

    my $res = $t->request('FOO', '/api/health');
    is($res->{status}, 405, 'a method nginx does not know: 405');
};

subtest 'a refused request body is read and dropped, the connection lives'
=> sub {
    my $sock = $t->http->connect;
    my $body = 'x' x 100_000;
    print {$sock} "POST /api/health HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body"
        . "GET /api/health HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n\r\n";
    my $raw = $t->http->read_all($sock, 10);
    my @statuses = $raw =~ m{^HTTP/1\.1 (\d{3})}mg;
    is_deeply(\@statuses, [405, 200],
              'the 405 and then the next request on the same connection');
};

subtest 'many concurrent requests through a pool of 2 all answer' => sub {
    my $t1 = BulletDrop::Test->new;
    $t1->start_nginx(workers => 1, db_pool => 2);

    my @res = $t1->http->parallel(map { ['GET', '/api/health'] } 1 .. 200);
    my @ok = grep { $_->{status} == 200 && $_->{json}{db} eq 'ok' } @res;
    is(scalar @ok, 200, '200 of 200 answered ok');

    is(scalar(() = $t1->db_backends), 2, 'through 2 connections only');

    $t1->teardown;
};

done_testing;
