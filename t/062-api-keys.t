#!/usr/bin/perl
# API keys, for tools such as ShareX: a user makes one and sees it once;
# it opens the API like a token and remembers when it was last used; the
# list shows every key but never a key itself; a deleted key stops working
# at once; keys are their owner's alone, with names of 1 to 64 bytes, and
# at most 100 of them.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();

use BulletDrop::Test qw(wait_until json_type iso_time is_error);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $alice = $t->new_user('alice');
my $bob = $t->new_user('bob');
my $show = JSON::PP->new->ascii->allow_nonref;

sub make_key {
    my ($user, $name) = @_;
    return $t->post('/api/users/me/api-keys', token => $user->{token},
                    json => { name => $name });
}

sub list_keys {
    my ($user) = @_;
    my $res = $t->get('/api/users/me/api-keys', token => $user->{token});
    return ref $res->{json} eq 'HASH' ? $res->{json}{api_keys} : undef;
}

sub me { $t->get('/api/users/me', token => $_[0]) }

my %sharex;

subtest 'a new key is shown once, with its prefix' => sub {
    my $t0 = time;
    my $res = make_key($alice, 'ShareX');

    is($res->{status}, 201, 'status 201');
    my $k = $res->{json} // {};
    is(json_type($k->{id}), 'int', 'an integer id');
    is(json_type($k->{last_used_at}), 'null', 'never used yet');
    is_deeply([ sort keys %$k ],
              [qw(created_at id key last_used_at name prefix)],
              'id, name, prefix, key, created_at, last_used_at');
    is($k->{name}, 'ShareX', 'the name given');
    like($k->{key}, qr/\Abd_[A-Za-z0-9_-]{43}\z/, 'the key: bd_ and 43 '
         . 'base64url characters');
    like($k->{prefix}, qr/\Abd_[A-Za-z0-9_-]{8}\z/, 'the prefix: bd_ and 8');
    is(substr($k->{key}, 0, 11), $k->{prefix}, 'the key starts with it');
    my $created = iso_time($k->{created_at});
    ok($created && abs($created - $t0) < 120, 'created now');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');

    my $row = $t->row('SELECT user_id, key_hash, prefix FROM api_keys '
                      . "WHERE id = $k->{id}", qw(user key_hash prefix));
    is($row->{user}, $alice->{id}, 'stored for Alice');
    is($row->{key_hash}, sha256_hex($k->{key}),
       'as the hex SHA-256 of the key');
    my $found = $t->pg->psql("SELECT count(*) FROM api_keys WHERE "
        . "concat_ws(' ', name, key_hash, prefix) LIKE '%$k->{key}%'");
    is($found->[0][0], 0, 'the key itself is nowhere in the table');

    my $again = make_key($alice, 'ShareX');
    is($again->{status}, 201, 'a second key of the same name');
    isnt($again->{json}{key}, $k->{key}, 'is another key');
    isnt($again->{json}{prefix}, $k->{prefix}, 'with another prefix');

    %sharex = %$k;
    $sharex{second} = $again->{json};
};

subtest 'a key opens the API like a token, and its use is noted' => sub {
    my $res = me($sharex{key});
    is($res->{status}, 200, 'GET /api/users/me with the key: 200');
    is($res->{json}{username}, 'alice', 'as Alice');

    my $used = wait_until(sub {
        my ($k) = grep { $_->{id} == $sharex{id} } @{ list_keys($alice) };
        $k && defined $k->{last_used_at} ? $k : undef;
    }, 5);
    ok($used, 'the list shows when it was last used');
    my $when = iso_time($used && $used->{last_used_at});
    ok($when && abs($when - time) < 120, 'a time string, just now');

    my ($unused) = grep { $_->{id} == $sharex{second}{id} }
                   @{ list_keys($alice) };
    is($unused->{last_used_at}, undef, 'the unused key: still null');
};

subtest 'the list: oldest first, never the key, only one\'s own' => sub {
    make_key($alice, $_) for qw(third fourth);

    my $keys = list_keys($alice);
    is_deeply([ map { $_->{name} } @$keys ],
              [qw(ShareX ShareX third fourth)], 'oldest first');
    is_deeply([ map { $_->{id} } @$keys ],
              [ sort { $a <=> $b } map { $_->{id} } @$keys ],
              'ids go up');
    is(scalar(grep { exists $_->{key} } @$keys), 0, 'no key field');
    is(scalar(grep { join(' ', sort keys %$_)
                         eq 'created_at id last_used_at name prefix' }
              @$keys),
       4, 'each with id, name, prefix, created_at, last_used_at');
    unlike($t->get('/api/users/me/api-keys',
                   token => $alice->{token})->{body},
           qr/\Q$sharex{key}\E|\Q$sharex{second}{key}\E/,
           'no key anywhere in the answer');

    is_deeply(list_keys($bob), [], 'Bob sees none of them');
};

subtest 'keys are their owner\'s alone' => sub {
    my $res = make_key($bob, 'bob laptop');
    my $bob_key = $res->{json}{key};
    is(me($bob_key)->{json}{username}, 'bob', 'Bob\'s key is Bob');

    is_error($t->delete("/api/users/me/api-keys/$sharex{id}",
                        token => $bob->{token}),
             404, 'not_found', 'Bob deleting Alice\'s key: 404');
    is(me($sharex{key})->{status}, 200, 'which still works');

    for my $id ('abc', '0', '-1', '1x', '99999999999999999999999', '1.0') {
        is_error($t->delete("/api/users/me/api-keys/$id",
                            token => $alice->{token}),
                 404, 'not_found', "id '$id': 404");
    }
};

subtest 'a deleted key stops working at once' => sub {
    my $res = $t->delete("/api/users/me/api-keys/$sharex{id}",
                         token => $alice->{token});
    is($res->{status}, 204, 'DELETE: 204');
    is($res->{body}, '', 'with no body');

    is_error(me($sharex{key}), 401, 'invalid_token',
             'the deleted key: 401 invalid_token');
    ok(!grep({ $_->{id} == $sharex{id} } @{ list_keys($alice) }),
       'gone from the list');
    is(me($sharex{second}{key})->{status}, 200,
       'the other key of that name still works');

    is_error($t->delete("/api/users/me/api-keys/$sharex{id}",
                        token => $alice->{token}),
             404, 'not_found', 'deleting it again: 404');
};

subtest 'only the exact key opens the door' => sub {
    my $key = $sharex{second}{key};
    my %near = (
        'a character more'  => "${key}A",
        'a character less'  => substr($key, 0, -1),
        'upper case'        => uc $key,
        'without bd_'       => substr($key, 3),
        'the prefix alone'  => $sharex{second}{prefix},
    );
    for my $name (sort keys %near) {
        is_error(me($near{$name}), 401, 'invalid_token', "$name: 401");
    }
};

subtest 'key names are 1 to 64 bytes of UTF-8 without control characters'
=> sub {
    my @bad = ('', 'n' x 65, "\x{e9}" x 33, "tab\there", "new\nline",
               "nul\x{0}byte", "del\x{7f}ete", "esc\x{1b}[0m");
    for my $name (@bad) {
        is_error(make_key($alice, $name), 400, 'invalid_name',
                 'name ' . $show->encode($name) . ': 400 invalid_name');
    }

    for my $name ('n' x 64, "\x{e9}" x 32, "\x{1F4F8} ShareX",
                  q{quotes " and \ backslash}) {
        my $res = make_key($alice, $name);
        is($res->{status}, 201, 'name ' . $show->encode($name) . ': 201');
        is($res->{json}{name}, $name, 'given back as it was');
    }
    ok(grep({ $_->{name} eq "\x{1F4F8} ShareX" } @{ list_keys($alice) }),
       'and listed as it was');

    my $res = $t->post('/api/users/me/api-keys', token => $alice->{token},
                       json => {});
    is_error($res, 422, 'missing_field', 'no name: 422 missing_field');
    like($res->{json}{detail}, qr/\bname\b/, 'naming the field');
};

subtest 'at most 100 keys a user' => sub {
    my $have = @{ list_keys($alice) };
    my @made = grep { $_->{status} == 201 }
               map { make_key($alice, "bulk $_") } $have + 1 .. 100;
    is(scalar @made, 100 - $have, "keys $have+1 to 100 are made");
    is(scalar @{ list_keys($alice) }, 100, 'the list has 100');

    is_error(make_key($alice, 'one too many'), 409, 'too_many_keys',
             'the 101st: 409 too_many_keys');

    my $gone = $made[-1]{json}{id};
    is($t->delete("/api/users/me/api-keys/$gone",
                  token => $alice->{token})->{status}, 204, 'one deleted');
    is(make_key($alice, 'room again')->{status}, 201, 'makes room for one');
    is_error(make_key($alice, 'and no more'), 409, 'too_many_keys',
             'but no more');

    is(make_key($bob, 'bob desktop')->{status}, 201,
       'Bob has a limit of his own');
};

done_testing;
