#!/usr/bin/perl
# A newcomer joins: registers on an open server, logs in with JSON or a
# form and gets a signed token, sets a default domain and changes their
# password.  Names are unique whatever their case; the registration mode
# decides who may join; and password hashing, slow on purpose, runs on the
# thread pool it is given and never holds up anyone else's request.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256);
use IO::Select;
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use Time::HiRes qw(time);

use BulletDrop::HTTP qw(build_request parse_response);
use BulletDrop::Test qw(wait_until jwt_decode json_type iso_time is_error
                        is_profile);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $show = JSON::PP->new->ascii->allow_nonref;
my $alice_password = 'correct horse battery';
my ($alice, $alice_token);

subtest 'an open server registers a newcomer: 201 and their profile' => sub {
    my $t0 = time;
    my $res = $t->register('Alice', $alice_password);

    is($res->{status}, 201, 'status 201');
    is_profile($res->{json},
               { username => 'Alice', role => 'user', disabled => 0,
                 usage => { bytes => 0, files => 0 }, quota_bytes => undef,
                 default_domain => undef },
               'the whole profile: the name as typed, a plain user, '
               . 'nothing used, no quota, no domain');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    my $created = iso_time($res->{json}{created_at});
    ok($created && abs($created - $t0) < 120, 'created just now');

    $alice = $res->{json};

    my $row = $t->row('SELECT username, password_hash, role, token_version '
                      . "FROM users WHERE id = $alice->{id}",
                      qw(username hash role version));
    is($row->{username}, 'Alice', 'the row keeps the case of the name');
    ok(length($row->{hash}) && index($row->{hash}, $alice_password) < 0,
       'the password is kept hashed, not as typed');
    is($row->{version}, 1, 'the token version starts at 1');

    is($t->register('Alicia', $alice_password)->{status}, 201,
       'another user with the same password');
    my $other = $t->row("SELECT password_hash FROM users "
                        . "WHERE username = 'Alicia'", 'hash');
    isnt($other->{hash}, $row->{hash}, 'gets another hash (salted)');
};

subtest 'a name is taken whatever its case' => sub {
    for my $name (qw(alice ALICE)) {
        is_error($t->register($name, 'another password'), 409,
                 'username_taken', "$name after Alice: 409 username_taken");
    }
    is($t->pg->psql("SELECT count(*) FROM users "
                    . "WHERE lower(username) = 'alice'")->[0][0],
       1, 'still one alice');
};

subtest 'user names are 3 to 32 of A-Z a-z 0-9 _ . -' => sub {
    my @bad = ('', 'ab', 'x' x 33, 'with space', 'slash/name', 'at@sign',
               'semi;colon', "tab\tname", "nul\x{0}name", "caf\x{e9}",
               "smile\x{1F600}", "new\nline", '../etc');
    for my $name (@bad) {
        is_error($t->register($name, 'long enough password'), 400,
                 'invalid_username', 'name ' . $show->encode($name));
    }
    ok(!@{ $t->pg->psql("SELECT 1 FROM users WHERE username = 'ab'") },
       'none of them was stored');

    for my $name ('abc', 'Dot.dash-under_9', 'z' x 32) {
        is($t->register($name, 'long enough password')->{status}, 201,
           "name '$name': 201");
    }
};

subtest 'passwords are 8 to 1024 bytes, counted in bytes' => sub {
    my @bad = (
        [ 'empty',                        'pwa', '' ],
        [ '7 bytes',                      'pwb', 'x' x 7 ],
        [ '1025 bytes',                   'pwc', 'x' x 1025 ],
        [ '7 bytes in 4 characters',      'pwd', 'a' . "\x{e9}" x 3 ],
        [ '1026 bytes in 513 characters', 'pwe', "\x{e9}" x 513 ],
    );
    for (@bad) {
        my ($what, $name, $password) = @$_;
        is_error($t->register($name, $password), 400, 'invalid_password',
                 "$what: 400 invalid_password");
    }

    my @good = (
        [ '8 bytes',                      'pwf', 'x' x 8 ],
        [ '8 bytes in 4 characters',      'pwg', "\x{e9}" x 4 ],
        [ '1024 bytes in 512 characters', 'pwh', "\x{e9}" x 512 ],
    );
    for (@good) {
        my ($what, $name, $password) = @$_;
        is($t->register($name, $password)->{status}, 201, "$what: 201");
    }

    ok($t->login('pwg', "\x{e9}" x 4),
       'a UTF-8 password logs in as it was registered');
};

subtest 'the right password gets a bearer token for 30 minutes' => sub {
    my $t0 = int time;
    my $res = $t->login_response('Alice', $alice_password);

    is($res->{status}, 200, 'status 200');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    my $json = $res->{json} // {};
    is(json_type($json->{expires_in}), 'int', 'expires_in is an integer');
    is_deeply([ sort keys %$json ], [qw(access_token expires_in token_type)],
              'access_token, token_type, expires_in');
    is($json->{token_type}, 'bearer', 'of type bearer');
    is($json->{expires_in}, 1800, 'for 1800 seconds (the default 30m)');

    my $token = $json->{access_token} // '';
    like($token, qr/\A[\w-]+\.[\w-]+\.[\w-]+\z/, 'a JWT');
    my ($header, $claims) = jwt_decode($token);
    is_deeply($header, { alg => 'HS256', typ => 'JWT' },
              'header {"alg":"HS256","typ":"JWT"}');
    is(json_type($claims->{sub}), 'string', 'sub is a string');
    is(json_type($claims->{$_}), 'int', "$_ is an integer")
        for qw(iat exp ver);
    is($claims->{sub}, "$alice->{id}", "sub is Alice's id");
    ok($claims->{iat} >= $t0 - 1 && $claims->{iat} <= time + 1,
       'issued now');
    is($claims->{exp} - $claims->{iat}, 1800, 'expires 1800 s later');
    is($claims->{ver}, 1, 'the user\'s token version, 1');

    my ($input, $signature) = $token =~ /\A(.*)\.([^.]*)\z/;
    is($signature, encode_base64url(hmac_sha256($input, $t->jwt_secret)),
       'signed with HMAC-SHA256 and the secret file\'s bytes');

    my $me = $t->get('/api/users/me', token => $token);
    is($me->{status}, 200, 'the token opens /api/users/me');
    is($me->{json}{username}, 'Alice', 'as Alice');

    $alice_token = $token;
};

subtest 'a name logs in whatever its case' => sub {
    my ($token) = $t->login('ALICE', $alice_password);
    ok($token, 'ALICE logs in');
    is((jwt_decode($token))[1]{sub}, "$alice->{id}", 'as Alice');
};

subtest 'a form body registers and logs in as well as JSON' => sub {
    my $password = "p&ss=w+rd %41 caf\x{e9}";

    is($t->register('formal', $password, form => 1)->{status}, 201,
       'registered from a form');
    ok($t->login('formal', $password, form => 1),
       'a form logs in, with & = + % and UTF-8 in the password');
    ok($t->login('formal', $password),
       'and JSON with the same password: the same bytes were stored');

    my $res = $t->post('/api/auth/register',
                       headers => [ 'Content-Type'
                                    => 'application/x-www-form-urlencoded' ],
                       body => 'username=plus&password=three+word+phrase');
    is($res->{status}, 201, 'a hand-made form body');
    ok($t->login('plus', 'three word phrase'), 'where + was a space');
};

subtest 'a wrong password and an unknown name get the same 401' => sub {
    my $wrong = $t->login_response('alice', 'not the password');
    my $ghost = $t->login_response('nobody-here', 'not the password');

    is_error($wrong, 401, 'invalid_credentials',
             'a wrong password: 401 invalid_credentials');
    is_error($ghost, 401, 'invalid_credentials', 'an unknown name: the same');
    is($ghost->{json}{detail}, $wrong->{json}{detail}, 'word for word');
    ok(!exists $wrong->{json}{access_token}, 'and no token');
    cmp_ok($ghost->{elapsed}, '>', $wrong->{elapsed} / 3,
           'an unknown name takes about as long: a password is hashed '
           . 'either way');
};

subtest 'a user sets and clears their default domain' => sub {
    my $patch = sub {
        $t->patch('/api/users/me', token => $alice_token, json => $_[0]);
    };

    $t->add_domains('img.example.com', 'img.localhost', 'off.example.com');
    $t->post('/api/domains', token => $t->{admin}{token},
             json => { name => 'gone.example.com',
                       enabled => JSON::PP::false });
    is($t->patch('/api/domains/off.example.com', token => $t->{admin}{token},
                 json => { enabled => JSON::PP::false })->{status}, 200,
       'a domain is registered, then disabled');

    my $res = $patch->({ default_domain => 'img.example.com' });
    is($res->{status}, 200, 'img.example.com: 200');
    is_profile($res->{json},
               { username => 'Alice', default_domain => 'img.example.com' },
               'with the profile showing it');
    is($t->get('/api/users/me', token => $alice_token)
         ->{json}{default_domain}, 'img.example.com', 'and it is kept');

    is($patch->({ default_domain => 'img.localhost' })->{json}
         {default_domain}, 'img.localhost', 'a .localhost name is fine');

    $res = $patch->({ default_domain => undef });
    is($res->{status}, 200, 'null: 200');
    is_profile($res->{json}, { default_domain => undef }, 'cleared');

    $res = $patch->({ default_domain => 'IMG.Example.com' });
    is($res->{json}{default_domain}, 'img.example.com',
       'a name in capitals is the same domain');

    for my $bad ('', 'localhost', 'img..example.com', 'off.example.com',
                 'gone.example.com', 'www.example.com',
                 'img_x.example.com', '-img.example.com',
                 'img.example.com/path', ' img.example.com',
                 ('a' x 64) . '.example.com', "img.ex\x{e4}mple.com")
    {
        is_error($patch->({ default_domain => $bad }), 400, 'invalid_domain',
                 'domain ' . $show->encode($bad) . ': 400 invalid_domain');
    }

    is_error($patch->({}), 400, 'nothing_to_change',
             'an empty object: 400 nothing_to_change');
};

subtest 'a password change: the new one logs in, the old one not' => sub {
    my $carol = $t->new_user('carol', password => 'first password');
    my $patch = sub {
        $t->patch('/api/users/me', token => $carol->{token}, json => $_[0]);
    };

    my $res = $patch->({ current_password => 'first password' });
    is_error($res, 422, 'missing_field', 'the current one alone: 422');
    like($res->{json}{detail}, qr/new_password/, 'naming new_password');

    $res = $patch->({ new_password => 'second password' });
    is_error($res, 422, 'missing_field', 'the new one alone: 422');
    like($res->{json}{detail}, qr/current_password/,
         'naming current_password');

    is_error($patch->({ current_password => 'not it at all',
                        new_password => 'second password' }),
             403, 'wrong_password', 'a wrong current password: 403');
    is_error($patch->({ current_password => 'first password',
                        new_password => 'short' }),
             400, 'invalid_password', 'a new password too short: 400');

    $res = $patch->({ current_password => 'first password',
                      new_password => 'second password' });
    is($res->{status}, 200, 'the right current password: 200');
    is_profile($res->{json}, { username => 'carol' }, 'with the profile');
    is($t->row("SELECT token_version FROM users WHERE username = 'carol'",
               'v')->{v}, 2, 'the token version went up to 2');

    is_error($t->login_response('carol', 'first password'), 401,
             'invalid_credentials', 'the old password no longer logs in');
    ok($t->login('carol', 'second password'), 'the new one does');
};

subtest 'a closed server registers nobody' => sub {
    $t->restart_nginx(registration => 'closed');

    is_error($t->register('dave', 'long enough password'), 403,
             'registration_closed', '403 registration_closed');
    is_error($t->register('dave', 'long enough password',
                          invite => 'A' x 22),
             403, 'registration_closed', 'an invite changes nothing');
    ok($t->login('alice', $alice_password), 'users still log in');
};

subtest 'by default a newcomer needs an invite' => sub {
    $t->restart_nginx;

    is_error($t->register('dave', 'long enough password'), 403,
             'invite_required', 'no invite: 403 invite_required');
    is_error($t->register('dave', 'long enough password',
                          invite => 'no-such-invite-at-all1'),
             403, 'invalid_invite', 'an unknown invite: 403 invalid_invite');
    ok(!@{ $t->pg->psql("SELECT 1 FROM users WHERE username = 'dave'") },
       'dave was not stored');
};

subtest 'password hashing runs off the event loop: a static file answers '
        . 'while six logins hash' => sub {
    my @workers = $t->nginx->worker_pids;
    is(scalar @workers, 1, 'one worker does everything');

    my $login = build_request('POST', '/api/auth/login',
                              json => { username => 'alice',
                                        password => $alice_password });
    my $cpu = $t->nginx->worker_cpu;
    my (@socks, @t0);
    for my $i (0 .. 5) {
        $socks[$i] = $t->http->connect;
        $t0[$i] = time;
        print { $socks[$i] } $login;
    }

    # hashing is under way once the worker has burnt some CPU
    ok(wait_until(sub { $t->nginx->worker_cpu >= $cpu + 0.05 }, 10),
       'the worker hashes');

    my $static = $t->get('/static/hello.txt');
    my @answered = IO::Select->new(@socks)->can_read(0);

    my (@logins, @elapsed);
    for my $i (0 .. 5) {
        $logins[$i] = parse_response($t->http->read_all($socks[$i], 30));
        $elapsed[$i] = time - $t0[$i];
    }
    my ($slowest) = sort { $b <=> $a } @elapsed;

    is($static->{status}, 200, 'the static file is served');
    is($static->{body}, "hello\n", 'whole');
    is(scalar @answered, 0, 'before any login had its answer');
    cmp_ok($static->{elapsed}, '<', 0.25, 'at once');
    cmp_ok($static->{elapsed}, '<', $slowest / 2,
           sprintf('in less than half the slowest login\'s %.2f s',
                   $slowest));
    is(scalar(grep { $_->{status} == 200 } @logins), 6,
       'and all six logins succeed');
};

subtest 'bulletdrop_thread_pool chooses the threads that hash' => sub {
    # nginx starts a pool's threads only when something uses the pool
    my $threads = sub {
        my ($pid) = $t->nginx->worker_pids;
        my @tasks = glob "/proc/$pid/task/*";
        return scalar @tasks;
    };

    # a worker starts its threads after it starts listening: poll
    is(wait_until(sub { $threads->() == 33 && 33 }) || $threads->(), 33,
       'by default: the worker and the 32 threads of nginx\'s "default" '
       . 'pool');

    $t->restart_nginx(main => "thread_pool lonely threads=1;\n",
                      thread_pool => 'lonely');

    is(wait_until(sub { $threads->() == 2 && 2 }, 5) || $threads->(), 2,
       'with a pool of its own: the worker and its one thread, and no '
       . '"default" pool');

    my @res = $t->http->parallel(map {
        ['POST', '/api/auth/login',
         json => { username => 'alice', password => $alice_password }]
    } 1 .. 5);

    is(scalar(grep { $_->{status} == 200 } @res), 5,
       'five logins at once all succeed on that one thread');
};

done_testing;
