#!/usr/bin/perl
# Files on the file domains.  With bulletdrop_files on, a Host that is an
# enabled file domain (the seed's img., shots., cdn. and media., or one
# added by name) gets /static/<category>/<id>.<ext> from nginx's static
# module, and nothing else: "/" goes to the main site on the client's
# port, other paths are a 404, other methods a 405, OPTIONS a CORS
# preflight.  Every file answer (200, 206, 304, 416) carries nosniff, a
# sandbox, CORS, a Content-Disposition with the uploaded name and a
# Content-Type by kind: media their own, text and markup as text/plain,
# the rest as an attachment.  Permanent files are cached for five minutes
# (then revalidated: t/085) and cost the database nothing (served with
# PostgreSQL frozen or stopped); files with a view limit are no-store and
# need it (503 without it).  A deleted file is a 404 at once; other hosts
# get no files but the API.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();

use BulletDrop::Test qw(is_error sample wait_until);
use BulletDrop::Util qw(spew);

my $EXTS = '.png .jpg .gif .webp .pdf .txt .md .mp4 .webm .json .csv '
         . '.zip .bin';
# bulletdrop_file_cache_ttl's default: a deleted file is gone from caches
# within minutes (t/085)
my $CACHED = 'max-age=300';
# no Access-Control-Expose-Headers: the head stays small (bench/serve.sh)
my $EXPOSE = '';
my $XATTR = 'user.bulletdrop.name';
my @SEED = map { "$_.localhost" } qw(img shots cdn media);
my $EXTRA = 'i.example.net';

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', files => 1,
                base_domain => 'localhost', workers => 2,
                db_timeout => '1s', allowed_extensions => $EXTS);
my $port = $t->port;

my $alice = $t->new_user('alice', key => 1);
my $root = $t->new_user('root', admin => 1);

# the file's xattrs, through the system calls (x86_64 Linux has them)
my $HAVE_XATTR = eval { require 'syscall.ph'; 1 };

sub get_xattr {
    my ($path) = @_;
    my $buf = "\0" x 1024;
    my $n = syscall(&SYS_getxattr, $path, $XATTR, $buf, length $buf);
    return $n < 0 ? undef : substr $buf, 0, $n;
}

sub set_xattr {
    my ($path, $value) = @_;
    return syscall(&SYS_setxattr, $path, $XATTR, $value, length $value,
                   0) == 0;
}

sub path_of { ($_[0] // '') =~ m{\Ahttps?://[^/]+(/.*)\z} ? $1 : '' }

sub upload_ok {
    my ($name, $data, @headers) = @_;
    my $res = $t->upload($alice->{key}, $name, $data,
                         headers => \@headers);
    die "upload $name: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    return { %{ $res->{json} }, path => path_of($res->{json}{url}),
             data => $data };
}

# GET (or another method) of a path with a Host
sub at {
    my ($host, $path, %o) = @_;
    my $method = delete $o{method} // 'GET';
    return $t->request($method, $path, host => $host, %o);
}

# One check that a HEAD was refused as is_error() says, but for a body
sub head_404 {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_deeply([ $res->{status}, $res->{headers}{'content-type'},
                $res->{headers}{'cache-control'}, $res->{body} ],
              [ 404, 'application/json', 'no-store', '' ], $name);
}

# One check of a file answer: its status, the headers every file answer
# has (each once: a header sent twice shows as "a, a"), and the type,
# disposition and caching when $want names them.
sub served_as {
    my ($res, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $h = $res->{headers};
    my %got = (
        status  => $res->{status},
        nosniff => $h->{'x-content-type-options'},
        csp     => $h->{'content-security-policy'},
        origin  => $h->{'access-control-allow-origin'},
        expose  => join(',', sort split /,\s*/,
                        $h->{'access-control-expose-headers'} // ''),
    );
    my %exp = (status => $want->{status} // 200, nosniff => 'nosniff',
               csp => 'sandbox', origin => '*', expose => $EXPOSE);
    my %key = (type => 'content-type', disposition => 'content-disposition',
               cache => 'cache-control');
    for my $k (grep { exists $want->{$_} } sort keys %key) {
        $got{$k} = $h->{$key{$k}};
        $exp{$k} = $want->{$k};
    }

    my $ok = is_deeply(\%got, \%exp, $name);
    diag(JSON::PP->new->canonical->encode($h)) unless $ok;
    return $ok;
}

# the seed, and one domain added by name
my $seeded = $t->post('/api/domains/seed', token => $root->{token});
$t->add_domains($EXTRA);

my $png = upload_ok('shot.png', sample('png', 5000));

subtest 'the seed\'s four domains and an added one serve files' => sub {
    is($seeded->{status}, 200, 'POST /api/domains/seed as an admin: 200');
    is_deeply([ sort map { "$_->{name}:" . ($_->{enabled} ? 'on' : 'off') }
                @{ $seeded->{json}{domains} // [] } ],
              [ sort map { "$_:on" } @SEED ],
              'img., shots., cdn. and media. of localhost, enabled');

    for my $host (@SEED, $EXTRA) {
        my $res = at($host, $png->{path});
        served_as($res, { type => 'image/png', cache => $CACHED },
                  "$host: 200, an image/png");
        ok($res->{body} eq $png->{data}, "$host: the bytes uploaded");
    }

    ok(at("img.localhost:$port", $png->{path})->{body} eq $png->{data},
       'a Host with the port');
    ok(at('IMG.LocalHost', $png->{path})->{body} eq $png->{data},
       'a Host in mixed case');

    is(scalar(my @w = $t->nginx->worker_pids), 2, 'two workers');
    my @all = $t->http->parallel(map {
        my $host = $_;
        map { [ 'GET', $png->{path}, host => $host ] } 1 .. 3
    } @SEED, $EXTRA);
    is(scalar(grep { $_->{status} == 200 && $_->{body} eq $png->{data} }
              @all), 15, 'fifteen requests at once: all served, whole');
};

subtest 'other hosts get no files, but the API' => sub {
    for my $host ('localhost', "localhost:$port", '127.0.0.1',
                  'nope.localhost', 'img.localhost.example')
    {
        is_error(at($host, $png->{path}), 404, 'not_found',
                 "$host: the file is a 404");
        head_404(at($host, $png->{path}, method => 'HEAD'),
                 "$host: HEAD of it too");
        is_error(at($host, '/static/hello.txt'), 404, 'not_found',
                 "$host: so is any /static/ path");
        is(at($host, '/api/health')->{status}, 200,
           "$host: the API answers");
    }

    my $res = $t->upload($alice->{key}, 'elsewhere.png',
                         sample('png', 1200), host => 'nope.localhost');
    is($res->{status}, 201, 'an upload through an unregistered Host');

    is($t->patch('/api/domains/cdn.localhost', token => $root->{token},
                 json => { enabled => JSON::PP::false })->{status}, 200,
       'cdn.localhost disabled');
    my @off = $t->http->parallel(map {
        [ 'GET', $png->{path}, host => 'cdn.localhost' ] } 1 .. 6);
    is(scalar(grep { $_->{status} == 404
                     && ($_->{json}{error} // '') eq 'not_found' } @off),
       6, 'a disabled domain: 404 not_found, in every worker');
    is(at('cdn.localhost', '/api/health')->{status}, 200,
       'and the API answers there');
    is(at('img.localhost', $png->{path})->{status}, 200,
       'the other domains serve still');

    is($t->patch('/api/domains/cdn.localhost', token => $root->{token},
                 json => { enabled => JSON::PP::true })->{status}, 200,
       'cdn.localhost enabled again');
    my @on = $t->http->parallel(map {
        [ 'GET', $png->{path}, host => 'cdn.localhost' ] } 1 .. 6);
    is(scalar(grep { $_->{status} == 200 } @on), 6,
       'it serves again, in every worker');
};

# every kind: [ extension, Content-Type served, disposition ]
my @KINDS = (
    [ png  => 'image/png',                 'inline' ],
    [ jpg  => 'image/jpeg',                'inline' ],
    [ gif  => 'image/gif',                 'inline' ],
    [ webp => 'image/webp',                'inline' ],
    [ mp4  => 'video/mp4',                 'inline' ],
    [ webm => 'video/webm',                'inline' ],
    [ pdf  => 'application/pdf',           'inline' ],
    [ txt  => 'text/plain; charset=utf-8', 'inline' ],
    [ md   => 'text/plain; charset=utf-8', 'inline' ],
    [ json => 'text/plain; charset=utf-8', 'inline' ],
    [ csv  => 'text/plain; charset=utf-8', 'inline' ],
    [ zip  => 'application/octet-stream',  'attachment' ],
    [ bin  => 'application/octet-stream',  'attachment' ],
);
my %kind = map { $_->[0] => upload_ok("kind.$_->[0]", sample($_->[0], 2000))
               } @KINDS;

subtest 'each kind of file has its type, inline or as an attachment'
=> sub {
    for my $k (@KINDS) {
        my ($ext, $type, $disp) = @$k;
        my $rec = $kind{$ext};
        my $res = at('media.localhost', $rec->{path});
        served_as($res, { type => $type, cache => $CACHED,
                          disposition => qq{$disp; filename="kind.$ext"} },
                  ".$ext: $type, $disp, cached for five minutes");
        ok($res->{body} eq $rec->{data}, ".$ext: the bytes uploaded");
        is($res->{headers}{'content-length'}, 2000, ".$ext: their length");
    }
};

subtest 'markup and scripts are shown as their source' => sub {
    my %names = (html => 'page "one".html', svg => 'logo\\dark.svg',
                 xml => 'feed.xml', js => 'app.js');
    my $code = qq{<script>alert(document.domain)</script>\n};

    # they cannot be uploaded (see below): stored by hand, as an upload
    # would be, with a permanent id (its last character of even index)
    for my $ext (sort keys %names) {
        my $id = substr("Placed\u$ext" . ('x' x 16), 0, 15) . 'A';
        my $file = $t->upload_dir . "/documents/$id.$ext";
        spew($file, $code);
        my $path = "/static/documents/$id.$ext";

        my $res = at('shots.localhost', $path);
        served_as($res, { type => 'text/plain; charset=utf-8',
                          cache => $CACHED,
                          disposition => qq{inline; filename="$id.$ext"} },
                  ".$ext without a name kept: text/plain, inline, named "
                  . 'by its id');
        is($res->{body}, $code, ".$ext: its source, as stored");

        SKIP: {
            skip 'no xattr system calls here', 1 unless $HAVE_XATTR;
            set_xattr($file, $names{$ext}) or die "setxattr: $!";
            my $name = $names{$ext};
            (my $ascii = $name) =~ s/["\\]/_/g;
            my $star = $ascii eq $name ? '' : "; filename*=UTF-8''"
                . join '', map { /[A-Za-z0-9.]/ ? $_
                                 : sprintf '%%%02X', ord } split //, $name;
            is(at('shots.localhost', $path)->{headers}
                   {'content-disposition'},
               qq{inline; filename="$ascii"$star},
               ".$ext named '$name': the name, in both forms if need be");
        }
    }
};

subtest 'html, svg, xml and js cannot be allowed for upload' => sub {
    my $c = BulletDrop::Test->new(pg => 0);
    my ($ok, $out) = $c->check_conf(db => 'host=/nonexistent dbname=x',
                                    allowed_extensions => '.png .csv');
    ok($ok, 'allowing .png .csv: nginx -t passes') or diag $out;
    for my $ext (qw(html svg xml js)) {
        ($ok, $out) = $c->check_conf(db => 'host=/nonexistent dbname=x',
                                     allowed_extensions => ".png .$ext");
        ok(!$ok, "allowing .$ext: nginx -t fails");
        like($out, qr/\Q"bulletdrop_allowed_extensions": ".$ext" is \E
                      \Qcontent a browser would run\E/x,
             "allowing .$ext: and says why") or diag $out;
    }

    # now: two fixtures alive at the end trip Test.pm's END block
    $c->teardown;
};

subtest 'names: UTF-8, quotes and percent signs, both forms' => sub {
    my @cases = (
        [ 'shot.png', 'shot.png', undef ],
        [ "caf\x{c3}\x{a9} \"q\" 100%.png", 'caf_ _q_ 100%.png',
          'caf%C3%A9%20%22q%22%20100%25.png' ],
        [ "\x{f0}\x{9f}\x{93}\x{b7} photo.png", '_ photo.png',
          '%F0%9F%93%B7%20photo.png' ],
        [ '50%.png', '50%.png', '50%25.png' ],
        [ "tab\there.png", 'tab_here.png', undef ],
        [ 'dir/sub\\x.png', 'x.png', undef ],
    );

    for my $c (@cases) {
        my ($sent, $fallback, $star) = @$c;
        my $rec = upload_ok($sent, sample('png', 1500, $sent));
        my $want = qq{inline; filename="$fallback"}
                 . (defined $star ? "; filename*=UTF-8''$star" : '');
        my $shown = $sent =~ s/[^ -~]/?/gr;
        served_as(at('img.localhost', $rec->{path}),
                  { disposition => $want }, "'$shown': $want");

        my $name = $rec->{name};
        utf8::encode($name);
        SKIP: {
            skip 'no xattr system calls here', 1 unless $HAVE_XATTR;
            is(get_xattr($t->stored_path($rec)), $name,
               "'$shown': the name kept in $XATTR is the record's");
        }
    }
};

subtest 'ranges' => sub {
    my $data = $png->{data};
    my $res = at('img.localhost', $png->{path},
                 headers => [ Range => 'bytes=0-99' ]);
    served_as($res, { status => 206, type => 'image/png',
                      cache => $CACHED },
              'bytes=0-99: 206, with the file\'s headers');
    is($res->{headers}{'content-range'}, 'bytes 0-99/5000',
       'Content-Range: bytes 0-99/5000');
    ok($res->{body} eq substr($data, 0, 100), 'the first 100 bytes');

    $res = at('img.localhost', $png->{path},
              headers => [ Range => 'bytes=-10' ]);
    is($res->{status}, 206, 'bytes=-10: 206');
    is($res->{headers}{'content-range'}, 'bytes 4990-4999/5000',
       'the last ten');
    ok($res->{body} eq substr($data, -10), 'their bytes');

    $res = at('img.localhost', $png->{path},
              headers => [ Range => 'bytes=4000-' ]);
    is($res->{headers}{'content-range'}, 'bytes 4000-4999/5000',
       'bytes=4000-: to the end');
    ok($res->{body} eq substr($data, 4000), 'the last 1000 bytes');

    $res = at('img.localhost', $kind{txt}{path},
              headers => [ Range => 'bytes=10-19' ]);
    served_as($res, { status => 206, type => 'text/plain; charset=utf-8',
                      disposition => 'inline; filename="kind.txt"' },
              'a range of text: text/plain still');
    is($res->{body}, substr($kind{txt}{data}, 10, 10), 'its ten bytes');

    $res = at('img.localhost', $png->{path},
              headers => [ Range => 'bytes=999999-' ]);
    served_as($res, { status => 416,
                      disposition => 'inline; filename="shot.png"',
                      cache => $CACHED },
              'bytes=999999-: 416, with the file\'s headers, each once');
    is($res->{headers}{'content-range'}, 'bytes */5000',
       'Content-Range: bytes */5000');
};

subtest 'conditional GETs' => sub {
    my $first = at('img.localhost', $png->{path});
    my ($etag, $modified) = @{ $first->{headers} }{qw(etag last-modified)};
    like($etag // '', qr/\A"[^"]+"\z/, 'a 200 has an ETag');
    like($modified // '', qr/\A\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT\z/,
         'and a Last-Modified');

    my $res = at('img.localhost', $png->{path},
                 headers => [ 'If-None-Match' => $etag ]);
    served_as($res, { status => 304, cache => $CACHED,
                      disposition => 'inline; filename="shot.png"' },
              'If-None-Match with it: 304, with the file\'s headers');
    is($res->{body}, '', 'and no body');
    is($res->{headers}{etag}, $etag, 'the same ETag');

    $res = at('shots.localhost', $png->{path},
              headers => [ 'If-Modified-Since' => $modified ]);
    served_as($res, { status => 304, cache => $CACHED },
              'If-Modified-Since with the Last-Modified: 304');
    is($res->{body}, '', 'and no body');

    $res = at('img.localhost', $png->{path},
              headers => [ 'If-None-Match' => '"something-else"' ]);
    is($res->{status}, 200, 'another ETag: 200');
    ok($res->{body} eq $png->{data}, 'with the file');

    $res = at('img.localhost', $png->{path},
              headers => [ 'If-Modified-Since' =>
                           'Thu, 01 Jan 1970 00:00:01 GMT' ]);
    is($res->{status}, 200, 'modified since 1970: 200');
};

subtest 'HEAD: the headers of a GET, no body' => sub {
    for my $ext (qw(png txt zip)) {
        my $rec = $kind{$ext};
        my $get = at('img.localhost', $rec->{path});
        my $head = at('img.localhost', $rec->{path}, method => 'HEAD');
        served_as($head, { type => $get->{headers}{'content-type'},
                           disposition =>
                               $get->{headers}{'content-disposition'},
                           cache => $CACHED },
                  ".$ext: 200 and the headers of its GET");
        is($head->{headers}{'content-length'}, 2000,
           ".$ext: its Content-Length");
        is($head->{headers}{etag}, $get->{headers}{etag}, ".$ext: its ETag");
        is($head->{raw} =~ s/\A.*?\r\n\r\n//sr, '', ".$ext: no body sent");
    }
    head_404(at('img.localhost', '/static/images/AAAAAAAAAAAAAAAA.png',
                method => 'HEAD'), 'a missing file: 404');
};

subtest '/ on a file domain goes to the main site, on the same port'
=> sub {
    my $res = at("img.localhost:$port", '/');
    is($res->{status}, 302, "img.localhost:$port/: 302");
    is($res->{headers}{location}, "http://localhost:$port/",
       "to http://localhost:$port/");

    $res = at('media.localhost:8080', '/');
    is($res->{headers}{location}, 'http://localhost:8080/',
       'the port of the Host header, whatever it is');

    $res = at('shots.localhost', '/');
    is($res->{status}, 302, 'a Host without a port: 302');
    is($res->{headers}{location}, 'http://localhost/',
       'to http://localhost/');

    $res = at("$EXTRA:$port", '/');
    is($res->{headers}{location}, "http://localhost:$port/",
       "$EXTRA too: to the base domain");

    isnt(at("localhost:$port", '/')->{status}, 302,
         'the main site\'s own / is not sent anywhere');
};

subtest 'files are read-only: 405, and OPTIONS is a CORS preflight'
=> sub {
    my $file = $t->stored_path($png);
    for my $method (qw(POST PUT DELETE PATCH)) {
        my $res = at('img.localhost', $png->{path}, method => $method,
                     body => 'x' x 10, token => $alice->{key});
        is_error($res, 405, 'method_not_allowed', "$method: 405");
        is($res->{headers}{allow}, 'GET, HEAD, OPTIONS',
           "$method: Allow: GET, HEAD, OPTIONS");
    }
    ok(-f $file, 'the file is still there');
    ok(at('img.localhost', $png->{path})->{body} eq $png->{data},
       'and served as before');

    my $res = at('img.localhost', $png->{path}, method => 'OPTIONS',
                 headers => [ Origin => 'https://elsewhere.example',
                              'Access-Control-Request-Method' => 'GET',
                              'Access-Control-Request-Headers' => 'range' ]);
    my $h = $res->{headers};
    is_deeply({ status => $res->{status},
                map { $_ => $h->{"access-control-$_"} }
                    qw(allow-origin allow-methods allow-headers max-age) },
              { status => 204, 'allow-origin' => '*',
                'allow-methods' => 'GET, HEAD', 'allow-headers' => 'Range',
                'max-age' => 86400 },
              'OPTIONS: 204 allowing any origin GET and HEAD with Range, '
              . 'for a day');
    is($res->{body}, '', 'with no body');
};

subtest 'a file domain serves stored files and nothing else' => sub {
    my $id = $png->{id};
    my $short = substr $id, 0, 15;
    my @bad = (
        '/static/.tmp/x', '/static/.tmp/', '/api/health', '/api/uploads',
        '/d/' . ('A' x 32), '/favicon.ico', '/static/', '/static/images/',
        '/static/hello.txt', "/static/images/$id", "/static/images/$id.",
        "/static/images/$id.PNG", "/static/IMAGES/$id.png",
        "/static/images/${short}.png", "/static/images/${id}x.png",
        "/static/images/${short}!.png", "/static/images/$id.png/",
        "/static/images/$id.png/x", "/static/documents/$id.png",
        "/static/other/$id.png", "/static/images/$id.jpg",
        '/static/images/' . ('A' x 16) . '.png',
        "/static/images/$id.png%20", "/static/images/..%2f..%2f$id.png",
        "/static/images/$id." . ('a' x 17),
    );
    for my $path (@bad) {
        is_error(at('img.localhost', $path), 404, 'not_found',
                 "GET $path: 404");
    }

    my $res = $t->upload($alice->{key}, 'x.png', sample('png', 1000),
                         host => 'img.localhost');
    is_error($res, 404, 'not_found', 'uploads are not taken there either');

    ok(at('img.localhost', "$png->{path}?v=1")->{body} eq $png->{data},
       'a query string does not matter');
    ok(at('img.localhost', "/static/images/../images/$id.png")->{body}
       eq $png->{data}, 'nor dot segments that resolve to the file');
};

subtest 'the database down: permanent files serve, limited ones 503'
=> sub {
    my $ttl = upload_ok('ttl.png', sample('png', 1800, 'ttl'),
                        'X-BulletDrop-Expires' => '1h');
    # few views: none are leased ahead, each GET asks the database
    my $views = upload_ok('views.png', sample('png', 1900, 'views'),
                          'X-BulletDrop-Max-Views' => 10);

    served_as(at('img.localhost', $png->{path}), { cache => $CACHED },
              'a permanent file: cached for five minutes');
    # an hour left: five minutes, as a permanent file (t/085)
    for my $case ([ $ttl, $CACHED ], [ $views, 'no-store' ]) {
        my ($rec, $cache) = @$case;
        my $res = at('img.localhost', $rec->{path});
        served_as($res, { cache => $cache, type => 'image/png',
                          disposition => qq{inline; filename="$rec->{name}"}
                        }, "$rec->{name}, with a limit: $cache");
        ok($res->{body} eq $rec->{data}, "$rec->{name}: served whole");
    }
    my $etag = at('img.localhost', $png->{path})->{headers}{etag};

    for my $down ([ frozen => 'freeze', 'thaw' ],
                  [ stopped => 'stop', 'start' ])
    {
        my ($how, $off, $on) = @$down;
        $t->pg->$off;

        my $res = at('img.localhost', $png->{path});
        served_as($res, { cache => $CACHED, type => 'image/png' },
                  "PostgreSQL $how: a permanent file, 200");
        ok($res->{body} eq $png->{data}, "$how: whole");
        cmp_ok($res->{elapsed}, '<', 0.5,
               "$how: at once (a query would wait for the 1 s timeout)");
        is(at('cdn.localhost', $png->{path},
              headers => [ Range => 'bytes=0-9' ])->{status}, 206,
           "$how: a range of it, 206");
        is(at('media.localhost', $png->{path},
              headers => [ 'If-None-Match' => $etag ])->{status}, 304,
           "$how: a conditional GET of it, 304");

        is_error(at('img.localhost', $views->{path}), 503,
                 'database_unavailable',
                 "$how: a file with a view limit, 503");

        $t->pg->$on;
        ok(wait_until(sub { $t->get('/api/health')->{status} == 200 }, 15),
           "$how: the database is back");
    }

    my $res = at('img.localhost', $views->{path});
    is($res->{status}, 200, 'the file with a view limit serves again');
    ok($res->{body} eq $views->{data}, 'whole');
};

subtest 'a deleted file stops being served at once' => sub {
    my $keep = upload_ok('keep.png', sample('png', 1300, 'keep'));
    my $gone = upload_ok('gone.png', sample('png', 1400, 'gone'));
    my $ttl = upload_ok('gone-ttl.png', sample('png', 1500, 'ttl2'),
                        'X-BulletDrop-Expires' => '1d');

    for my $rec ($gone, $ttl) {
        my @before = $t->http->parallel(map {
            [ 'GET', $rec->{path}, host => $_ ] } @SEED, @SEED);
        is(scalar(grep { $_->{status} == 200 } @before), 8,
           "$rec->{name}: served before, everywhere");

        my $res = $t->delete("/api/uploads/$rec->{id}",
                             token => $alice->{key});
        is($res->{status}, 204, "$rec->{name}: DELETE by its owner, 204");
        ok(!-e $t->stored_path($rec), "$rec->{name}: off the disk");

        my @after = $t->http->parallel(map {
            [ 'GET', $rec->{path}, host => $_ ] } @SEED, @SEED);
        is(scalar(grep { $_->{status} == 404
                         && ($_->{json}{error} // '') eq 'not_found' }
                  @after), 8,
           "$rec->{name}: the next GETs are 404 not_found, everywhere");
        is_error(at('img.localhost', $rec->{path},
                    headers => [ Range => 'bytes=0-9' ]), 404, 'not_found',
                 "$rec->{name}: a range of it too");
    }

    ok(at('img.localhost', $keep->{path})->{body} eq $keep->{data},
       'the file not deleted is served as ever');
};

done_testing;
