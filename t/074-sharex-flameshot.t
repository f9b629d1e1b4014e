#!/usr/bin/perl
# Setting up the screenshot tools takes one download.  The ShareX config
# (.sxcu) is JSON that points ShareX at /api/uploads/sharex on the host the
# user asked, with a key: a placeholder for a logged-in browser, the key
# it was fetched with, or a new key named "ShareX" on request; ShareX
# following it gets back the fields it reads.  The Flameshot script
# follows the same key rules (its new key named "Flameshot"), is valid
# bash, and really does take a screenshot, upload it and put its link on
# the clipboard; when the upload fails it says so and copies nothing.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP ();

use BulletDrop::HTTP qw(multipart);
use BulletDrop::Test qw(is_error sample png);
use BulletDrop::Util qw(slurp spew run_cmd);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $alice = $t->new_user('alice', key => 1);
my $host = '127.0.0.1:' . $t->port;
my $placeholder = 'bd_PASTE_YOUR_API_KEY_HERE';

# GET /api/users/me/<what> as a client on $host would
sub fetch {
    my ($what, $auth, $query) = @_;
    return $t->get("/api/users/me/$what" . (defined $query ? "?$query" : ''),
                   defined $auth ? (token => $auth) : (), host => $host);
}

sub api_keys {
    return $t->get('/api/users/me/api-keys',
                   token => $alice->{token})->{json}{api_keys} // [];
}

# the whole .sxcu, as the contract has it, for a key
sub sxcu {
    my ($key) = @_;
    return { Version => '15.0.0', Name => "BulletDrop ($host)",
             DestinationType => 'ImageUploader, TextUploader, FileUploader',
             RequestMethod => 'POST',
             RequestURL => "http://$host/api/uploads/sharex",
             Headers => { Authorization => "Bearer $key" },
             Body => 'MultipartFormData', FileFormName => 'file',
             URL => '{json:url}', DeletionURL => '{json:delete_url}',
             ErrorMessage => '{json:detail}' };
}

my %minted;

subtest 'the .sxcu for a logged-in user holds a placeholder key' => sub {
    my $keys = @{ api_keys() };
    my $res = fetch('sharex', $alice->{token});

    is($res->{status}, 200, 'status 200');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'content-disposition'},
       'attachment; filename="bulletdrop.sxcu"', 'a download named '
       . 'bulletdrop.sxcu');
    ok($res->{json}, 'that parses as JSON') or diag $res->{json_error};
    is_deeply($res->{json}, sxcu($placeholder),
              'every field ShareX reads, for this host, with the '
              . 'placeholder');
    is(scalar @{ api_keys() }, $keys, 'and no key was made');
};

subtest 'fetched with an API key, it holds that key' => sub {
    my $keys = @{ api_keys() };
    my $res = fetch('sharex', $alice->{key});
    is($res->{status}, 200, 'status 200');
    is_deeply($res->{json}, sxcu($alice->{key}), 'the key it was fetched '
              . 'with');
    is(scalar @{ api_keys() }, $keys, 'and no key was made');
};

subtest 'new_key=1 mints a key named ShareX for it' => sub {
    for my $auth ([ 'a token', $alice->{token} ],
                  [ 'an API key', $alice->{key} ])
    {
        my ($how, $cred) = @$auth;
        my $before = api_keys();
        my $res = fetch('sharex', $cred, 'new_key=1');
        is($res->{status}, 200, "fetched with $how: 200");

        my $key = (($res->{json}{Headers} // {})->{Authorization} // '')
                  =~ s/\ABearer //r;
        like($key, qr/\Abd_[A-Za-z0-9_-]{43}\z/, "$how: a real key");
        isnt($key, $alice->{key}, "$how: not the key of the request");
        ok(!$minted{$key}++, "$how: a new one");
        is_deeply($res->{json}, sxcu($key), "$how: the rest as ever");

        my $after = api_keys();
        is(scalar @$after, @$before + 1, "$how: one more key in the list");
        is($after->[-1]{name}, 'ShareX', "$how: named ShareX");
        is($after->[-1]{prefix}, substr($key, 0, 11),
           "$how: it is the listed one");
        is($t->get('/api/users/me', token => $key)->{json}{username},
           'alice', "$how: and it opens Alice's account");
    }
};

subtest 'ShareX, following the .sxcu, uploads and reads its answer' => sub {
    my $cfg = fetch('sharex', $alice->{key}, 'new_key=1')->{json};
    my ($path) = $cfg->{RequestURL} =~ m{\Ahttp://\Q$host\E(/.*)\z};
    my $png = sample('png', 12_345);

    my ($type, $body) = multipart(parts => [
        { name => $cfg->{FileFormName}, filename => 'Screenshot_01.png',
          type => 'image/png', data => $png } ]);
    my $res = $t->request($cfg->{RequestMethod}, $path, host => $host,
                          headers => [ %{ $cfg->{Headers} },
                                       'Content-Type' => $type ],
                          body => $body);

    is($res->{status}, 201, 'status 201');
    my $json = $res->{json} // {};
    is_deeply([ sort keys %$json ], [qw(delete_url id sha256 size url)],
              'url, delete_url, id, size and sha256');
    like($json->{url}, qr{\Ahttp://\Q$host\E/static/images/\Q$json->{id}\E
                          \.png\z}x, 'URL: the image on this host');
    like($json->{delete_url}, qr{\Ahttp://\Q$host\E/d/[A-Za-z0-9_-]{16,}\z},
         'DeletionURL: a delete link on this host');
    is($json->{size}, 12_345, 'the size');
    is($json->{sha256}, sha256_hex($png), 'the sha256');

    my ($link) = ($json->{url} // '') =~ m{\Ahttp://[^/]+(/.*)\z};
    is($t->get($link // '/')->{body}, $png, 'the link serves the image');

    my $rec = $t->get("/api/uploads/$json->{id}", token => $alice->{key});
    is($rec->{json}{name}, 'Screenshot_01.png', 'recorded under its name');

    ($type, $body) = multipart(parts => [
        { name => 'file', filename => 'setup.exe', data => 'MZ' x 100 } ]);
    $res = $t->request('POST', $path, host => $host,
                       headers => [ %{ $cfg->{Headers} },
                                    'Content-Type' => $type ],
                       body => $body);
    is_error($res, 415, 'extension_not_allowed',
             'a refused file: the JSON error ShareX shows');
};

# a screenshot tool, clipboards and notifications of our own
my $home = $t->dir . '/desktop';
make_path("$home/bin", "$home/home");
my $shot = png(40, 30);
spew("$home/shot.png", $shot);
spew("$home/bin/flameshot", <<'EOF', 0755);
#!/bin/sh
# takes the same screenshot every time
case "$*" in *gui*) cat "$SHOT" ;; esac
EOF
for my $tool (qw(wl-copy xclip xsel)) {
    spew("$home/bin/$tool", <<'EOF', 0755);
#!/bin/sh
# keeps what it is given (argument or standard input) in $CLIP
text=""
for a in "$@"; do
    case "$a" in -*|clipboard|clip|primary|c|p|b|text/plain*) ;;
                 *) text="$a" ;; esac
done
if [ -n "$text" ]; then printf '%s' "$text" >> "$CLIP"; else cat >> "$CLIP"; fi
EOF
}
spew("$home/bin/notify-send", <<'EOF', 0755);
#!/bin/sh
echo "$*" >> "$NOTES"
EOF

# runs a script as a desktop session would: (exit status, everything it
# said, what reached the clipboard)
sub run_script {
    my ($script) = @_;
    spew("$home/script.sh", $script, 0755);
    unlink "$home/clip", "$home/notes";
    local %ENV = (PATH => "$home/bin:/usr/bin:/bin", HOME => "$home/home",
                  SHOT => "$home/shot.png", CLIP => "$home/clip",
                  NOTES => "$home/notes", WAYLAND_DISPLAY => 'wayland-0',
                  DISPLAY => ':0', XDG_RUNTIME_DIR => $home, LANG => 'C');
    my ($status, $out, $err) = run_cmd(['timeout', '30', 'bash',
                                        "$home/script.sh"], check => 0);
    my $notes = -e "$home/notes" ? slurp("$home/notes") : '';
    my $clip = -e "$home/clip" ? slurp("$home/clip") : '';
    return ($status >> 8, "$out$err$notes", $clip);
}

my %script;

subtest 'the Flameshot script: bash, with the same key rules' => sub {
    my @cases = ([ 'a token', $alice->{token}, undef, $placeholder ],
                 [ 'an API key', $alice->{key}, undef, $alice->{key} ],
                 [ 'new_key=1', $alice->{token}, 'new_key=1', undef ]);

    for (@cases) {
        my ($how, $cred, $query, $key) = @$_;
        my $keys = @{ api_keys() };
        my $res = fetch('flameshot', $cred, $query);

        is($res->{status}, 200, "$how: 200");
        is($res->{headers}{'content-type'},
           'text/x-shellscript; charset=utf-8', "$how: a shell script");
        is($res->{headers}{'content-disposition'},
           'attachment; filename="bulletdrop-flameshot.sh"',
           "$how: a download named bulletdrop-flameshot.sh");

        my $body = $res->{body};
        spew($t->dir . '/check.sh', $body);
        my ($status, undef, $err) = run_cmd(['bash', '-n',
                                             $t->dir . '/check.sh'],
                                            check => 0);
        is($status, 0, "$how: bash -n finds no syntax error") or diag $err;
        like($body, qr/\A#!.*\bbash\b/, "$how: a bash script");
        like($body, qr/flameshot gui --raw/, "$how: runs flameshot gui --raw");
        like($body, qr{http://\Q$host\E/api/uploads/sharex},
             "$how: uploads to /api/uploads/sharex on this host");
        like($body, qr/\bcurl\b/, "$how: with curl");
        like($body, qr/wl-copy/, "$how: knows wl-copy");
        like($body, qr/xclip/, "$how: knows xclip");
        like($body, qr/xsel/, "$how: knows xsel");

        if (defined $key) {
            like($body, qr/\Q$key\E/, "$how: holds the key $key");
            is(scalar @{ api_keys() }, $keys, "$how: no key was made");
        } else {
            my $new = api_keys()->[-1];
            is(scalar @{ api_keys() }, $keys + 1, "$how: one key was made");
            # the contract says "the same key rules"; the README says the
            # key is named after the program
            is($new->{name}, 'Flameshot', "$how: named Flameshot");
            my ($held) = $body =~ /\b(bd_[A-Za-z0-9_-]{43})\b/;
            is(substr($held // '', 0, 11), $new->{prefix},
               "$how: the script holds it");
            $script{key} = $body;
        }
        $script{placeholder} = $body if ($key // '') eq $placeholder;
    }
};

subtest 'the Flameshot script takes a shot, uploads it, copies its link'
=> sub {
    my $before = $t->get('/api/users/me', token => $alice->{key})
                   ->{json}{usage};
    my ($status, $said, $clip) = run_script($script{key} // 'exit 99');

    is($status, 0, 'it succeeds') or diag $said;
    my ($url) = $clip =~ m{\A\s*(http://\S+?)\s*\z};
    like($url // $clip, qr{\Ahttp://\Q$host\E/static/images/
                           [A-Za-z0-9_-]{16}\.png\z}x,
         'the clipboard holds one link: the image on this host');
    my ($path) = ($url // '') =~ m{\Ahttp://[^/]+(/.*)\z};
    is($t->get($path // '/')->{body}, $shot,
       'which serves the screenshot, byte for byte');
    is($t->get('/api/users/me', token => $alice->{key})->{json}{usage}{files},
       $before->{files} + 1, 'as Alice\'s upload');
};

subtest 'when the upload fails, the script says so and copies nothing'
=> sub {
    my ($status, $said, $clip) = run_script($script{placeholder}
                                            // 'exit 99');
    isnt($status, 0, 'with the placeholder key it fails');
    like($said, qr/\S/, 'saying something') or diag 'it said nothing';
    note "it said: $said";
    is($clip, '', 'and the clipboard is left alone');
};

subtest 'without a token: 401' => sub {
    is_error(fetch('sharex', undef), 401, 'unauthorized', 'the .sxcu: 401');
    is_error(fetch('flameshot', undef), 401, 'unauthorized',
             'the script: 401');
    is_error(fetch('sharex', undef, 'new_key=1'), 401, 'unauthorized',
             'new_key=1 without a token: 401, and no key');
};

done_testing;
