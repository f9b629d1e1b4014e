#!/usr/bin/perl
# Every route that takes a body, fed what a careless or hostile client
# sends: broken JSON, duplicate keys, bytes that are not UTF-8, wrong
# types, missing and unknown fields, broken forms, other content types, no
# body, too much body.  Each gets its own 4xx in JSON, none a 500, and the
# workers live through all of it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use JSON::PP ();
use Time::HiRes qw(time);

use BulletDrop::HTTP qw(parse_response);
use BulletDrop::Test qw(is_error);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', workers => 2,
                login_limit => 'user=1000 addr=1000 period=1m');

my $alice = $t->new_user('alice');
my $admin = $t->new_user('root', admin => 1);
my @workers = sort $t->nginx->worker_pids;
my @answers;    # every response below, for the last subtest

# the routes that take a body, and who may call them
my %route = (
    register => ['POST',  '/api/auth/register'],
    login    => ['POST',  '/api/auth/login'],
    me       => ['PATCH', '/api/users/me', $alice->{token}],
    keys     => ['POST',  '/api/users/me/api-keys', $alice->{token}],
    invites  => ['POST',  '/api/admin/invites', $admin->{token}],
    user     => ['PATCH', "/api/admin/users/$alice->{id}", $admin->{token}],
);
my @routes = sort keys %route;

# sends a raw body to a route; content type JSON unless told
sub send_body {
    my ($name, $body, %o) = @_;
    my ($method, $path, $token) = @{ $route{$name} };
    my $res = $t->request($method, $path,
        headers => [ defined $o{type} ? ('Content-Type' => $o{type}) : (),
                     @{ $o{headers} // [] } ],
        defined $token ? (token => $token) : (),
        defined $body ? (body => $body) : ());
    push @answers, $res;
    return $res;
}

sub send_json {
    my ($name, $data) = @_;
    return send_body($name, JSON::PP->new->utf8->canonical->encode($data),
                     type => 'application/json');
}

my $show = JSON::PP->new->ascii->allow_nonref;

subtest 'malformed JSON: 400 invalid_json, on every route' => sub {
    my @bodies = ('{', '}', '{"a":}', '{"a":1,}', "{'a':1}", '{a:1}',
                  '{"a" 1}', '{"a":01}', '{"a":"\\x"}', "{\"a\":\"\t\"}",
                  '{"a":1}}', '{} {}', '{}x', 'nul', 'null', 'true', '42',
                  '"text"', '[]', '[{"name":"x"}]');
    for my $name (@routes) {
        for my $body (@bodies) {
            is_error(send_body($name, $body, type => 'application/json'),
                     400, 'invalid_json',
                     "$name " . $show->encode($body) . ': 400 invalid_json');
        }
    }
};

subtest 'duplicate keys: 400 invalid_json' => sub {
    my %bodies = (
        register => '{"username":"dup","username":"dup2",'
                    . '"password":"long enough password"}',
        login    => '{"username":"alice","password":"x",'
                    . '"password":"long enough password"}',
        me       => '{"default_domain":null,"default_domain":null}',
        keys     => '{"name":"a","name":"b"}',
        invites  => '{"expires_in":60,"expires_in":120}',
        user     => '{"quota_bytes":1,"quota_bytes":2}',
    );
    for my $name (@routes) {
        is_error(send_body($name, $bodies{$name}, type => 'application/json'),
                 400, 'invalid_json', "$name: 400 invalid_json");
    }
    ok(!@{ $t->pg->psql("SELECT 1 FROM users WHERE username LIKE 'dup%'") },
       'no user was made from a duplicate');
};

subtest 'bytes that are not UTF-8 in JSON: 400 invalid_json' => sub {
    my %bad = (
        'a lone \xff'           => "\xff",
        'a cut sequence'        => "caf\xc3",
        'a bad continuation'    => "\xc3\x28abc",
        'an overlong /'         => "\xc0\xaf",
        'a surrogate'           => "\xed\xa0\x80",
        'beyond U+10FFFF'       => "\xf4\x90\x80\x80",
        'Latin-1'               => "caf\xe9",
    );
    my %field = (register => 'username', login => 'password',
                 me => 'default_domain', keys => 'name', user => 'role');
    for my $what (sort keys %bad) {
        for my $name (sort keys %field) {
            my $body = qq({"$field{$name}":"$bad{$what}"});
            $body = qq({"username":"utf","password":"pw$bad{$what}pw12"})
                if $name eq 'register';
            is_error(send_body($name, $body, type => 'application/json'),
                     400, 'invalid_json', "$name, $what: 400");
        }
    }
    is_error(send_body('keys', qq({"name":"k","\xff":1}),
                       type => 'application/json'),
             400, 'invalid_json', 'in a key of the object: 400');
    ok(!@{ $t->pg->psql("SELECT 1 FROM users WHERE username = 'utf'") },
       'no user was made');
};

subtest 'escapes that decode to bad text are refused' => sub {
    is_error(send_body('register', '{"username":"nul\\u0000","password":'
                                   . '"long enough password"}',
                       type => 'application/json'),
             400, 'invalid_username', 'a NUL in a user name');
    is_error(send_body('keys', '{"name":"nul\\u0000"}',
                       type => 'application/json'),
             400, 'invalid_name', 'a NUL in a key name');

    my $res = send_body('keys', '{"name":"half \\ud800 a pair"}',
                        type => 'application/json');
    is($res->{status}, 400, 'a lone surrogate escape: 400');
    like($res->{json}{error} // '', qr/\A(?:invalid_json|invalid_name)\z/,
         'invalid_json or invalid_name');

    $res = send_body('register', '{"username":"nulpass","password":'
                                 . '"long enough\\u0000 and more"}',
                     type => 'application/json');
    ok($res->{status} == 201 || $res->{status} == 400,
       'a NUL inside a password: taken whole or refused');
    if ($res->{status} == 201) {
        is_error($t->login_response('nulpass', 'long enough'), 401,
                 'invalid_credentials',
                 'and never cut at the NUL: its first half does not log in');
        ok($t->login('nulpass', "long enough\x{0} and more"),
           'the whole of it does');
    }
};

subtest 'wrong JSON types: 422 wrong_type, naming the field' => sub {
    my @cases = (
        [ register => { username => 123, password => 'long enough pw' },
          'username' ],
        [ register => { username => ['x'], password => 'long enough pw' },
          'username' ],
        [ register => { username => 'typed', password => 12345678 },
          'password' ],
        [ register => { username => 'typed', password => JSON::PP::true },
          'password' ],
        [ register => { username => 'typed', password => 'long enough pw',
                        invite => 5 }, 'invite' ],
        [ login    => { username => { a => 1 }, password => 'x' x 8 },
          'username' ],
        [ login    => { username => 'alice', password => JSON::PP::false },
          'password' ],
        [ keys     => { name => 5 }, 'name' ],
        [ keys     => { name => ['x'] }, 'name' ],
        [ me       => { default_domain => 5 }, 'default_domain' ],
        [ me       => { default_domain => JSON::PP::true }, 'default_domain' ],
        [ me       => { current_password => 1,
                        new_password => 'long enough pw' },
          'current_password' ],
        [ me       => { current_password => 'long enough pw',
                        new_password => [] }, 'new_password' ],
        [ invites  => { expires_in => '3600' }, 'expires_in' ],
        [ invites  => { expires_in => JSON::PP::true }, 'expires_in' ],
        [ invites  => { expires_in => [60] }, 'expires_in' ],
        [ user     => { role => 1 }, 'role' ],
        [ user     => { disabled => 'true' }, 'disabled' ],
        [ user     => { quota_bytes => '10' }, 'quota_bytes' ],
        [ user     => { quota_bytes => JSON::PP::true }, 'quota_bytes' ],
    );
    my $json = JSON::PP->new->canonical;
    for (@cases) {
        my ($name, $data, $field) = @$_;
        my $res = send_json($name, $data);
        is_error($res, 422, 'wrong_type',
                 "$name " . $json->encode($data) . ': 422 wrong_type');
        like($res->{json}{detail} // '', qr/\b\Q$field\E\b/,
             "... naming $field");
    }
    ok(!@{ $t->pg->psql("SELECT 1 FROM users WHERE username = 'typed'") },
       'no user was made');
};

subtest 'missing fields: 422 missing_field, naming the field' => sub {
    my @cases = (
        [ register => { password => 'long enough pw' }, 'username' ],
        [ register => { username => 'nopass' }, 'password' ],
        [ register => {}, 'username|password' ],
        [ login    => { username => 'alice' }, 'password' ],
        [ login    => { password => 'long enough pw' }, 'username' ],
        [ keys     => {}, 'name' ],
    );
    for (@cases) {
        my ($name, $data, $field) = @$_;
        my $res = send_json($name, $data);
        is_error($res, 422, 'missing_field',
                 "$name without $field: 422 missing_field");
        like($res->{json}{detail} // '', qr/\b(?:$field)\b/,
             "... naming $field");
    }
};

subtest 'unknown fields: 422 unknown_field, naming it' => sub {
    my @cases = (
        [ register => { username => 'unknown1', password => 'long enough pw',
                        email => 'a@example.com' }, 'email' ],
        [ login    => { username => 'alice', password => 'long enough pw',
                        remember => JSON::PP::true }, 'remember' ],
        [ keys     => { name => 'k', scope => 'all' }, 'scope' ],
        [ me       => { nickname => 'al' }, 'nickname' ],
        [ me       => { default_domain => undef, role => 'admin' }, 'role' ],
        [ invites  => { expires_in => 600, uses => 2 }, 'uses' ],
        [ user     => { role => 'user', email => 'x' }, 'email' ],
    );
    for (@cases) {
        my ($name, $data, $field) = @$_;
        my $res = send_json($name, $data);
        is_error($res, 422, 'unknown_field', "$name with $field: 422");
        like($res->{json}{detail} // '', qr/\b\Q$field\E\b/,
             "... naming $field");
    }
    is($t->get('/api/users/me', token => $alice->{token})->{json}{role},
       'user', 'alice did not make herself admin on the way');
};

subtest 'broken forms: 400 invalid_form' => sub {
    my $form = 'application/x-www-form-urlencoded';
    my @bodies = (
        'username=al%zzice&password=long+enough+pw',
        'username=alice&password=long+enough+pw%',
        'username=alice&password=long+enough+pw%4',
        'username=%ff%feice&password=long+enough+pw',
        "username=al\xffice&password=long+enough+pw",
        'username=alice&password=%c0%af%c0%aflong+enough',
        'username=alice&password=%ed%a0%80long+enough',
    );
    for my $name (qw(register login)) {
        for my $body (@bodies) {
            is_error(send_body($name, $body, type => $form), 400,
                     'invalid_form',
                     "$name " . $show->encode($body) . ': 400 invalid_form');
        }

        my $res = send_body($name, 'username=formless', type => $form);
        is_error($res, 422, 'missing_field',
                 "$name, a form without password: 422");
        like($res->{json}{detail} // '', qr/\bpassword\b/, '... naming it');

        $res = send_body($name, 'username=formful&password=long+enough+pw'
                                . '&captcha=1', type => $form);
        is_error($res, 422, 'unknown_field',
                 "$name, a form with an extra field: 422");
        like($res->{json}{detail} // '', qr/\bcaptcha\b/, '... naming it');
    }

    is_error(send_body('keys', 'name=formkey', type => $form), 415,
             'unsupported_media_type',
             'a form where only JSON is taken: 415');
};

subtest 'other content types: 415 unsupported_media_type' => sub {
    my @types = ('text/plain', 'application/xml', 'text/json',
                 'application/jsonx', 'multipart/form-data; boundary=x',
                 'application/octet-stream');
    for my $name (@routes) {
        for my $type (@types) {
            is_error(send_body($name, '{}', type => $type), 415,
                     'unsupported_media_type', "$name as $type: 415");
        }
    }

    my $res = send_body('keys', '{"name":"with charset"}',
                        type => 'application/json; charset=utf-8');
    is($res->{status}, 201, 'application/json; charset=utf-8 is JSON');
};

subtest 'no body where one is needed: 400 invalid_json, saying so' => sub {
    for my $name (grep { $_ ne 'invites' } @routes) {
        my $res = send_body($name, '', type => 'application/json');
        is_error($res, 400, 'invalid_json', "$name, an empty body: 400");
        like($res->{json}{detail} // '', qr/body/i, '... a body is needed');

        $res = send_body($name, undef);
        is_error($res, 400, 'invalid_json', "$name, no body at all: 400");
    }

    is(send_body('invites', undef)->{status}, 201,
       'invites need none: 201 without a body');
    is(send_body('invites', '', type => 'application/json')->{status}, 201,
       'or with an empty one');
};

subtest 'bodies over 16 KiB: 413 body_too_large' => sub {
    my $edge = '{"name":"edge"}';
    $edge .= ' ' x (16384 - length $edge);
    is(send_body('keys', $edge, type => 'application/json')->{status}, 201,
       '16384 bytes exactly: taken');
    is_error(send_body('keys', "$edge ", type => 'application/json'), 413,
             'body_too_large', '16385 bytes: 413');

    my $big = '{"username":"big","password":"' . ('x' x 19960) . '"}';
    for my $name (@routes) {
        is_error(send_body($name, $big, type => 'application/json'), 413,
                 'body_too_large', "$name, 20 KB: 413");
    }
    is_error(send_body('login', 'username=big&password=' . 'x' x 20000,
                       type => 'application/x-www-form-urlencoded'),
             413, 'body_too_large', 'a 20 KB form: 413');

    # declared and never sent: refused by its length, at once
    my $sock = $t->http->connect;
    my $t0 = time;
    print {$sock} "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nContent-Length: 20000\r\n"
        . "Connection: close\r\n\r\n";
    my $ready = IO::Select->new($sock)->can_read(5);
    my $res = parse_response($ready ? $t->http->read_all($sock, 5)
                                    : "HTTP/1.1 000 none\r\n\r\n");
    push @answers, $res;
    is_error($res, 413, 'body_too_large',
             'Content-Length 20000 with no body sent yet: 413');
    cmp_ok(time - $t0, '<', 2, 'without waiting for the body');
    close $sock;
};

subtest 'chunked bodies are counted as they arrive' => sub {
    my $chunked = sub {
        my ($body, $size) = @_;
        my $out = '';
        for (my $i = 0; $i < length $body; $i += $size) {
            my $piece = substr $body, $i, $size;
            $out .= sprintf("%x\r\n", length $piece) . "$piece\r\n";
        }
        return "${out}0\r\n\r\n";
    };
    my @te = (headers => [ 'Transfer-Encoding' => 'chunked' ],
              type => 'application/json');

    my $res = send_body('keys', $chunked->('{"name":"chunky"}', 5), @te);
    is($res->{status}, 201, 'a small chunked body: taken');
    is($res->{json}{name}, 'chunky', 'whole');

    my $big = '{"name":"' . ('x' x 20470) . '"}';
    $res = send_body('keys', $chunked->($big, 4096), @te);
    is_error($res, 413, 'body_too_large', '20 KB in 4 KiB chunks: 413');

    $res = send_body('register', $chunked->($big, 100), @te);
    is_error($res, 413, 'body_too_large', '20 KB in 100-byte chunks: 413');
};

subtest 'deep and huge values do no harm' => sub {
    my @cases = (
        [ keys    => '[' x 8000 . ']' x 8000 ],
        [ keys    => '{"name":' . '[' x 5000 . ']' x 5000 . '}' ],
        [ keys    => '{"name":' . '{"a":' x 2000 . '1' . '}' x 2001 ],
        [ invites => '{"expires_in":1e400}' ],
        [ invites => '{"expires_in":99999999999999999999999999}' ],
        [ user    => '{"quota_bytes":99999999999999999999999999}' ],
        [ user    => '{"quota_bytes":-0.5}' ],
        [ keys    => '{"name":"' . ('n' x 16000) . '"}' ],
    );
    for (@cases) {
        my ($name, $body) = @$_;
        my $res = send_body($name, $body, type => 'application/json');
        my $what = "$name " . substr($body, 0, 24) . '...';
        ok($res->{status} == 400 || $res->{status} == 422,
           "$what: 400 or 422") or diag "got $res->{status} $res->{body}";
        is($res->{headers}{'content-type'}, 'application/json',
           "$what: in JSON");
    }
};

subtest 'the body routes take no other method' => sub {
    for my $path ('/api/auth/login', '/api/auth/register') {
        my $res = $t->get($path);
        push @answers, $res;
        is($res->{status}, 405, "GET $path: 405");
        is($res->{headers}{allow}, 'POST', 'Allow: POST');
        is($res->{json}{error}, 'method_not_allowed', 'method_not_allowed');
    }
};

subtest 'after all that: no 500, no crash, the workers serve on' => sub {
    cmp_ok(scalar @answers, '>', 250, scalar(@answers) . ' answers looked at');
    my @five = grep { $_->{status} >= 500 } @answers;
    is(scalar @five, 0, 'none was a 5xx')
        or diag join "\n", map { "$_->{status} $_->{body}" } @five[0 .. 4];
    my @not_json = grep { ($_->{headers}{'content-type'} // '')
                          ne 'application/json' } @answers;
    is(scalar @not_json, 0, 'every answer was JSON')
        or diag join "\n", map { "$_->{status} $_->{body}" }
                           @not_json[0 .. 2];

    is($t->get('/api/health')->{status}, 200, 'health answers');
    is_deeply([ sort $t->nginx->worker_pids ], \@workers,
              'from the same workers as at the start');

    my $log = $t->nginx->log_text;
    unlike($log, qr/\[alert\]/, 'no [alert] in the error log');
    unlike($log, qr/signal \d+|exited on signal/,
           'no worker ended on a signal');
    my $access = BulletDrop::Util::slurp($t->nginx->prefix
                                         . '/logs/access.log');
    unlike($access, qr/" 5\d\d /, 'the access log has no 5xx');
};

done_testing;
