#!/usr/bin/perl
# What an attacker without an account can make the server do, and what it
# refuses to: guesses sent all at once are limited like guesses in a row;
# made-up invites cost no password hash; registrations are counted per
# address; a full thread pool answers 503 in JSON; the error log cannot be
# written by a user name; no "100 Continue" invites a refused body.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use Time::HiRes qw(sleep);

use BulletDrop::HTTP qw(build_request);
use BulletDrop::Test qw(is_error);

my $t = BulletDrop::Test->new;
$t->start_nginx(workers => 1, registration => 'open',
                login_limit => 'user=3 addr=100 period=15m');

my $alice = $t->new_user('alice', password => 'alice long password');

subtest 'guesses sent at once are limited like guesses in a row' => sub {
    my @res = $t->http->parallel(map {
        ['POST', '/api/auth/login', from => '127.0.0.2',
         json => { username => 'alice', password => "guess $_" }]
    } 1 .. 12);

    my %by = (401 => 0, 429 => 0);
    $by{ $_->{status} }++ for @res;

    is($by{401}, 3, 'three guesses were checked (user=3)');
    is($by{429}, 9, 'the nine others were refused at once');
    is_error((grep { $_->{status} == 429 } @res)[0], 429,
             'too_many_attempts', 'as too_many_attempts');
};

subtest 'guessing the current password on PATCH /api/users/me is limited'
=> sub {
    my $bob = $t->new_user('bob', password => 'bob long password');
    my @auth = $t->auth($bob->{token});

    for my $i (1 .. 3) {
        is_error($t->patch('/api/users/me', headers => [@auth],
                           json => { current_password => "guess $i",
                                     new_password => 'a new password' }),
                 403, 'wrong_password', "guess $i: 403 wrong_password");
    }

    my $res = $t->patch('/api/users/me', headers => [@auth],
                        json => { current_password => 'bob long password',
                                  new_password => 'a new password' });
    is_error($res, 429, 'too_many_attempts',
             'then even the right one: 429');
    like($res->{headers}{'retry-after'} // '', qr/\A[1-9][0-9]*\z/,
         'with Retry-After');
};

subtest 'made-up invites cost no password hash' => sub {
    my $t2 = BulletDrop::Test->new;
    $t2->start_nginx(workers => 1, registration => 'invite');

    my $cpu = $t2->nginx->worker_cpu;
    my @res = $t2->http->parallel(map {
        ['POST', '/api/auth/register',
         json => { username => "user$_", password => 'long enough pw',
                   invite => "made-up-$_" }]
    } 1 .. 20);

    is(scalar(grep { ($_->{json}{error} // '') eq 'invalid_invite' } @res),
       20, 'twenty made-up invites: 403 invalid_invite');

    # one scrypt is about 0.25 s of CPU: twenty would be five seconds
    my $spent = $t2->nginx->worker_cpu - $cpu;
    cmp_ok($spent, '<', 1.0,
           sprintf('and the worker spent %.2f s of CPU on them', $spent));

    $t2->teardown;
};

subtest 'registrations are counted per address' => sub {
    my $t3 = BulletDrop::Test->new;
    $t3->start_nginx(workers => 1, registration => 'open',
                     login_limit => 'user=3 addr=2 period=15m');

    is($t3->register('first', 'long enough pw', from => '127.0.0.3')
           ->{status}, 201, 'a first registration');
    is($t3->register('second', 'long enough pw', from => '127.0.0.3')
           ->{status}, 201, 'a second');

    my $res = $t3->register('third', 'long enough pw', from => '127.0.0.3');
    is_error($res, 429, 'too_many_attempts', 'a third from there: 429');
    is($t3->register('third', 'long enough pw', from => '127.0.0.4')
           ->{status}, 201, 'from another address: 201');

    $t3->teardown;
};

subtest 'clients that leave during a password check kill no worker'
=> sub {
    my @workers = $t->nginx->worker_pids;

    # each leaves a little later than the one before, so that some leave
    # before their check is queued, some while it runs
    for my $i (0 .. 19) {
        my $sock = $t->http->connect(from => '127.0.0.9');
        print {$sock} build_request('POST', '/api/auth/login',
            json => { username => "ghost$i", password => 'guess' x 4 });
        sleep 0.004 * $i;
        close $sock;
    }

    my $carol = $t->new_user('carol', password => 'carol long password');
    ok(defined $t->login('carol', 'carol long password'),
       'a login after them works');
    is_deeply([ $t->nginx->worker_pids ], \@workers,
              'no worker died and was replaced');
    unlike($t->nginx->log_text, qr/exited on signal|exited with code [1-9]/,
           'the log tells of no worker exit');
};

subtest 'a full thread pool queue is a 503 in JSON, with Retry-After'
=> sub {
    $t->restart_nginx(main => "thread_pool tiny threads=1 max_queue=1;\n",
                      thread_pool => 'tiny', registration => 'open',
                      login_limit => 'user=100 addr=100 period=15m');

    my @res = $t->http->parallel(map {
        ['POST', '/api/auth/login', from => "127.0.1.$_",
         json => { username => 'alice', password => 'alice long password' }]
    } 1 .. 6);

    my @busy = grep { $_->{status} == 503 } @res;
    ok(@busy >= 1, scalar(@busy) . ' of 6 logins found the queue full');
    ok(scalar(grep { $_->{status} == 200 } @res) >= 1,
       'while the others logged in');
    is_error($busy[0], 503, 'unavailable', 'a JSON 503') if @busy;
    is($busy[0]{headers}{'retry-after'}, '1', 'that says when to retry')
        if @busy;
};

subtest 'a user name cannot write lines into the error log' => sub {
    my $name = "x\"\n2026/01/01 00:00:00 [alert] 1#1: forged";
    my $res = $t->login_response($name, 'whatever password');
    is($res->{status}, 401, 'the login fails');

    my $log = $t->nginx->log_text;
    unlike($log, qr/^2026\/01\/01 00:00:00 \[alert\] 1#1: forged/m,
           'and the log has no line the client wrote');
    like($log, qr/auth failed: password for an invalid name/,
         'it says an invalid name failed instead');
};

subtest 'a refused request does not invite its body with 100 Continue'
=> sub {
    my $sock = $t->http->connect;
    print {$sock} "POST /api/users/me/api-keys HTTP/1.1\r\n"
        . "Host: localhost\r\nContent-Type: application/json\r\n"
        . "Content-Length: 20\r\nExpect: 100-continue\r\n"
        . "Connection: close\r\n\r\n";
    my $raw = $t->http->read_all($sock, 10);

    unlike($raw, qr{^HTTP/1\.1 100}, 'no 100 Continue');
    like($raw, qr{^HTTP/1\.1 401}, 'the 401 at once');
};

done_testing;
