#!/usr/bin/perl
# Uploads are let in on credentials each worker remembers for a few
# seconds (src/ngx_http_bulletdrop_authcache.c), and the row is written
# only if the credential still holds when it is (bd_upload_commit()).
# Changes made through the module reach every worker before its answer:
# a revoked key, a disabled user, a changed password or a new quota is
# refused before the body, as if nothing had been remembered.  Changes
# made behind the module's back (psql) are caught when the row would be
# written: refused, and nothing is left.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(is_error leaves_nothing sample);

use constant BIG => 10 * 1024 * 1024;            # a declared length

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', workers => 2);

my @workers = $t->nginx->worker_pids;

# every worker, most likely, has now remembered the credential: each
# upload comes on a new connection, which either worker may take
sub remembered {
    my ($what, $auth) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @codes = map {
        my $res = $t->upload($auth, "warm$_.png", sample('png', 2000, $_));
        $t->delete("/api/uploads/$res->{json}{id}", token => $auth)
            if $res->{status} == 201;
        $res->{status};
    } 1 .. 8;
    is_deeply(\@codes, [ (201) x 8 ], "$what: uploads are taken");
}

# refused from the request head, on every connection, whichever worker
sub refused_early {
    my ($what, $status, $code, $auth) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $before = $t->uploads_state;
    my @wrong;

    for my $n (1 .. 6) {
        my $x = $t->begin_upload($auth, 'late.png', sample('png', 5000),
                                 send => 1024, length => BIG);
        my $res = $x->answer(5);
        push @wrong, $res ? "$res->{status} $res->{body}" : 'no answer'
            unless $res && $res->{status} == $status
                   && ($res->{json}{error} // '') eq $code;
        $x->close;
    }

    is_deeply(\@wrong, [], "$what: $status $code before the body, "
                           . 'six times out of six');
    leaves_nothing($t, $before, "$what: nothing stored");
}

# Sent whole, refused when the row would be written.  The worker that
# remembered the credential lets the body in and forgets it when the
# commit refuses; one that did not remember it asks the database and
# refuses early.  Either way: refused, nothing left.  At least one of the
# four must have gone through to the commit, or nothing was remembered.
sub refused_at_commit {
    my ($what, $status, $code, $auth, $user) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($user->{id});
    my (@wrong, $late);

    for my $n (1 .. 4) {
        my $x = $t->begin_upload($auth, "c$n.png",
                                 sample('png', 200_000, $n),
                                 as => 'raw');
        $x->send_all_but(1024);
        my $res = $x->answer(0.5);
        if (!$res) {
            $late++;
            $x->send_rest;
            $res = $x->answer(5);
        }
        push @wrong, $res ? "$res->{status} $res->{body}" : 'no answer'
            unless $res && $res->{status} == $status
                   && ($res->{json}{error} // '') eq $code;
        $x->close;
    }

    is_deeply(\@wrong, [], "$what: $status $code, four times out of four");
    ok($late, "$what: a remembered credential took a body to its commit");
    leaves_nothing($t, $before, "$what: no file and no row");
    is_deeply($t->usage_of($user->{id}), $usage,
              "$what: the usage is unchanged");
}

subtest 'a key revoked through the API: refused before the body' => sub {
    my $u = $t->new_user('rita', key => 1);
    remembered('the key', $u->{key});

    my ($id) = map { $_->{id} }
               @{ $t->get('/api/users/me/api-keys',
                          token => $u->{token})->{json}{api_keys} };
    is($t->delete("/api/users/me/api-keys/$id", token => $u->{token})
           ->{status}, 204, 'the key is revoked');
    refused_early('the revoked key', 401, 'invalid_token', $u->{key});
};

subtest 'a user disabled through the API: refused before the body' => sub {
    my $u = $t->new_user('dora', key => 1);
    remembered('the key', $u->{key});
    remembered('the token', $u->{token});

    $t->set_user($u->{id}, disabled => JSON::PP::true);
    refused_early('the key', 403, 'account_disabled', $u->{key});
    refused_early('the token', 403, 'account_disabled', $u->{token});

    $t->set_user($u->{id}, disabled => JSON::PP::false);
    remembered('enabled again', $u->{key});
};

subtest 'a password changed: older tokens refused before the body' => sub {
    my $u = $t->new_user('paul', password => 'first-password-1');
    remembered('the token', $u->{token});

    my $res = $t->patch('/api/users/me', token => $u->{token},
                        json => { current_password => 'first-password-1',
                                  new_password => 'second-password-2' });
    is($res->{status}, 200, 'the password is changed');
    refused_early('the token from before', 401, 'invalid_token',
                  $u->{token});
    remembered('a token from a new login',
               scalar $t->login('paul', 'second-password-2'));
};

subtest 'a quota set through the API: judged before the body' => sub {
    my $u = $t->new_user('quinn', key => 1);
    remembered('no quota', $u->{key});

    $t->set_user($u->{id}, quota_bytes => 1000);
    refused_early('a body over the new quota', 413, 'quota_exceeded',
                  $u->{key});
};

# One worker from here on: what it remembered is what the next upload
# meets, so the commit's own check is surely the one that refuses
$t->restart_nginx(registration => 'open', workers => 1);
@workers = $t->nginx->worker_pids;

subtest 'behind the module\'s back: refused when the row would be written'
=> sub {
    my $u = $t->new_user('sam', key => 1);

    remembered('the key', $u->{key});
    $t->pg->psql("DELETE FROM api_keys WHERE user_id = $u->{id}");
    refused_at_commit('a key deleted with psql', 401, 'invalid_token',
                      $u->{key}, $u);

    remembered('the token', $u->{token});
    $t->pg->psql("UPDATE users SET disabled = true WHERE id = $u->{id}");
    refused_at_commit('a user disabled with psql', 403, 'account_disabled',
                      $u->{token}, $u);

    $t->pg->psql("UPDATE users SET disabled = false WHERE id = $u->{id}");
    remembered('the token, the user enabled again', $u->{token});
    $t->pg->psql("UPDATE users SET token_version = token_version + 1 "
                 . "WHERE id = $u->{id}");
    refused_at_commit('a token retired with psql', 401, 'invalid_token',
                      $u->{token}, $u);
};

subtest 'the worker is the same, and said nothing alarming' => sub {
    is_deeply([ sort $t->nginx->worker_pids ], [ sort @workers ],
              'no worker was restarted');
    unlike($t->nginx->log_text, qr/\[(?:alert|crit|emerg)\]/,
           'no alert in the error log');
};

done_testing;
