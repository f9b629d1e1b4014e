#!/usr/bin/perl
# File domains: an administrator seeds img., shots., cdn. and media. of the
# base domain, adds, disables and deletes domains; users list the enabled
# ones and pick one as their default.  An upload's link goes on the domain
# its X-BulletDrop-Domain names (refused before the body when that is not
# an enabled domain), else on the user's default while it is enabled, else
# on the first enabled one, else on the Host the upload came to; the link
# keeps that Host's port and works as printed.  Files are served on the
# enabled file domains only, by every worker as soon as the API answered a
# change, and within moments of a change made straight in the table.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();

use BulletDrop::Pg;
use BulletDrop::Test qw(wait_until json_type iso_time is_error is_upload
                        leaves_nothing sample);
use BulletDrop::Util qw(slurp);

my $t = BulletDrop::Test->new;

# a second access log names the worker that answered each request
my %CONF = (registration => 'open', files => 1, workers => 2,
            http => "    log_format bd_pid '\$pid \$host \$uri \$status';\n"
                  . "    access_log \@PREFIX\@/logs/pid.log bd_pid;\n");
my $PID_LOG = $t->nginx->prefix . '/logs/pid.log';

# first without bulletdrop_base_domain
$t->start_nginx(%CONF);

my $admin = $t->new_user('root', admin => 1, key => 1);
my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);

my $PNG = sample('png', 3000);
my $FALSE = JSON::PP::false;
my $TRUE = JSON::PP::true;

sub domains_of {
    my ($res) = @_;
    my $list = ref $res->{json} eq 'HASH' ? $res->{json}{domains} : undef;
    return ref $list eq 'ARRAY' ? $list : [];
}

sub names { [ map { $_->{name} } @{ domains_of($_[0]) } ] }

# name => 'on' or 'off', for the domains of an answer
sub states {
    return { map { ($_->{name} => $_->{enabled} ? 'on' : 'off') }
             @{ domains_of($_[0]) } };
}

sub list {
    my ($auth, $query) = @_;
    return $t->get('/api/domains' . (defined $query ? "?$query" : ''),
                   token => $auth);
}

sub patch_domain {
    my ($name, $enabled, $auth) = @_;
    return $t->patch("/api/domains/$name", token => $auth // $admin->{key},
                     json => { enabled => $enabled ? $TRUE : $FALSE });
}

sub set_default {
    my ($user, $domain) = @_;
    return $t->patch('/api/users/me', token => $user->{key},
                     json => { default_domain => $domain });
}

sub domain_rows {
    my $rows = $t->pg->query('SELECT name, enabled, created_at FROM domains '
                             . 'ORDER BY created_at, name');
    return [ map { "@$_" } @$rows ];
}

# One check that a decoded value is a domain object: exactly name, enabled
# (a JSON boolean) and created_at (a UTC time), with the name and state of
# $want ([name, 'on' or 'off'])
sub is_domain {
    my ($d, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $d = {} unless ref $d eq 'HASH';
    my %got = (keys => join(' ', sort keys %$d), name => $d->{name},
               enabled => json_type($d->{enabled}) ne 'bool'
                          ? 'not a boolean' : $d->{enabled} ? 'on' : 'off',
               created_at => iso_time($d->{created_at}) ? 'a UTC time'
                             : $d->{created_at});
    return is_deeply(\%got, { keys => 'created_at enabled name',
                              name => $want->[0], enabled => $want->[1],
                              created_at => 'a UTC time' }, $name);
}

# the domain of an upload's row
sub row_domain {
    my ($id) = @_;
    my $rows = $t->pg->query('SELECT coalesce(domain, \'(null)\') FROM '
                             . 'uploads WHERE id = '
                             . BulletDrop::Pg::quote($id // ''));
    return @$rows ? $rows->[0][0] : '(no row)';
}

# A raw PNG upload by $user: headers => [...], host => ...
sub upload_png {
    my ($user, %o) = @_;
    return $t->upload($user->{key}, 'shot.png', $PNG, as => 'raw', %o);
}

# One check that an upload was answered 201 with its link on $domain (and
# :$port when given), its delete link on the request's Host, and that its
# row names that domain
sub is_linked {
    my ($res, $domain, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $port = defined $o{port} ? ":$o{port}" : '';
    my $host = ($o{host} // 'localhost') . $port;
    my $r = ref $res->{json} eq 'HASH' ? $res->{json} : {};
    my $id = $r->{id} // '';
    my %got = (status => $res->{status}, domain => $r->{domain},
               url => $r->{url}, row => row_domain($id),
               id => $id =~ /\A[A-Za-z0-9_-]{16}\z/ ? 'an id' : $id,
               delete_url => ($r->{delete_url} // '')
                   =~ m{\Ahttp://\Q$host\E/d/[A-Za-z0-9_-]{16,}\z}
                   ? "on $host" : $r->{delete_url});
    my $ok = is_deeply(\%got,
              { status => 201, domain => $domain, row => $domain,
                id => 'an id', delete_url => "on $host",
                url => "http://$domain$port/static/images/$id.png" },
              $name);
    diag("the answer was: $res->{status} $res->{body}") unless $ok;
    return $ok;
}

# GET of a link as printed: its path, with its host:port as Host
sub open_link {
    my ($url, %o) = @_;
    my ($host, $path) = ($url // '') =~ m{\Ahttp://([^/]+)(/.*)\z}
        or return { status => 'no link', headers => {}, body => '' };
    return $t->get($path, host => $o{host} // $host);
}

sub path_of { (($_[0] // '') =~ m{\Ahttp://[^/]+(/.*)\z})[0] // '/' }

sub pid_lines {
    return () unless -f $PID_LOG;
    return split /\n/, slurp($PID_LOG);
}

# GETs of $path with Host $host, each on a fresh connection: 20, and more
# (20 at a time, up to 200) until every worker has answered some.
# Returns {status => how many} and how many workers answered.
sub survey {
    my ($host, $path) = @_;
    my @workers = $t->nginx->worker_pids;
    my $from = () = pid_lines();
    my (%status, %pids);

    # 20 connections at once: a worker that is busy with some leaves the
    # others to the rest, where one after another may all go to one
    for my $round (1 .. 10) {
        $status{ $_->{status} }++
            for $t->http->parallel(map { [ 'GET', $path, host => $host ] }
                                   1 .. 20);
        my @lines = pid_lines();
        %pids = ();
        for my $line (@lines[$from .. $#lines]) {
            my ($pid, $h, $uri) = split ' ', $line;
            $pids{$pid}++ if $h eq $host && $uri eq $path;
        }
        last if keys %pids >= @workers;
    }

    return (\%status, scalar keys %pids);
}

# One check that every worker answers $path on $host with $want, each time
sub all_agree {
    my ($host, $path, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($status, $workers) = survey($host, $path);
    my $made = 0;
    $made += $_ for values %$status;
    return is_deeply({ statuses => [ sort keys %$status ],
                       workers => $workers },
                     { statuses => [ $want ], workers => 2 },
                     "$name ($made requests)");
}

subtest 'no domains, no base domain: links stay on the request\'s Host'
=> sub {
    is_deeply(names(list($alice->{key})), [], 'no domains listed');
    is_deeply(names(list($admin->{key}, 'all=true')), [],
              'none at all, for an admin either');

    is_error($t->post('/api/domains/seed', token => $admin->{key}), 409,
             'no_base_domain', 'seeding without bulletdrop_base_domain: '
             . '409 no_base_domain');
    is_error($t->post('/api/domains/seed', token => $alice->{key}), 403,
             'forbidden', 'and a user may not seed: 403');
    is($t->pg->query('SELECT count(*) FROM domains')->[0][0], 0,
       'the table is still empty');

    my $res = upload_png($alice, host => 'localhost:1234');
    is($res->{status}, 201, 'an upload: 201');
    is_upload($res->{json}, { domain => undef, name => 'shot.png' },
              'domain null, links on localhost:1234, the Host it came to',
              host => 'localhost:1234', ext => 'png');
    is(row_domain($res->{json}{id}), '(null)', 'its row has no domain');

    is_error(open_link($res->{json}{url}), 404, 'not_found',
             'with no file domain, /static/ is not served: 404');
};

$t->restart_nginx(%CONF, base_domain => 'localhost');

my @SEED = map { "$_.localhost" } qw(img shots cdn media);

subtest 'seeding: img., shots., cdn., media. of the base, in that order'
=> sub {
    is_error($t->post('/api/domains/seed', token => $alice->{key}), 403,
             'forbidden', 'a user: 403 forbidden');
    is_error($t->post('/api/domains/seed'), 401, 'unauthorized',
             'no token: 401');
    is_deeply(domain_rows(), [], 'neither added a domain');

    my $res = $t->post('/api/domains/seed', token => $admin->{key});
    is($res->{status}, 200, 'an admin: 200');
    is_deeply(names($res), \@SEED, 'the four, img. first, media. last');
    is(scalar(grep { is_domain(domains_of($res)->[$_], [ $SEED[$_], 'on' ],
                               "$SEED[$_]: a whole domain object, enabled") }
              0 .. 3), 4, 'all four whole and enabled');
    is_deeply([ map { (split ' ', $_)[0] } @{ domain_rows() } ], \@SEED,
              'the table has them in that order of created_at');
    is($t->pg->query('SELECT count(DISTINCT created_at) FROM domains')
         ->[0][0], 4, 'each with its own created_at');

    is(patch_domain('shots.localhost', 0)->{status}, 200,
       'shots.localhost is disabled');
    is($t->post('/api/domains', token => $admin->{key},
                json => { name => 'files.example.com' })->{status}, 201,
       'and files.example.com added');
    my $before = domain_rows();

    $res = $t->post('/api/domains/seed', token => $admin->{key});
    is($res->{status}, 200, 'seeding again: 200');
    is_deeply(names($res), [ @SEED, 'files.example.com' ],
              'the answer lists every domain, the added one too');
    is_deeply(states($res), { (map { $_ => 'on' } @SEED),
                              'shots.localhost' => 'off',
                              'files.example.com' => 'on' },
              'shots.localhost stays disabled');
    is_domain(domains_of($res)->[1], [ 'shots.localhost', 'off' ],
              'shown as a whole domain object');
    is_deeply(domain_rows(), $before,
              'the table is as it was: nothing added, nothing changed');

    my $again = $t->post('/api/domains/seed', token => $admin->{key});
    is_deeply([ $again->{status}, $again->{json} ],
              [ 200, $res->{json} ], 'a third time: the same answer');
};

# now: img, shots (off), cdn, media, files.example.com

subtest 'the list: enabled domains for users, all for an admin' => sub {
    my @on = map { "$_.localhost" } qw(img cdn media);
    push @on, 'files.example.com';

    my $res = list($alice->{key});
    is($res->{status}, 200, 'a user: 200');
    is_deeply(names($res), \@on, 'the enabled ones, in order of creation');
    is(scalar(grep { is_domain($_, [ $_->{name}, 'on' ],
                               "$_->{name}: a whole domain object") }
              @{ domains_of($res) }), 4, 'each one whole and enabled');
    is_deeply([ sort keys %{ $res->{json} } ], [ 'domains' ],
              'an object with the list as "domains"');

    is_deeply(names(list($alice->{key}, 'all=true')), \@on,
              'a user asking for all=true: the enabled ones still');
    is_deeply(names(list($admin->{key})), \@on,
              'an admin without all=true: the enabled ones');
    is_deeply(names(list($admin->{key}, 'all=false')), \@on,
              'an admin with all=false: the same');

    $res = list($admin->{key}, 'all=true');
    is($res->{status}, 200, 'an admin with all=true: 200');
    is_deeply(names($res), [ @SEED, 'files.example.com' ],
              'every domain, in order of creation');
    is(states($res)->{'shots.localhost'}, 'off',
       'shots.localhost shown disabled');
    is_deeply(names(list($admin->{token}, 'all=true')),
              [ @SEED, 'files.example.com' ], 'the same with a JWT');

    is_error(list(undef), 401, 'unauthorized', 'no token: 401');
};

subtest 'adding a domain: lower-cased, validated, once' => sub {
    my $res = $t->post('/api/domains', token => $admin->{key},
                       json => { name => 'Pics.Example.COM' });
    is($res->{status}, 201, 'Pics.Example.COM: 201');
    is_domain($res->{json}, [ 'pics.example.com', 'on' ],
              'the domain, in lower case, enabled');
    is_deeply($t->pg->query("SELECT name, enabled FROM domains WHERE "
                            . "lower(name) = 'pics.example.com'"),
              [ [ 'pics.example.com', 't' ] ], 'its row, in lower case');
    is(names(list($alice->{key}))->[-1], 'pics.example.com',
       'users see it, last');

    $res = $t->post('/api/domains', token => $admin->{key},
                    json => { name => 'off.example.com',
                              enabled => $FALSE });
    is($res->{status}, 201, 'enabled false: 201');
    is_domain($res->{json}, [ 'off.example.com', 'off' ], 'disabled');
    ok(!grep({ $_ eq 'off.example.com' } @{ names(list($alice->{key})) }),
       'users do not see it');
    is(states(list($admin->{key}, 'all=true'))->{'off.example.com'}, 'off',
       'an admin sees it disabled');

    my $rows = domain_rows();
    for my $dup ('pics.example.com', 'PICS.example.com', 'img.localhost') {
        is_error($t->post('/api/domains', token => $admin->{key},
                          json => { name => $dup }),
                 409, 'domain_exists', "$dup again: 409 domain_exists");
    }
    is_error($t->post('/api/domains', token => $admin->{key},
                      json => { name => 'off.example.com',
                                enabled => $TRUE }),
             409, 'domain_exists', 'a disabled one again, enabled: 409');

    for my $bad ('localhost', 'a..b', 'x_y.com', '', '.example.com',
                 '-a.example.com', 'a-.example.com', 'a b.example.com',
                 'img.example.com/x', 'img.example.com:80',
                 ('a' x 64) . '.example.com',
                 join('.', ('a' x 63) x 4), "ex\x{e4}mple.com")
    {
        is_error($t->post('/api/domains', token => $admin->{key},
                          json => { name => $bad }),
                 400, 'invalid_domain',
                 JSON::PP->new->ascii->allow_nonref->encode($bad)
                 . ': 400 invalid_domain');
    }

    is_error($t->post('/api/domains', token => $alice->{key},
                      json => { name => 'mine.example.com' }),
             403, 'forbidden', 'a user: 403 forbidden');
    is_error($t->post('/api/domains', json => { name => 'x.example.com' }),
             401, 'unauthorized', 'no token: 401');
    is_error($t->post('/api/domains', token => $admin->{key},
                      json => { name => 'x.example.com', color => 'red' }),
             422, 'unknown_field', 'an unknown field: 422 unknown_field');
    is_error($t->post('/api/domains', token => $admin->{key}, json => {}),
             422, 'missing_field', 'no name: 422 missing_field');
    is_deeply(domain_rows(), $rows, 'none of these changed the table');
};

# now: img, shots (off), cdn, media, files.example.com, pics.example.com,
# off.example.com (off)

subtest 'PATCH: a domain disabled and enabled again; unknown: 404' => sub {
    my $all = list($admin->{key}, 'all=true');
    my ($cdn) = grep { $_->{name} eq 'cdn.localhost' } @{ domains_of($all) };

    my $res = patch_domain('cdn.localhost', 0);
    is($res->{status}, 200, 'disabled: 200');
    is_domain($res->{json}, [ 'cdn.localhost', 'off' ],
              'the domain, disabled');
    is($res->{json}{created_at}, $cdn->{created_at},
       'created when it was');
    ok(!grep({ $_ eq 'cdn.localhost' } @{ names(list($alice->{key})) }),
       'gone from the users\' list');
    is(states(list($admin->{key}, 'all=true'))->{'cdn.localhost'}, 'off',
       'disabled in the admin\'s');
    is($t->row("SELECT enabled FROM domains WHERE name = 'cdn.localhost'",
               'enabled')->{enabled}, 'f', 'and in the table');

    $res = patch_domain('cdn.localhost', 1);
    is($res->{status}, 200, 'enabled: 200');
    is_domain($res->{json}, [ 'cdn.localhost', 'on' ], 'the domain, on');
    is_deeply(names(list($alice->{key})),
              [ qw(img.localhost cdn.localhost media.localhost
                   files.example.com pics.example.com) ],
              'back in the users\' list, in its place');

    my $rows = domain_rows();
    is_error(patch_domain('nope.example.com', 0), 404, 'not_found',
             'an unknown domain: 404 not_found');
    is_error(patch_domain('cdn.localhost', 0, $alice->{key}), 403,
             'forbidden', 'a user: 403 forbidden');
    is_error($t->patch('/api/domains/cdn.localhost', token => $admin->{key},
                       json => { enabled => $FALSE, name => 'x.localhost' }),
             422, 'unknown_field', 'an unknown field: 422 unknown_field');
    is_deeply(domain_rows(), $rows, 'none of these changed the table');
};

subtest 'domains changed over and over: the same workers answer' => sub {
    my @workers = $t->nginx->worker_pids;
    my %statuses;

    for my $name (map { "churn$_.example.com" } 1 .. 10) {
        my @res = ($t->post('/api/domains', token => $admin->{key},
                            json => { name => $name }),
                   patch_domain($name, 0), patch_domain($name, 1),
                   $t->delete("/api/domains/$name",
                              token => $admin->{key}));
        $statuses{ join ' ', map { $_->{status} } @res }++;
    }

    is_deeply(\%statuses, { '201 200 200 204' => 10 },
              'ten times added, disabled, enabled and deleted');
    is_deeply([ $t->nginx->worker_pids ], \@workers,
              'no worker died and was replaced');
    unlike($t->nginx->log_text, qr/exited on signal|exited with code [1-9]/,
           'the log tells of no worker exit');
};

subtest 'DELETE: 204, then 404; users\' defaults on it are cleared' => sub {
    $t->add_domains('tmp.example.com');
    my $res = set_default($bob, 'TMP.Example.com');
    is($res->{json}{default_domain}, 'tmp.example.com',
       'Bob\'s default is tmp.example.com, kept in lower case');
    is(set_default($alice, 'img.localhost')->{json}{default_domain},
       'img.localhost', 'Alice\'s is img.localhost');

    is_error($t->delete('/api/domains/tmp.example.com',
                        token => $alice->{key}),
             403, 'forbidden', 'a user may not delete: 403');

    $res = $t->delete('/api/domains/tmp.example.com',
                      token => $admin->{key});
    is_deeply([ $res->{status}, $res->{body} ], [ 204, '' ],
              'an admin: 204, no body');
    is($t->pg->query("SELECT count(*) FROM domains "
                     . "WHERE name = 'tmp.example.com'")->[0][0], 0,
       'the row is gone');
    ok(!grep({ $_ eq 'tmp.example.com' }
             @{ names(list($admin->{key}, 'all=true')) }),
       'and the domain from the admin\'s list');

    is_error($t->delete('/api/domains/tmp.example.com',
                        token => $admin->{key}),
             404, 'not_found', 'deleted again: 404 not_found');
    is_error($t->delete('/api/domains/never.example.com',
                        token => $admin->{key}),
             404, 'not_found', 'one never there: 404 not_found');

    is($t->get('/api/users/me', token => $bob->{key})->{json}
         {default_domain}, undef, 'Bob\'s default is now null');
    is($t->row("SELECT coalesce(default_domain, '(null)') FROM users "
               . "WHERE id = $bob->{id}", 'd')->{d}, '(null)',
       'in the table too');
    is($t->get('/api/users/me', token => $alice->{key})->{json}
         {default_domain}, 'img.localhost', 'Alice\'s is untouched');
    is_error(set_default($bob, 'tmp.example.com'), 400, 'invalid_domain',
             'choosing it again: 400 invalid_domain');

    is(set_default($alice, undef)->{json}{default_domain}, undef,
       'Alice clears hers (null)');
};

subtest 'a user\'s default domain: only an enabled, registered one' => sub {
    for my $bad ('shots.localhost', 'nope.example.com', 'localhost', '') {
        is_error(set_default($alice, $bad), 400, 'invalid_domain',
                 "'$bad': 400 invalid_domain");
    }
    is($t->get('/api/users/me', token => $alice->{key})->{json}
         {default_domain}, undef, 'her default is still null');

    my $res = set_default($alice, 'Media.LOCALHOST');
    is($res->{status}, 200, 'Media.LOCALHOST: 200');
    is($res->{json}{default_domain}, 'media.localhost', 'in lower case');
    is($t->row("SELECT default_domain FROM users WHERE id = $alice->{id}",
               'd')->{d}, 'media.localhost', 'so in the table');
    is(set_default($alice, undef)->{json}{default_domain}, undef,
       'null clears it');
};

subtest 'an upload\'s domain: the header, the default, the first enabled'
=> sub {
    is_linked(upload_png($alice), 'img.localhost',
              'no header, no default: the first enabled, img.localhost');
    is_linked($t->upload($alice->{key}, 'shot.png', $PNG),
              'img.localhost', 'the same from a form');

    is_linked(upload_png($alice, headers => [ 'X-BulletDrop-Domain' =>
                                              'cdn.localhost' ]),
              'cdn.localhost', 'X-BulletDrop-Domain: cdn.localhost');
    is_linked($t->upload($alice->{key}, 'shot.png', $PNG,
                         headers => [ 'X-BulletDrop-Domain' =>
                                      'pics.example.com' ]),
              'pics.example.com', 'from a form: pics.example.com');

    is(set_default($alice, 'media.localhost')->{status}, 200,
       'Alice chooses media.localhost');
    is_linked(upload_png($alice), 'media.localhost',
              'no header: her default');
    is_linked(upload_png($alice, headers => [ 'X-BulletDrop-Domain' =>
                                              'cdn.localhost' ]),
              'cdn.localhost', 'a header wins over her default');
    is_linked(upload_png($bob), 'img.localhost',
              'Bob, without a default: img.localhost');

    is(patch_domain('img.localhost', 0)->{status}, 200,
       'img.localhost disabled');
    is_linked(upload_png($bob), 'cdn.localhost',
              'Bob\'s now on cdn.localhost: shots. is disabled too');
    is(patch_domain('img.localhost', 1)->{status}, 200,
       'img.localhost enabled again');
    is_linked(upload_png($bob), 'img.localhost',
              'Bob\'s on img.localhost again');
};

subtest 'a default that was disabled: the first enabled domain instead'
=> sub {
    is($t->get('/api/users/me', token => $alice->{key})->{json}
         {default_domain}, 'media.localhost', 'Alice\'s default: media.');
    is(patch_domain('media.localhost', 0)->{status}, 200,
       'media.localhost disabled');
    is($t->get('/api/users/me', token => $alice->{key})->{json}
         {default_domain}, 'media.localhost', 'her default stays');
    is_linked(upload_png($alice), 'img.localhost',
              'her upload goes to img.localhost');
    is(patch_domain('media.localhost', 1)->{status}, 200,
       'media.localhost enabled again');
    is_linked(upload_png($alice), 'media.localhost',
              'and hers go to media.localhost again');
};

subtest 'a header naming a disabled or unknown domain: 400 before the body'
=> sub {
    # 40 MB declared, under the 50 MB limit: only the domain refuses
    my $big = 40_000_000;

    # first, what an enabled domain gets: the server waits for the body
    my $before = $t->uploads_state;
    my $x = $t->begin_upload($alice->{key}, 'big.png', $PNG, as => 'raw',
                             length => $big, send => length $PNG,
                             headers => [ 'X-BulletDrop-Domain'
                                          => 'cdn.localhost' ]);
    ok(!$x->answer(1), 'cdn.localhost (enabled): no answer while the body '
       . 'is unsent');
    $x->close;
    leaves_nothing($t, $before, 'that upload, abandoned, left nothing');

    $x = $t->begin_upload($alice->{key}, 'big.png', $PNG, length => $big,
                          expect => 1, headers => [ 'X-BulletDrop-Domain'
                                                    => 'cdn.localhost' ]);
    is($x->first_status(5), 100, 'with Expect: 100-continue, a 100 first');
    $x->close;
    leaves_nothing($t, $before, 'that one left nothing either');

    for my $domain ('shots.localhost', 'nope.example.com', 'localhost') {
        my $before = $t->uploads_state;
        my $x = $t->begin_upload($alice->{key}, 'big.png', $PNG,
                                 as => 'raw', length => $big,
                                 send => length $PNG,
                                 headers => [ 'X-BulletDrop-Domain'
                                              => $domain ]);
        my $res = $x->answer(5);
        ok($res, "$domain: an answer with "
           . ($big - length $PNG) . ' bytes still unsent') or next;
        is_error($res, 400, 'invalid_domain',
                 "$domain: 400 invalid_domain");
        $x->close;
        leaves_nothing($t, $before, "$domain: no file, no row");

        $before = $t->uploads_state;
        $x = $t->begin_upload($alice->{key}, 'big.png', $PNG,
                              length => $big, expect => 1,
                              headers => [ 'X-BulletDrop-Domain'
                                           => $domain ]);
        $res = $x->answer(5);
        ok($res, "$domain, form, Expect: 100-continue: an answer "
           . 'before any of the body') or next;
        is_error($res, 400, 'invalid_domain',
                 "$domain, form: 400 invalid_domain");
        is_deeply($res->{interim}, [], 'with no 100 Continue first');
        $x->close;
        leaves_nothing($t, $before, "$domain, form: no file, no row");
    }
};

my $served;    # an upload linked on cdn.localhost

subtest 'a link carries the port of the request\'s Host, and works' => sub {
    my $res = upload_png($alice, host => 'localhost:1234',
                         headers => [ 'X-BulletDrop-Domain' =>
                                      'cdn.localhost' ]);
    is_linked($res, 'cdn.localhost', 'on cdn.localhost:1234, the delete '
              . 'link on localhost:1234', port => 1234);
    $served = $res->{json};

    my $got = open_link($served->{url});
    is_deeply([ $got->{status}, $got->{headers}{'content-type'} ],
              [ 200, 'image/png' ], 'its url, as printed: 200, a PNG');
    ok($got->{body} eq $PNG, 'the bytes sent');

    is_linked(upload_png($bob, host => 'localhost:8080'), 'img.localhost',
              'the first enabled domain, on :8080', port => 8080);
    is_linked(upload_png($alice, host => 'localhost:80'),
              'media.localhost', 'her default, on :80', port => 80);
};

subtest 'files are served on the enabled file domains only' => sub {
    my $path = path_of($served->{url});

    for my $host (qw(cdn.localhost img.localhost files.example.com
                     pics.example.com cdn.localhost:1234))
    {
        my $res = $t->get($path, host => $host);
        ok($res->{status} == 200 && $res->{body} eq $PNG,
           "$host serves it: 200 and the file");
    }
    for my $host (qw(shots.localhost off.example.com localhost
                     nope.example.com))
    {
        is_error($t->get($path, host => $host), 404, 'not_found',
                 "$host does not: 404 JSON");
    }

    my $res = $t->get('/', host => 'img.localhost');
    is_deeply([ $res->{status}, $res->{headers}{location} ],
              [ 302, 'http://localhost/' ],
              '/ of a file domain: 302 to the base domain');
    $res = $t->get('/', host => 'img.localhost:8443');
    is_deeply([ $res->{status}, $res->{headers}{location} ],
              [ 302, 'http://localhost:8443/' ], 'on the port it came to');
};

subtest 'a change through the API is served by every worker at once'
=> sub {
    my $path = path_of($served->{url});
    is(scalar(my @w = $t->nginx->worker_pids), 2, 'two workers');

    is(patch_domain('cdn.localhost', 0)->{status}, 200,
       'cdn.localhost disabled');
    all_agree('cdn.localhost', $path, 404, 'then every answer is 404');

    is(patch_domain('cdn.localhost', 1)->{status}, 200,
       'cdn.localhost enabled');
    all_agree('cdn.localhost', $path, 200, 'then every answer is 200');

    is(patch_domain('shots.localhost', 1)->{status}, 200,
       'shots.localhost, never served yet, enabled');
    all_agree('shots.localhost', $path, 200, 'every answer is 200');
    is(patch_domain('shots.localhost', 0)->{status}, 200,
       'and disabled again');
    all_agree('shots.localhost', $path, 404, 'every answer is 404');

    $t->add_domains('new.example.com');
    all_agree('new.example.com', $path, 200,
              'a domain just added: every answer is 200');
};

subtest 'a change made in the table is heard by every worker' => sub {
    my $path = path_of($served->{url});
    my $status = sub { $t->get($path, host => 'sql.example.com')->{status} };

    is($status->(), 404, 'sql.example.com is not served');

    $t->pg->psql("INSERT INTO domains (name) VALUES ('sql.example.com')");
    ok(wait_until(sub { $status->() == 200 }, 5),
       'inserted with psql: served within 5 s');
    all_agree('sql.example.com', $path, 200, 'then by every worker');
    is_linked(upload_png($bob, headers => [ 'X-BulletDrop-Domain' =>
                                            'sql.example.com' ]),
              'sql.example.com', 'and uploads may name it');

    $t->pg->psql("UPDATE domains SET enabled = false "
                 . "WHERE name = 'sql.example.com'");
    ok(wait_until(sub { $status->() == 404 }, 5),
       'disabled with psql: not served within 5 s');
    all_agree('sql.example.com', $path, 404, 'by any worker');
    is_error(upload_png($bob, headers => [ 'X-BulletDrop-Domain' =>
                                           'sql.example.com' ]),
             400, 'invalid_domain', 'and uploads may not name it');

    $t->pg->psql("UPDATE domains SET enabled = true "
                 . "WHERE name = 'sql.example.com'");
    ok(wait_until(sub { $status->() == 200 }, 5),
       'enabled with psql: served again within 5 s');
    all_agree('sql.example.com', $path, 200, 'by every worker');

    $t->pg->psql("DELETE FROM domains WHERE name = 'sql.example.com'");
    ok(wait_until(sub { $status->() == 404 }, 5),
       'deleted with psql: not served within 5 s');
    all_agree('sql.example.com', $path, 404, 'by any worker');
};

subtest 'deleting a domain stops its links' => sub {
    my $res = upload_png($alice, headers => [ 'X-BulletDrop-Domain' =>
                                              'pics.example.com' ]);
    is_linked($res, 'pics.example.com', 'a link on pics.example.com');
    my $rec = $res->{json};
    is(open_link($rec->{url})->{status}, 200, 'which works');

    is($t->delete('/api/domains/pics.example.com',
                  token => $admin->{key})->{status}, 204,
       'pics.example.com deleted: 204');
    all_agree('pics.example.com', path_of($rec->{url}), 404,
              'its link is a 404 for every worker at once');
    is_error(open_link($rec->{url}), 404, 'not_found', 'a JSON 404');
    is_error(upload_png($alice, headers => [ 'X-BulletDrop-Domain' =>
                                             'pics.example.com' ]),
             400, 'invalid_domain', 'uploads may not name it any more');
    ok(-f $t->stored_path($rec), 'the file itself is still stored');
    is($t->get(path_of($rec->{url}), host => 'img.localhost')->{status},
       200, 'and served on the other file domains');
};

done_testing;
