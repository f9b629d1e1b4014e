#!/usr/bin/perl
# The harness fails a test whose nginx went wrong, by itself: a worker
# that died, an [alert], [crit] or [emerg] line, a sanitizer report (which
# reaches the test's own directory from a worker running as nobody).  A
# test that causes such a line on purpose declares it, narrowly, and
# passes.  And a test file that leaves a bad nginx is a failed file for
# prove, whether it ends with done_testing, a plan, or dies; so does one
# whose other nginx (extra_nginx: a proxy in front) went wrong.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test2::API qw(intercept);

use BulletDrop::Nginx;
use BulletDrop::Test qw(wait_until nginx_clean);
use BulletDrop::Util qw(run_cmd slurp spew);

my $server = <<'EOF';
        location / {
            return 204;
        }
EOF

# the failed assertions among intercepted events, and all their
# diagnostics together
sub failures {
    my ($events) = @_;
    my (@failed, @diag);
    for my $e (@$events) {
        my $f = $e->facet_data;
        push @failed, $f->{assert}{details}
            if $f->{assert} && !$f->{assert}{pass};
        push @diag, map { $_->{details} } @{ $f->{info} // [] };
    }
    return map { { name => $_, diag => join "\n", @diag } } @failed;
}

sub passes {
    my ($events) = @_;
    return grep { my $f = $_->facet_data; $f->{assert} && $f->{assert}{pass} }
           @$events;
}

subtest "nginx's own lines count, not what a client wrote in them" => sub {
    my $log = join '', map { "$_\n" }
        '2026/12/05 23:00:00 [notice] 10#10: using the "epoll" event method',
        '2026/12/05 23:00:01 [alert] 10#10: worker process 11 exited on '
            . 'signal 11 (core dumped)',
        '2026/12/05 23:00:01 [notice] 10#10: worker process 12 exited with '
            . 'code 1',
        '2026/12/05 23:00:01 [notice] 10#10: worker process 13 exited with '
            . 'code 0',
        '2026/12/05 23:00:02 [crit] 12#12: *3 open() "/x" failed (13: '
            . 'Permission denied)',
        '2026/12/05 23:00:03 [emerg] 10#10: bind() to 127.0.0.1:1 failed',
        '2026/12/05 23:00:04 [error] 12#12: *4 bulletdrop: query failed',
        '2026/12/05 23:00:04 [warn] 12#12: *4 an upstream response is '
            . 'buffered',
        '2026/12/05 23:00:05 [info] 12#12: *5 bulletdrop: login failed for '
            . '"x\"\x0A2026/01/01 00:00:00 [alert] 1#1: forged"',
        '2026/12/05 23:00:05 [info] 12#12: *6 client sent "worker process 1 '
            . 'exited with code 1"',
        '==20001==ERROR: AddressSanitizer: heap-use-after-free';

    my @bad = map { $_->[1] } BulletDrop::Nginx::bad_log_lines($log);
    is(scalar @bad, 4, 'four bad lines') or diag join "\n", @bad;
    like($bad[0], qr/exited on signal 11/, 'a worker dead on a signal');
    like($bad[1], qr/exited with code 1\z/, 'a worker exited with code 1');
    like($bad[2], qr/\[crit\]/, 'a [crit]');
    like($bad[3], qr/\[emerg\]/, 'an [emerg]');
};

my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(db => undef, server => $server);

subtest 'a worker killed on a signal fails the check, unless expected'
=> sub {
    my ($old) = $t->nginx->worker_pids;
    kill 'KILL', $old;
    ok(wait_until(sub {
        my @now = $t->nginx->worker_pids;
        @now && !grep { $_ == $old } @now }, 10),
       'the worker is killed and another started');
    ok(wait_until(sub { $t->nginx->log_text =~ /exited on signal 9/ }, 10),
       'the master logged it');

    my $p = $t->log_problems;
    is(scalar @{ $p->{lines} }, 1, 'one bad line');
    like($p->{lines}[0],
         qr/\[alert\] \d+#\d+: worker process $old exited on signal 9/,
         'the [alert] of its death');

    my @f = failures(intercept {
        BulletDrop::Test::check_nginx($t->nginx, 'the check',
                                      expect => $t->{expect_log});
    });
    is(scalar @f, 1, 'the check is a failed test');
    like($f[0]{diag} // '', qr/worker process $old exited on signal 9/,
         'that shows the line');
    like($f[0]{diag} // '', qr/\| +location \/ \{\n.*\| +return 204;/s,
         'and the configuration');

    $t->expect_log(qr/\] \d+#\d+: worker process $old exited on signal 9\z/);
    $p = $t->log_problems;
    is(scalar @{ $p->{lines} }, 0, 'expected: no bad line left');
    is(scalar @{ $p->{allowed} }, 1, 'one line allowed');
    is(scalar(passes(intercept {
        BulletDrop::Test::check_nginx($t->nginx, 'the check',
                                      expect => $t->{expect_log});
    })), 1, 'the check passes');

    ok(!eval { $t->expect_log('exited'); 1 },
       'expect_log takes patterns, not strings');
};

subtest "nginx_clean checks an nginx the fixture did not start (make run's)"
=> sub {
    my $prefix = $t->nginx->prefix;
    my @f = failures(intercept { nginx_clean($prefix, 'the check') });
    is(scalar @f, 1, 'its log has the [alert]: a failed test');
    is(scalar(passes(intercept {
        nginx_clean($prefix, 'the check',
                    expect => [ qr/exited on signal 9\z/ ]);
    })), 1, 'expected: a passed test');
    @f = failures(intercept { nginx_clean($t->dir . '/none', 'the check') });
    like($f[0]{diag} // '', qr/no nginx ran in/,
         'no nginx there: a failed test');
};

subtest "nginx -t refusing a configuration is not nginx's error" => sub {
    my ($ok, $out) = $t->check_conf(db => undef,
                                    server => "bogus_directive on;\n");
    ok(!$ok, 'nginx -t refuses it');
    like($out, qr/\[emerg\].*bogus_directive/, 'and says why');
    is(scalar @{ $t->log_problems->{lines} }, 0,
       'the error log has no bad line for it');
    $t->nginx->write_conf($t->conf(db => undef, server => $server));
};

# ---- sanitizer reports -------------------------------------------------

# a library that, preloaded into nginx, makes a worker read past a heap
# block on SIGPWR and overflow an int on SIGVTALRM (signals nginx leaves
# alone)
my $PROVOKE = <<'EOF';
#include <limits.h>
#include <signal.h>
#include <stdlib.h>

static volatile int  bd_sink;

static void
bd_heap_overflow(int sig)
{
    char          *p = malloc(8);
    volatile int   i = 8;

    bd_sink = p[i];
    free(p);
}

static void
bd_int_overflow(int sig)
{
    volatile int  x = INT_MAX;

    bd_sink = x + sig;
}

__attribute__((constructor)) static void
bd_provoke(void)
{
    signal(SIGPWR, bd_heap_overflow);
    signal(SIGVTALRM, bd_int_overflow);
}
EOF

sub runtimes {
    my @libs;
    for my $lib (qw(libasan.so libubsan.so)) {
        my ($status, $out) = run_cmd([ $ENV{CC} // 'cc',
                                       "-print-file-name=$lib" ],
                                     check => 0);
        chomp $out;
        return () unless $status == 0 && -f $out;
        push @libs, $out;
    }
    return @libs;
}

subtest 'sanitizer reports from a worker land in the test, and fail it'
=> sub {
    # under make test-asan, the runtimes it gives; else found here
    my @preload = grep { /lib(?:asan|ubsan)\.so/ }
                  split /:/, $ENV{BULLETDROP_PRELOAD} // '';
    @preload = runtimes() unless @preload == 2;
    plan skip_all => 'no libasan.so and libubsan.so for cc' unless @preload;

    my $s = BulletDrop::Test->new(pg => 0);
    my $so = $s->dir . '/provoke.so';
    my ($status, $out, $err) = run_cmd(
        [ $ENV{CC} // 'cc', '-shared', '-fPIC', '-g',
          '-fsanitize=address,undefined', '-o', $so, '-x', 'c', '-' ],
        stdin => $PROVOKE, check => 0);
    is($status, 0, 'the provoking library builds') or diag $err;

    {
        local $ENV{BULLETDROP_PRELOAD} = join ':', @preload, $so;
        $s->start_nginx(db => undef, server => $server);
    }
    my $dir = $s->nginx->sanitizer_dir;
    my ($worker) = $s->nginx->worker_pids;
    is($s->get('/')->{status}, 204, 'nginx answers');

    # (the report is written in pieces: its stack comes last)
    my $read = sub { -f $_[0] ? slurp($_[0]) : '' };
    kill 'VTALRM', $worker;
    ok(wait_until(sub { $read->("$dir/ubsan.$worker") =~ /^\s+#1 /m }, 10),
       "UBSan's report is in the test's directory, from the worker");
    my $report = $read->("$dir/ubsan.$worker");
    like($report, qr/runtime error: signed integer overflow/, 'what');
    like($report, qr/#0 .* in bd_int_overflow/, 'with the stack');
    is($s->get('/')->{status}, 204, 'and the worker goes on');

    kill 'PWR', $worker;
    ok(wait_until(sub { $s->nginx->log_text =~ /exited on signal 6/ }, 10),
       'ASan ends the worker (abort)');
    $report = $read->("$dir/asan.$worker");
    like($report, qr/ERROR: AddressSanitizer: heap-buffer-overflow/,
         "ASan's report is in the test's directory, from the worker");
    like($report, qr/#0 .* in bd_heap_overflow/, 'with the stack');
    SKIP: {
        skip 'workers run as nobody only when we are root', 1 if $>;
        is(getpwuid((stat "$dir/asan.$worker")[4]) // '', 'nobody',
           'written by the worker as nobody');
    }

    # the reports are not in the error log, which stays nginx's
    unlike($s->nginx->log_text, qr/runtime error|AddressSanitizer/,
           'nor in the error log');

    # a report cannot be expected: the teardown check fails with both
    $s->expect_log(qr/exited on signal 6\z/);
    my @f = failures(intercept { $s->teardown });
    is(scalar @f, 1, 'the teardown check is a failed test');
    my $diag = $f[0]{diag} // '';
    my $asan = qr/ERROR: AddressSanitizer: heap-buffer-overflow/;
    my $ubsan = qr/runtime error: signed integer overflow/;
    like($diag, qr/sanitizer report \S+\/asan\.$worker:\n.*?$asan/s,
         "that shows ASan's report");
    like($diag, qr/sanitizer report \S+\/ubsan\.$worker:\n.*?$ubsan/s,
         "and UBSan's");
    unlike($diag, qr/exited on signal 6/, 'but not the expected line');
};

# ---- whole test files, as prove sees them ---------------------------------

my $lib = "$FindBin::Bin/lib";

# runs a test file made of $body: (exit status, its TAP)
sub run_file {
    my ($name, $body) = @_;
    my $file = $t->dir . "/$name.t";
    spew($file, <<"EOF" . $body);
use strict;
use warnings;
use lib '$lib';
use Test::More;
use BulletDrop::Test qw(wait_until);
my \$server = "location / { return 204; }";
sub kill_worker {
    my (\$t) = \@_;
    my (\$old) = \$t->nginx->worker_pids;
    kill 'KILL', \$old;
    wait_until(sub { \$t->nginx->log_text =~ /exited on signal 9/ }, 10)
        or die 'no worker died';
}
EOF
    my ($status, $out, $err) = run_cmd([ $^X, $file ], check => 0);
    return ($status >> 8, $out . $err);
}

subtest 'a test file whose nginx went wrong fails, however it ends' => sub {
    # the line, as a diagnostic
    my $dead = qr{^\#\s+\S+\ \S+\ \[alert\]\ \d+\#\d+:\ worker\ process
                  \ \d+\ exited\ on\ signal\ 9$}mx;

    my ($exit, $tap) = run_file('done-testing', <<'EOF');
my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(db => undef, server => $server);
kill_worker($t);
ok(1, 'the story');
done_testing;
EOF
    isnt($exit, 0, 'done_testing: the file fails');
    like($tap, qr/^not ok 2 - nginx ran clean.*^1\.\.2$/ms,
         'with a failed test counted in the plan')
        or diag $tap;
    like($tap, $dead, 'that shows the line');

    ($exit, $tap) = run_file('fixed-plan', <<'EOF');
plan tests => 1;
my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(db => undef, server => $server);
kill_worker($t);
ok(1, 'the story');
EOF
    isnt($exit, 0, 'a fixed plan: the file fails');
    like($tap, $dead, 'and shows the line') or diag $tap;

    ($exit, $tap) = run_file('dies', <<'EOF');
my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(db => undef, server => $server);
kill_worker($t);
ok(1, 'the story');
die "the test died\n";
EOF
    isnt($exit, 0, 'a test that dies: the file fails');
    like($tap, $dead, 'and still shows the line') or diag $tap;

    ($exit, $tap) = run_file('expected', <<'EOF');
my $t = BulletDrop::Test->new(pg => 0);
$t->expect_log(qr/worker process \d+ exited on signal 9\z/);
$t->start_nginx(db => undef, server => $server);
kill_worker($t);
ok(1, 'the story');
done_testing;
EOF
    is($exit, 0, 'the same, expected: the file passes') or diag $tap;
    like($tap, qr/^ok 2 - nginx ran clean.*^1\.\.2$/ms,
         'with a passed check counted in the plan');

    ($exit, $tap) = run_file('fixed-plan-clean', <<'EOF');
plan tests => 1;
my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(db => undef, server => $server);
ok(1, 'the story');
EOF
    is($exit, 0, 'a clean nginx under a fixed plan adds no test')
        or diag $tap;
};

subtest 'an nginx of the test\'s own beside the fixture\'s is checked too'
=> sub {
    my $front = <<'EOF';
my $t = BulletDrop::Test->new(pg => 0);
my $x = $t->extra_nginx('front', expect => [ @expect ]);
my ($p, $port) = ($x->prefix, $x->port);
$x->write_conf(join "\n", "pid $p/logs/nginx.pid;", 'events {}', 'http {',
    "client_body_temp_path $p/tmp/body; proxy_temp_path $p/tmp/proxy;",
    "fastcgi_temp_path $p/tmp/fastcgi; uwsgi_temp_path $p/tmp/uwsgi;",
    "scgi_temp_path $p/tmp/scgi; access_log off;",
    "server { listen 127.0.0.1:$port; location / { return 204; } } }");
$x->start;
my ($worker) = $x->worker_pids;
kill 'KILL', $worker;
wait_until(sub { $x->log_text =~ /exited on signal 9/ }, 10)
    or die 'no worker died';
ok(1, 'the story');
done_testing;
EOF

    my ($exit, $tap) = run_file('extra', "my \@expect;\n$front");
    isnt($exit, 0, 'a worker of it killed: the file fails');
    like($tap, qr/^not ok 2 - the nginx in front ran clean/m, 'naming it')
        or diag $tap;
    like($tap, qr{^\#\s+\S+\ \S+\ \[alert\]\ \d+\#\d+:\ worker\ process
                  \ \d+\ exited\ on\ signal\ 9$}mx, 'showing the line');

    ($exit, $tap) = run_file('extra-expected',
        "my \@expect = (qr/worker process \\d+ exited on signal 9\\z/);\n"
        . $front);
    is($exit, 0, 'the same, expected: the file passes') or diag $tap;
    like($tap, qr/^ok 2 - the nginx in front ran clean/m, 'checked');
};

subtest 'a second node beside the fixture\'s: its own port and prefix, '
        . 'checked too; a node killed outright is no failure' => sub {
    my $story = <<'EOF';
my $t = BulletDrop::Test->new(pg => 0);
$t->start_nginx(server => $server);
my $b = $t->node('b', server => $server);
ok($b->port != $t->port && $b->prefix ne $t->nginx->prefix,
   'a port and a prefix of its own');
is($b->get('/')->{status}, 204, 'it answers');
ok(-f $b->prefix . '/logs/error.log', 'in its own logs');
if ($mode eq 'worker') {
    my ($worker) = $b->worker_pids;
    kill 'KILL', $worker;
    wait_until(sub { $b->nginx->log_text =~ /exited on signal 9/ }, 10)
        or die 'no worker died';
    $b->expect_log(qr/worker process \d+ exited on signal 9\z/) if $expect;
} else {
    $b->kill;
    $t->kill_nginx;
    ok(!eval { $b->get('/'); 1 } && !eval { $t->get('/'); 1 },
       'both killed: nobody answers');
}
done_testing;
EOF

    my ($exit, $tap) = run_file('node-worker',
                                "my (\$mode, \$expect) = ('worker', 0);\n"
                                . $story);
    isnt($exit, 0, 'a worker of node b killed: the file fails');
    like($tap, qr/^not ok \d+ - the nginx in b ran clean/m, 'naming it')
        or diag $tap;

    ($exit, $tap) = run_file('node-worker-expected',
                             "my (\$mode, \$expect) = ('worker', 1);\n"
                             . $story);
    is($exit, 0, 'the same, expected: the file passes') or diag $tap;

    ($exit, $tap) = run_file('node-killed',
                             "my (\$mode, \$expect) = ('kill', 0);\n"
                             . $story);
    is($exit, 0, 'node b and the fixture\'s nginx killed with SIGKILL: '
                 . 'the file passes') or diag $tap;
    like($tap, qr/^ok \d+ - the nginx in b ran clean/m, 'b checked');
    like($tap, qr/^ok \d+ - nginx ran clean/m, 'and A');
};

done_testing;
