#!/usr/bin/perl
# Guessing passwords is slowed down: failed logins are counted per user
# name and per client address, in memory all workers share.  Past the
# limit every login for that name or address, even with the right
# password, is 429 with a Retry-After until the window (from the first
# failure, `period` long) ends.  A success clears the name's count but not
# the address's.  Clients come from different loopback addresses
# (127.0.0.N) so that each story has an address of its own.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);

use BulletDrop::Test qw(wait_until is_error);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', workers => 2,
                login_limit => 'user=3 addr=6 period=15m');

my %password;
for my $name (qw(bob carol dave eve ghost)) {
    $password{$name} = "$name long enough password";
    next if $name eq 'ghost';
    $t->register($name, $password{$name})->{status} == 201
        or BAIL_OUT("cannot register $name");
}

# n failed logins at once, each on its own connection
sub fail_logins {
    my ($n, %o) = @_;
    my @names = ref $o{name} ? @{ $o{name} } : ($o{name}) x $n;
    return $t->http->parallel(map {
        ['POST', '/api/auth/login', from => $o{from},
         json => { username => $names[$_], password => 'a wrong guess' }]
    } 0 .. $n - 1);
}

sub login {
    my ($name, $from, $password) = @_;
    return $t->login_response($name, $password // $password{$name},
                              from => $from);
}

# 429 too_many_attempts, Retry-After seconds in the range given
sub blocked {
    my ($res, $min, $max, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error($res, 429, 'too_many_attempts', "$name: 429 too_many_attempts");
    my $after = $res->{headers}{'retry-after'} // '';
    ok($after =~ /\A[0-9]+\z/ && $after >= $min && $after <= $max,
       "$name: Retry-After $after, in $min..$max");
}

subtest 'failures for one name block that name, even with the right '
        . 'password, from anywhere' => sub {
    my @res = fail_logins(3, name => 'bob', from => '127.0.0.2');
    is(scalar(grep { ($_->{json}{error} // '') eq 'invalid_credentials' }
              @res), 3, 'three wrong passwords: 401 each');

    blocked(login('bob', '127.0.0.2'), 890, 900,
            'the right password next');
    blocked(login('BOB', '127.0.0.2', $password{bob}), 1, 900,
            'the name in other case');
    blocked(login('bob', '127.0.0.3'), 1, 900, 'from another address');

    @res = $t->http->parallel(map {
        ['POST', '/api/auth/login', from => '127.0.0.3',
         json => { username => 'bob', password => $password{bob} }]
    } 1 .. 6);
    is(scalar(grep { $_->{status} == 429 } @res), 6,
       'six at once, whichever worker takes them: all 429 (shared memory)');

    is(login('carol', '127.0.0.2')->{status}, 200,
       'another name from that address logs in (3 of 6 there)');
};

subtest 'failures under many names block the address, whatever the '
        . 'headers claim' => sub {
    my $from = '127.0.0.10';
    my @res = $t->http->parallel(map {
        ['POST', '/api/auth/login', from => $from,
         headers => [ 'X-Forwarded-For' => "10.0.0.$_",
                      'X-Real-IP' => "10.0.0.$_" ],
         json => { username => "stranger$_", password => 'a wrong guess' }]
    } 1 .. 6);
    is(scalar(grep { $_->{status} == 401 } @res), 6,
       'six names, one failure each, each claiming another client');

    blocked(login('carol', $from), 890, 900,
            'then the right password of a name that never failed');
    is(login('carol', '127.0.0.11')->{status}, 200,
       'the same login from another address: 200');
};

subtest 'a success clears the name\'s count, not the address\'s' => sub {
    my $from = '127.0.0.4';

    fail_logins(2, name => 'dave', from => $from);
    is(login('dave', $from)->{status}, 200, 'two failures, then in');
    fail_logins(2, name => 'dave', from => $from);
    is(login('dave', $from)->{status}, 200,
       'two more, and in again: the name started over');

    my @res = fail_logins(2, name => [qw(nobody1 nobody2)], from => $from);
    is(scalar(grep { $_->{status} == 401 } @res), 2,
       'two unknown names fail: six failures from this address');
    blocked(login('eve', $from), 890, 900,
            'eve, who never failed, from that address');
    is(login('eve', '127.0.0.5')->{status}, 200,
       'eve from another address logs in');
};

subtest 'unknown names count like wrong passwords' => sub {
    fail_logins(3, name => 'ghost', from => '127.0.0.6');
    is($t->register('ghost', $password{ghost})->{status}, 201,
       'then someone registers the name');
    blocked(login('ghost', '127.0.0.7'), 1, 900,
            'its logins are blocked all the same');
};

subtest 'the window lasts period from the first failure' => sub {
    $t->restart_nginx(registration => 'open',
                      login_limit => 'user=2 addr=100 period=4s');

    my $t0 = time;
    fail_logins(2, name => 'bob', from => '127.0.0.8');
    blocked(login('bob', '127.0.0.8'), 1, 4, 'period 4s: blocked');

    my $in = wait_until(sub { login('bob', '127.0.0.8')->{status} == 200 },
                        10);
    ok($in, 'and let in again once the window ends');
    my $took = time - $t0;
    cmp_ok($took, '>=', 3, sprintf('not before its end (%.1f s)', $took));
    cmp_ok($took, '<', 8, 'nor long after: logins while blocked do not '
           . 'stretch it');
};

subtest 'by default, 10 failures block a name for 15 minutes' => sub {
    $t->restart_nginx(registration => 'open');
    my $from = '127.0.0.9';

    fail_logins(9, name => 'carol', from => $from);
    is(login('carol', $from)->{status}, 200, 'nine failures: still in');

    fail_logins(10, name => 'carol', from => $from);
    blocked(login('carol', $from), 890, 900,
            'ten: blocked for the default 15m');
};

done_testing;
