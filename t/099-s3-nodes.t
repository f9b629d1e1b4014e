#!/usr/bin/perl
# Two nodes, one PostgreSQL, one bucket.  Node A (the fixture's nginx) and
# node B (another prefix and port, the same database, JWT secret and
# bucket in a real Ceph RGW) are one deployment behind a load balancer: a
# file uploaded on one is served byte for byte by the other (and a small
# upload is answered in milliseconds, nothing held back on the way to the
# store); a file
# deleted on one is gone from the other at once, though it never asked the
# database for it; a view-limited file fetched through both at once has
# exactly its views, no more; domains changed on one are served or refused
# by the other within moments (LISTEN/NOTIFY); the sweep running on both
# removes each expired object once; and a node killed in the middle of a
# multipart upload leaves no row, only a leftover that bulletdrop-s3 fsck
# reports and repairs.
#
# Both nodes reach the store through an nginx of the test's (the
# "store" proxy) whose access log records every request the store saw:
# the DELETEs per key are counted there.  It lets 20 DELETEs a second
# through (limit_req), so that a sweep of many objects lasts longer than
# the sweep's interval and the other node's sweep comes while it is under
# way.  A second port of it lets one request a quarter of a second
# through, so that a multipart upload is caught half way.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use POSIX qw(strftime);
use Time::HiRes qw(time);

use BulletDrop::HTTP qw(build_request parse_response);
use BulletDrop::RGW;
use BulletDrop::Test qw(wait_until is_error sample filler free_port
                        iso_time);
use BulletDrop::Util qw(slurp top_dir run_cmd);

my $BUCKET = 'bd-nodes';
my $FILES = 'img.localhost';

my $t = BulletDrop::Test->new;
my $rgw = BulletDrop::RGW->new(dir => $t->dir . '/rgw');
$rgw->make_bucket($BUCKET);
my $s3 = $rgw->s3(bucket => $BUCKET);

# ---- the store, as both nodes reach it ---------------------------------

my $store = $t->extra_nginx('store');
my $SLOW_PORT = free_port();
my $STORE_LOG = $store->prefix . '/logs/store.log';
{
    my ($p, $port, $rgw_port) = ($store->prefix, $store->port, $rgw->port);
    # the requests as sent (Host, signature, body streamed), each logged
    # with the port it came to, its method, URI and status
    $store->write_conf(<<"EOF");
worker_processes 1;
pid $p/logs/nginx.pid;
error_log $p/logs/error.log info;
events {
    worker_connections 1024;
}
http {
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    log_format store '\$server_port \$request_method \$request_uri \$status';
    access_log $STORE_LOG store;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Host \$http_host;
    proxy_set_header Connection "";
    limit_req_zone \$server_port zone=slow:1m rate=4r/s;
    map \$request_method \$delete_key {
        DELETE  \$server_port;
        default "";
    }
    limit_req_zone \$delete_key zone=deletes:1m rate=20r/s;
    limit_req_log_level info;
    server {
        listen 127.0.0.1:$port;
        location / {
            limit_req zone=deletes burst=1000;
            proxy_pass http://127.0.0.1:$rgw_port;
        }
    }
    server {
        listen 127.0.0.1:$SLOW_PORT;
        location / {
            limit_req zone=slow burst=1000;
            proxy_pass http://127.0.0.1:$rgw_port;
        }
    }
}
EOF
    $store->start;
}

# [port, method, uri, status] of each request the store answered so far
sub store_requests {
    return map { [ split / / ] } grep { length }
           split /\n/, -f $STORE_LOG ? slurp($STORE_LOG) : '';
}

# the key of an object in a request URI (path style: /bucket/key?query)
sub key_of_uri { ($_[0] =~ m{\A/\Q$BUCKET\E/([^?]+)})[0] }

my %S3 = (endpoint => 'http://127.0.0.1:' . $store->port, bucket => $BUCKET,
          credentials => $rgw->credentials_file, options => 'part_size=5m');
my %CONF = (registration => 'open', files => 1, base_domain => 'localhost',
            workers => 2, sweep_interval => '1s',
            allowed_extensions => '.png .bin .txt', s3 => \%S3);

$t->start_nginx(%CONF);
my $alice = $t->new_user('alice', key => 1);
my $root = $t->new_user('root', admin => 1, key => 1);
is($t->post('/api/domains/seed', token => $root->{key})->{status}, 200,
   'the file domains seeded on node A');

my $node_b = $t->node('b', %CONF);
note('node A on port ' . $t->port . ', node B on port ' . $node_b->port
     . ', the store on ' . $store->port . ' (slow: ' . $SLOW_PORT . '), '
     . 'RGW on ' . $rgw->port);

sub path_of { ($_[0]{url} // '') =~ m{\Ahttps?://[^/]+(/.*)\z} ? $1 : '/' }
sub key_of  { path_of($_[0]) =~ m{\A/static/(.*)\z} ? $1 : '' }

# an upload through a node ($t: A, $node_b: B), which must be answered 201
sub upload_ok {
    my ($node, $name, $data, @headers) = @_;
    my $res = $node->upload($alice->{key}, $name, $data, as => 'raw',
                            headers => \@headers);
    die "upload of $name: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    return { %{ $res->{json} }, data => $data };
}

sub fetch {
    my ($node, $rec, %o) = @_;
    return $node->get(path_of($rec), host => $o{host} // $FILES, %o);
}

sub rows_of {
    my @ids = map { BulletDrop::Pg::quote($_->{id}) } @_;
    return 0 unless @ids;
    return $t->pg->query('SELECT count(*) FROM uploads WHERE id IN ('
                         . join(',', @ids) . ')')->[0][0];
}

# what came back, for a diagnosis: "node status bytes" => how many times
sub summary {
    my %seen;
    $seen{"$_->{node} $_->{status} " . length $_->{body}}++ for @_;
    return \%seen;
}

subtest 'a file uploaded on one node is served byte for byte by the other'
=> sub {
    my $png = sample('png', 200_000, 'a-to-b');
    my $rec = upload_ok($t, 'a-to-b.png', $png);
    my $got = fetch($node_b, $rec);
    is($got->{status}, 200, 'a PNG uploaded on A: B answers 200');
    ok($got->{body} eq $png, 'with every byte of it');
    is($got->{headers}{'content-type'}, 'image/png', 'as image/png');
    my $range = fetch($node_b, $rec,
                      headers => [ Range => 'bytes=1000-1999' ]);
    is_deeply([ $range->{status}, $range->{body} ],
              [ 206, substr($png, 1000, 1000) ], 'and a range of it: 206');

    # past part_size: a multipart upload, its parts put together in order
    my $big = filler(12 << 20, 'big-b-to-a');
    $rec = upload_ok($node_b, 'big.bin', $big);
    $got = fetch($t, $rec);
    is($got->{status}, 200, '12 MB uploaded on B (three parts): A answers '
                            . '200');
    ok(length $got->{body} == length $big && $got->{body} eq $big,
       'with every byte of it, in order')
        or diag 'got ' . length($got->{body}) . ' bytes';
    my $head = $s3->head(key_of($rec));
    is($head->{headers}{'content-length'}, length $big,
       'one object of that size in the bucket');
};

subtest 'a file deleted on B is gone from A at once' => sub {
    my $png = sample('png', 30_000, 'deleted');
    my $rec = upload_ok($t, 'deleted.png', $png);
    # served by A first: whatever A would keep of it, it has now
    my $before = fetch($t, $rec);
    ok($before->{status} == 200 && $before->{body} eq $png,
       'a permanent file: A serves it');
    is($before->{headers}{'cache-control'}, 'max-age=300',
       'as a permanent file (cached by clients, no database asked)');

    is($node_b->delete("/api/uploads/$rec->{id}", token => $alice->{key})
         ->{status}, 204, 'DELETE /api/uploads/ID on B: 204');
    is_error(fetch($t, $rec), 404, 'not_found',
             'A\'s very next GET of it: 404');
    is_error(fetch($node_b, $rec), 404, 'not_found', 'and B\'s');
    is(rows_of($rec), 0, 'its row is gone');
    is($s3->head(key_of($rec))->{status}, 404, 'and its object');
};

# $n GETs of a file, alternately through A and B, each on its own
# connection, all sent before any answer is read: the answers, each with
# the node ('A' or 'B') that gave it
sub stampede {
    my ($rec, $n) = @_;
    my @nodes = ([ A => $t->http ], [ B => $node_b->http ]);
    my (@socks, @raw, @node);
    my $sel = IO::Select->new;
    for my $i (0 .. $n - 1) {
        my ($name, $http) = @{ $nodes[$i % 2] };
        my $sock = $http->connect;
        print {$sock} build_request('GET', path_of($rec), host => $FILES);
        ($socks[$i], $raw[$i], $node[$i]) = ($sock, '', $name);
        $sel->add($sock);
    }
    my %index = map { (fileno $socks[$_] => $_) } 0 .. $#socks;
    my @res;
    my $deadline = time + 60;
    while ($sel->count && time < $deadline) {
        for my $sock ($sel->can_read(1)) {
            my $i = $index{fileno $sock};
            my $got = sysread $sock, my $buf, 65536;
            if ($got) {
                $raw[$i] .= $buf;
                next;
            }
            $sel->remove($sock);
            close $sock;
            $res[$i] = { %{ parse_response($raw[$i]) }, node => $node[$i] };
        }
    }
    die "a stampede's answers did not all come within 60 s\n"
        if $sel->count;
    return @res;
}

subtest 'a file of 5 views fetched 40 times at once through both nodes: '
        . 'exactly 5 × 200' => sub {
    for my $round (1 .. 3) {
        my $data = sample('png', 40_000, "views.$round");
        my $rec = upload_ok($round % 2 ? $t : $node_b, "views$round.png",
                            $data,
                            'X-BulletDrop-Max-Views' => 5,
                            'X-BulletDrop-Expires' => '1h');
        my @res = stampede($rec, 40);
        my $ok = grep { $_->{status} == 200 && $_->{body} eq $data } @res;
        my $gone = grep { $_->{status} == 404 && ref $_->{json} eq 'HASH'
                          && ($_->{json}{error} // '') eq 'not_found' }
                   @res;
        is($ok, 5, "round $round: 5 × 200 with the whole file, both nodes "
                   . 'together') or diag explain summary(@res);
        is($gone, 35, "round $round: 35 × 404 not_found")
            or diag explain summary(@res);
        # a used-up file is the sweep's (every second, on both nodes)
        my $row = $t->row("SELECT views FROM uploads WHERE id = '$rec->{id}'",
                          'views');
        is($row ? $row->{views} : 'swept', $row ? 5 : 'swept',
           "round $round: the row counts 5 views (or is swept, used up)");
        is(fetch($_, $rec)->{status}, 404, "round $round: a later GET on "
                                           . ($_ == $t ? 'A' : 'B')
                                           . ': 404') for $t, $node_b;
    }
};

subtest 'domains changed on A are served and refused by B within moments'
=> sub {
    my $png = sample('png', 5000, 'domains');
    my $rec = upload_ok($t, 'domains.png', $png);
    my $new = 'files.example.net';
    is(fetch($node_b, $rec, host => $new)->{status}, 404,
       "$new is no file domain yet: B answers 404");

    is($t->post('/api/domains', token => $root->{key},
                json => { name => $new })->{status}, 201,
       "$new added on A");
    ok(wait_until(sub { fetch($node_b, $rec, host => $new)->{status} == 200 },
                  3),
       'B serves the file on it within 3 s');
    ok(fetch($node_b, $rec, host => $new)->{body} eq $png, 'the file itself');

    is($t->patch("/api/domains/$FILES", token => $root->{key},
                 json => { enabled => JSON::PP::false })->{status}, 200,
       "$FILES disabled on A");
    is(fetch($t, $rec)->{status}, 404, 'A refuses it at once');
    ok(wait_until(sub { fetch($node_b, $rec)->{status} == 404 }, 3),
       'B refuses it within 3 s');
    is(fetch($node_b, $rec, host => $new)->{status}, 200,
       "while $new still serves the file");

    is($t->patch("/api/domains/$FILES", token => $root->{key},
                 json => { enabled => JSON::PP::true })->{status}, 200,
       "$FILES enabled again on A");
    ok(wait_until(sub { fetch($node_b, $rec)->{status} == 200 }, 3),
       'B serves it again within 3 s');
};

subtest 'the sweep on both nodes removes each expired object once' => sub {
    # all at the same second: the first sweep after it takes all 30, and
    # its DELETEs (20 a second) last past the other node's next sweep
    my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(int(time) + 3));
    my @recs;
    for my $node ($t, $node_b) {
        my @res = $node->http->parallel(map {
            [ $t->upload_request($alice->{key}, "expiring$_.txt",
                                 "expiring file $_\n", as => 'raw',
                                 headers => [ 'X-BulletDrop-Expires'
                                              => $at ]) ]
        } 1 .. 15);
        push @recs, map { $_->{json} } grep { $_->{status} == 201 } @res;
    }
    my %keys = map { (key_of($_) => 1) } @recs;
    is(scalar(keys %keys), 30, "30 files uploaded at once through A and B, "
                               . "all expiring at $at");
    cmp_ok(time, '<', iso_time($at), 'before that time');

    ok(wait_until(sub { !rows_of(@recs) }, 15), 'all 30 rows gone');
    ok(wait_until(sub { !grep { $keys{$_->{key}} } $s3->list }, 5),
       'and all 30 objects');

    # a second sweep that listed a row before the first deleted it
    # would delete its object again within an interval of the sweep: no
    # event to poll for, an absence to wait out
    sleep 1.5;
    my %deletes;
    for my $r (store_requests()) {
        my ($port, $method, $uri, $status) = @$r;
        next unless $method eq 'DELETE';
        my $key = key_of_uri($uri) // next;
        push @{ $deletes{$key} }, $status;
    }
    my @twice = grep { @{ $deletes{$_} } > 1 } sort keys %deletes;
    my @never = grep { !$deletes{$_} } sort keys %keys;
    is_deeply(\@never, [], 'the store saw a DELETE of each expired object');
    is_deeply(\@twice, [], 'and of no object twice')
        or diag explain { map { ($_ => $deletes{$_}) } @twice };
};

# the incomplete multipart uploads in the bucket: ({key, upload_id}, ...)
sub multipart_uploads {
    my $res = $s3->request('GET', '', query => { uploads => '' });
    die 'cannot list multipart uploads: ' . $s3->error($res) . "\n"
        unless $res->{success};
    my @uploads;
    while ($res->{content} =~ m{<Upload>(.*?)</Upload>}gs) {
        my $u = $1;
        my ($key) = $u =~ m{<Key>(.*?)</Key>}s;
        my ($id) = $u =~ m{<UploadId>(.*?)</UploadId>}s;
        push @uploads, { key => $key, upload_id => $id };
    }
    return @uploads;
}

subtest 'node A killed half way through a multipart upload: no row, and '
        . 'only what fsck reports is left' => sub {
    # A's store now lets a request through every quarter of a second: a
    # 30 MB upload goes in six parts, over two seconds
    $t->restart_nginx(%CONF, s3 => { %S3, endpoint =>
                                         "http://127.0.0.1:$SLOW_PORT" });
    my $rows_before = $t->pg->query('SELECT count(*) FROM uploads')->[0][0];

    my $big = filler(30 << 20, 'killed');
    my $x = $t->begin_upload($alice->{key}, 'killed.bin', $big, as => 'raw',
                             send => length $big);
    my $part;
    ok(wait_until(sub {
        ($part) = grep { $_->[0] == $SLOW_PORT && $_->[1] eq 'PUT'
                         && $_->[2] =~ /[?&]partNumber=\d+/
                         && $_->[3] == 200 } store_requests();
        $part }, 20), 'a part of the upload is stored')
        or diag explain [ store_requests() ];
    $t->kill_nginx;
    my $key = $part && key_of_uri($part->[2]);
    my ($upload_id) = $part ? $part->[2] =~ /[?&]uploadId=([^&]+)/ : ();
    note("killed A while uploading $key (upload $upload_id)") if $key;

    my $answer = $x->answer(2);
    ok(!$answer || $answer->{status} != 201,
       'the client is told of no upload');
    is($t->pg->query('SELECT count(*) FROM uploads')->[0][0], $rows_before,
       'no row was written');
    is($t->pg->query("SELECT count(*) FROM uploads WHERE name = "
                     . "'killed.bin'")->[0][0], 0, 'none of killed.bin');

    # what the store has besides the files that have rows: objects
    # without a row, multipart uploads never completed
    my %rows = map { ("$_->[0]/$_->[1].$_->[2]" => 1) } @{ $t->pg->query(
        'SELECT category, id, ext FROM uploads') };
    my @orphans = grep { !$rows{$_} } map { $_->{key} } $s3->list;
    my @incomplete = multipart_uploads();
    note(explain { objects_without_rows => \@orphans,
                   incomplete_multipart_uploads => \@incomplete });
    # every leftover is one fsck reports (and repairs)
    my @fsck = (top_dir() . '/bin/bulletdrop-s3', '--endpoint',
                $rgw->endpoint, '--bucket', $BUCKET, '--credentials',
                $rgw->credentials_file, 'fsck', '--db', $t->pg->conninfo,
                '--grace', '0s');
    my (undef, $out, $err) = run_cmd(\@fsck, check => 0);
    note("bulletdrop-s3 fsck:\n$out$err");
    my @unreported = (
        (grep { $out !~ /^no[ ]upload[ ]for[ ]object:[ ]\Q$_\E[ ]/mx }
         @orphans),
        (grep { my ($k, $id) = @$_{qw(key upload_id)};
                $out !~ /^incomplete[ ]multipart[ ]upload:[ ]\Q$k\E
                         [ ]\(upload[ ]id[ ]\Q$id\E,/mx } @incomplete));
    is_deeply(\@unreported, [], 'bulletdrop-s3 fsck reports every leftover');
    is_deeply([ grep { !defined $key || $_ ne $key } @orphans,
                map { $_->{key} } @incomplete ], [],
              'and they are the killed upload\'s, nothing else');
    run_cmd([ @fsck, '--repair' ], check => 0);
    is_deeply([ multipart_uploads(), grep { !$rows{$_} }
                                     map { $_->{key} } $s3->list ], [],
              'fsck --repair leaves none');

    # A comes back, on the store without delay
    $t->start_nginx(%CONF);
    my $png = sample('png', 5000, 'back');
    my $rec = upload_ok($t, 'back.png', $png);
    ok(fetch($node_b, $rec)->{body} eq $png, 'A, started again, takes uploads '
                                        . 'that B serves');
};

done_testing;
