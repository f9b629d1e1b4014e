#!/usr/bin/perl
# Bans and log rotation.  The module logs every refused credential in one
# line of nginx's error log; the fail2ban filter and jail we ship
# (nginx-conf/fail2ban/) read those lines and ban the address nginx names,
# never one a client wrote.  This test makes a log with every kind of
# failure, successes, expired tokens and clients that try to write a
# false address into it; runs Debian's fail2ban-regex over it with the
# shipped filter; runs a real fail2ban (private socket, pid file, database
# and config dir in the test's directory; an action that writes "ban
# <ip>" to a file, no firewall) that bans a guesser and not a user; and
# renames the log and reopens it (what logrotate does) under a client that
# keeps failing, losing no line.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IO::Socket::IP;
use POSIX qw(strftime :sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP qw(build_request parse_response);
use BulletDrop::Test qw(wait_until jwt_forge);
use BulletDrop::Util qw(top_dir slurp spew run_cmd);

my $FILTER = top_dir() . '/nginx-conf/fail2ban/filter.d/bulletdrop.conf';
my $JAIL = top_dir() . '/nginx-conf/fail2ban/jail.d/bulletdrop.conf';

plan skip_all => 'fail2ban is not installed (make deps installs it)'
    unless -x '/usr/bin/fail2ban-regex' && -x '/usr/bin/fail2ban-client';

my $t = BulletDrop::Test->new;
my $port = $t->port;

# IPv6 too when this machine has ::1 (the server answers on both)
my $v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                             Listen => 1) ? 1 : 0;

my $server = <<'EOF';
        location /api/ {
            bulletdrop_api;
        }

        location /static/ {
            root @PREFIX@/html;
        }
EOF
$server = "        listen [::1]:\@PORT\@;\n\n$server" if $v6;

$t->start_nginx(registration => 'open', workers => 2,
                login_limit => 'user=3 addr=1000 period=15m',
                server => $server);

# a request over IPv6, to [::1]:port
sub request6 {
    my ($method, $path, %o) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port,
                                   Timeout => 5)
        or die "cannot connect to [::1]:$port: $@";
    print {$sock} build_request($method, $path, host => 'localhost', %o);
    return parse_response($t->http->read_all($sock, 10));
}

# fail2ban-regex with the shipped filter over a log: its -o output lines
sub regex_out {
    my ($log, $what) = @_;
    my ($status, $out, $err) = run_cmd(
        ['fail2ban-regex', '-o', $what, $log, $FILTER], check => 0);
    die "fail2ban-regex failed ($status): $err$out" if $status;
    return grep { length } split /\n/, $out;
}

# the lines of a log that are the module's refusals from one address
sub failures_from {
    my ($text, $addr) = @_;
    my $re = qr/\] \d+#\d+: \*\d+ bulletdrop: auth failed: /
             . qr/[^\n]*, client: \Q$addr\E, server: /;
    my $n = () = $text =~ /^[^\n]*$re/gm;
    return $n;
}

my $alice = $t->new_user('alice', password => 'alice long password',
                         key => 1);
my $bob = $t->new_user('bob', password => 'bob long password', key => 1);

# how many lines the filter must match, by address
my %want;

subtest 'a log with every kind of failure, successes and hostile clients'
=> sub {
    my $res;

    # password: wrong ones, then the limiter (user=3) turns the name away
    for (1 .. 3) {
        $res = $t->login_response('alice', 'a wrong guess');
        is($res->{status}, 401, 'a wrong password: 401') or next;
        $want{'127.0.0.1'}++;
    }
    for (1 .. 2) {
        $res = $t->login_response('alice', 'alice long password');
        is($res->{status}, 429, 'past the limiter, the right password: 429')
            or next;
        $want{'127.0.0.1'}++;
    }

    # password: a wrong current password on PATCH /api/users/me
    $res = $t->patch('/api/users/me', token => $bob->{token},
                     json => { current_password => 'not bob password',
                               new_password => 'a new long password' });
    is($res->{status}, 403, 'a wrong current password: 403')
        and $want{'127.0.0.1'}++;

    # token: garbage, signed with another key, alg none
    my $now = int time;
    for my $jwt ('not.a.jwt',
                 jwt_forge(key => 'k' x 48,
                           claims => { sub => "$bob->{id}", iat => $now,
                                       exp => $now + 600, ver => 1 }),
                 $t->jwt(header => { alg => 'none', typ => 'JWT' },
                         claims => { sub => "$bob->{id}" }))
    {
        $res = $t->get('/api/users/me', token => $jwt);
        is($res->{status}, 401, 'a bad JWT: 401') and $want{'127.0.0.1'}++;
    }

    # api_key: unknown ones, and one revoked
    for my $key ('bd_' . ('A' x 43), 'bd_' . ('z' x 43)) {
        $res = $t->get('/api/users/me', token => $key);
        is($res->{status}, 401, 'an unknown API key: 401')
            and $want{'127.0.0.1'}++;
    }
    my $made = $t->post('/api/users/me/api-keys', token => $bob->{token},
                        json => { name => 'soon revoked' });
    my ($id, $key) = @{ $made->{json} // {} }{qw(id key)};
    is($t->delete("/api/users/me/api-keys/$id",
                  token => $bob->{token})->{status}, 204, 'a key revoked');
    $res = $t->get('/api/users/me', token => $key);
    is($res->{status}, 401, 'the revoked key: 401') and $want{'127.0.0.1'}++;

    # session: a cookie that is not a session
    for my $cookie ('bd_session=abc.def.ghi', 'bd_session=' . 'x' x 40) {
        $res = $t->get('/api/users/me', headers => [ Cookie => $cookie ]);
        is($res->{status}, 401, 'a bad session cookie: 401')
            and $want{'127.0.0.1'}++;
    }

    # expired tokens: logged (at info), never counted
    for my $ago (1, 100) {
        $res = $t->get('/api/users/me',
                       token => $t->jwt(claims => {
                           sub => "$bob->{id}", iat => $now - 700,
                           exp => $now - $ago }));
        is($res->{json}{error}, 'token_expired', 'an expired token');
    }

    # successes: nothing
    is($t->get('/api/users/me', token => $bob->{token})->{status}, 200,
       'a good token');
    is($t->get('/api/users/me', token => $bob->{key})->{status}, 200,
       'a good key');
    ok(defined $t->login('bob', 'bob long password'), 'a good login');

    # hostile clients: each fails once, and the line must name 127.0.0.1
    my $fake = '6.6.6.6';
    for my $name ("x\", client: $fake, server: ",
                  "a\n" . strftime('%Y/%m/%d %H:%M:%S', localtime)
                  . " [error] 1#1: *1 bulletdrop: auth failed: password"
                  . " for \"x\", client: $fake, server: , request: \"POST"
                  . " /api/auth/login HTTP/1.1\", host: \"localhost\"")
    {
        $res = $t->login_response($name, 'a wrong guess');
        is($res->{status}, 401, 'a user name with a false address: 401')
            and $want{'127.0.0.1'}++;
    }
    $res = $t->post(
        "/api/auth/login?auth%20failed:%20password,%20client:%20$fake,",
        json => { username => 'carol', password => 'a wrong guess' },
        headers => [ 'X-Forwarded-For' => $fake, 'X-Real-IP' => $fake,
                     Referer => "http://x/, client: $fake, server: " ]);
    is($res->{status}, 401, 'a false address in the URI, X-Forwarded-For, '
       . 'X-Real-IP and Referer: 401') and $want{'127.0.0.1'}++;
    $res = $t->get('/api/users/me', token => 'not.a.jwt',
                   host => "x\",client:$fake,server:");
    is($res->{status}, 401, 'a false address in Host: 401')
        and $want{'127.0.0.1'}++;

    # nginx writes a decoded URI in its own lines unescaped: a request for
    # a file that is not there writes a whole line of the client's making
    my $forged = strftime('%Y/%m/%d %H:%M:%S', localtime)
        . " [error] 1#1: *1 bulletdrop: auth failed: password for"
        . " \"alice\", client: $fake, server: , request: \"POST"
        . ' /api/auth/login HTTP/1.1", host: "localhost"';
    (my $uri = "a\n$forged")
        =~ s/([^A-Za-z0-9_.~\/-])/sprintf '%%%02X', ord $1/ge;
    is($t->get("/static/$uri")->{status}, 404, 'a forged line in a URI: 404');
    is($t->get('/static/bulletdrop:%20auth%20failed:%20password,%20client:'
               . "%20$fake,%20")->{status}, 404,
       'the words in a URI: 404');

    if ($v6) {
        for (1 .. 2) {
            $res = request6('POST', '/api/auth/login',
                            json => { username => 'dave',
                                      password => 'a wrong guess' });
            is($res->{status}, 401, 'a wrong password over IPv6: 401')
                and $want{'::1'}++;
        }
        $res = request6('GET', '/api/users/me', token => 'not.a.jwt',
                        headers => [ 'X-Forwarded-For' => $fake ]);
        is($res->{status}, 401, 'a bad token over IPv6: 401')
            and $want{'::1'}++;
        $res = request6('GET', '/api/users/me',
                        token => $t->jwt(claims => {
                            sub => "$bob->{id}", iat => $now - 700,
                            exp => $now - 1 }));
        is($res->{json}{error}, 'token_expired',
           'an expired token over IPv6');
    }

    my $log = $t->nginx->log_text;
    like($log, qr/^\Q$forged\E/m,
         'nginx did write the forged line, at the start of a line');
    my $expired = qr/\] \d+#\d+: \*\d+ bulletdrop: auth failed: expired, /;
    is(scalar(() = $log =~ /$expired/g), $v6 ? 3 : 2,
       'the expired tokens are logged (as expired)');
    my $kinds = join ' ', sort keys %{{ map { $_ => 1 }
        $log =~ /\*\d+ bulletdrop: auth failed: (\w+)/g }};
    is($kinds, 'api_key expired login_limited password session token',
       'every kind of line is in the log');
};

subtest 'fail2ban-regex matches each failure once, with nginx\'s address'
=> sub {
    my $log = $t->nginx->error_log;
    my @hosts = regex_out($log, 'ip');
    my %got;
    $got{$_}++ for @hosts;
    my $total = 0;
    $total += $_ for values %want;

    is(scalar @hosts, $total, "$total lines matched");
    is_deeply(\%got, \%want,
              'the real client addresses, so many times each: '
              . join ', ', map { "$_ $want{$_}" } sort keys %want);

    my @lines = regex_out($log, 'msg');
    is(scalar(grep { /auth failed: expired/ } @lines), 0,
       'no expired token among them');
    is(scalar(grep { !/\] \d+#\d+: \*\d+ bulletdrop: auth failed: /
                     || /\] 1#1: \*1 / } @lines), 0,
       'no other line of nginx or the module, no forged line');
    my %kinds = map { /auth failed: (\w+)/ ? ($1 => 1) : () } @lines;
    is(join(' ', sort keys %kinds),
       'api_key login_limited password session token',
       'every kind it bans on');
};

subtest 'the shipped jail under Debian\'s own fail2ban configuration'
=> sub {
    plan skip_all => 'no /etc/fail2ban/jail.conf' unless -f
        '/etc/fail2ban/jail.conf';

    # a copy of /etc/fail2ban with ours added; read, never run
    my $etc = $t->dir . '/etc-fail2ban';
    my ($status, $out, $err) = run_cmd(['cp', '-a', '/etc/fail2ban', $etc],
                                       check => 0);
    is($status, 0, 'Debian\'s configuration copied') or diag($err);
    copy($FILTER, "$etc/filter.d/bulletdrop.conf") or die "copy: $!";
    copy($JAIL, "$etc/jail.d/bulletdrop.conf") or die "copy: $!";

    ($status, $out, $err) = run_cmd(['fail2ban-client', '-c', $etc, '-d'],
                                    check => 0);
    is($status, 0, 'fail2ban-client -d reads it') or diag("$err$out");
    my %set = map { /^\['set', 'bulletdrop', '(\w+)', (.*)\]$/ ? ($1 => $2)
                                                             : () }
              split /\n/, $out;
    my $logpath = "['set', 'bulletdrop', 'addlogpath', "
                . "'/var/log/nginx/error.log', 'head']";
    like($out, qr/^\Q$logpath\E$/m,
         'the jail reads /var/log/nginx/error.log');
    is_deeply([ @set{qw(maxretry findtime bantime)} ],
              [ 10, "'10m'", "'1h'" ], '10 failures in 10m, banned 1h');
    like($out, qr/^\['add', 'bulletdrop', 'auto'\]$/m,
         'backend auto: the file, whatever the default says');
    my ($action) = $out =~ /^(\['multi-set', 'bulletdrop', 'action',.*)$/m;
    like($action // '', qr/'nftables-multiport'.*'actionban',
                          \ 'nft\ add\ element\ inet\ f2b-table/x,
         'bans with nftables');
    like($action // '', qr/\['port', 'http,https'\]/, 'on http,https');
};

# ---- a real fail2ban ---------------------------------------------------

# A private fail2ban: its config dir (the shipped filter and jail; the
# jail's log, action and backend set for the test), socket, pid file,
# database (in memory) and its own log, all in the test's directory.  It
# runs in the foreground as our child and is stopped when the test ends.
my $f2b_pid;
my $f2b = $t->dir . '/fail2ban';
my $bans = "$f2b/bans";

sub f2b_client {
    my (@args) = @_;
    return run_cmd(['fail2ban-client', '-c', $f2b, @args], check => 0);
}

sub stop_f2b {
    return unless $f2b_pid;
    f2b_client('stop');
    my $gone = wait_until(sub { waitpid($f2b_pid, WNOHANG) == $f2b_pid },
                          10);
    unless ($gone) {
        kill 'TERM', $f2b_pid;
        waitpid $f2b_pid, 0;
    }
    undef $f2b_pid;
    return;
}

END { local $?; stop_f2b() }

subtest 'a real fail2ban bans an address that guesses passwords, not one '
        . 'that logs in' => sub {
    make_path("$f2b/filter.d", "$f2b/action.d", "$f2b/jail.d");
    copy($FILTER, "$f2b/filter.d/bulletdrop.conf") or die "copy: $!";
    copy($JAIL, "$f2b/jail.d/bulletdrop.conf") or die "copy: $!";
    spew("$f2b/fail2ban.conf", <<"EOF");
[Definition]
loglevel = INFO
logtarget = $f2b/fail2ban.log
socket = $f2b/fail2ban.sock
pidfile = $f2b/fail2ban.pid
dbfile = :memory:
EOF
    spew("$f2b/jail.conf", "[DEFAULT]\n");
    # the shipped jail as it is, but for what a test must not touch
    my $log = $t->nginx->error_log;
    spew("$f2b/jail.local", <<"EOF");
[bulletdrop]
logpath = $log tail
backend = polling
action = testban[file="$bans"]
ignoreself = false
ignoreip =
EOF
    spew("$f2b/action.d/testban.conf", <<'EOF');
[Definition]
actionstart =
actionstop =
actioncheck =
actionban = echo "ban <ip>" >> <file>
actionunban = echo "unban <ip>" >> <file>
EOF

    my ($status, $out, $err) = f2b_client('-d');
    is($status, 0, 'fail2ban reads the configuration')
        or diag("$err$out");
    like($out, qr/'bulletdrop', 'maxretry', 10\]/,
         'with the shipped maxretry') or diag($out);

    $f2b_pid = fork // die "fork: $!";
    if ($f2b_pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$f2b/client.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec';
          exec 'fail2ban-client', '-c', $f2b, '-f', '-x', 'start'; }
        POSIX::_exit(127);
    }

    my $ready = wait_until(sub {
        my ($s, $o) = f2b_client('status', 'bulletdrop');
        $s == 0 && $o =~ /File list:\s+\Q$log\E/;
    }, 30);
    ok($ready, 'fail2ban runs the bulletdrop jail on the test\'s log')
        or diag(eval { slurp("$f2b/client.out") } // '',
                eval { slurp("$f2b/fail2ban.log") } // '');
    return unless $ready;

    my ($user, $guesser) = ('127.0.0.77', '127.0.0.66');

    # a user who mistypes once, then logs in, and works
    is($t->login_response('bob', 'bob typo', from => $user)->{status}, 401,
       'the user mistypes');
    for (1 .. 3) {
        my ($token) = $t->login('bob', 'bob long password', from => $user);
        ok(defined $token, 'and logs in');
        $t->get('/api/users/me', token => $token, from => $user);
    }

    # a guesser: many names, wrong passwords, then the limiter's 429s
    my @codes = map {
        $t->login_response($_ % 2 ? 'alice' : "admin$_", "guess $_",
                           from => $guesser)->{status}
    } 1 .. 12;
    is(scalar(grep { $_ == 401 || $_ == 429 } @codes), 12,
       'the guesser fails twelve times (' . join(' ', @codes) . ')');

    my $banned = wait_until(sub {
        -f $bans && slurp($bans) =~ /^ban \Q$guesser\E$/m }, 30);
    ok($banned, "fail2ban bans $guesser") or diag(
        eval { slurp("$f2b/fail2ban.log") } // '');

    # it reads the log as it grows: the lines after the ban come later
    my ($s, $o);
    wait_until(sub {
        ($s, $o) = f2b_client('status', 'bulletdrop');
        $o =~ /Total failed:\s*13\b/;
    }, 20);
    like($o, qr/Banned IP list:\s*\Q$guesser\E\s*$/m,
         'the jail lists the guesser alone as banned') or diag($o);
    like($o, qr/Total failed:\s*13\b/,
         'it counted the twelve guesses and the one typo') or diag($o);
    is(slurp($bans), "ban $guesser\n",
       "the action ran once, and never for the user at $user");

    stop_f2b();
    # our readiness poll may ask for the jail before it exists, which
    # fail2ban logs as an error: only what follows the jail's start counts
    my $f2blog = slurp("$f2b/fail2ban.log");
    my ($running) = $f2blog =~ /^.*Jail 'bulletdrop' started\n(.*)\z/ms;
    ok(defined $running, 'fail2ban logged the jail\'s start') or diag($f2blog);
    unlike($running // '', qr/\b(?:ERROR|CRITICAL)\b/,
           'fail2ban logged no error once the jail ran') or diag($f2blog);
};

# ---- log rotation ------------------------------------------------------

subtest 'a reopen of the log loses no line' => sub {
    my $nginx = $t->nginx;
    my $log = $nginx->error_log;
    my $old = "$log.1";
    my $from = '127.0.0.50';
    my $count_file = $t->dir . '/client.count';
    my $stop_file = $t->dir . '/client.stop';

    # a client that fails logins until told to stop, and says how often:
    # every other one a new name (a password hash on the thread pool), the
    # others a name the limiter turns away (429 at once)
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($n, $other) = (0, 0);
        my $i = 0;
        until (-e $stop_file) {
            my $name = $i++ % 2 ? "user$i" : 'user0';
            my $res = eval {
                $t->login_response($name, 'a wrong guess', from => $from);
            };
            my $st = $res ? $res->{status} : 0;
            $st == 401 || $st == 429 ? $n++ : $other++;
        }
        spew($count_file, "$n $other\n");
        POSIX::_exit(0);
    }

    my $lines_in = sub {
        my ($file) = @_;
        return -f $file ? failures_from(slurp($file), $from) : 0;
    };

    ok(wait_until(sub { $lines_in->($log) >= 10 }, 30),
       'the client\'s failures are in the log');

    # what logrotate does: rename, then USR1 to the master in the pid file
    rename $log, $old or die "rename: $!";
    my $before = $lines_in->($old);
    ok(wait_until(sub { $lines_in->($old) >= $before + 3 }, 30),
       'until the reopen, lines still go to the renamed file');
    ok(!-e $log, 'and no new error.log is made before it');

    my $master = slurp($nginx->pid_file) =~ s/\s+//gr;
    is($master, $nginx->pid, 'the pid file names the master');
    ok(kill('USR1', $master), 'USR1 (reopen) sent to the master');

    ok(wait_until(sub { $lines_in->($log) >= 10 }, 30),
       'new lines land in a new error.log');

    spew($stop_file, '');
    waitpid $pid, 0;
    is($?, 0, 'the client ended well');
    my ($n, $other) = split ' ', slurp($count_file);
    is($other, 0, 'every attempt of the client was refused 401 or 429');

    my ($in_old, $in_new) = ($lines_in->($old), $lines_in->($log));
    is($in_old + $in_new, $n,
       "$n failures, $n lines: $in_old in the old file, $in_new in the new");

    my $worker_uid = (stat "/proc/" . ($nginx->worker_pids)[0])[4];
    is((stat $log)[4], $worker_uid,
       'the new file belongs to the workers\' user') if $> == 0;

    my @hosts = regex_out($log, 'ip');
    is(scalar(grep { $_ eq $from } @hosts), $in_new,
       'fail2ban-regex finds the new file\'s lines, each once');

    is_deeply([ map { $_->[1] }
                BulletDrop::Nginx::bad_log_lines(slurp($old)) ], [],
              'the old file has no [alert], [crit] or [emerg]');
};

done_testing;
