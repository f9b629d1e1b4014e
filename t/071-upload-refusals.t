#!/usr/bin/perl
# Uploads the server refuses (here with a limit of 256 KiB a file), and
# when it refuses them.  What it can tell from the request head (no or a
# bad token, a disabled user, a Content-Length over the size limit or the
# quota, a raw body's extension) is answered before the body is read: the
# answer arrives while nearly all of the body is still unsent, with no 100
# Continue, and the connection closes, small body or large.  What shows in
# the body (a part's file name, bytes past a limit, contents that
# contradict the extension) is answered as soon as it shows, the rest
# unread.  Forms without exactly one file, broken forms, nameless and
# empty files get a 400.  None of them leaves a file or a row behind.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::HTTP qw(multipart chunked);
use BulletDrop::Test qw(is_error leaves_nothing sample filler);

use constant MAX => 256 * 1024;                  # bulletdrop_max_file_size
use constant SLACK => 16 * 1024;                 # what a form may add
use constant BIG => 10 * 1024 * 1024;            # a declared length

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', max_file_size => '256k');

my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);
my $key = $alice->{key};
my @workers = $t->nginx->worker_pids;
my $start = $t->uploads_state;

sub answer_of { $_[0] // { status => 'no answer', headers => {} } }

# An upload answered while most of it is unsent: the head and the first
# `send` bytes of the body go (1 KiB unless told), then the answer must
# come with no more sent, the rest of the body unread, and the connection
# must close although the client asked to keep it.
sub refused_early {
    my ($what, $status, $code, $auth, $name, $data, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $send = delete $o{send} // 1024;
    my $before = $t->uploads_state;
    my $x = $t->begin_upload($auth, $name, $data, send => $send,
                             headers => [ Connection => 'keep-alive' ], %o);
    my $res = $x->answer(5);

    ok($res, "$what: answered while " . $x->unsent . ' of '
             . $x->total . ' body bytes were unsent')
        or diag 'no answer in 5 s after ' . $x->sent . ' body bytes';
    is_error(answer_of($res), $status, $code, "$what: $status $code");
    cmp_ok($x->sent, '<=', $x->total / 10,
           "$what: nine tenths or more of the body never left the client");
    is_deeply($res ? $res->{interim} : undef, [],
              "$what: no 100 Continue came first");
    ok($x->closed(1), "$what: and the server closed the connection at once");
    $x->close;
    leaves_nothing($t, $before, "$what: nothing stored");
    return $res;
}

# An upload answered once its body shows what is wrong: everything but
# the last `hold` bytes goes, and the answer must come without them.
sub refused_midway {
    my ($what, $status, $code, $auth, $name, $data, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $hold = delete $o{hold};
    my $before = $t->uploads_state;
    my $x = $t->begin_upload($auth, $name, $data, %o);
    $x->send_all_but($hold);
    my $res = $x->answer(5);

    ok($res, "$what: answered with " . $x->unsent . ' bytes unsent');
    is_error(answer_of($res), $status, $code, "$what: $status $code");
    $x->close;
    leaves_nothing($t, $before, "$what: nothing stored");
    return $res;
}

# An upload that is sent whole and refused
sub refused {
    my ($what, $status, $code, $res, $before) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error($res, $status, $code, "$what: $status $code");
    leaves_nothing($t, $before, "$what: nothing stored");
}

subtest 'no token, a bad token, a disabled user: refused before the body'
=> sub {
    my $png = sample('png', 5000);

    refused_early('no token, raw', 401, 'unauthorized', undef, 'a.png',
                  $png, as => 'raw', length => MAX);
    refused_early('no token, a form', 401, 'unauthorized', undef, 'a.png',
                  $png, length => MAX);
    refused_early('no token, chunked', 401, 'unauthorized', undef, 'a.png',
                  sample('png', 200_000), as => 'raw', chunked => 4096);
    refused_early('no token, a screenshot of 20 KB', 401, 'unauthorized',
                  undef, 'a.png', sample('png', 20_000), send => 1024);
    refused_early('an unknown API key', 401, 'invalid_token',
                  'bd_' . ('A' x 43), 'a.png', $png, length => MAX);
    refused_early('a forged token', 401, 'invalid_token',
                  $t->jwt(claims => { sub => "$alice->{id}" },
                          key => 'k' x 48),
                  'a.png', $png, as => 'raw', length => MAX);

    $t->set_user($bob->{id}, disabled => JSON::PP::true);
    refused_early('a disabled user\'s key', 403, 'account_disabled',
                  $bob->{key}, 'a.png', $png, length => MAX);
    refused_early('a disabled user\'s token', 403, 'account_disabled',
                  $bob->{token}, 'a.png', $png, as => 'raw', length => MAX);
    $t->set_user($bob->{id}, disabled => JSON::PP::false);
};

subtest 'over bulletdrop_max_file_size: 413 file_too_large' => sub {
    my $png = sample('png', 5000);

    refused_early('a raw Content-Length one byte over the limit', 413,
                  'file_too_large', $key, 'big.png', $png, as => 'raw',
                  length => MAX + 1, send => 0);
    refused_early('a raw Content-Length of 10 MiB', 413, 'file_too_large',
                  $key, 'big.png', $png, as => 'raw', length => BIG);
    refused_early('a form longer than the limit and 16 KiB', 413,
                  'file_too_large', $key, 'big.png', $png,
                  length => MAX + SLACK + 1);
    refused_early('a form of 10 MiB, with Expect: 100-continue', 413,
                  'file_too_large', $key, 'big.png', $png, length => BIG,
                  expect => 1, send => 0);

    my $exact = sample('png', MAX);
    my $res = $t->upload($key, 'exact.png', $exact, as => 'raw');
    is($res->{status}, 201, 'a raw file of exactly the limit: 201');
    $t->delete("/api/uploads/$res->{json}{id}", token => $key)
        if $res->{status} == 201;

    $res = $t->upload($key, 'exact.png', $exact);
    is($res->{status}, 201, 'and in a form: 201');
    $t->delete("/api/uploads/$res->{json}{id}", token => $key)
        if $res->{status} == 201;

    my $over = sample('png', MAX + 2000);
    refused_midway('a form within the 16 KiB slack whose file passes the '
                   . 'limit', 413, 'file_too_large', $key, 'over.png',
                   $over, hold => 1000);
    refused_midway('a chunked raw body passing the limit', 413,
                   'file_too_large', $key, 'over.png', $over, as => 'raw',
                   chunked => 8192, hold => 1005);
    refused_midway('a chunked form passing the limit', 413,
                   'file_too_large', $key, 'over.png', $over,
                   chunked => 8192, hold => 1005);

    # the form's other parts count too: a small file after a huge field
    my $small = sample('png', 3000);
    refused_midway('a chunked form whose field before the file passes '
                   . 'the limit', 413, 'file_too_large', $key, 'small.png',
                   $small, chunked => 8192, hold => 1005,
                   fields => [ note => 'x' x (MAX + SLACK + 8192) ]);
    refused_midway('a chunked form whose epilogue passes the limit', 413,
                   'file_too_large', $key, 'small.png', $small,
                   chunked => 8192, hold => 1005,
                   form => { epilogue => 'y' x (MAX + SLACK + 8192) });
};

subtest 'a Host that cannot make a link: 400 invalid_host, before the body'
=> sub {
    my $png = sample('png', 5000);

    for my $host ("img\xff.example", 'evil.example@localhost',
                  "a'b.example")
    {
        (my $shown = $host) =~ s/([^ -~])/sprintf '\\x%02x', ord $1/ge;
        refused_early("Host $shown", 400, 'invalid_host', $key, 'h.png',
                      $png, host => $host, length => BIG);
    }
};

subtest 'over the quota: 413 quota_exceeded, and exactly the quota fits'
=> sub {
    my $used = $t->usage_of($alice->{id})->{bytes};
    my $room = 50_000;
    $t->set_user($alice->{id}, quota_bytes => $used + $room);
    my $png = sample('png', 5000);

    refused_early('a raw Content-Length one byte over what is left', 413,
                  'quota_exceeded', $key, 'q.png', $png, as => 'raw',
                  length => $room + 1, send => 0);
    refused_early('a form longer than what is left and 16 KiB', 413,
                  'quota_exceeded', $key, 'q.png', $png,
                  length => $room + SLACK + 1);
    refused_early('a raw body over the quota, with Expect: 100-continue',
                  413, 'quota_exceeded', $key, 'q.png', $png, as => 'raw',
                  length => $room + 1, expect => 1, send => 0);

    my $over = sample('png', $room + 2000);
    refused_midway('a form within the slack whose file passes the quota',
                   413, 'quota_exceeded', $key, 'q.png', $over,
                   hold => 1000);
    refused_midway('a chunked raw body passing the quota', 413,
                   'quota_exceeded', $key, 'q.png', $over, as => 'raw',
                   chunked => 4096, hold => 1005);

    my $res = $t->upload($key, 'fits.png', sample('png', $room), as => 'raw');
    is($res->{status}, 201, 'a file of exactly what is left: 201');
    is($t->usage_of($alice->{id})->{bytes}, $used + $room,
       'usage is now the quota');

    refused_early('then even one byte', 413, 'quota_exceeded', $key,
                  'one.txt', 'x', as => 'raw', send => 0);

    $t->delete("/api/uploads/$res->{json}{id}", token => $key)
        if $res->{status} == 201;
    $t->set_user($alice->{id}, quota_bytes => 0);
    refused_early('a quota of 0 takes nothing', 413, 'quota_exceeded', $key,
                  'zero.png', $png, length => 100_000);
    $t->set_user($alice->{id}, quota_bytes => undef);
};

subtest 'an extension not allowed: 415, from the head or the part headers'
=> sub {
    my $data = sample('txt', 5000);

    my %raw = (
        'evil.exe'       => 'an .exe',
        'README'         => 'no extension',
        'archive.tar.gz' => 'a .gz after a .tar',
        'shot.png.exe'   => 'an .exe after a .png',
        'shot.png.'      => 'a name ending in a dot',
        '.png'           => 'a dot file',
        'shot.p ng'      => 'a space in the extension',
    );
    for my $name (sort keys %raw) {
        refused_early("$raw{$name} ('$name'), X-Filename", 415,
                      'extension_not_allowed', $key, $name, $data,
                      as => 'raw', length => MAX);
    }
    refused_early('?filename=shell.php', 415, 'extension_not_allowed', $key,
                  'shell.php', $data, as => 'query', length => MAX);
    refused_early('X-Filename: shell.php, with Expect: 100-continue', 415,
                  'extension_not_allowed', $key, 'shell.php', $data,
                  as => 'raw', length => MAX, expect => 1, send => 0);

    # the form's head and the part's headers go, and a little of its data
    for my $name ('evil.exe', 'README', 'page.html') {
        my (undef, $body) = multipart(boundary => 'B0undary',
                                      parts => [ { name => 'file',
                                                   filename => $name,
                                                   data => $data } ]);
        my $upto = index($body, "\r\n\r\n") + 4 + 100;
        refused_early("a part named '$name'", 415, 'extension_not_allowed',
                      $key, $name, $data, length => MAX, send => $upto,
                      form => { boundary => 'B0undary' });
    }
};

subtest 'contents that contradict the extension: 415 type_mismatch' => sub {
    my $text = sample('txt', 3000);
    for my $ext (qw(png jpg jpeg gif webp pdf mp4 webm)) {
        my $before = $t->uploads_state;
        refused("text named .$ext", 415, 'type_mismatch',
                $t->upload($key, "fake.$ext", $text), $before);
    }

    my %swapped = (png => 'jpg', jpg => 'png', gif => 'webp', pdf => 'gif',
                   webm => 'mp4', mp4 => 'webm');
    for my $ext (sort keys %swapped) {
        my $before = $t->uploads_state;
        refused("a .$swapped{$ext} named .$ext, raw", 415, 'type_mismatch',
                $t->upload($key, "swapped.$ext", sample($swapped{$ext}, 3000),
                           as => 'raw'), $before);
    }

    my $before = $t->uploads_state;
    refused('the first 4 bytes of a PNG, and no more', 415, 'type_mismatch',
            $t->upload($key, 'short.png', "\x89PNG"), $before);

    refused_early('a JPEG named .png, the most the limit allows declared',
                  415, 'type_mismatch', $key, 'big.png', sample('jpg', 8192),
                  as => 'raw', length => MAX, send => 4096);

    my $res = $t->upload($key, 'binary.txt', filler(3000), as => 'raw');
    is($res->{status}, 201, 'a .txt has no signature: any bytes are fine');
    $t->delete("/api/uploads/$res->{json}{id}", token => $key)
        if $res->{status} == 201;
};

subtest 'a form needs exactly one file part, with a name' => sub {
    my $png = sample('png', 3000);
    my $post = sub {
        my ($type, $body) = multipart(@_);
        return $t->request('POST', '/api/uploads', token => $key,
                           headers => [ 'Content-Type' => $type ],
                           body => $body);
    };

    my $before = $t->uploads_state;
    refused('fields but no file part', 400, 'no_file',
            $post->(parts => [ { name => 'title', data => 'a title' },
                               { name => 'other', data => 'x' } ]),
            $before);
    refused('a file under another field name', 400, 'no_file',
            $post->(parts => [ { name => 'upload', filename => 'a.png',
                                 data => $png } ]), $before);
    refused('two file parts', 400, 'too_many_files',
            $post->(parts => [ { name => 'file', filename => 'a.png',
                                 data => $png },
                               { name => 'file', filename => 'b.png',
                                 data => $png } ]), $before);
    refused('two file parts, the second without a file name', 400,
            'too_many_files',
            $post->(parts => [ { name => 'file', filename => 'a.png',
                                 data => $png },
                               { name => 'file', data => 'text' } ]),
            $before);
    refused('a file part without filename or filename*', 400,
            'missing_filename',
            $post->(parts => [ { name => 'file', data => $png } ]),
            $before);
};

subtest 'broken forms: 400 invalid_multipart' => sub {
    my $png = sample('png', 3000);
    my $b = 'TheBoundary';
    my $part = "--$b\r\nContent-Disposition: form-data; name=\"file\"; "
               . "filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n";
    my %bodies = (
        'no closing boundary: the body ends with the data'
            => $part . $png,
        'no closing boundary: the body ends with a CRLF'
            => "$part$png\r\n",
        'no closing boundary: the body ends with a delimiter'
            => "$part$png\r\n--$b",
        'a new part begins and the body ends'
            => "$part$png\r\n--$b\r\n",
        'no boundary anywhere'
            => $png,
        'part headers ending in a bare LF'
            => "--$b\nContent-Disposition: form-data; name=\"file\"; "
               . "filename=\"a.png\"\n\n$png\r\n--$b--",
        'a header line without a colon'
            => "--$b\r\nContent-Disposition form-data; name=\"file\"; "
               . "filename=\"a.png\"\r\n\r\n$png\r\n--$b--",
        'a part without Content-Disposition'
            => "--$b\r\nContent-Type: image/png\r\n\r\n$png\r\n--$b--",
        'two Content-Disposition headers'
            => "--$b\r\nContent-Disposition: form-data; name=\"file\"; "
               . "filename=\"a.png\"\r\nContent-Disposition: form-data; "
               . "name=\"x\"\r\n\r\n$png\r\n--$b--",
        'filename* in a charset nobody knows'
            => "--$b\r\nContent-Disposition: form-data; name=\"file\"; "
               . "filename*=KOI8-R''a.png\r\n\r\n$png\r\n--$b--",
        'filename* with a broken escape'
            => "--$b\r\nContent-Disposition: form-data; name=\"file\"; "
               . "filename*=UTF-8''a%ZZ.png\r\n\r\n$png\r\n--$b--",
        'part headers that never end'
            => "--$b\r\nContent-Disposition: form-data; name=\"file\"; "
               . "filename=\"a.png\"\r\n" . ("X-Pad: " . ('p' x 90)
                                            . "\r\n") x 200,
    );

    for my $what (sort keys %bodies) {
        my $before = $t->uploads_state;
        refused($what, 400, 'invalid_multipart',
                $t->request('POST', '/api/uploads', token => $key,
                            headers => [ 'Content-Type' =>
                                         "multipart/form-data; boundary=$b" ],
                            body => $bodies{$what}),
                $before);
    }

    my (undef, $body) = multipart(boundary => $b,
                                  parts => [ { name => 'file',
                                               filename => 'a.png',
                                               data => $png } ]);
    my %types = (
        'no boundary'                => 'multipart/form-data',
        'an empty boundary'          => 'multipart/form-data; boundary=',
        'an empty quoted boundary'   => 'multipart/form-data; boundary=""',
        'a boundary of 71 characters' => 'multipart/form-data; boundary='
                                         . ('b' x 71),
        'a boundary ending in a space' => qq{multipart/form-data; }
                                          . qq{boundary="$b "},
        'a boundary with a character RFC 2046 does not allow' =>
            'multipart/form-data; boundary=ab@cd',
    );
    for my $what (sort keys %types) {
        my $before = $t->uploads_state;
        refused("a Content-Type with $what", 400, 'invalid_multipart',
                $t->request('POST', '/api/uploads', token => $key,
                            headers => [ 'Content-Type' => $types{$what} ],
                            body => $body),
                $before);
    }
};

subtest 'a multipart type other than form-data: 415, before the body'
=> sub {
    for my $type ('multipart/mixed; boundary=XyZ',
                  'multipart/form-dataX; boundary=XyZ')
    {
        my $before = $t->uploads_state;
        my $x = $t->http->begin('POST', '/api/uploads',
            body => "--XyZ\r\n" . ('x' x 200_000), send => 1024,
            headers => [ 'Content-Type' => $type, $t->auth($key),
                         Connection => 'keep-alive' ]);
        my $res = $x->answer(5);

        is_error(answer_of($res), 415, 'unsupported_media_type',
                 "$type: 415 unsupported_media_type");
        cmp_ok($x->sent, '<=', 1024, "$type: before the body");
        ok($x->closed(1), "$type: and the connection closes");
        $x->close;
        leaves_nothing($t, $before, "$type: nothing stored");
    }
};

subtest 'a raw body needs a name, and a file needs a byte' => sub {
    my $before = $t->uploads_state;
    refused('a raw body without X-Filename or ?filename=', 400,
            'missing_filename',
            $t->upload($key, undef, 'some text', as => 'raw'), $before);
    refused('an empty raw .txt', 400, 'empty_file',
            $t->upload($key, 'empty.txt', '', as => 'raw'), $before);
    refused('an empty chunked .txt', 400, 'empty_file',
            $t->upload($key, 'empty.txt', '', as => 'raw', chunked => 10),
            $before);
    refused('an empty .txt in a form', 400, 'empty_file',
            $t->upload($key, 'empty.txt', ''), $before);
};

subtest 'after all of it: nothing stored, the workers alive' => sub {
    leaves_nothing($t, $start, 'the table and the upload dir are as they '
                               . 'were before the refusals');
    is($t->get('/api/users/me', token => $key)->{json}{usage}{files}, 0,
       'Alice has no files');
    is_deeply([ sort $t->nginx->worker_pids ], [ sort @workers ],
              'the same nginx worker, never restarted');
    unlike($t->nginx->log_text, qr/\[(?:alert|crit|emerg)\]/,
           'no alert in the error log');
};

done_testing;
