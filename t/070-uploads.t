#!/usr/bin/perl
# A user uploads files: a PNG from a form comes back as a record with its
# links, lies on disk byte for byte at <category>/<id>.<ext>, is served
# at /static/ and counted in the user's usage.  Every kind goes to its
# category with its content type; a raw body named by X-Filename or
# ?filename= works as well as a form; forms as real clients write them
# (quoted boundaries, preambles, fields around the file, filename*,
# bytes that look like boundaries), chunked bodies and Expect:
# 100-continue all arrive whole; file names are for display only, and
# the links name the host (and scheme) the client used.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use Time::HiRes qw(time);

use BulletDrop::HTTP qw(multipart);
use BulletDrop::Test qw(free_port wait_until iso_time is_error is_upload
                        sample filler);
use BulletDrop::Util qw(slurp run_cmd);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $alice = $t->new_user('alice', key => 1);
my $key = $alice->{key};
my $show = JSON::PP->new->ascii->allow_nonref;
my @uploaded;    # every record made, for the checks at the end

sub path_of { ($_[0] // '') =~ m{\Ahttps?://[^/]+(/.*)\z} ? $1 : '' }

# the upload was stored whole: on disk and through /static/
sub stored_whole {
    my ($rec, $data, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $file = $t->stored_path($rec);
    my $disk = -f $file ? slurp($file) : undef;
    ok(defined $disk && $disk eq $data, "$name: on disk byte for byte")
        or diag(defined $disk ? 'size ' . length($disk) . ' not '
                                . length($data)
                              : "$file is missing");

    my $res = $t->get(path_of($rec->{url}));
    is($res->{status}, 200, "$name: served at its url");
    is(sha256_hex($res->{body}), $rec->{sha256},
       "$name: what is served has the sha256 the answer gave");
    return;
}

sub uploaded {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($res->{status}, 201, "$name: 201")
        or diag substr($res->{body} // '', 0, 300);
    push @uploaded, $res->{json} if $res->{status} == 201;
    return $res->{json} // {};
}

subtest 'a PNG from a form is stored, served and counted' => sub {
    my $png = sample('png', 5000);
    my $t0 = time;
    my $res = $t->upload($alice->{token}, 'shot.png', $png);
    my $rec = uploaded($res, 'a 5000-byte PNG');

    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    is_upload($rec, { name => 'shot.png', category => 'images',
                      content_type => 'image/png', size => 5000,
                      sha256 => sha256_hex($png), views => 0 },
              'the whole record: name, category, type, size, sha256, '
              . 'links, no expiry, no view limit, no domain', ext => 'png');
    my $created = iso_time($rec->{created_at});
    ok($created && abs($created - $t0) < 120, 'created just now');

    stored_whole($rec, $png, 'the PNG');
    is($t->get(path_of($rec->{url}))->{body}, $png,
       'served exactly as sent');

    my $row = $t->row('SELECT user_id, name, ext, category, content_type, '
                      . 'size, sha256, delete_token_hash FROM uploads '
                      . 'WHERE id = ' . BulletDrop::Pg::quote($rec->{id}),
                      qw(user name ext category type size sha256 token));
    is_deeply($row && { %$row, token => undef },
              { user => $alice->{id}, name => 'shot.png', ext => 'png',
                category => 'images', type => 'image/png', size => 5000,
                sha256 => sha256_hex($png), token => undef },
              'its row says the same, for Alice');
    my ($token) = $rec->{delete_url} =~ m{/d/([^/]+)\z};
    is($row && $row->{token}, sha256_hex($token // ''),
       'the delete token is kept as its hex SHA-256 only');

    my $me = $t->get('/api/users/me', token => $alice->{token})->{json};
    is_deeply($me->{usage}, { bytes => 5000, files => 1 },
              'Alice\'s usage: 5000 bytes in 1 file');
};

subtest 'every kind of file goes to its category, with its type' => sub {
    my %want = (
        jpg  => [ 'images',    'image/jpeg' ],
        jpeg => [ 'images',    'image/jpeg' ],
        png  => [ 'images',    'image/png' ],
        gif  => [ 'images',    'image/gif' ],
        webp => [ 'images',    'image/webp' ],
        pdf  => [ 'documents', 'application/pdf' ],
        txt  => [ 'documents', 'text/plain; charset=utf-8' ],
        md   => [ 'documents', 'text/plain; charset=utf-8' ],
        mp4  => [ 'other',     'video/mp4' ],
        webm => [ 'other',     'video/webm' ],
    );

    for my $ext (sort keys %want) {
        my $data = sample($ext, 3000);
        my $rec = uploaded($t->upload($key, "kind.$ext", $data), ".$ext");
        is_upload($rec, { name => "kind.$ext", category => $want{$ext}[0],
                          content_type => $want{$ext}[1], size => 3000,
                          sha256 => sha256_hex($data) },
                  ".$ext: $want{$ext}[0], $want{$ext}[1]", ext => $ext);
        ok(-f $t->upload_dir . "/$want{$ext}[0]/$rec->{id}.$ext",
           ".$ext: stored as $want{$ext}[0]/<id>.$ext");
    }
};

subtest 'the extension counts in any case, and is stored in lower case'
=> sub {
    my $jpg = sample('jpg', 2500);
    my $rec = uploaded($t->upload($key, 'HOLIDAY.JPG', $jpg), 'HOLIDAY.JPG');
    is_upload($rec, { name => 'HOLIDAY.JPG', category => 'images',
                      content_type => 'image/jpeg' },
              'the name as sent, an image/jpeg', ext => 'jpg');
    stored_whole($rec, $jpg, 'HOLIDAY.JPG');

    $rec = uploaded($t->upload($key, 'Notes.Md', "# title\n", as => 'raw'),
                    'Notes.Md, raw');
    is_upload($rec, { name => 'Notes.Md', category => 'documents' },
              'a document', ext => 'md');
};

subtest 'a raw body named by X-Filename or ?filename= is the file' => sub {
    my $text = sample('txt', 4321);
    my $rec = uploaded($t->upload($key, 'notes.txt', $text, as => 'raw'),
                       'X-Filename: notes.txt');
    is_upload($rec, { name => 'notes.txt', size => 4321,
                      category => 'documents',
                      sha256 => sha256_hex($text) }, 'its record');
    stored_whole($rec, $text, 'the raw text');

    my $pdf = sample('pdf', 7000);
    $rec = uploaded($t->upload($key, 'my report.pdf', $pdf, as => 'query'),
                    '?filename=my%20report.pdf');
    is_upload($rec, { name => 'my report.pdf', content_type =>
                      'application/pdf' }, 'percent-decoded');
    stored_whole($rec, $pdf, 'the raw PDF');

    $rec = uploaded($t->upload($key, "caf\x{c3}\x{a9}.txt", 'bonjour',
                               as => 'query'),
                    '?filename= of UTF-8 bytes, percent-encoded');
    is($rec->{name}, "caf\x{e9}.txt", 'decoded to café.txt');

    my $png = sample('png', 3000);
    $rec = uploaded($t->upload($key, 'shot.png', $png, as => 'raw',
                               headers => [ 'Content-Type' => 'image/png' ]),
                    'a raw body with its own Content-Type');
    stored_whole($rec, $png, 'a raw image/png body');
};

subtest 'forms as clients write them arrive whole' => sub {
    my $png = sample('png', 6000);

    my %forms = (
        'an unquoted boundary'           => {},
        'a quoted boundary'              => { quote => 1 },
        'a quoted boundary with spaces and punctuation' =>
            { quote => 1, boundary => q{a b'(c)+_,-./:=?z} },
        'a boundary of 70 characters'    => { boundary => 'b' x 70 },
        'a one-character boundary'       => { boundary => 'x' },
        'a preamble and an epilogue'     =>
            { preamble => "This is a preamble.\r\n--not the boundary",
              epilogue => "\r\nThis is an epilogue.\r\n" },
    );
    for my $what (sort keys %forms) {
        my $rec = uploaded($t->upload($key, 'form.png', $png,
                                      form => $forms{$what}), $what);
        is($rec->{sha256}, sha256_hex($png), "$what: the same bytes");
        stored_whole($rec, $png, $what) if $rec->{id};
    }

    my $rec = uploaded($t->upload($key, 'fields.png', $png,
                                  fields => [ title => 'a title',
                                              file_name => 'other.png' ],
                                  after => [ description => "two\r\nlines",
                                             empty => '' ]),
                       'text fields before and after the file');
    is_upload($rec, { name => 'fields.png', size => 6000 },
              'the fields are ignored');
    stored_whole($rec, $png, 'between fields');

    $rec = uploaded($t->upload($key, 'typed.png', $png,
                               part => { type => 'application/x-whatever',
                                         headers => [ 'X-Extra: 1' ] }),
                    'a part with its own Content-Type and more headers');
    is_upload($rec, { content_type => 'image/png' },
              'the type comes from the extension');

    my ($type, $body) = multipart(parts => [
        { head => qq{content-disposition: form-data; name=file; }
                  . qq{filename=plain.png\r\ncontent-type: image/png},
          data => $png } ]);
    $rec = uploaded($t->request('POST', '/api/uploads', token => $key,
                                headers => [ 'Content-Type' => $type ],
                                body => $body),
                    'lower-case header names, unquoted parameters');
    is($rec->{name}, 'plain.png', 'the name is read');

    ($type, $body) = multipart(parts => [
        { name => 'file', filename => 'case.png', data => $png } ]);
    $type =~ s/multipart\/form-data; boundary/Multipart\/Form-Data; BOUNDARY/;
    uploaded($t->request('POST', '/api/uploads', token => $key,
                         headers => [ 'Content-Type' => $type ],
                         body => $body),
             'Content-Type in mixed case');
};

subtest 'bytes that look like structure are data' => sub {
    my $b = 'BoundaryBoundary1234';
    my %data = (
        'CR, LF, CRLF and blank lines' => filler(20000, 'crlf'),
        'the boundary, but for its last character' =>
            "head\r\n--" . substr($b, 0, -1) . "\r\ntail",
        'the boundary without CRLF before it' => "head--$b\r\ntail",
        'the closing boundary without CRLF before it' =>
            "head--$b--\r\n",
        'CRLF at the very start and end' => "\r\nmiddle\r\n",
        'a lone CR before the boundary' => "data\r",
        'dashes and CRLFs only' => "\r\n--\r\n--\r\n\r\n",
        'a part-header lookalike' =>
            "\r\nContent-Disposition: form-data; name=\"file\"; "
            . "filename=\"evil.exe\"\r\n\r\n",
    );

    for my $what (sort keys %data) {
        my $data = $data{$what};
        my $rec = uploaded($t->upload($key, 'tricky.txt', $data,
                                      form => { boundary => $b }), $what);
        is($rec->{size}, length $data, "$what: the size");
        is($rec->{sha256}, sha256_hex($data), "$what: the sha256");
        stored_whole($rec, $data, $what) if $rec->{id};
    }
};

subtest 'filename* names the file, and wins over filename' => sub {
    my $png = sample('png', 2000);
    my @cases = (
        [ 'filename* in UTF-8', { filename_star =>
              q{UTF-8''%E2%9C%93%20check.png} }, "\x{2713} check.png" ],
        [ 'filename* with a language', { filename_star =>
              q{utf-8'en'lower%20case.png} }, 'lower case.png' ],
        [ 'filename* in ISO-8859-1', { filename_star =>
              q{ISO-8859-1''caf%E9.png} }, "caf\x{e9}.png" ],
        [ 'both: filename* wins', { filename => 'fallback.png',
              filename_star => q{UTF-8''real%20name.png} },
          'real name.png' ],
    );

    for (@cases) {
        my ($what, $part, $want) = @$_;
        my $rec = uploaded($t->upload($key, undef, $png,
                                      part => { filename => undef,
                                                %$part }), $what);
        is($rec->{name}, $want, "$what: named " . $show->encode($want));
    }
};

subtest 'a chunked body, raw or in a form, is stored whole' => sub {
    my $text = sample('txt', 10000);
    my $rec = uploaded($t->upload($key, 'chunked.txt', $text, as => 'raw',
                                  chunked => 1000),
                       'raw, in chunks of 1000 bytes');
    is($rec->{size}, 10000, 'all 10000 bytes');
    stored_whole($rec, $text, 'raw chunked');

    my $png = sample('png', 20000);
    $rec = uploaded($t->upload($key, 'chunked.png', $png, chunked => 777),
                    'a form, in chunks of 777 bytes');
    is($rec->{size}, 20000, 'all 20000 bytes');
    stored_whole($rec, $png, 'a chunked form');

    $rec = uploaded($t->upload($key, 'bytewise.png', sample('png', 300),
                               chunked => 1),
                    'a form, a byte a chunk');
    is($rec->{sha256}, sha256_hex(sample('png', 300)), 'whole');
};

subtest 'Expect: 100-continue gets a 100, then the 201' => sub {
    for my $as (qw(multipart raw)) {
        my $png = sample('png', 50000);
        my $x = $t->begin_upload($key, 'continue.png', $png, as => $as,
                                 expect => 1);
        is($x->first_status(5), 100, "$as: 100 Continue before any body");
        ok($x->send_rest, "$as: then the body goes");
        my $res = $x->answer(10) // { status => 'none', headers => {} };
        my $rec = uploaded($res, "$as: then");
        is_deeply($res->{interim}, [100], "$as: one interim answer, 100");
        stored_whole($rec, $png, "$as after 100-continue") if $rec->{id};
    }
};

subtest 'file names are for display: no path, no control characters, '
        . 'and the file lies only at <category>/<id>.<ext>' => sub {
    my $nonce = join '', map { ('a' .. 'z')[rand 26] } 1 .. 12;
    my $escape = "/tmp/bulletdrop-escape-$nonce.txt";
    my @cases = (
        [ 'a relative path',      "../../../../../../..$escape",
          "bulletdrop-escape-$nonce.txt" ],
        [ 'an absolute path',     '/etc/cron.d/evil.txt', 'evil.txt' ],
        [ 'a Windows path',       'C:\\Users\\me\\Desktop\\win.txt',
          'win.txt' ],
        [ 'leading dots',         '...hidden.txt', 'hidden.txt' ],
        [ 'leading spaces',       '   spaced.txt', 'spaced.txt' ],
        [ 'an escape sequence',   "\x1b[31mred.txt", '_[31mred.txt' ],
        [ 'a tab',                "tab\there.txt", 'tab_here.txt' ],
        [ 'a NUL',                "nul\x00byte.txt", 'nul_byte.txt' ],
        [ 'DEL',                  "del\x7fete.txt", 'del_ete.txt' ],
        [ 'CR and LF',            "line\r\nbreak.txt", 'line__break.txt' ],
        [ 'a right-to-left override', "\x{e2}\x{80}\x{ae}txt.exe.txt",
          '_txt.exe.txt' ],
        [ 'invalid UTF-8',        "caf\xe9.txt", 'caf_.txt' ],
    );

    for (@cases) {
        my ($what, $sent, $want) = @$_;
        (my $star = $sent) =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge;
        my $rec = uploaded($t->upload($key, undef, "text of $what\n",
                                      part => { filename => undef,
                                                filename_star =>
                                                    "UTF-8''$star" }),
                           $what);
        my $name = $rec->{name} // '';
        utf8::encode($name);
        is($name, $want, "$what: the name becomes "
                         . $show->encode($want));
        like($rec->{url} // '', qr{/static/documents/[A-Za-z0-9_-]{16}\.txt\z},
             "$what: stored as documents/<id>.txt");
    }

    my $long = ('n' x 296) . '.txt';
    my $rec = uploaded($t->upload($key, $long, "long\n"),
                       'a name of 300 bytes');
    my $name = $rec->{name} // '';
    cmp_ok(length $name, '<=', 255, 'is cut to 255 bytes or fewer');
    like($name, qr/\Annnn+\.txt\z/, 'keeping its start and its extension');

    ok(!-e $escape, 'nothing was written outside the upload dir');

    my @odd = grep {
        !m{\A(?:images|documents|other)/[A-Za-z0-9_-]{16}\.[a-z0-9]+\z}
    } $t->all_upload_files;
    is_deeply(\@odd, ['.domains', 'hello.txt'],
              'under the upload dir, every file is <category>/<id>.<ext> '
              . '(but the file domains\' list and the fixture\'s '
              . 'hello.txt)');
    opendir my $dh, $t->nginx->prefix . '/html';
    is_deeply([ sort grep { !/\A\.\.?\z/ } readdir $dh ], ['static'],
              'and beside it there is nothing new');
};

subtest 'the links name the host the client asked for' => sub {
    my $rec = uploaded($t->upload($key, 'hosted.png', sample('png', 2000),
                                  host => 'img.localhost:8443'),
                       'Host: img.localhost:8443');
    is_upload($rec, {}, 'url and delete_url on that host, with its port',
              host => 'img.localhost:8443');
};

subtest 'behind TLS the links say https' => sub {
    my $port = free_port();
    $t->restart_nginx(registration => 'open',
                      http => $t->tls_api_server($port));

    my ($rc, $out, $err) = run_cmd(
        ['curl', '-sSk', '--max-time', '20',
         "https://127.0.0.1:$port/api/uploads",
         '-H', "Authorization: Bearer $key", '-H', 'X-Filename: tls.txt',
         '-H', 'Content-Type: application/octet-stream',
         '--data-binary', 'sent over TLS'], check => 0);
    is($rc, 0, 'curl uploads over TLS') or diag $err;
    my $rec = eval { JSON::PP->new->decode($out) } // {};
    push @uploaded, $rec if $rec->{id};
    is_upload($rec, { name => 'tls.txt', size => 13 },
              'the links are https://, on the host curl named',
              scheme => 'https', host => "127.0.0.1:$port");

    $t->restart_nginx(registration => 'open');
};

subtest 'bulletdrop_allowed_extensions decides, dots optional, any case'
=> sub {
    $t->restart_nginx(registration => 'open',
                      allowed_extensions => 'png .TXT Zip');

    my $rec = uploaded($t->upload($key, 'Notes.Txt', "a note\n"),
                       'Notes.Txt');
    is_upload($rec, { category => 'documents',
                      content_type => 'text/plain; charset=utf-8' },
              'a .TXT allowed as .txt: a document, plain text', ext => 'txt');

    $rec = uploaded($t->upload($key, 'bundle.zip', "PK\x03\x04" . ('z' x 99)),
                    'bundle.zip');
    is_upload($rec, { category => 'other',
                      content_type => 'application/octet-stream' },
              'a zip is other, application/octet-stream', ext => 'zip');

    uploaded($t->upload($key, 'IMAGE.PNG', sample('png', 2000)),
             'IMAGE.PNG');

    is_error($t->upload($key, 'doc.pdf', sample('pdf', 2000)), 415,
             'extension_not_allowed', 'a .pdf, allowed by default but not '
             . 'here: 415 extension_not_allowed');

    $t->restart_nginx(registration => 'open');
};

# The order of a commit, as the worker's system calls show it: the file
# and then its new name are on disk before the row is asked for, so a
# crash can lose an upload but never leave its row without its file.
subtest 'with bulletdrop_fsync on: file, link and directory synced, '
        . 'then the row' => sub {
    plan skip_all => 'this file system has no unnamed files'
        unless $t->unnamed_temp_files;
    my ($worker) = $t->nginx->worker_pids;
    my $trace = $t->dir . '/commit.strace';
    my @tasks = map { m{/(\d+)\z} ? ('-p', $1) : () }
                glob "/proc/$worker/task/*";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        exec 'strace', '-f', '-qq', '-s', '64', '-o', $trace,
             '-e', 'trace=fsync,linkat,openat,sendto', @tasks;
        exit 127;
    }
    ok(wait_until(sub { -s $trace || (grep { /^TracerPid:\s*[1-9]/ }
                                      `cat /proc/$worker/status`) }, 10),
       'strace is attached to the worker');

    my $rec = uploaded($t->upload($key, 'synced.png', sample('png', 7000)),
                       'fsync on');
    sleep 0.3;
    kill 'INT', $pid;
    waitpid $pid, 0;

    my @calls = grep { /\b(?:fsync|linkat|openat|sendto)\(/ }
                split /\n/, `cat $trace`;
    my $file = qr{"[^"]*/images/\Q$rec->{id}\E\.png"};
    my $at = sub {                     # the first call from $from on
        my ($re, $from) = @_;
        my ($i) = grep { $calls[$_] =~ $re } ($from // 0) .. $#calls;
        return $i;
    };
    my $renamed = $at->(qr{linkat\(AT_FDCWD, "/proc/self/fd/\d+", AT_FDCWD, }
                        . qr{$file, AT_SYMLINK_FOLLOW\)});
    ok(defined $renamed, 'the unnamed temp file is linked to its place')
        or diag join "\n", @calls;
    $renamed //= 0;
    my ($fd) = $calls[$renamed] =~ m{"/proc/self/fd/(\d+)"};
    ok(defined $fd && grep({ $calls[$_] =~ /fsync\($fd\)/ }
                           0 .. $renamed - 1),
       'the file was fsynced before, through the descriptor linked');
    my $dir = $at->(qr{openat\(.*/images", O_RDONLY\|O_DIRECTORY},
                    $renamed);
    ok(defined $dir, 'then its directory is opened');
    my ($dfd) = defined $dir ? $calls[$dir] =~ /= (\d+)\s*\z/ : ();
    my $synced = defined $dfd ? $at->(qr{fsync\($dfd\)}, $dir) : undef;
    ok(defined $synced, 'and fsynced');
    my $insert = $at->(qr{sendto\(.*bd_upload_insert});
    ok(defined $insert && defined $synced && $insert > $synced,
       'and only then the row is asked for');
};

subtest 'with bulletdrop_fsync off, files are stored all the same' => sub {
    $t->restart_nginx(registration => 'open', fsync => 'off');
    my $png = sample('png', 9000);
    my $rec = uploaded($t->upload($key, 'nosync.png', $png), 'fsync off');
    stored_whole($rec, $png, 'fsync off') if $rec->{id};
    $t->restart_nginx(registration => 'open');
};

subtest 'ids are random, and usage counts every byte of every file' => sub {
    my @ids = map { $_->{id} } @uploaded;
    my %seen = map { $_ => 1 } @ids;
    is(scalar keys %seen, scalar @ids, scalar(@ids) . ' uploads, as many '
       . 'ids');
    my %prefix = map { substr($_, 0, 4) => 1 } @ids;
    cmp_ok(scalar keys %prefix, '>', @ids * 0.8,
           'hardly two share their first 4 characters');

    my $bytes = 0;
    $bytes += $_->{size} for @uploaded;
    my $me = $t->get('/api/users/me', token => $key)->{json};
    is_deeply($me->{usage}, { bytes => $bytes, files => scalar @uploaded },
              "usage: $bytes bytes in " . scalar(@uploaded) . ' files');
    is_deeply($t->usage_of($alice->{id}),
              { bytes => $bytes, files => scalar @uploaded },
              'as the users row says');
    is($t->pg->psql('SELECT sum(size) FROM uploads WHERE user_id = '
                    . $alice->{id})->[0][0],
       $bytes, 'and as the uploads add up');
    my @files = $t->stored_files;
    is(scalar @files, scalar @uploaded, 'one file for each');
    is_deeply([ $t->temp_files ], [], 'and nothing left in .tmp');
};

done_testing;
