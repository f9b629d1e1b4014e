#!/usr/bin/perl
# How long browsers and caches keep a file, and how many ranges one request
# may ask for.  A delete must mean gone: a file without limits is kept for
# bulletdrop_file_cache_ttl (5 minutes unless set), not a year, and then
# asked for again with its ETag or Last-Modified, which is a 304 with no
# body while the file is there and a 404 once it is deleted or expired.
# An expiring file is never kept past its expiry, a file with a view limit
# never at all; shared caches may get longer (s-maxage) where the operator
# says so.  Where the location sets no max_ranges, a request of more than
# 16 ranges gets the whole file, not a multipart answer ten times its size;
# a few ranges are a 206 multipart/byteranges, and a max_ranges the
# operator writes is nginx's to apply.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);

use BulletDrop::Test qw(is_error sample wait_until);

my $FILES = 'img.localhost';
my $TTL = 'max-age=300';
my %conf = (registration => 'open', files => 1, workers => 2);

my $t = BulletDrop::Test->new;
$t->start_nginx(%conf);
$t->add_domains($FILES);

my $alice = $t->new_user('alice', key => 1);

sub upload_ok {
    my ($name, $data, @headers) = @_;
    my $res = $t->upload($alice->{key}, $name, $data, as => 'raw',
                         headers => \@headers);
    die "upload $name: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    my ($path) = $res->{json}{url} =~ m{\Ahttps?://[^/]+(/.*)\z};
    return { %{ $res->{json} }, path => $path, data => $data };
}

# a GET (or another method) of a file on the file domain
sub fetch {
    my ($rec, %o) = @_;
    my $method = delete $o{method} // 'GET';
    return $t->request($method, $rec->{path}, host => $FILES, %o);
}

# the seconds of a Cache-Control's max-age, or undef
sub max_age {
    my ($res) = @_;
    return ($res->{headers}{'cache-control'} // '') =~ /\Amax-age=(\d+)\z/
           ? $1 : undef;
}

# what came after the head, whatever the method
sub sent_body { $_[0]{raw} =~ s/\A.*?\r\n\r\n//sr }

# a Range header of $n one-byte ranges, every other byte
sub ranges {
    my ($n) = @_;
    return 'bytes=' . join ',', map { 2 * $_ . '-' . 2 * $_ } 0 .. $n - 1;
}

my $png = upload_ok('shot.png', sample('png', 5000));

subtest 'a file without limits is kept five minutes, with validators, '
        . 'never as immutable' => sub {
    my $res = fetch($png);
    is($res->{status}, 200, 'GET: 200');
    is($res->{headers}{'cache-control'}, $TTL, "Cache-Control: $TTL");
    like($res->{headers}{etag} // '', qr/\A"[^"]+"\z/, 'an ETag');
    like($res->{headers}{'last-modified'} // '',
         qr/\A\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT\z/, 'a Last-Modified');

    is(fetch($png, method => 'HEAD')->{headers}{'cache-control'}, $TTL,
       "HEAD: $TTL");
    my $part = fetch($png, headers => [ Range => 'bytes=0-9' ]);
    is_deeply([ $part->{status}, $part->{headers}{'cache-control'} ],
              [ 206, $TTL ], "a range: 206, $TTL");
    my $bad = fetch($png, headers => [ Range => 'bytes=9999-' ]);
    is_deeply([ $bad->{status}, $bad->{headers}{'cache-control'} ],
              [ 416, $TTL ], "a range past the end: 416, $TTL");
};

subtest 'a repeat view with the ETag or the Last-Modified is a 304 with '
        . 'no body' => sub {
    my $first = fetch($png);
    my ($etag, $lm) = @{ $first->{headers} }{qw(etag last-modified)};

    for my $case ([ 'If-None-Match' => $etag ],
                  [ 'If-Modified-Since' => $lm ],
                  [ 'If-None-Match' => $etag, 'If-Modified-Since' => $lm ])
    {
        my $what = join ' and ', @{$case}[ grep { !($_ % 2) } 0 .. $#$case ];
        for my $method (qw(GET HEAD)) {
            my $res = fetch($png, method => $method, headers => $case);
            is_deeply({ status => $res->{status},
                        cache => $res->{headers}{'cache-control'},
                        etag => $res->{headers}{etag},
                        nosniff => $res->{headers}{'x-content-type-options'},
                        body => sent_body($res) },
                      { status => 304, cache => $TTL, etag => $etag,
                        nosniff => 'nosniff', body => '' },
                      "$method with $what: 304, $TTL again, no body");
        }
    }

    is(fetch($png, headers => [ 'If-None-Match' => '"other"' ])->{status},
       200, 'another ETag: 200');
};

subtest 'a deleted or expired file, asked for again with its validators, '
        . 'is a 404, not a 304' => sub {
    my $perm = upload_ok('deleted.png', sample('png', 3000, 'deleted'));
    my $ttl = upload_ok('deleted-ttl.png', sample('png', 3000, 'ttl'),
                        'X-BulletDrop-Expires' => '1h');

    for my $rec ($perm, $ttl) {
        my $first = fetch($rec);
        my @cond = ('If-None-Match' => $first->{headers}{etag},
                    'If-Modified-Since' => $first->{headers}{'last-modified'});
        is(fetch($rec, headers => \@cond)->{status}, 304,
           "$rec->{name}: revalidated while there, 304");

        is($t->delete("/api/uploads/$rec->{id}", token => $alice->{key})
             ->{status}, 204, "$rec->{name}: DELETE /api/uploads/ID, 204");

        is_error(fetch($rec, headers => [ @cond[0, 1] ]), 404, 'not_found',
                 "$rec->{name}: then If-None-Match: 404, no-store");
        is_error(fetch($rec, headers => [ @cond[2, 3] ]), 404, 'not_found',
                 "$rec->{name}: If-Modified-Since: 404");
        is_error(fetch($rec, headers => \@cond), 404, 'not_found',
                 "$rec->{name}: both: 404");
    }

    my $short = upload_ok('short.png', sample('png', 3000, 'short'),
                          'X-BulletDrop-Expires' => '2s');
    my $etag = fetch($short)->{headers}{etag};
    my $status;
    ok(wait_until(sub {
           $status = fetch($short, headers => [ 'If-None-Match' => $etag ])
                       ->{status};
           $status != 304;
       }, 5), 'a file of 2 s, revalidated until it expires');
    is($status, 404, 'then 404');
};

subtest 'an expiring file is never kept past its expiry' => sub {
    my $hour = upload_ok('hour.png', sample('png', 3000, 'hour'),
                         'X-BulletDrop-Expires' => '1h');
    is(fetch($hour)->{headers}{'cache-control'}, $TTL,
       "an hour left: $TTL, like a file without limits");

    for my $case ([ '2m', 120 ], [ '30s', 30 ]) {
        my ($in, $left) = @$case;
        my $rec = upload_ok("in$in.png", sample('png', 3000, $in),
                            'X-BulletDrop-Expires' => $in);
        my $t0 = time;
        my $res = fetch($rec);
        my $age = max_age($res);
        ok(defined $age && $age <= $left && $age >= $left - 10,
           "$in left: max-age of at most $left s")
            or diag 'Cache-Control: '
                    . ($res->{headers}{'cache-control'} // 'none');

        my $again = fetch($rec, headers => [ 'If-None-Match' =>
                                             $res->{headers}{etag} ]);
        my $was = time - $t0;
        ok($again->{status} == 304 && defined max_age($again)
               && max_age($again) <= $left - int($was),
           "$in left: its 304 too, counted down")
            or diag "$again->{status} "
                    . ($again->{headers}{'cache-control'} // 'none');
    }

    # a fresh nginx knows nothing of it: the database says when it expires
    my $rec = upload_ok('restart.png', sample('png', 3000, 'restart'),
                        'X-BulletDrop-Expires' => '2m');
    $t->restart_nginx(%conf);
    my $age = max_age(fetch($rec));
    ok(defined $age && $age <= 120 && $age >= 100,
       'after a restart, from the database: at most 120 s')
        or diag 'max-age: ' . ($age // 'none');
    is(fetch($hour)->{headers}{'cache-control'}, $TTL,
       "the hour-long one: $TTL");
};

subtest 'a file with a view limit is never cached' => sub {
    my $views = upload_ok('views.png', sample('png', 3000, 'views'),
                          'X-BulletDrop-Max-Views' => 10);
    my $both = upload_ok('both.png', sample('png', 3000, 'both'),
                         'X-BulletDrop-Max-Views' => 10,
                         'X-BulletDrop-Expires' => '1h');
    for my $rec ($views, $both) {
        my $res = fetch($rec);
        is_deeply([ $res->{status}, $res->{headers}{'cache-control'} ],
                  [ 200, 'no-store' ], "$rec->{name}: no-store");
        is(fetch($rec, method => 'HEAD')->{headers}{'cache-control'},
           'no-store', "$rec->{name}: HEAD, no-store");
    }
};

subtest 'more than 16 ranges get the whole file; a few, a multipart '
        . 'answer' => sub {
    my $data = $png->{data};

    my $res = fetch($png, headers => [ Range => ranges(500) ]);
    is($res->{status}, 200, '500 ranges: 200');
    ok($res->{body} eq $data, 'the whole file, once');
    cmp_ok(length $res->{raw}, '<', length($data) + 1024,
           'not a 51 KB multipart answer');
    is($res->{headers}{'accept-ranges'}, 'bytes',
       'Accept-Ranges: bytes, as nginx says past max_ranges');
    is($res->{headers}{'x-content-type-options'}, 'nosniff',
       'with the file\'s headers');

    $res = fetch($png, headers => [ Range => 'bytes=0-9,100-109' ]);
    is($res->{status}, 206, 'two ranges: 206');
    my ($boundary) = ($res->{headers}{'content-type'} // '')
                     =~ m{\Amultipart/byteranges; boundary=(\S+)\z};
    ok($boundary, 'multipart/byteranges');
    my @parts = grep { /Content-Range/ } split /--\Q$boundary\E/,
                                               $res->{body} // '';
    is_deeply([ map { /Content-Range: bytes (\d+-\d+)\/5000\r\n\r\n/
                      ? $1 : '?' } @parts ], [ '0-9', '100-109' ],
              'the two parts, in order');
    ok(@parts == 2 && index($parts[0], substr($data, 0, 10)) >= 0
           && index($parts[1], substr($data, 100, 10)) >= 0,
       'with their bytes');
    is($res->{headers}{'cache-control'}, $TTL, "and $TTL");

    $res = fetch($png, headers => [ Range => ranges(16) ]);
    is_deeply([ $res->{status}, scalar(() = $res->{body}
                                       =~ /Content-Range: bytes/g) ],
              [ 206, 16 ], '16 ranges: 206, 16 parts');
    $res = fetch($png, headers => [ Range => ranges(17) ]);
    ok($res->{status} == 200 && $res->{body} eq $data,
       '17 ranges: 200, the whole file');

    my $limited = upload_ok('ranged.png', sample('png', 4000, 'ranged'),
                            'X-BulletDrop-Max-Views' => 100);
    $res = fetch($limited, headers => [ Range => ranges(500) ]);
    ok($res->{status} == 200 && $res->{body} eq $limited->{data},
       'a file with a view limit: 500 ranges, the whole file too');
};

subtest 'a file answer\'s head stays under 512 bytes for a usual name'
=> sub {
    # as a browser or wrk asks: keep-alive, which the answer says (5 bytes
    # more than "close"), and nginx's version in Server as here
    my $res = fetch($png);
    my $head = index($res->{raw}, "\r\n\r\n") + 4;
    my $alive = $head + length('keep-alive') - length('close');
    cmp_ok($alive, '<', 512, "the head of shot.png: $alive bytes");
};

subtest 'bulletdrop_file_cache_ttl: the http block, a server, a location'
=> sub {
    my $c = BulletDrop::Test->new(pg => 0);
    my ($ok, $out) = $c->check_conf(db => 'host=/nonexistent dbname=x',
                                    files => 1,
                                    http => "bulletdrop_file_cache_ttl 1h;");
    ok($ok, 'bulletdrop_file_cache_ttl 1h: nginx -t passes') or diag $out;
    ($ok, $out) = $c->check_conf(db => 'host=/nonexistent dbname=x',
                                 files => 1,
                                 http => "bulletdrop_file_cache_ttl soon;");
    ok(!$ok, 'bulletdrop_file_cache_ttl soon: nginx -t fails');
    like($out, qr/"bulletdrop_file_cache_ttl" directive invalid value/,
         'and says why') or diag $out;
    $c->teardown;

    my $long = upload_ok('long.png', sample('png', 3000, 'long'),
                         'X-BulletDrop-Expires' => '30m');

    $t->restart_nginx(%conf, http => "bulletdrop_file_cache_ttl 1d;\n");
    is(fetch($png)->{headers}{'cache-control'}, 'max-age=86400',
       'in the http block, 1d: max-age=86400');
    my $age = max_age(fetch($long));
    ok(defined $age && $age <= 1800 && $age >= 1700,
       'an expiring file still not past its expiry')
        or diag 'max-age: ' . ($age // 'none');

    my $uploads = $t->upload_dir;
    my $server = <<"EOF";
        bulletdrop_files on;
        bulletdrop_file_cache_ttl 2h;

        location /api/ {
            bulletdrop_api;
        }

        location /static/images/ {
            alias $uploads/images/;
            bulletdrop_file_cache_ttl 0;
        }

        location /static/ {
            alias $uploads/;
        }
EOF
    my $txt = upload_ok('notes.txt', "some notes\n");
    $t->restart_nginx(%conf, http => "bulletdrop_file_cache_ttl 1d;\n",
                      server => $server);
    is(fetch($txt)->{headers}{'cache-control'}, 'max-age=7200',
       'in the server, 2h: max-age=7200');
    my $res = fetch($png);
    is_deeply([ $res->{status}, $res->{headers}{'cache-control'} ],
              [ 200, 'no-cache' ],
              'in a location, 0: no-cache (revalidated on every view)');
    is(fetch($png, headers => [ 'If-None-Match' => $res->{headers}{etag} ])
         ->{status}, 304, 'which is a 304');
};

subtest 'bulletdrop_file_cache_shared_ttl: longer for a CDN (s-maxage), '
        . 'never past an expiry' => sub {
    my $c = BulletDrop::Test->new(pg => 0);
    my ($ok, $out) = $c->check_conf(
        db => 'host=/nonexistent dbname=x', files => 1,
        http => "bulletdrop_file_cache_shared_ttl soon;");
    ok(!$ok, 'bulletdrop_file_cache_shared_ttl soon: nginx -t fails');
    $c->teardown;

    my $soon = upload_ok('soon.png', sample('png', 3000, 'soon'),
                         'X-BulletDrop-Expires' => '30m');
    my $views = upload_ok('counted.png', sample('png', 3000, 'counted'),
                          'X-BulletDrop-Max-Views' => 10);
    $t->restart_nginx(%conf, http => "bulletdrop_file_cache_shared_ttl 1d;
");

    is(fetch($png)->{headers}{'cache-control'},
       'max-age=300, s-maxage=86400',
       'a file without limits: five minutes for browsers, a day for a CDN');
    my $res = fetch($soon);
    my ($age, $shared) = ($res->{headers}{'cache-control'} // '')
                         =~ /\Amax-age=(\d+), s-maxage=(\d+)\z/;
    ok(defined $age && $age == 300 && $shared <= 1800 && $shared >= 1700,
       'a file of 30 minutes: five for browsers, no more than 30 for a CDN')
        or diag 'Cache-Control: ' . ($res->{headers}{'cache-control'} // '');
    is(fetch($views)->{headers}{'cache-control'}, 'no-store',
       'a file with a view limit: no-store still');
};

subtest 'a max_ranges of the operator\'s is nginx\'s to apply' => sub {
    my $uploads = $t->upload_dir;
    my $server = <<"EOF";
        bulletdrop_files on;

        location /api/ {
            bulletdrop_api;
        }

        location /static/images/ {
            alias $uploads/images/;
            max_ranges 1000;
        }

        location /static/documents/ {
            alias $uploads/documents/;
            max_ranges 1;
        }
EOF
    my $txt = upload_ok('ranges.txt', sample('txt', 3000, 'ranges'));
    $t->restart_nginx(%conf, server => $server);

    my $res = fetch($png, headers => [ Range => ranges(500) ]);
    is_deeply([ $res->{status}, scalar(() = $res->{body}
                                       =~ /Content-Range: bytes/g) ],
              [ 206, 500 ], 'max_ranges 1000: 500 ranges are 500 parts');

    $res = fetch($txt, headers => [ Range => 'bytes=0-9,100-109' ]);
    ok($res->{status} == 200 && $res->{body} eq $txt->{data},
       'max_ranges 1: two ranges get the whole file');
    $res = fetch($txt, headers => [ Range => 'bytes=0-9' ]);
    ok($res->{status} == 206 && $res->{body} eq substr($txt->{data}, 0, 10),
       'and one range its bytes');
};

done_testing;
