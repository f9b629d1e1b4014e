#!/usr/bin/perl
# What only an admin may do: make invites (single use, even when two
# newcomers race with one code; expiring; ignored on an open server), list
# users page by page, and change a user's role, quota or disabled flag (a
# disabled user's token and keys stop working at once).  Everyone else is
# turned away.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();

use BulletDrop::Test qw(json_type iso_time is_error is_profile random_text);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $admin = $t->new_user('root', admin => 1);
my $alice = $t->new_user('alice');
my $bob = $t->new_user('bob');
my $alice_key = $t->post('/api/users/me/api-keys', token => $alice->{token},
                         json => { name => 'cli' })->{json}{key};

sub invite {
    my (%o) = @_;
    return $t->post('/api/admin/invites', token => $admin->{token},
                    exists $o{json} ? (json => $o{json}) : ());
}

sub patch_user {
    my ($id, $body, $token) = @_;
    return $t->patch("/api/admin/users/$id", json => $body,
                     token => $token // $admin->{token});
}

sub me { $t->get('/api/users/me', token => $_[0]) }

subtest 'only admins reach /api/admin' => sub {
    my @routes = (['GET', '/api/admin/users'],
                  ['POST', '/api/admin/invites', json => {}],
                  ['PATCH', "/api/admin/users/$bob->{id}",
                   json => { quota_bytes => 1 }]);

    for my $r (@routes) {
        my ($method, $path, @body) = @$r;
        is_error($t->request($method, $path, @body), 401, 'unauthorized',
                 "$method $path without a token: 401");
        is_error($t->request($method, $path, @body,
                             token => $alice->{token}),
                 403, 'forbidden', "$method $path as a user: 403 forbidden");
        is_error($t->request($method, $path, @body, token => $alice_key),
                 403, 'forbidden', "... and with a user's API key");
    }
    is(me($bob->{token})->{json}{quota_bytes}, undef,
       'Bob\'s quota was not changed');

    is($t->get('/api/admin/users', token => $admin->{token})->{status}, 200,
       'an admin gets in');
};

subtest 'an invite: a code shown once, valid for a week by default' => sub {
    my $t0 = time;
    my $res = invite();
    is($res->{status}, 201, 'POST without a body: 201');
    is_deeply([ sort keys %{ $res->{json} // {} } ], [qw(code expires_at id)],
              'code, expires_at and id');
    my $code = $res->{json}{code} // '';
    like($code, qr/\A[A-Za-z0-9_-]{22}\z/, '22 base64url characters');
    my $expires = iso_time($res->{json}{expires_at});
    ok($expires && abs($expires - ($t0 + 604800)) < 120,
       'expiring in 604800 s');

    my $row = $t->row('SELECT created_by, code_hash FROM invites '
                      . 'WHERE code_hash = ' . BulletDrop::Pg::quote(
                            sha256_hex($code)), qw(by hash));
    ok($row, 'stored as the hex SHA-256 of the code');
    is($row && $row->{by}, $admin->{id}, 'made by the admin');
    is($t->pg->psql('SELECT count(*) FROM invites WHERE code_hash = '
                    . BulletDrop::Pg::quote($code))->[0][0], 0,
       'the code itself is not stored');

    for my $seconds (60, 31536000) {
        $res = invite(json => { expires_in => $seconds });
        is($res->{status}, 201, "expires_in $seconds: 201");
        $expires = iso_time($res->{json}{expires_at});
        ok($expires && abs($expires - (time + $seconds)) < 120,
           "expiring in $seconds s");
    }

    is(invite(json => {})->{status}, 201, 'an empty object: 201');

    for my $seconds (59, 31536001, 0, -60) {
        $res = invite(json => { expires_in => $seconds });
        is($res->{status}, 400, "expires_in $seconds: 400");
        like($res->{json}{error} // '', qr/\A[a-z_]+\z/, 'with an error code');
    }
};

subtest 'with registration invite, an invite lets one newcomer in, once'
=> sub {
    $t->restart_nginx(registration => 'invite', workers => 2);

    my $code = invite()->{json}{code};
    my $res = $t->register('invited', 'long enough password',
                           invite => $code);
    is($res->{status}, 201, 'with the invite: 201');
    is_profile($res->{json}, { username => 'invited', role => 'user' },
               'a plain user');

    my $linked = $t->pg->psql(
        'SELECT 1 FROM users u JOIN invites i ON i.id = u.invite_id '
        . "WHERE u.username = 'invited' AND i.code_hash = "
        . BulletDrop::Pg::quote(sha256_hex($code)));
    is(scalar @$linked, 1, 'the user row points at its invite');

    is_error($t->register('invited2', 'long enough password',
                          invite => $code),
             403, 'invalid_invite', 'the same code again: 403 invalid_invite');

    is_error($t->register('invited3', 'long enough password',
                          invite => random_text(22)),
             403, 'invalid_invite', 'an unknown code: 403');

    my $old = invite(json => { expires_in => 60 })->{json}{code};
    $t->pg->psql("UPDATE invites SET expires_at = now() - interval '1 second'"
                 . ' WHERE code_hash = '
                 . BulletDrop::Pg::quote(sha256_hex($old)));
    is_error($t->register('invited4', 'long enough password', invite => $old),
             403, 'invalid_invite', 'an expired code: 403');

    my $spare = invite()->{json}{code};
    is_error($t->register('x', 'long enough password', invite => $spare),
             400, 'invalid_username', 'a bad name with a good code: 400');
    is_error($t->register('INVITED', 'long enough password',
                          invite => $spare),
             409, 'username_taken', 'a taken name with a good code: 409');
    is($t->register('invited5', 'long enough password',
                    invite => $spare)->{status},
       201, 'the code was not used up by the refusals');
};

subtest 'two newcomers racing with one invite: exactly one gets in' => sub {
    for my $round (1 .. 3) {
        my $code = invite()->{json}{code};
        my @res = $t->http->parallel(
            map { ['POST', '/api/auth/register',
                   json => { username => "racer$round$_",
                             password => 'long enough password',
                             invite => $code }] } qw(a b));

        is_deeply([ sort map { $_->{status} } @res ], [201, 403],
                  "round $round: one 201, one 403");
        my ($loser) = grep { $_->{status} != 201 } @res;
        is($loser && $loser->{json}{error}, 'invalid_invite',
           "round $round: the other is invalid_invite");
        is($t->pg->psql(
               'SELECT count(*) FROM users u JOIN invites i '
               . 'ON i.id = u.invite_id WHERE i.code_hash = '
               . BulletDrop::Pg::quote(sha256_hex($code)))->[0][0],
           1, "round $round: one user holds the invite");
    }
};

subtest 'an open server ignores invites, and does not use them up' => sub {
    $t->restart_nginx(registration => 'open');

    is($t->register('opener1', 'long enough password',
                    invite => 'nonsense')->{status},
       201, 'a nonsense invite: 201 all the same');

    my $code = invite()->{json}{code};
    is($t->register('opener2', 'long enough password',
                    invite => $code)->{status}, 201, 'a real one: 201');
    is($t->row("SELECT invite_id IS NULL FROM users "
               . "WHERE username = 'opener2'", 'none')->{none},
       't', 'and it is not recorded');

    $t->restart_nginx(registration => 'invite');
    is($t->register('closer', 'long enough password',
                    invite => $code)->{status},
       201, 'back in invite mode, the code still lets someone in');

    $t->restart_nginx(registration => 'open');
};

subtest 'the user list, page by page in id order' => sub {
    my @ids = map { $_->[0] } @{ $t->pg->psql(
        'SELECT id FROM users ORDER BY id') };
    cmp_ok(scalar @ids, '>=', 10, scalar(@ids) . ' users to list');

    my $res = $t->get('/api/admin/users', token => $admin->{token});
    is($res->{status}, 200, 'status 200');
    my $users = $res->{json}{users} // [];
    my $profiles = grep { is_profile($_, undef, "user $_->{id}: a profile") }
                   @$users;
    is($profiles, scalar @ids, 'every user, as a profile');
    is_deeply([ map { $_->{id} } @$users ], \@ids,
              'the default page holds them all, by id');
    is($res->{json}{next_after}, undef, 'not full: next_after null');
    unlike($res->{body}, qr/password|hash/, 'no password hash in sight');

    for my $limit (3, scalar @ids) {
        my (@seen, @nexts);
        my $after;
        my $pages = 0;
        while ($pages++ < 50) {
            my $page = $t->get('/api/admin/users?limit=' . $limit
                               . (defined $after ? "&after=$after" : ''),
                               token => $admin->{token})->{json} // {};
            my @page = map { $_->{id} } @{ $page->{users} // [] };
            push @seen, @page;
            push @nexts, $page->{next_after};
            if (@page == $limit) {
                is($page->{next_after}, $page[-1],
                   "limit $limit: a full page points after its last id");
            }
            last unless defined $page->{next_after};
            $after = $page->{next_after};
        }
        is_deeply(\@seen, \@ids, "limit $limit: the pages hold every user "
                  . 'once, in order');
        is($nexts[-1], undef, "limit $limit: the last page says null");
    }

    $res = $t->get("/api/admin/users?limit=1&after=$ids[1]",
                   token => $admin->{token});
    is_deeply([ map { $_->{id} } @{ $res->{json}{users} // [] } ],
              [ $ids[2] ], 'after the second id, limit 1: the third');

    $res = $t->get("/api/admin/users?after=$ids[-1]",
                   token => $admin->{token});
    is($res->{status}, 200, 'after the last id: 200');
    is_deeply($res->{json}{users}, [], 'no users');
    is($res->{json}{next_after}, undef, 'next_after null');

    is($t->get('/api/admin/users?limit=200',
               token => $admin->{token})->{status}, 200, 'limit 200: 200');

    for my $query ('limit=0', 'limit=201', 'limit=-1', 'limit=abc',
                   'limit=', 'limit=1.5', 'after=abc', 'after=-1',
                   'limit=99999999999999999999999')
    {
        is_error($t->get("/api/admin/users?$query",
                         token => $admin->{token}),
                 400, 'invalid_query', "$query: 400 invalid_query");
    }
};

subtest 'an admin changes role and quota' => sub {
    my $res = patch_user($alice->{id}, { role => 'admin' });
    is($res->{status}, 200, 'alice made admin: 200');
    is_profile($res->{json}, { username => 'alice', role => 'admin' },
               'the profile says admin');
    is($t->get('/api/admin/users', token => $alice->{token})->{status}, 200,
       'her token reaches /api/admin at once');

    patch_user($alice->{id}, { role => 'user' });
    is_error($t->get('/api/admin/users', token => $alice->{token}), 403,
             'forbidden', 'and not after she is a user again');

    $res = patch_user($bob->{id}, { quota_bytes => 1048576 });
    is_profile($res->{json}, { username => 'bob', quota_bytes => 1048576 },
               'a quota of 1 MiB');
    is(me($bob->{token})->{json}{quota_bytes}, 1048576, 'Bob sees it');
    is_profile(patch_user($bob->{id}, { quota_bytes => 0 })->{json},
               { quota_bytes => 0 }, 'a quota of 0');
    is_profile(patch_user($bob->{id}, { quota_bytes => undef })->{json},
               { quota_bytes => undef }, 'null: unlimited again');

    $res = patch_user($bob->{id}, { role => 'user', quota_bytes => 5 });
    is_profile($res->{json}, { role => 'user', quota_bytes => 5 },
               'several at once');

    my @bad = (
        [ { role => 'root' },         400, 'invalid_role' ],
        [ { role => 'Admin' },        400, 'invalid_role' ],
        [ { quota_bytes => -1 },      400, 'invalid_quota' ],
        [ { role => 1 },              422, 'wrong_type' ],
        [ { quota_bytes => '10' },    422, 'wrong_type' ],
        [ { disabled => 'yes' },      422, 'wrong_type' ],
        [ { disabled => 1 },          422, 'wrong_type' ],
        [ {},                         400, 'nothing_to_change' ],
        [ { nickname => 'b' },        422, 'unknown_field' ],
    );
    my $json = JSON::PP->new->canonical;
    for (@bad) {
        my ($body, $status, $code) = @$_;
        is_error(patch_user($bob->{id}, $body), $status, $code,
                 $json->encode($body) . ": $status $code");
    }
    is(me($bob->{token})->{json}{quota_bytes}, 5,
       'none of them changed anything');

    is_error(patch_user(999999, { role => 'user' }), 404, 'not_found',
             'no such user: 404');
    is_error(patch_user('abc', { role => 'user' }), 404, 'not_found',
             'an id that is no number: 404');
};

subtest 'an admin cannot demote or disable themself' => sub {
    is_error(patch_user($admin->{id}, { role => 'user' }), 409,
             'cannot_change_self', 'own role: 409 cannot_change_self');
    is_error(patch_user($admin->{id}, { disabled => JSON::PP::true }), 409,
             'cannot_change_self', 'own disabled flag: 409');
    is(me($admin->{token})->{json}{role}, 'admin', 'still an admin');
    is(patch_user($admin->{id}, { quota_bytes => 7 })->{status}, 200,
       'their own quota is fine');
};

subtest 'a disabled user is locked out at once, token and key alike' => sub {
    is(me($alice->{token})->{status}, 200, 'alice\'s token works');
    is(me($alice_key)->{status}, 200, 'and her key');

    my $res = patch_user($alice->{id}, { disabled => JSON::PP::true });
    is($res->{status}, 200, 'disabled: 200');
    is_profile($res->{json}, { disabled => 1 }, 'the profile says so');

    is_error(me($alice->{token}), 403, 'account_disabled',
             'her token: 403 account_disabled');
    is_error(me($alice_key), 403, 'account_disabled', 'her key: 403');
    is_error($t->get('/api/users/me/api-keys', token => $alice->{token}),
             403, 'account_disabled', 'on every route');
    is_error($t->login_response('alice', $alice->{password}), 403,
             'account_disabled', 'the right password: 403 account_disabled');
    is_error($t->login_response('alice', 'not her password'), 401,
             'invalid_credentials', 'a wrong one: 401 as ever');

    my ($listed) = grep { $_->{id} == $alice->{id} }
        @{ $t->get('/api/admin/users', token => $admin->{token})
             ->{json}{users} // [] };
    ok($listed && $listed->{disabled}, 'the admin list shows her disabled');

    patch_user($alice->{id}, { disabled => JSON::PP::false });
    is(me($alice->{token})->{status}, 200, 'enabled again: her token works');
    is(me($alice_key)->{status}, 200, 'and her key');
    ok($t->login('alice', $alice->{password}), 'and she logs in');
};

subtest 'bulletdrop_default_quota is the quota of new users' => sub {
    $t->restart_nginx(registration => 'open', default_quota => '10m');
    my $res = $t->register('quota1', 'long enough password');
    is_profile($res->{json}, { quota_bytes => 10485760 },
               'default_quota 10m: a new user gets 10485760');
    is(me($bob->{token})->{json}{quota_bytes}, 5, 'older users keep theirs');

    $t->restart_nginx(registration => 'open', default_quota => 'off');
    is_profile($t->register('quota2', 'long enough password')->{json},
               { quota_bytes => undef }, 'off: null');
};

done_testing;
