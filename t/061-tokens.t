#!/usr/bin/perl
# Bearer tokens at the door: a token from login opens the profile; no
# token, or a token that does not verify (garbage, forged, tampered, alg
# none, the wrong key, claims missing or of the wrong type), is turned away
# with 401 and a Bearer challenge; an expired one says so; a token lives as
# long as bulletdrop_jwt_ttl says; and a password change retires every
# token minted before it, but no API key.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(wait_until jwt_forge jwt_decode is_error
                        is_profile);
use BulletDrop::Util qw(spew);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $alice = $t->new_user('alice');
my $bob = $t->new_user('bob');
my $now = time;

sub me {
    my ($token, %o) = @_;
    return $t->get('/api/users/me', defined $token ? (token => $token) : (),
                   %o);
}

# 401 with the code, and the challenge
sub turned_away {
    my ($res, $code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error($res, 401, $code, "$name: 401 $code");
    like($res->{headers}{'www-authenticate'} // '',
         qr/\ABearer realm="bulletdrop"/, "$name: WWW-Authenticate Bearer");
}

subtest 'a token from login opens the profile' => sub {
    my $res = me($alice->{token});
    is($res->{status}, 200, 'status 200');
    is_profile($res->{json}, { id => $alice->{id}, username => 'alice',
                               role => 'user' }, "Alice's profile");
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');

    is(me($bob->{token})->{json}{username}, 'bob', "and Bob's token, Bob's");
};

subtest 'no credentials: 401 unauthorized and a Bearer challenge' => sub {
    my $res = me();
    turned_away($res, 'unauthorized', 'no Authorization header');
    is($res->{headers}{'www-authenticate'}, 'Bearer realm="bulletdrop"',
       'the challenge, exactly');

    my %headers = (
        'an empty header'     => '',
        'the Basic scheme'    => 'Basic YWxpY2U6cGFzc3dvcmQ=',
        'another scheme'      => "Token $alice->{token}",
        'a token, no scheme'  => $alice->{token},
    );
    for my $name (sort keys %headers) {
        turned_away(me(undef, headers => [ Authorization => $headers{$name} ]),
                    'unauthorized', $name);
    }

    for my $value ('Bearer', 'Bearer ') {
        my $res = me(undef, headers => [ Authorization => $value ]);
        is($res->{status}, 401, "'$value' with no token: 401");
        like($res->{json}{error} // '', qr/\A(?:unauthorized|invalid_token)\z/,
             "'$value': unauthorized or invalid_token");
    }

    for my $route (['GET', '/api/users/me/api-keys'],
                   ['POST', '/api/users/me/api-keys'],
                   ['PATCH', '/api/users/me'],
                   ['GET', '/api/admin/users'],
                   ['POST', '/api/admin/invites'])
    {
        turned_away($t->request(@$route,
                                $route->[0] eq 'GET' ? () : (json => {})),
                    'unauthorized', "@$route without a token");
    }
};

subtest 'a token forged with the right key and claims is let in' => sub {
    my $res = me($t->jwt(claims => { sub => "$alice->{id}" }));
    is($res->{status}, 200, 'status 200: the forging below is faithful');
    is($res->{json}{username}, 'alice', 'as Alice');
};

subtest 'tokens that do not verify: 401 invalid_token' => sub {
    my $id = "$alice->{id}";
    my %claims = (sub => $id, iat => int $now, exp => int($now) + 600,
                  ver => 1);
    my $secret = $t->jwt_secret;
    my $good = $alice->{token};
    my ($h, $p, $s) = split /\./, $good;
    my (undef, $claims) = jwt_decode($good);

    my $repack = sub {
        my (%change) = @_;
        my $forged = jwt_forge(claims => { %$claims, %change },
                               signature => $s);
        return $forged;
    };
    (my $flipped = $s) =~ s/\A(.{10})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;

    my @cases = (
        [ 'garbage'                  => 'garbage' ],
        [ 'three empty parts'        => '..' ],
        [ 'three words'              => 'a.b.c' ],
        [ 'a long run of letters'    => 'x' x 2000 ],
        [ 'the right key, no alg'    =>
            jwt_forge(header => { typ => 'JWT' }, claims => \%claims,
                      sign => 'HS256', key => $secret) ],
        [ 'alg none, no signature'   =>
            jwt_forge(header => { alg => 'none', typ => 'JWT' },
                      claims => \%claims) ],
        [ 'alg none, the right HMAC' =>
            jwt_forge(header => { alg => 'none', typ => 'JWT' },
                      claims => \%claims, sign => 'HS256', key => $secret) ],
        [ 'alg HS512 with the right key' =>
            jwt_forge(header => { alg => 'HS512', typ => 'JWT' },
                      claims => \%claims, key => $secret) ],
        [ 'alg RS256 over an HMAC'   =>
            jwt_forge(header => { alg => 'RS256', typ => 'JWT' },
                      claims => \%claims, sign => 'HS256', key => $secret) ],
        [ 'the wrong key'            =>
            jwt_forge(claims => \%claims, key => 'k' x 48) ],
        [ 'the key with a newline'   =>
            jwt_forge(claims => \%claims, key => "$secret\n") ],
        [ 'tampered: Bob as sub'     => $repack->(sub => "$bob->{id}") ],
        [ 'tampered: a later exp'    => $repack->(exp => $claims->{exp}
                                                         + 86400) ],
        [ 'tampered signature'       => "$h.$p.$flipped" ],
        [ 'another token\'s signature' =>
            join '.', $h, $p, (split /\./, $bob->{token})[2] ],
        [ 'no signature part'        => "$h.$p" ],
        [ 'an empty signature'       => "$h.$p." ],
        [ 'four parts'               => "$good.$s" ],
        [ 'a header that is not JSON' =>
            jwt_forge(header => 'not json', claims => \%claims,
                      sign => 'HS256', key => $secret) ],
        [ 'claims that are not JSON' =>
            jwt_forge(claims => 'not json', key => $secret) ],
        [ 'claims that are an array' =>
            jwt_forge(claims => '[1,2]', key => $secret) ],
        [ 'no exp'                   => $t->jwt(claims => { sub => $id,
                                                            exp => undef }) ],
        [ 'exp as a string'          =>
            $t->jwt(claims => { sub => $id, exp => '' . (int($now) + 600) }) ],
        [ 'exp with a fraction'      =>
            $t->jwt(claims => { sub => $id, exp => int($now) + 600.5 }) ],
        [ 'no sub'                   => $t->jwt(claims => { sub => undef }) ],
        [ 'sub as a number'          => $t->jwt(claims => { sub => 0 + $id }) ],
        [ 'sub of nobody'            =>
            $t->jwt(claims => { sub => '999999' }) ],
        [ 'sub not an id'            => $t->jwt(claims => { sub => 'alice' }) ],
        [ 'sub empty'                => $t->jwt(claims => { sub => '' }) ],
        [ 'no ver'                   => $t->jwt(claims => { sub => $id,
                                                            ver => undef }) ],
        [ 'ver 2, not the user\'s 1' => $t->jwt(claims => { sub => $id,
                                                            ver => 2 }) ],
        [ 'an unknown API key'       => 'bd_' . ('A' x 43) ],
        [ 'a short API key'          => 'bd_short' ],
        [ 'bd_ alone'                => 'bd_' ],
    );

    for (@cases) {
        my ($name, $token) = @$_;
        turned_away(me($token), 'invalid_token', $name);
    }

    is(me($good)->{status}, 200, 'the untouched token still works');
};

subtest 'an expired token: 401 token_expired' => sub {
    my $id = "$alice->{id}";
    my $t0 = int time;

    turned_away(me($t->jwt(claims => { sub => $id, iat => $t0 - 700,
                                       exp => $t0 - 1 })),
                'token_expired', 'exp a second ago');
    turned_away(me($t->jwt(claims => { sub => $id, iat => $t0 - 700,
                                       exp => $t0 })),
                'token_expired', 'exp now');
    turned_away(me(jwt_forge(claims => { sub => $id, iat => $t0 - 700,
                                         exp => $t0 - 1, ver => 1 },
                             key => 'k' x 48)),
                'invalid_token', 'expired and signed with the wrong key');
    is(me($t->jwt(claims => { sub => $id, exp => $t0 + 60 }))->{status},
       200, 'a minute left: 200');
};

subtest 'a token lives as long as bulletdrop_jwt_ttl says' => sub {
    $t->restart_nginx(registration => 'open', jwt_ttl => '2s');

    my $t0 = time;
    my ($token, $res) = $t->login('alice', $alice->{password});
    is($res->{json}{expires_in}, 2, 'jwt_ttl 2s: expires_in 2');
    my (undef, $claims) = jwt_decode($token);
    is($claims->{exp} - $claims->{iat}, 2, 'exp is iat + 2');
    is(me($token)->{status}, 200, 'it works at first');

    my $expired = wait_until(sub {
        (me($token)->{json}{error} // '') eq 'token_expired' }, 6);
    ok($expired, 'and then says token_expired');
    cmp_ok(time - $t0, '>=', 1, 'not before its time');

    $t->restart_nginx(registration => 'open', jwt_ttl => '1h');
    ($token, $res) = $t->login('alice', $alice->{password});
    is($res->{json}{expires_in}, 3600, 'jwt_ttl 1h: expires_in 3600');
    (undef, $claims) = jwt_decode($token);
    is($claims->{exp} - $claims->{iat}, 3600, 'exp is iat + 3600');
};

subtest 'the key is the secret file without its trailing white space; '
        . 'another secret voids every token' => sub {
    my $file = $t->dir . '/spaced.secret';
    spew($file, $t->jwt_secret . "\n \t\r\n");
    $t->restart_nginx(registration => 'open', jwt_secret_file => $file);

    is(me($alice->{token})->{status}, 200,
       'a token signed with the stripped bytes works');

    my $other = $t->dir . '/other.secret';
    spew($other, 'o' x 48);
    $t->restart_nginx(registration => 'open', jwt_secret_file => $other);
    turned_away(me($alice->{token}), 'invalid_token',
                'after a change of secret, an older token');

    $t->restart_nginx(registration => 'open');
    is(me($alice->{token})->{status}, 200, 'and back with the old secret');
};

subtest 'a password change retires older tokens, not API keys' => sub {
    my $carol = $t->new_user('carol', password => 'first password');
    my $key = $t->post('/api/users/me/api-keys', token => $carol->{token},
                       json => { name => 'laptop' })->{json}{key};
    ok($key, 'Carol has an API key');

    my $res = $t->patch('/api/users/me', token => $carol->{token},
                        json => { current_password => 'first password',
                                  new_password => 'second password' });
    is($res->{status}, 200, 'she changes her password');

    turned_away(me($carol->{token}), 'invalid_token',
                'the token she changed it with');
    turned_away(me($t->jwt(claims => { sub => "$carol->{id}", ver => 1 })),
                'invalid_token', 'any token of version 1');

    is(me($key)->{status}, 200, 'her API key still works');
    my ($token) = $t->login('carol', 'second password');
    is(me($token)->{status}, 200, 'a token from a new login works');
    is((jwt_decode($token))[1]{ver}, 2, 'it carries version 2');
    is(me($t->jwt(claims => { sub => "$carol->{id}", ver => 2 }))->{status},
       200, 'as does any well-signed token of version 2');
    is(me($alice->{token})->{status}, 200, 'Alice is not affected');
};

done_testing;
