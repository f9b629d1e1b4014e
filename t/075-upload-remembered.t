#!/usr/bin/perl
# Uploads are let in on credentials each worker remembers for a few
# seconds (src/ngx_http_bulletdrop_authcache.c), and the row is written
# only if the credential still holds when it is (bd_upload_commit_batch()).
# Changes made through the module reach every worker before its answer;
# changes made with psql reach them within a second (triggers NOTIFY the
# worker's listening connection).  Either way a revoked key, a disabled
# user, a changed password or a new quota is then refused before the
# body, as if nothing had been remembered.  A credential revoked while a
# body is on its way is refused when the row would be written, and
# nothing is left.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(is_error leaves_nothing sample wait_until);

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

# Let in, then revoked by `change` while the last bytes are held back:
# refused when the row would be written, nothing left behind
sub revoked_midway {
    my ($what, $status, $code, $auth, $user, $change) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $before = $t->uploads_state;
    my $usage = $t->usage_of($user->{id});

    my $x = $t->begin_upload($auth, 'mid.png', sample('png', 200_000),
                             as => 'raw');
    $x->send_all_but(1024);
    ok(wait_until(sub { $t->temp_files >= 1 }, 10),
       "$what: the upload is let in and under way");
    $change->();
    $x->send_rest;
    is_error(answer_of($x->answer(10)), $status, $code,
             "$what: $status $code when the row would be written");
    $x->close;
    leaves_nothing($t, $before, "$what: no file and no row");
    is_deeply($t->usage_of($user->{id}), $usage,
              "$what: the usage is unchanged");
}

sub answer_of { $_[0] // { status => 'no answer', headers => {} } }

# what psql did is heard by every worker: wait for the first early refusal
sub heard {
    my ($auth) = @_;
    return wait_until(sub {
        my $x = $t->begin_upload($auth, 'probe.png', sample('png', 5000),
                                 send => 1024, length => BIG);
        my $res = $x->answer(2);
        $x->close;
        return $res && $res->{status} =~ /^40[13]$/;
    }, 5);
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

subtest 'changes made with psql: refused before the body, soon' => sub {
    my $u = $t->new_user('sam', key => 1);

    remembered('the token', $u->{token});
    $t->pg->psql("UPDATE users SET disabled = true WHERE id = $u->{id}");
    ok(heard($u->{token}), 'a user disabled with psql: heard within 5 s');
    refused_early('then', 403, 'account_disabled', $u->{token});
    $t->pg->psql("UPDATE users SET disabled = false WHERE id = $u->{id}");

    remembered('the key', $u->{key});
    $t->pg->psql("DELETE FROM api_keys WHERE user_id = $u->{id}");
    ok(heard($u->{key}), 'a key deleted with psql: heard within 5 s');
    refused_early('then', 401, 'invalid_token', $u->{key});
};

subtest 'revoked while the body comes: refused at the commit' => sub {
    my $u = $t->new_user('vera', key => 1);

    remembered('the key', $u->{key});
    revoked_midway('a key deleted mid-upload', 401, 'invalid_token',
                   $u->{key}, $u, sub {
        $t->pg->psql("DELETE FROM api_keys WHERE user_id = $u->{id}");
    });

    remembered('the token', $u->{token});
    revoked_midway('a user disabled mid-upload', 403, 'account_disabled',
                   $u->{token}, $u, sub {
        $t->set_user($u->{id}, disabled => JSON::PP::true);
    });
    $t->set_user($u->{id}, disabled => JSON::PP::false);

    remembered('the token, enabled again', $u->{token});
    revoked_midway('a token retired mid-upload', 401, 'invalid_token',
                   $u->{token}, $u, sub {
        $t->pg->psql("UPDATE users SET token_version = token_version + 1 "
                     . "WHERE id = $u->{id}");
    });
};

subtest 'the workers are the same, and said nothing alarming' => sub {
    is_deeply([ sort $t->nginx->worker_pids ], [ sort @workers ],
              'no worker was restarted');
    unlike($t->nginx->log_text, qr/\[(?:alert|crit|emerg)\]/,
           'no alert in the error log');
};

done_testing;
