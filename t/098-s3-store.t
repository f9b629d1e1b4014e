#!/usr/bin/perl
# Files in an S3 bucket (bulletdrop_storage s3), one nginx node against a
# real S3 server: Ceph RGW on loopback (BulletDrop::RGW), which checks
# every signature.  Uploads of every route and size go to the bucket under
# <category>/<id>.<ext> with their type and name, as one PUT up to
# part_size and as a multipart upload past it, and nothing stays on the
# node's disk; the file domains serve them from the bucket with every
# check and header they have for files on disk (ranges, validators, view
# limits, burn after reading, expiry and the sweep), and none of the
# store's; deletes and delete links remove the object, then the row.  A
# store that is down, slow, refusing our key, or failing a multipart upload
# half way is a 503 storage_unavailable that leaves nothing behind (no row,
# no object, no multipart upload, no temp file), and the worker serves on.
# The store over TLS is trusted by the CA given, and by no other;
# serve=redirect sends permanent files to the CDN, never limited ones.
# Bad configurations are refused without showing the secret.

use strict;
use warnings;
use feature 'state';
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::MD5 qw(md5_hex);
use JSON::PP ();
use Time::HiRes qw(time);

use BulletDrop::RGW;
use BulletDrop::Test qw(is_error is_upload sample wait_until filler
                        iso_time);
use BulletDrop::Util qw(spew slurp spew_private run_cmd top_dir);

my $EXTS = '.png .txt .pdf .bin';
my $CACHED = 'max-age=300';
my $BUCKET = 'bd-files';
my $MiB = 1024 * 1024;

my $t = BulletDrop::Test->new;
my $dir = $t->dir;
my $rgw = BulletDrop::RGW->new(dir => "$dir/rgw");
$rgw->make_bucket($BUCKET);
my $s3 = $rgw->s3(bucket => $BUCKET, timeout => 10);
my $CREDS = $rgw->credentials_file;
my $SECRET = $rgw->secret;

# ---- the bucket, as the S3 client sees it -----------------------------

sub objects { sort map { $_->{key} } $s3->list }

# the multipart uploads begun and neither completed nor aborted:
# [key, upload id], by key (ListMultipartUploads: GET /bucket?uploads)
sub multipart_uploads {
    my $res = $s3->request('GET', '', query => { uploads => '' });
    die 'cannot list multipart uploads: ' . $s3->error($res) . "\n"
        unless $res->{success};
    my @uploads;
    for my $u ($res->{content} =~ m{<Upload>(.*?)</Upload>}gs) {
        my ($key) = $u =~ m{<Key>(.*?)</Key>}s;
        my ($id) = $u =~ m{<UploadId>(.*?)</UploadId>}s;
        push @uploads, [ $key // '?', $id // '?' ];
    }
    return sort { $a->[0] cmp $b->[0] } @uploads;
}

sub incomplete_uploads { map { $_->[0] } multipart_uploads() }

# the object's key: its link's path after /static/
sub key_of { ($_[0]{url} // '') =~ m{\Ahttps?://[^/]+/static/(.+)\z} ? $1 : '' }

sub path_of { ($_[0] // '') =~ m{\Ahttps?://[^/]+(/.*)\z} ? $1 : '' }

sub row_of {
    my ($rec) = @_;
    return $t->row('SELECT views, max_views FROM uploads WHERE id = '
                   . BulletDrop::Pg::quote($rec->{id}), qw(views max_views));
}

# What is kept: rows, local files, temp files, objects, multipart uploads
sub kept {
    return { %{ $t->uploads_state }, objects => [ objects() ],
             multipart => [ incomplete_uploads() ] };
}

# One check that a refused upload left nothing: no row, no local file, no
# temp file, no object, no multipart upload (the bucket as in $before)
sub nothing_left {
    my ($before, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    wait_until(sub { !$t->temp_files }, 5);
    my $now = kept();
    my $ok = is_deeply($now, { %$before, tmp => [] }, $name);
    diag(JSON::PP->new->canonical->encode({ before => $before, now => $now }))
        unless $ok;
    return $ok;
}

# what the bucket holds past $before goes (so that a leak fails one test)
sub clean_up {
    my ($before) = @_;
    my %had = map { $_ => 1 } @{ $before->{objects} };
    $s3->delete($_) for grep { !$had{$_} } objects();
    %had = map { $_ => 1 } @{ $before->{multipart} };
    $s3->delete($_->[0], query => { uploadId => $_->[1] })
        for grep { !$had{ $_->[0] } } multipart_uploads();
}

# One check of a 503 storage_unavailable: JSON, not cached, Retry-After
sub unavailable {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error($res, 503, 'storage_unavailable', $name)
        and is($res->{headers}{'retry-after'}, '1', "$name: Retry-After: 1");
}

# ---- nginx ------------------------------------------------------------

my %S3 = (endpoint => $rgw->endpoint, bucket => $BUCKET,
          credentials => $CREDS);

# nginx with the bucket; s3 => {...} changes the storage's parameters
sub start {
    my (%o) = @_;
    my $s3o = delete $o{s3} // {};
    my %conf = (registration => 'open', files => 1,
                base_domain => 'localhost', workers => 1,
                allowed_extensions => $EXTS, sweep_interval => '1s',
                s3 => { %S3, %$s3o }, %o);
    state $started = 0;
    $started++ ? $t->restart_nginx(%conf) : $t->start_nginx(%conf);
    # its database connections made (slow under ASan, with a CA bundle
    # to load): what a test asks next is not a 503 of the database's
    wait_until(sub { $t->get('/api/health')->{status} == 200 }, 20)
        or die "nginx did not reach its database\n";
}

# ---- configurations refused (nginx -t) --------------------------------

subtest 'a bad bulletdrop_storage is refused, saying why, never the secret'
=> sub {
    spew_private("$dir/no-secret.credentials",
                 "[default]\naws_access_key_id = AKIDTEST\n");
    my $ok = "endpoint=http://127.0.0.1:1 bucket=$BUCKET credentials=$CREDS";
    my @cases = (
        [ 'no bucket', "endpoint=http://127.0.0.1:1 credentials=$CREDS",
          qr/needs endpoint=, bucket= and credentials=/ ],
        [ 'no credentials', "endpoint=http://127.0.0.1:1 bucket=$BUCKET",
          qr/needs endpoint=, bucket= and credentials=/ ],
        [ 'an ftp:// endpoint',
          "endpoint=ftp://127.0.0.1:1 bucket=$BUCKET credentials=$CREDS",
          qr{takes an endpoint=http://\.\.\. or https://} ],
        [ 'a bucket of 2 characters',
          "endpoint=http://127.0.0.1:1 bucket=bd credentials=$CREDS",
          qr/bucket name of 3 to 63 characters/ ],
        [ 'part_size under 5 MiB', "$ok part_size=1m",
          qr/invalid parameter "part_size=1m"/ ],
        [ 'part_size not a size', "$ok part_size=big",
          qr/invalid parameter "part_size=big"/ ],
        [ 'a credentials file that is not there',
          "endpoint=http://127.0.0.1:1 bucket=$BUCKET "
          . "credentials=$dir/nowhere.credentials",
          qr{"bulletdrop_storage": cannot open "\Q$dir\E/nowhere\.credentials"} ],
        [ 'a credentials file without a secret',
          "endpoint=http://127.0.0.1:1 bucket=$BUCKET "
          . "credentials=$dir/no-secret.credentials",
          qr/lack aws_access_key_id or aws_secret_access_key/ ],
    );
    for my $case (@cases) {
        my ($name, $params, $like) = @$case;
        my ($passed, $out) = $t->check_conf(
            files => 1, http => "    bulletdrop_storage s3 $params;\n");
        ok(!$passed, "$name: nginx -t fails");
        like($out, qr/\[emerg\].*$like/, "$name: and says why") or diag $out;
        unlike($out, qr/\Q$SECRET\E/, "$name: the secret is not shown");
    }
    my ($passed, $out) = $t->check_conf(
        files => 1, http => "    bulletdrop_storage s3 $ok;\n");
    ok($passed, 'the same with every parameter right: accepted')
        or diag $out;
};

# ---- uploads ----------------------------------------------------------

start();
my $alice = $t->new_user('alice', key => 1);
my $root = $t->new_user('root', admin => 1);
my $empty = kept();

# an upload that must succeed: the record, its path, its bytes, its key
# (in list context also the record as it came)
sub upload_ok {
    my ($name, $data, %o) = @_;
    my $res = $t->upload($alice->{key}, $name, $data, timeout => 60, %o);
    die "upload $name: $res->{status} $res->{body}\n"
        unless $res->{status} == 201;
    my $rec = $res->{json};
    my $r = { %$rec, path => path_of($rec->{url}), key => key_of($rec),
              data => $data };
    return wantarray ? ($r, $rec) : $r;
}

# One check that an upload's object is in the bucket as it should be
sub in_bucket {
    my ($rec, $type, $disposition, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $got = $s3->get($rec->{key});
    my $h = $got->{headers};
    my $ok = is_deeply(
        { status => $got->{status}, same => $got->{content} eq $rec->{data}
                                            ? 'the bytes' : 'other bytes',
          length => length $got->{content}, type => $h->{'content-type'},
          disposition => $h->{'content-disposition'} },
        { status => 200, same => 'the bytes', length => length $rec->{data},
          type => $type, disposition => $disposition }, $name);
    diag "GET $rec->{key}: $got->{status} " . substr($got->{content}, 0, 200)
        unless $ok;
    return $got;
}

my ($png, $notes, $shared, $six, $twelve);

subtest 'small uploads of every route go to the bucket, not the disk'
=> sub {
    (($png, my $as_sent) = upload_ok('shot.png', sample('png', 5000)));
    is_upload($as_sent, { name => 'shot.png', size => 5000,
                          category => 'images' },
              'multipart form: 201 and the record', ext => 'png');
    in_bucket($png, 'image/png', 'inline; filename="shot.png"',
              'in the bucket as images/<id>.png: bytes, type, name');

    (($notes, $as_sent) = upload_ok('notes.txt', sample('txt', 700),
                                    as => 'raw'));
    is_upload($as_sent, { name => 'notes.txt', category => 'documents' },
              'raw body with X-Filename: 201', ext => 'txt');
    in_bucket($notes, 'text/plain; charset=utf-8',
              'inline; filename="notes.txt"',
              'in the bucket as documents/<id>.txt');

    my $res = $t->upload($alice->{key}, 'share.png', sample('png', 3000, 'x'),
                         sharex => 1);
    is($res->{status}, 201, 'ShareX route: 201') or diag $res->{body};
    like($res->{json}{url} // '', qr{\Ahttp://localhost/static/images/}, 
         '... with the link ShareX reads');
    $shared = { %{ $res->{json} // {} }, data => sample('png', 3000, 'x') };
    $shared->{key} = key_of($shared);
    $shared->{path} = path_of($shared->{url});
    in_bucket($shared, 'image/png', 'inline; filename="share.png"',
              'in the bucket too');

    is_deeply([ objects() ], [ sort map { $_->{key} } $png, $notes, $shared ],
              'the bucket holds these three objects, nothing else');
    is_deeply([ $t->stored_files ], [], 'no file under images/, '
              . 'documents/ or other/ on the node');
    is_deeply([ $t->temp_files ], [], 'nothing in .tmp');
    is_deeply([ incomplete_uploads() ], [], 'no multipart upload');
};

subtest '6 MB goes as one PUT (part_size 16m by default)' => sub {
    $six = upload_ok('six.bin', filler(6 * $MiB, 'six'));
    is($six->{size}, 6 * $MiB, '201, 6 MiB');
    my $got = in_bucket($six, 'application/octet-stream',
                        'attachment; filename="six.bin"',
                        'in the bucket as other/<id>.bin, byte for byte');
    is($got->{headers}{etag}, '"' . md5_hex($six->{data}) . '"',
       'its ETag is the MD5 of the bytes: one PUT');
    is_deeply([ $t->temp_files, $t->stored_files ], [],
              'nothing on the node\'s disk');
};

# from here on: 5 MiB parts, and a store that must answer within 2 s
start(s3 => { options => 'part_size=5m timeout=2s' });

subtest '12 MB past part_size=5m: a multipart upload of 3 parts' => sub {
    $twelve = upload_ok('twelve.bin', filler(12 * $MiB, 'twelve'),
                        as => 'raw');
    is($twelve->{size}, 12 * $MiB, '201, 12 MiB');
    my $got = in_bucket($twelve, 'application/octet-stream',
                        'attachment; filename="twelve.bin"',
                        'in the bucket byte for byte, with type and name');
    my $head = $s3->head($twelve->{key});
    like($head->{headers}{etag} // '', qr/\A"[0-9a-f]{32}-3"\z/,
         'its ETag says 3 parts');
    is_deeply([ incomplete_uploads() ], [], 'no multipart upload left open');
    is_deeply([ $t->temp_files, $t->stored_files ], [],
              'nothing on the node\'s disk');
};

# ---- serving from the file domains ------------------------------------

# (the seed is made now: before it, records name no domain, as is_upload
# expects)
my $seeded = $t->post('/api/domains/seed', token => $root->{token});
die "seed: $seeded->{status} $seeded->{body}" unless $seeded->{status} == 200;

sub at {
    my ($path, %o) = @_;
    my $method = delete $o{method} // 'GET';
    return $t->request($method, $path, host => 'img.localhost', %o);
}

# One check of the headers every file answer has, each once, and none of
# the store's
sub served_as {
    my ($res, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $h = $res->{headers};
    my %got = (status => $res->{status},
               nosniff => $h->{'x-content-type-options'},
               csp => $h->{'content-security-policy'},
               origin => $h->{'access-control-allow-origin'},
               store => join(',', sort grep { /\Ax-(?:amz|rgw)-/ } keys %$h),
               map { $_ => $h->{"content-$_"} } qw(type disposition));
    $got{cache} = $h->{'cache-control'};
    my %exp = (status => 200, nosniff => 'nosniff', csp => 'sandbox',
               origin => '*', store => '', %$want);
    $exp{$_} //= $got{$_} for qw(type disposition cache);
    my $ok = is_deeply(\%got, \%exp, $name);
    diag(JSON::PP->new->canonical->encode($h)) unless $ok;
    return $ok;
}

subtest 'files are served from the bucket with the file domains\' headers'
=> sub {
    my $res = at($png->{path});
    served_as($res, { type => 'image/png', cache => $CACHED,
                      disposition => 'inline; filename="shot.png"' },
              'GET: 200, nosniff, sandbox, CORS, one disposition, cached');
    ok($res->{body} eq $png->{data}, 'the bytes, exactly');
    my $etag = $res->{headers}{etag};
    ok(defined $etag && length $etag, 'an ETag');

    my $big = at($twelve->{path});
    ok($big->{status} == 200 && $big->{body} eq $twelve->{data},
       'the 12 MB multipart object: 200, byte for byte');

    my $head = at($png->{path}, method => 'HEAD');
    served_as($head, { type => 'image/png', cache => $CACHED },
              'HEAD: 200 with the same headers');
    is_deeply([ $head->{headers}{'content-length'}, $head->{body} ],
              [ 5000, '' ], 'HEAD: its length, no body');

    my $range = at($png->{path}, headers => [ Range => 'bytes=2-5' ]);
    served_as($range, { status => 206, cache => $CACHED },
              'Range: 206 with the file headers');
    is_deeply([ $range->{body}, $range->{headers}{'content-range'} ],
              [ substr($png->{data}, 2, 4), 'bytes 2-5/5000' ],
              'bytes 2-5 of 5000');
    my $tail = at($six->{path}, headers => [ Range => 'bytes=-100' ]);
    is_deeply([ $tail->{status}, $tail->{body},
                $tail->{headers}{'content-range'} ],
              [ 206, substr($six->{data}, -100),
                'bytes ' . (6 * $MiB - 100) . '-' . (6 * $MiB - 1) . '/'
                . 6 * $MiB ],
              'a suffix range of the 6 MB file: its last 100 bytes');

    # what the store does not do as a file on disk is done by nginx: a
    # proxied answer is cut to one range at most, so several get it whole
    my $two = at($png->{path}, headers => [ Range => 'bytes=0-9,100-109' ]);
    served_as($two, { cache => $CACHED },
              'two ranges: 200 with the file headers');
    ok($two->{body} eq $png->{data} && !$two->{headers}{'content-range'},
       'the whole file, with no Content-Range');
    my $backwards = at($png->{path}, headers => [ Range => 'bytes=5-1' ]);
    is($backwards->{status}, 416,
       'a range that ends before it starts: 416, as nginx answers it from '
       . 'a disk')
        or diag "$backwards->{status} $backwards->{body}";
    my $stale = at($png->{path}, headers => [ Range => 'bytes=0-9',
                                             'If-Range' => '"stale"' ]);
    ok($stale->{status} == 200 && $stale->{body} eq $png->{data},
       'an If-Range that no longer holds: 200, the whole file');
    my $fresh = at($png->{path}, headers => [ Range => 'bytes=0-9',
                                             'If-Range' => $etag ]);
    is_deeply([ $fresh->{status}, $fresh->{body} ],
              [ 206, substr($png->{data}, 0, 10) ],
              'an If-Range that holds: 206');
    my $past = at($png->{path}, headers => [ Range => 'bytes=999999-' ]);
    is_error($past, 416, 'range_not_satisfiable',
             'a range past the end: 416 in JSON');
    unlike($past->{body}, qr/\Q$BUCKET\E|RequestId|<\?xml/,
           'nothing of the store\'s own answer');

    my $same = at($png->{path}, headers => [ 'If-None-Match' => $etag ]);
    served_as($same, { status => 304, cache => $CACHED },
              'If-None-Match with its ETag: 304 with the file headers');
    is($same->{body}, '', '304: no body');

    my $txt = at($notes->{path});
    served_as($txt, { type => 'text/plain; charset=utf-8' },
              'a .txt: text/plain');
    is($txt->{body}, $notes->{data}, 'its bytes');

    is_error(at('/static/images/AAAAAAAAAAAAAAAA.png'), 404, 'not_found',
             'a file that is in no row and no bucket: 404 JSON');

    # an object another tool wrote with headers of its own
    my $meta = upload_ok('meta.png', sample('png', 2500, 'meta'));
    my $put = $s3->put($meta->{key}, content => $meta->{data},
                       headers => { 'x-amz-meta-owner' => 'someone',
                                    'Cache-Control' => 'public, max-age=99999',
                                    'Expires' => 'Thu, 01 Jan 2037 00:00:00 GMT',
                                    'Content-Type' => 'text/html',
                                    'Content-Disposition'
                                        => 'inline; filename="meta.png"' });
    is($put->{status}, 200, 'the object rewritten with headers of its own');
    my $scrubbed = at($meta->{path});
    served_as($scrubbed, { type => 'image/png', cache => $CACHED,
                           disposition => 'inline; filename="meta.png"' },
              'served with the file headers only: the table\'s type, our '
              . 'Cache-Control');
    ok(!grep({ /\A(?:x-amz-meta-owner|expires)\z/ }
             keys %{ $scrubbed->{headers} }),
       'none of the store\'s metadata or Expires')
        or diag join ', ', sort keys %{ $scrubbed->{headers} };
    $t->delete("/api/uploads/$meta->{id}", token => $alice->{token});
};

subtest 'a view limit of 2: served twice, not stored, then 404' => sub {
    my $rec = upload_ok('twice.png', sample('png', 4000, 'twice'),
                        headers => [ 'X-BulletDrop-Max-Views' => 2 ]);
    for my $i (1, 2) {
        my $res = at($rec->{path});
        served_as($res, { cache => 'no-store' }, "GET $i: 200, no-store");
        ok($res->{body} eq $rec->{data}, "GET $i: the bytes");
    }
    is_error(at($rec->{path}), 404, 'not_found', 'GET 3: 404');
    my $row = row_of($rec);
    ok(!$row || $row->{views} == 2,
       'the row counted 2 views (if the sweep has not taken it yet)');
    ok(wait_until(sub { !row_of($rec) && $s3->head($rec->{key})->{status}
                                          == 404 }, 10),
       'the sweep removes the object and the row');
};

subtest 'burn after reading: served once, then gone from the bucket' => sub {
    my $rec = upload_ok('burn.png', sample('png', 4000, 'burn'),
                        headers => [ 'X-BulletDrop-Max-Views' => 1 ]);
    is($s3->head($rec->{key})->{status}, 200, 'in the bucket before');
    my $res = at($rec->{path});
    served_as($res, { cache => 'no-store' }, 'GET: 200, no-store');
    ok($res->{body} eq $rec->{data}, 'the bytes');
    is_error(at($rec->{path}), 404, 'not_found', 'GET again: 404');
    ok(wait_until(sub { $s3->head($rec->{key})->{status} == 404 }, 5),
       'the object goes from the bucket');
    ok(wait_until(sub { !row_of($rec) }, 10), 'the row with the sweep');
};

subtest 'an expiring file stops at its expiry; the sweep removes object '
        . 'and row' => sub {
    my $rec = upload_ok('soon.png', sample('png', 4000, 'soon'),
                        headers => [ 'X-BulletDrop-Expires' => '2s' ]);
    my $at = iso_time($rec->{expires_at});
    my $res = at($rec->{path});
    is($res->{status}, 200, 'before: 200');
    ok($res->{body} eq $rec->{data}, 'before: the bytes');
    ok(wait_until(sub { at($rec->{path})->{status} == 404 }, 6),
       'it stops being served');
    my $stopped = time;
    ok($stopped >= $at && $stopped < $at + 1.5,
       '... at its expiry (expires_at), not before')
        or diag "stopped at $stopped, expires_at $rec->{expires_at}";
    ok(wait_until(sub { !row_of($rec)
                        && $s3->head($rec->{key})->{status} == 404 }, 10),
       'the sweep (every 1s) removes the object and the row');
};

# ---- deletes ----------------------------------------------------------

subtest 'DELETE /api/uploads/ID: the object, then the row; 404 at once'
=> sub {
    my $rec = upload_ok('gone.png', sample('png', 3000, 'gone'));
    is(at($rec->{path})->{status}, 200, 'served before');
    my $res = $t->delete("/api/uploads/$rec->{id}", token => $alice->{token});
    is($res->{status}, 204, 'DELETE: 204') or diag $res->{body};
    is($s3->head($rec->{key})->{status}, 404, 'the object is gone');
    ok(!row_of($rec), 'the row is gone');
    is_error(at($rec->{path}), 404, 'not_found', 'its link: 404 at once');
};

subtest 'a delete link does the same' => sub {
    my $rec = upload_ok('link.png', sample('png', 3000, 'link'));
    my $res = $t->post(path_of($rec->{delete_url}));
    is($res->{status}, 200, 'POST /d/TOKEN: 200') or diag $res->{body};
    is_deeply($res->{json}, { deleted => JSON::PP::true, id => $rec->{id} },
              '{"deleted": true, "id": ...}');
    is($s3->head($rec->{key})->{status}, 404, 'the object is gone');
    ok(!row_of($rec), 'the row is gone');
    is_error(at($rec->{path}), 404, 'not_found', 'its link: 404 at once');
};

# ---- faults -----------------------------------------------------------

subtest 'the store down: uploads, serving and deletes are 503; nothing '
        . 'half done' => sub {
    my $kept = upload_ok('kept.png', sample('png', 3000, 'kept'));
    my $before = kept();

    $rgw->stop_gateway;
    unavailable($t->upload($alice->{key}, 'down.png', sample('png', 2000)),
                'a small upload');
    unavailable($t->upload($alice->{key}, 'down.bin', filler(12 * $MiB, 'd'),
                           timeout => 30),
                'a 12 MB (multipart) upload');
    unavailable(at($kept->{path}), 'serving a file');
    my $del = $t->delete("/api/uploads/$kept->{id}",
                         token => $alice->{token});
    unavailable($del, 'DELETE /api/uploads/ID');
    ok(row_of($kept), 'its row stays');
    $rgw->start_gateway;

    nothing_left($before, 'no row, no object, no multipart upload, no '
                 . 'temp file: as before');
    is($s3->head($kept->{key})->{status}, 200, 'the object stayed');

    my $after = upload_ok('back.png', sample('png', 2000, 'back'));
    is(at($after->{path})->{body}, $after->{data},
       'the store back: an upload and its fetch work, same worker');
    is($t->delete("/api/uploads/$kept->{id}", token => $alice->{token})
         ->{status}, 204, 'and the delete');
    is($s3->head($kept->{key})->{status}, 404, 'its object gone');
    ok(!row_of($kept), 'its row gone');
    $t->delete("/api/uploads/$after->{id}", token => $alice->{token});
};

subtest 'the store hanging: 503 within the timeout (2 s)' => sub {
    my $before = kept();
    $rgw->pause;
    my $res = $t->upload($alice->{key}, 'slow.png', sample('png', 2000, 'sl'));
    my $big = $t->upload($alice->{key}, 'slow.bin', filler(12 * $MiB, 's'),
                         timeout => 30);
    $rgw->resume;
    unavailable($res, 'a small upload');
    cmp_ok($res->{elapsed}, '<', 5, 'answered within 5 s');
    unavailable($big, 'a 12 MB upload');
    cmp_ok($big->{elapsed}, '<', 8, 'answered within 8 s');

    my $after = upload_ok('fast.png', sample('png', 2000, 'fast'));
    is($after->{size}, 2000, 'resumed: the next upload works');
    $t->delete("/api/uploads/$after->{id}", token => $alice->{token});

    # the requests that timed out were sent: the store may still carry
    # them out once resumed, which must leave nothing either (the module
    # deletes what they may have made, retrying while the store hangs,
    # and once more half a minute later)
    wait_until(sub { JSON::PP->new->canonical->encode(kept())
                     eq JSON::PP->new->canonical->encode($before) }, 45);
    nothing_left($before, 'nothing of the refused uploads is left, '
                 . 'once the store is back');
    clean_up($before);
};

subtest 'a wrong secret (403 from the store): 503, never the secret in '
        . 'the log' => sub {
    my $wrong = "$dir/wrong.credentials";
    my $bad_secret = 'WRONG' . ('x' x 35);
    spew_private($wrong, "[default]\naws_access_key_id = " . $rgw->access_key
                 . "\naws_secret_access_key = $bad_secret\n");
    my $before = kept();
    start(s3 => { credentials => $wrong,
                  options => 'part_size=5m timeout=2s' });
    unavailable($t->upload($alice->{key}, 'key.png', sample('png', 2000)),
                'an upload');
    unavailable($t->upload($alice->{key}, 'key.bin', filler(12 * $MiB, 'k'),
                           timeout => 30),
                'a 12 MB upload');
    unavailable(at($png->{path}), 'serving a file');
    like($t->nginx->log_text, qr/status 403/, 'the log says 403');
    unlike($t->nginx->log_text, qr/\Q$bad_secret\E|\Q$SECRET\E/,
           'and shows neither secret');
    start(s3 => { options => 'part_size=5m timeout=2s' });
    nothing_left($before, 'nothing is left');
    is(at($png->{path})->{body}, $png->{data},
       'with the right key: served again');
};

# an nginx of ours in front of the store: everything to RGW but for
# what $rule refuses
sub front {
    my ($name, $rule, %o) = @_;
    my $x = $t->extra_nginx($name);
    my ($pp, $port, $rgw_port) = ($x->prefix, $x->port, $rgw->port);
    my $listen = $o{tls}
        ? "listen 127.0.0.1:$port ssl;\n        ssl_certificate $o{tls}[0];"
          . "\n        ssl_certificate_key $o{tls}[1];"
        : "listen 127.0.0.1:$port;";
    $x->write_conf(<<"EOF");
worker_processes 1;
pid $pp/logs/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log $pp/logs/access.log;
    client_body_temp_path $pp/tmp/body;
    proxy_temp_path $pp/tmp/proxy;
    fastcgi_temp_path $pp/tmp/fastcgi;
    uwsgi_temp_path $pp/tmp/uwsgi;
    scgi_temp_path $pp/tmp/scgi;

    server {
        $listen
        client_max_body_size 0;

        location / {
            $rule
            proxy_pass http://127.0.0.1:$rgw_port;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
        }
    }
}
EOF
    $x->start;
    return $x;
}

subtest 'a multipart upload failing at part 2: 503, and the upload '
        . 'aborted' => sub {
    my $faulty = front('faulty', 'if ($arg_partNumber = 2) { return 500; }');
    my $before = kept();
    start(s3 => { endpoint => 'http://127.0.0.1:' . $faulty->port,
                  options => 'part_size=5m timeout=2s' });

    my $res = $t->upload($alice->{key}, 'half.bin', filler(12 * $MiB, 'h'),
                         timeout => 30);
    unavailable($res, 'a 3-part upload whose part 2 fails');
    # (the abort is not waited for: the client has its answer first)
    my $log = $faulty->prefix . '/logs/access.log';
    ok(wait_until(sub { slurp($log) =~ m{"PUT [^"]*partNumber=2[^"]*" 500 .*\n.*"DELETE [^"]*uploadId=} },
                  5),
       'part 2 got its 500, then the upload was aborted')
        or diag slurp($log);
    nothing_left($before, 'no object, no multipart upload, no row, no '
                 . 'temp file');
    my $small = upload_ok('whole.png', sample('png', 2000, 'whole'));
    is(at($small->{path})->{body}, $small->{data},
       'a single PUT through the same front works, and is served');
    $t->delete("/api/uploads/$small->{id}", token => $alice->{token});
    start(s3 => { options => 'part_size=5m timeout=2s' });
};

subtest 'a store that says yes without storing, or no to the wrong '
        . 'question: not believed' => sub {
    my $liar = front('liar', 'if ($request_method = PUT) { return 200; }'
                             . "\n            if (\$request_method = DELETE)"
                             . ' { return 404; }'
                             . "\n            if (\$request_method = GET)"
                             . ' { return 302 http://elsewhere.test/; }');
    my $kept = upload_ok('kept.png', sample('png', 2000, 'kept'));
    my $before = kept();
    start(s3 => { endpoint => 'http://127.0.0.1:' . $liar->port,
                  options => 'part_size=5m timeout=2s' });

    unavailable($t->upload($alice->{key}, 'lie.png',
                           sample('png', 2000, 'lie')),
                'a bare 200 to a PUT, with no ETag');
    my $del = $t->delete("/api/uploads/$kept->{id}",
                         token => $alice->{token});
    is_error($del, 503, 'storage_unavailable',
             'a 404 to a DELETE that does not say NoSuchKey (a wrong '
             . 'bucket or endpoint): 503');
    my $moved = at($kept->{path});
    is_error($moved, 503, 'storage_unavailable',
             'a redirect from the store: 503, and no Location')
        and ok(!defined $moved->{headers}{location}, 'no Location');
    start(s3 => { options => 'part_size=5m timeout=2s' });
    nothing_left($before, 'no row and no object of the lie; the other '
                 . 'file and its row kept');
    is(at($kept->{path})->{body}, $kept->{data}, 'and still served');
    $t->delete("/api/uploads/$kept->{id}", token => $alice->{token});
};

# ---- the store over TLS -----------------------------------------------

sub openssl {
    my ($status, undef, $err) = run_cmd([ 'openssl', @_ ], check => 0);
    die "openssl @_[0 .. 1]: $err" if $status;
}

subtest 'the store over TLS: trusted by the CA given, and by no other'
=> sub {
    my $CA = "$dir/s3-ca.crt";
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
            '-subj', '/CN=BulletDrop S3 test CA', '-keyout', "$dir/s3-ca.key",
            '-out', $CA, '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt',
            'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
            '-keyout', "$dir/s3-tls.key", '-out', "$dir/s3-tls.csr");
    spew("$dir/s3-tls.ext", "subjectAltName=DNS:localhost\n"
         . "basicConstraints=critical,CA:FALSE\n"
         . "keyUsage=critical,digitalSignature\n"
         . "extendedKeyUsage=serverAuth\n");
    openssl('x509', '-req', '-in', "$dir/s3-tls.csr", '-CA', $CA, '-CAkey',
            "$dir/s3-ca.key", '-CAcreateserial', '-days', '2', '-extfile',
            "$dir/s3-tls.ext", '-out', "$dir/s3-tls.crt");

    my $tls = front('tls', '', tls => [ "$dir/s3-tls.crt", "$dir/s3-tls.key" ]);
    my $endpoint = 'https://localhost:' . $tls->port;

    # the shipped snippet, and a proxy_pass over https to the store
    my $snippet = slurp(top_dir() . '/nginx-conf/s3-files.conf');
    $snippet .= 'proxy_pass https://bulletdrop_s3$bulletdrop_s3_uri;' . "\n"
              . "proxy_ssl_server_name on;\nproxy_ssl_name localhost;\n"
              . "proxy_ssl_verify on;\nproxy_ssl_trusted_certificate $CA;\n";
    spew("$dir/s3-files-tls.conf", $snippet);
    my $server = <<"EOF";
        bulletdrop_files on;

        location /api/ {
            bulletdrop_api;
        }

        location /d/ {
            bulletdrop_api;
        }

        location /static/ {
            include $dir/s3-files-tls.conf;
        }

        location = /_bulletdrop/error {
            internal;
            bulletdrop_error_page;
        }
EOF
    start(server => $server,
          s3 => { endpoint => $endpoint, options => "ca=$CA timeout=2s" });
    my $data = sample('png', 3000, 'tls');
    my $up = $t->upload($alice->{key}, 'tls.png', $data);
    SKIP: {
        is($up->{status}, 201, 'an upload over TLS: 201')
            or diag($up->{body}), skip 'no upload to fetch and delete', 4;
        my $rec = { %{ $up->{json} }, path => path_of($up->{json}{url}),
                    key => key_of($up->{json}), data => $data };
        in_bucket($rec, 'image/png', 'inline; filename="tls.png"',
                  'in the bucket');
        my $res = at($rec->{path});
        ok($res->{status} == 200 && $res->{body} eq $rec->{data},
           'and served from it over TLS, byte for byte')
            or diag "$res->{status} " . substr($res->{body}, 0, 200);
        is($t->delete("/api/uploads/$rec->{id}", token => $alice->{token})
             ->{status}, 204, 'deleted over TLS');
        is($s3->head($rec->{key})->{status}, 404, 'its object gone');
    }

    my $before = kept();
    start(server => $server,
          s3 => { endpoint => $endpoint,
                  # (a handshake checked against the whole system
                  # bundle is slow under ASan: room for it)
                  options => 'ca=/etc/ssl/certs/ca-certificates.crt '
                             . 'timeout=5s' });
    unavailable($t->upload($alice->{key}, 'untrusted.png',
                           sample('png', 2000, 'u')),
                'the system\'s CAs, which do not know ours: 503');
    like($t->nginx->log_text,
         qr/\[error\].*the file store's certificate: \(\d+:.*\n?.*not trusted/,
         'the log says the certificate is not trusted');
    nothing_left($before, 'nothing is left');
    start(s3 => { options => 'part_size=5m timeout=2s' });
};

# ---- serve=redirect ---------------------------------------------------

subtest 'serve=redirect: permanent files to the CDN, limited ones never'
=> sub {
    start(s3 => { options => 'serve=redirect '
                             . 'public_url=http://cdn.example.test/' });
    my $res = at($png->{path});
    is_deeply([ $res->{status}, $res->{headers}{location},
                $res->{headers}{'cache-control'} ],
              [ 302, "http://cdn.example.test/$png->{key}", $CACHED ],
              'a permanent file: 302 to <public_url>/<key>, cached');

    my $views = upload_ok('views.png', sample('png', 3000, 'v'),
                          headers => [ 'X-BulletDrop-Max-Views' => 5 ]);
    my $later = upload_ok('later.png', sample('png', 3000, 'l'),
                          headers => [ 'X-BulletDrop-Expires' => '1h' ]);
    for my $rec ($views, $later) {
        my $got = at($rec->{path});
        ok($got->{status} == 200 && $got->{body} eq $rec->{data}
           && !defined $got->{headers}{location},
           "$rec->{name}: proxied from the bucket, 200, never redirected")
            or diag "$got->{status} " . ($got->{headers}{location} // '');
    }
    $t->delete("/api/uploads/$_->{id}", token => $alice->{token})
        for $views, $later;
    start(s3 => { options => 'part_size=5m timeout=2s' });
};

# ---- a node's cache ---------------------------------------------------

subtest "a node's cache (README): copies revalidated, a deleted file gone "
        . 'within a second' => sub {
    start(http => "    proxy_cache_path $dir/cache levels=1:2 "
                  . "keys_zone=bulletdrop_cache:1m use_temp_path=off;\n",
          s3 => { location => <<'EOF' });
            proxy_cache bulletdrop_cache;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status always;
EOF
    my $rec = upload_ok('cached.png', sample('png', 40_000, 'cache'));
    my @status = map {
        my $res = at($rec->{path});
        ok($res->{status} == 200 && $res->{body} eq $rec->{data},
           "read $_: 200, every byte");
        $res->{headers}{'x-cache'} // '';
    } 1, 2;
    is_deeply(\@status, [ 'MISS', 'HIT' ], 'from the store, then the copy');

    my $again;
    ok(wait_until(sub {
           $again = at($rec->{path});
           ($again->{headers}{'x-cache'} // '') eq 'REVALIDATED' }, 5),
       'after a second, the copy is asked of the store again (304)');
    ok($again->{body} eq $rec->{data}, 'and served whole');

    is($t->delete("/api/uploads/$rec->{id}", token => $alice->{token})
         ->{status}, 204, 'deleted');
    my $gone;
    ok(wait_until(sub { ($gone = at($rec->{path}))->{status} == 404 }, 3),
       'the copy is not served past a second or so: 404');
    is(($gone->{json} // {})->{error}, 'not_found', 'in JSON');
    start(s3 => { options => 'part_size=5m timeout=2s' });
};

# ---- nothing behind ---------------------------------------------------

subtest 'deleting every upload leaves an empty bucket and table' => sub {
    my $list = $t->get('/api/uploads?limit=100', token => $alice->{token});
    for my $rec (@{ $list->{json}{uploads} // $list->{json}{items} // [] }) {
        is($t->delete("/api/uploads/$rec->{id}", token => $alice->{token})
             ->{status}, 204, "DELETE $rec->{name}: 204");
    }
    is_deeply(kept(), $empty, 'no row, no object, no multipart upload, '
              . 'nothing on the node\'s disk');
};

done_testing;
