#!/usr/bin/perl
# Browser sessions: a login that asks for one gets its token in an
# HttpOnly, SameSite=Strict cookie for /api (Secure over TLS), never in the
# body; the cookie is taken where a bearer token is; whatever a cookie
# request changes must come from the site's own pages (Origin, else
# Sec-Fetch-Site); the session is renewed past half its life, re-issued
# on a password change, and ended by a logout, a disable or a password
# change made elsewhere.  Also GET /api/config and the invites an admin
# lists and revokes, which the web app draws.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();

use BulletDrop::Test qw(is_error free_port);
use BulletDrop::Util qw(run_cmd);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', jwt_ttl => '8s', files => 1,
                base_domain => 'localhost');

# what the test client names as Host, hence the site's own origin
my $SITE = 'http://localhost';

# tokens live 8 s here: the fixtures use API keys
my $admin = $t->new_user('root', admin => 1, key => 1);
my $alice = $t->new_user('alice', key => 1);

sub session_login {
    my ($user, %o) = @_;
    return $t->post('/api/auth/login',
                    $o{form}
                    ? (form => [ username => $user->{name},
                                 password => $user->{password},
                                 session => 'true' ])
                    : (json => { username => $user->{name},
                                 password => $user->{password},
                                 session => JSON::PP::true }),
                    headers => [ Origin => $o{origin} // $SITE ]);
}

# name => value of the bd_session Set-Cookie, and its attributes
sub cookie_of {
    my ($res) = @_;
    my $h = $res->{headers}{'set-cookie'} // return;
    my ($value, @attrs) = split /;\s*/, $h;
    my ($name, $token) = split /=/, $value, 2;
    return unless $name eq 'bd_session';
    my %a = map { my ($k, $v) = split /=/, $_, 2; (lc $k => $v // 1) }
            @attrs;
    return ($token, \%a);
}

sub with_cookie {
    my ($method, $path, $token, %o) = @_;
    return $t->request($method, $path, %o,
                       headers => [ Cookie => "other=1; bd_session=$token",
                                    @{ $o{headers} // [] } ]);
}

subtest 'a session login sets the cookie, and tells no token' => sub {
    my $res = session_login($alice);
    is($res->{status}, 200, 'POST /api/auth/login {session: true}: 200');
    is_deeply($res->{json}, { token_type => 'cookie', expires_in => 8 },
              'the body has no token');
    my ($token, $a) = cookie_of($res);
    like($token // '', qr/\A[\w-]+\.[\w-]+\.[\w-]+\z/, 'the cookie holds a JWT');
    is_deeply($a, { path => '/api', httponly => 1, samesite => 'Strict',
                    'max-age' => 8 },
              'HttpOnly; SameSite=Strict; Path=/api; Max-Age: the token\'s '
              . 'life; not Secure over plain HTTP');

    my $form = session_login($alice, form => 1);
    is($form->{status}, 200, 'a form post with session=true too');
    ok((cookie_of($form))[0], '... sets the cookie');

    my $plain = $t->login_response($alice->{name}, $alice->{password});
    ok(!$plain->{headers}{'set-cookie'} && $plain->{json}{access_token},
       'a login without session: the token in the body, no cookie');

    my $me = with_cookie('GET', '/api/users/me', $token);
    is($me->{status}, 200, 'the cookie is a credential');
    is($me->{json}{username}, 'alice', '... of Alice');
    ok(!$me->{headers}{'set-cookie'}, 'a young session is not renewed');
};

subtest 'another site cannot sign a browser in' => sub {
    is_error(session_login($alice, origin => 'http://evil.example'), 403,
             'csrf', 'a session login from another Origin: 403 csrf');
    my $res = $t->post('/api/auth/login',
                       json => { username => $alice->{name},
                                 password => $alice->{password},
                                 session => JSON::PP::true });
    is_error($res, 403, 'csrf', 'nor with no Origin at all');
    ok(!$res->{headers}{'set-cookie'}, 'no cookie set');
    is_error($t->post('/api/auth/login',
                      json => { username => 'alice', password => 'x',
                                session => 'yes' }),
             422, 'wrong_type', 'session is true or false');
};

subtest 'what a cookie request changes must come from the site' => sub {
    my ($token) = cookie_of(session_login($alice));
    my @make = ('POST', '/api/users/me/api-keys', $token,
                json => { name => 'from the app' });

    is_error(with_cookie(@make), 403, 'csrf', 'no Origin: 403 csrf');
    is_error(with_cookie(@make, headers => [ Origin => 'http://evil.example' ]),
             403, 'csrf', 'another Origin: 403 csrf');
    is_error(with_cookie(@make, headers => [ Origin => 'null' ]),
             403, 'csrf', 'Origin: null: 403 csrf');
    is_error(with_cookie(@make,
                         headers => [ Origin => 'http://img.localhost' ]),
             403, 'csrf', 'a file domain is another site: 403 csrf');
    is_error(with_cookie(@make,
                         headers => [ Origin => 'http://evil.example',
                                      'Sec-Fetch-Site' => 'same-origin' ]),
             403, 'csrf', 'a wrong Origin is not saved by Sec-Fetch-Site');
    is_error(with_cookie(@make, headers => [ 'Sec-Fetch-Site' => 'cross-site' ]),
             403, 'csrf', 'Sec-Fetch-Site: cross-site: 403 csrf');

    my $keys = $t->get('/api/users/me/api-keys', token => $alice->{key});
    ok(!grep({ $_->{name} eq 'from the app' } @{ $keys->{json}{api_keys} }),
       'no key was made by any of them');

    is(with_cookie(@make, headers => [ Origin => $SITE ])->{status}, 201,
       'the site\'s Origin: 201');
    is(with_cookie(@make, headers => [ 'Sec-Fetch-Site' => 'same-origin' ])
       ->{status}, 201, 'no Origin but Sec-Fetch-Site: same-origin: 201');
    is(with_cookie('GET', '/api/users/me/api-keys', $token)->{status}, 200,
       'a GET needs neither');

    my $bearer = $t->post('/api/users/me/api-keys', token => $alice->{key},
                          json => { name => 'curl' },
                          headers => [ Origin => 'http://evil.example' ]);
    is($bearer->{status}, 201,
       'a bearer token is not checked (ShareX and curl send no Origin)');
};

subtest 'an upload with the cookie is refused before its body' => sub {
    my ($token) = cookie_of(session_login($alice));
    my $x = $t->http->begin('POST', '/api/uploads', body => 'x' x 100_000,
                            headers => [ Cookie => "bd_session=$token",
                                         'X-Filename' => 'a.txt',
                                         Expect => '100-continue' ]);
    my $res = $x->answer(10) // { status => 0, headers => {}, interim => [] };
    is_error($res, 403, 'csrf', 'no Origin: 403 csrf');
    is_deeply($res->{interim}, [], 'no 100 Continue: the body was not asked for');

    my $ok = with_cookie('POST', '/api/uploads', $token,
                         body => 'from the web app',
                         headers => [ Origin => $SITE,
                                      'X-Filename' => 'app.txt' ]);
    is($ok->{status}, 201, 'with the site\'s Origin: 201');
    is($ok->{json}{name}, 'app.txt', '... stored');
};

subtest 'one session cookie, by its exact name' => sub {
    my ($token) = cookie_of(session_login($alice));
    my $res = $t->get('/api/users/me',
                      headers => [ Cookie => "bd_session=x; bd_session=$token" ]);
    is_error($res, 401, 'invalid_token',
             'two bd_session cookies (one may be planted): 401');
    ok(!$res->{headers}{'set-cookie'}, '... and neither is cleared');
    is_error($t->get('/api/users/me',
                     headers => [ Cookie => "bd_session=$token",
                                  Cookie => 'bd_session=x' ]),
             401, 'invalid_token', 'also in two Cookie headers');
    is_error($t->get('/api/users/me',
                     headers => [ Cookie => "BD_SESSION=$token" ]),
             401, 'unauthorized', 'BD_SESSION is another cookie');
    is(with_cookie('GET', '/api/users/me', $token)->{status}, 200,
       'one, among others: 200');
};

subtest 'a GET that makes a key wants the site too' => sub {
    my ($token) = cookie_of(session_login($alice));
    my $count = sub {
        scalar @{ $t->get('/api/users/me/api-keys', token => $alice->{key})
                  ->{json}{api_keys} };
    };
    my $before = $count->();
    for my $path ('/api/users/me/sharex?new_key=1',
                  '/api/users/me/flameshot?new_key=1') {
        is_error(with_cookie('GET', $path, $token), 403, 'csrf',
                 "$path with the cookie, from nowhere: 403");
        is_error(with_cookie('GET', $path, $token,
                             headers => [ 'Sec-Fetch-Site' => 'same-site' ]),
                 403, 'csrf', '... from a sibling host: 403');
        is(with_cookie('GET', $path, $token,
                       headers => [ 'Sec-Fetch-Site' => 'same-origin' ])
           ->{status}, 200, '... from the site\'s pages: 200');
    }
    is($count->(), $before + 2, 'two keys made, by the two that could');
    is(with_cookie('GET', '/api/users/me/sharex', $token)->{status}, 200,
       'without new_key it makes nothing and needs nothing');
    is($t->get('/api/users/me/sharex?new_key=1', token => $alice->{key})
       ->{status}, 200, 'a bearer credential needs nothing either');
};

subtest 'an API key in the cookie is no session' => sub {
    is_error(with_cookie('GET', '/api/users/me', $alice->{key}), 401,
             'invalid_token', 'an API key as the cookie: 401');
    is_error(with_cookie('GET', '/api/users/me', 'garbage'), 401,
             'invalid_token', 'garbage: 401');
    my $res = with_cookie('GET', '/api/users/me', 'garbage');
    my ($token, $a) = cookie_of($res);
    is($token, '', 'a refused session is cleared in the browser');
    is($a->{'max-age'}, 0, '... Max-Age=0');
    my $bearer = $t->get('/api/users/me', token => $alice->{key},
                         headers => [ Cookie => 'bd_session=garbage' ]);
    is($bearer->{status}, 200, 'Authorization wins over the cookie');
};

subtest 'a session is renewed past half its life, then expires unused'
=> sub {
    my ($token) = cookie_of(session_login($alice));
    sleep 5;
    my $res = with_cookie('GET', '/api/users/me', $token);
    is($res->{status}, 200, 'at 5 s of 8: still in');
    my ($renewed, $a) = cookie_of($res);
    ok($renewed && $renewed ne $token, 'a new cookie comes with the answer');
    is($a->{'max-age'}, 8, '... for the whole life again');
    my $exp = (BulletDrop::Test::jwt_decode($renewed))[1]{exp} // 0;
    cmp_ok($exp, '>=', time + 6, '... its token expires later');

    sleep 4;
    is_error(with_cookie('GET', '/api/users/me', $token), 401,
             'token_expired', 'the old one has expired');
    is(with_cookie('GET', '/api/users/me', $renewed)->{status}, 200,
       'the renewed one goes on');
};

subtest 'renewals keep the sign-in time, and stop 30 days after it' => sub {
    my ($token) = cookie_of(session_login($alice));
    my $claims = (BulletDrop::Test::jwt_decode($token))[1];
    cmp_ok(abs(($claims->{sat} // 0) - time), '<', 60,
           'a session token says when its user signed in (sat)');
    my $plain = $t->login($alice->{name}, $alice->{password});
    ok(!exists +(BulletDrop::Test::jwt_decode($plain))[1]{sat},
       'a bearer token does not');

    my $now = int time;
    my %old = (sub => "$alice->{id}", ver => 1, exp => $now + 2);
    my $day = 24 * 3600;
    my $young = $t->jwt(claims => { %old, sat => $now - 29 * $day });
    my ($renewed) = cookie_of(with_cookie('GET', '/api/users/me', $young));
    ok($renewed, 'signed in 29 days ago: renewed');
    is((BulletDrop::Test::jwt_decode($renewed // ''))[1]{sat},
       $now - 29 * $day, '... with the same sign-in time');

    my $old = $t->jwt(claims => { %old, sat => $now - 31 * $day });
    my $res = with_cookie('GET', '/api/users/me', $old);
    is($res->{status}, 200, 'signed in 31 days ago: still in until it '
       . 'expires');
    ok(!$res->{headers}{'set-cookie'}, '... but not renewed');
    ok(!cookie_of(with_cookie('GET', '/api/users/me',
                              $t->jwt(claims => \%old))),
       'a token without sat (a bearer one in the cookie) is not renewed');
    for my $sat ($now + 3600, 9223372036854775807) {
        my $future = $t->jwt(claims => { %old, sat => $sat });
        $res = with_cookie('GET', '/api/users/me', $future);
        ok($res->{status} == 200 && !$res->{headers}{'set-cookie'},
           "a sign-in in the future ($sat) is never renewed");
    }
};

subtest 'the 30 days are a hard end, and one answer sets one cookie' => sub {
    my $now = int time;
    my $sat = $now - 30 * 24 * 3600 + 100;
    my $near = $t->jwt(claims => { sub => "$alice->{id}", ver => 1,
                                   exp => $now + 2, sat => $sat });
    my ($renewed, $a) = cookie_of(with_cookie('GET', '/api/users/me', $near));
    ok($renewed, '100 s before the end: renewed');
    my $exp = (BulletDrop::Test::jwt_decode($renewed // ''))[1]{exp} // 0;
    cmp_ok($exp, '<=', $sat + 30 * 24 * 3600,
           '... but its token expires at the end, not a whole life later');
    cmp_ok($a->{'max-age'}, '<=', 100, '... and so does its cookie');

    # a session due for renewal that changes its password
    my $dave = $t->new_user('dave2');
    my $due = $t->jwt(claims => { sub => "$dave->{id}", ver => 1,
                                  exp => int(time) + 3, sat => $now - 60 });
    my $res = with_cookie('PATCH', '/api/users/me', $due,
                          json => { current_password => $dave->{password},
                                    new_password => 'dave\'s new password' },
                          headers => [ Origin => $SITE ]);
    is($res->{status}, 200, 'a password change with a session due for renewal');
    my $n = () = ($res->{headers}{'set-cookie'} // '') =~ /bd_session=/g;
    is($n, 1, 'one Set-Cookie for the session, not two');
    my ($fresh) = cookie_of($res);
    is(with_cookie('GET', '/api/users/me', $fresh // '')->{status}, 200,
       'the one that works');
};

subtest 'a password change re-issues the session, and ends the others'
=> sub {
    my $bob = $t->new_user('bob');
    my ($here) = cookie_of(session_login($bob));
    my ($there) = cookie_of(session_login($bob));
    my $new = 'another long password';
    my $res = with_cookie('PATCH', '/api/users/me', $here,
                          json => { current_password => $bob->{password},
                                    new_password => $new },
                          headers => [ Origin => $SITE ]);
    is($res->{status}, 200, 'the password changed');
    my ($fresh) = cookie_of($res);
    ok($fresh, 'the answer carries a new cookie');
    is(with_cookie('GET', '/api/users/me', $fresh)->{status}, 200,
       'which works');
    is_error(with_cookie('GET', '/api/users/me', $here), 401, 'invalid_token',
             'the session that changed it had its old token retired');
    is_error(with_cookie('GET', '/api/users/me', $there), 401,
             'invalid_token', 'another browser\'s session ended');
};

subtest 'a disabled user\'s session ends at once' => sub {
    my $carol = $t->new_user('carol');
    my ($token) = cookie_of(session_login($carol));
    is(with_cookie('GET', '/api/users/me', $token)->{status}, 200, 'in');
    is($t->patch("/api/admin/users/$carol->{id}", token => $admin->{key},
                 json => { disabled => JSON::PP::true })->{status}, 200,
       'the admin disables Carol');
    my $res = with_cookie('GET', '/api/users/me', $token);
    is_error($res, 403, 'account_disabled', 'her next request: 403');
    is((cookie_of($res))[0], '', '... and the cookie is cleared');
};

subtest 'logout clears the cookie' => sub {
    my ($token) = cookie_of(session_login($alice));
    is_error(with_cookie('POST', '/api/auth/logout', $token,
                         headers => [ Origin => 'http://evil.example' ]),
             403, 'csrf', 'another site cannot sign the browser out');
    my $res = with_cookie('POST', '/api/auth/logout', $token,
                          headers => [ Origin => $SITE ]);
    is($res->{status}, 204, 'POST /api/auth/logout: 204');
    my ($none, $a) = cookie_of($res);
    is($none, '', 'the cookie is emptied');
    is($a->{'max-age'}, 0, '... and expires now');
    is($t->post('/api/auth/logout')->{status}, 204,
       'without a cookie: 204 all the same');
    is_error($t->post('/api/auth/logout',
                      headers => [ Origin => 'http://evil.example' ]),
             403, 'csrf', 'another site\'s form, with no cookie (SameSite): '
             . '403, its clearing cookie never sent');
    is_error($t->post('/api/auth/logout',
                      headers => [ 'Sec-Fetch-Site' => 'cross-site' ]),
             403, 'csrf', 'Sec-Fetch-Site: cross-site: 403');
};

subtest 'Secure over TLS' => sub {
    my $port = free_port();
    $t->restart_nginx(registration => 'open',
                      http => $t->tls_api_server($port));
    my ($rc, $out) = run_cmd(
        ['curl', '-sSk', '-D', '-', '-o', '/dev/null', '--max-time', '20',
         "https://127.0.0.1:$port/api/auth/login",
         '-H', "Origin: https://127.0.0.1:$port",
         '--json', JSON::PP->new->encode({ username => $alice->{name},
                                           password => $alice->{password},
                                           session => JSON::PP::true })],
        check => 0);
    is($rc, 0, 'curl logs in over TLS');
    my ($cookie) = $out =~ /^set-cookie: ([^\r\n]*)/mi;
    like($cookie // '', qr/\A__Host-bd_session=[\w-]+\.[\w-]+\.[\w-]+; /,
         'the cookie is __Host-bd_session: only this host may set it');
    like($cookie // '', qr/; Path=\/; HttpOnly; SameSite=Strict; Secure; /,
         'Secure, for "/" as the prefix wants, HttpOnly, SameSite=Strict');
    my ($jwt) = ($cookie // '') =~ /=([^;]+)/;
    my $me = sub {
        my ($c) = @_;
        my ($rc, $out) = run_cmd(['curl', '-sSk', '--max-time', '20',
                                  '-o', '/dev/null', '-w', '%{http_code}',
                                  "https://127.0.0.1:$port/api/users/me",
                                  '-H', "Cookie: $c"], check => 0);
        return $out;
    };
    is($me->("__Host-bd_session=$jwt"), 200, 'it is the session over TLS');
    is($me->("bd_session=$jwt"), 401,
       'a plain bd_session is not, over TLS');
    $t->restart_nginx(registration => 'open', files => 1,
                      base_domain => 'localhost');
};

subtest 'the same over HTTP/2' => sub {
    my $port = free_port();
    (my $h2 = $t->tls_api_server($port)) =~ s/ ssl;/ ssl http2;/;
    $t->restart_nginx(registration => 'open', http => $h2);
    my $B = "https://127.0.0.1:$port";
    my $jar = $t->dir . '/h2.jar';
    my $curl = sub {
        my ($rc, $out) = run_cmd(['curl', '-sSk', '--http2', '--max-time',
                                  '20', '-b', $jar, '-c', $jar, @_],
                                 check => 0);
        return $out // '';
    };
    like($curl->('-D', '-', '-o', '/dev/null', "$B/api/auth/login",
                 '-H', "Origin: $B",
                 '--json', JSON::PP->new->encode({
                     username => $alice->{name},
                     password => $alice->{password},
                     session => JSON::PP::true })),
         qr{^HTTP/2 200\b.*^set-cookie: __Host-bd_session=}msi,
         'a session login over h2 sets the __Host- cookie');
    is($curl->('-o', '/dev/null', '-w', '%{http_code}', "$B/api/users/me"),
       200, 'the cookie is the credential over h2');
    is($curl->('-o', '/dev/null', '-w', '%{http_code}', "$B/api/uploads",
               '-F', 'file=@' . __FILE__ . ';filename=h2.txt'),
       403, 'an upload with it and no Origin: 403');
    like($curl->("$B/api/uploads", '-H', "Origin: $B",
                 '-F', 'file=@' . __FILE__ . ';filename=h2.txt'),
         qr/"name":"h2\.txt"/, 'with the site\'s Origin: stored');
    like($curl->('-X', 'POST', '-D', '-', '-o', '/dev/null',
                 "$B/api/auth/logout", '-H', "Origin: $B"),
         qr{^HTTP/2 204}m, 'logout over h2: 204');
    $t->restart_nginx(registration => 'open', files => 1,
                      base_domain => 'localhost');
};

subtest 'GET /api/config, for anyone' => sub {
    my $res = $t->get('/api/config');
    is($res->{status}, 200, '200 without a token');
    is_deeply([ sort keys %{ $res->{json} } ],
              [qw(allowed_extensions base_domain max_file_size registration
                  version)], 'the fields the app draws itself with');
    is($res->{json}{registration}, 'open', 'registration');
    is($res->{json}{max_file_size}, 50 * 1024 * 1024, 'max_file_size');
    is($res->{json}{base_domain}, 'localhost', 'base_domain');
    like($res->{json}{version}, qr/\A\d+\.\d+\.\d+\z/, 'version');
    is_deeply($res->{json}{allowed_extensions},
              [qw(.jpg .jpeg .png .gif .webp .pdf .txt .md .mp4 .webm)],
              'the allowed extensions, as the directive names them');

    $t->restart_nginx(registration => 'invite', max_file_size => '1m',
                      allowed_extensions => 'PNG .txt');
    $res = $t->get('/api/config');
    is($res->{json}{registration}, 'invite', 'invite mode');
    is($res->{json}{max_file_size}, 1048576, '1m');
    is_deeply($res->{json}{allowed_extensions}, [qw(.png .txt)],
              'extensions, lower case');
    is($res->{json}{base_domain}, undef, 'no base domain: null');
    $t->restart_nginx(registration => 'open', files => 1,
                      base_domain => 'localhost');
};

subtest 'invites: listed without their codes, revoked while unused' => sub {
    $t->restart_nginx(registration => 'invite');
    my $made = $t->post('/api/admin/invites', token => $admin->{key});
    is($made->{status}, 201, 'an invite');
    my $id = $made->{json}{id};
    like($id // '', qr/\A\d+\z/, 'with its id');
    my $used = $t->post('/api/admin/invites', token => $admin->{key});
    $t->register('dave', 'dave password', invite => $used->{json}{code});

    my $list = $t->get('/api/admin/invites', token => $admin->{key});
    is($list->{status}, 200, 'GET /api/admin/invites: 200');
    my %by_id = map { $_->{id} => $_ } @{ $list->{json}{invites} // [] };
    is_deeply([ sort keys %{ $by_id{$id} // {} } ],
              [qw(created_at created_by expires_at id used_by)],
              'no code in the list');
    is($by_id{$id}{created_by}, 'root', 'created_by');
    is($by_id{$id}{used_by}, undef, 'an unused one');
    is($by_id{ $used->{json}{id} }{used_by}, 'dave', 'used_by');
    my @ids = map { $_->{id} } @{ $list->{json}{invites} };
    is_deeply(\@ids, [ sort { $b <=> $a } @ids ], 'newest first');

    is_error($t->get('/api/admin/invites', token => $alice->{key}), 403,
             'forbidden', 'for admins only');
    is_error($t->delete("/api/admin/invites/$used->{json}{id}",
                        token => $admin->{key}),
             404, 'not_found', 'a used invite stays');
    is($t->delete("/api/admin/invites/$id", token => $admin->{key})
       ->{status}, 204, 'an unused one is revoked: 204');
    is_error($t->delete("/api/admin/invites/$id", token => $admin->{key}),
             404, 'not_found', 'then it is gone');
    is_error($t->register('erin', 'erin password',
                          invite => $made->{json}{code}),
             403, 'invalid_invite', 'and its code lets nobody in');

    # a registration that commits while the revocation waits for its lock
    my $racy = $t->post('/api/admin/invites', token => $admin->{key})
               ->{json}{id};
    $t->pg->query('BEGIN');
    $t->pg->query("INSERT INTO users (username, password_hash, invite_id) "
                  . "VALUES ('racer', 'x', $racy)");
    my $x = $t->http->begin('DELETE', "/api/admin/invites/$racy",
                            token => $admin->{key});
    BulletDrop::Test::wait_until(sub {
        $t->pg->psql('SELECT count(*) FROM pg_locks WHERE NOT granted')
            ->[0][0] > 0;
    });
    $t->pg->query('COMMIT');
    is_error($x->answer(10) // { status => 0 }, 404, 'not_found',
             'an invite used while its revocation waited: 404, not revoked');
    is($t->pg->query("SELECT invite_id FROM users WHERE username = 'racer'")
       ->[0][0], $racy, 'the user still names the invite');

    # and the other way: a revocation that commits while a registration
    # with its code waits to check it
    my $late = $t->post('/api/admin/invites', token => $admin->{key});
    $t->pg->query('BEGIN');
    $t->pg->query("DELETE FROM invites WHERE id = $late->{json}{id}");
    my $y = $t->http->begin('POST', '/api/auth/register',
                            json => { username => 'latecomer',
                                      password => 'latecomer password',
                                      invite => $late->{json}{code} });
    BulletDrop::Test::wait_until(sub {
        $t->pg->psql('SELECT count(*) FROM pg_locks WHERE NOT granted')
            ->[0][0] > 0;
    });
    $t->pg->query('COMMIT');
    is_error($y->answer(10) // { status => 0 }, 403, 'invalid_invite',
             'a registration whose invite was revoked as it checked it: '
             . '403 invalid_invite, not a 500');
};

subtest '$bulletdrop_file_origins names the enabled file domains' => sub {
    for my $name (qw(img.localhost cdn.localhost)) {
        is($t->post('/api/domains', token => $admin->{key},
                    json => { name => $name })->{status}, 201, "$name added");
    }
    $t->restart_nginx(registration => 'open', files => 1,
                      base_domain => 'localhost', server => <<'EOF');
        bulletdrop_files on;
        location /api/ {
            bulletdrop_api;
        }
        location / {
            add_header X-Origins "[$bulletdrop_file_origins]" always;
            return 204;
        }
EOF
    my $res;
    BulletDrop::Test::wait_until(sub {
        $res = $t->get('/', host => 'localhost:8080');
        ($res->{headers}{'x-origins'} // '') ne '[]';
    });
    is($res->{headers}{'x-origins'},
       '[http://img.localhost:8080 http://cdn.localhost:8080]',
       'as origins of the request\'s scheme and port, in order');
    is($t->patch('/api/domains/cdn.localhost', token => $admin->{key},
                 json => { enabled => JSON::PP::false })->{status}, 200,
       'cdn. disabled');
    $res = $t->get('/');
    is($res->{headers}{'x-origins'}, '[http://img.localhost]',
       'at once, and without a port when the site has none');

    # a Host whose "port" is no port: none is made up, none overflows
    for my $port ('65536', '99999999', '000000008080', '0' x 3000 . '8080',
                  '0', '00000', '08080') {
        $res = $t->get('/', host => "localhost:$port");
        is($res->{headers}{'x-origins'}, '[http://img.localhost]',
           'Host localhost:' . substr($port, 0, 16)
           . (length $port > 16 ? '...' : '') . ': no port in the origins');
    }
    is($t->get('/', host => 'localhost:65535')->{headers}{'x-origins'},
       '[http://img.localhost:65535]', 'a port of 5 digits is kept');
};

done_testing;
