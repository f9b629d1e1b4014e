#!/usr/bin/perl
# `make run` as a newcomer uses it: the stack comes up in the run dir and
# answers health; Ctrl-C stops nginx and PostgreSQL; a second run reuses
# the data; `make stop` ends a stack running in the background.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use POSIX qw(setsid :sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP;
use BulletDrop::Pg;
use BulletDrop::Test qw(free_port wait_until);
use BulletDrop::Util qw(top_dir slurp);

my $top = top_dir();
my $run_dir = tempdir('bulletdrop-run-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{BULLETDROP_KEEP});
chmod 0755, $run_dir;
my $port = free_port();
my %env = (BULLETDROP_RUN_DIR => $run_dir, BULLETDROP_PORT => $port);
my $pg = BulletDrop::Pg->new(dir => "$run_dir/pg");
my $http = BulletDrop::HTTP->new(port => $port);
my @started;

# starts `make <target>` in its own session, as a terminal would run it;
# returns (pid, output handle)
sub make_bg {
    my ($target) = @_;

    pipe my $r, my $w or die "pipe: $!";
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        close $r;
        setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $w;
        open STDERR, '>&', $w;
        @ENV{keys %env} = values %env;
        { no warnings 'exec';
          exec 'make', '--no-print-directory', '-C', $top, $target; }
        POSIX::_exit(127);
    }

    close $w;
    push @started, $pid;
    return ($pid, $r);
}

# reads what the command prints until $re matches or the time runs out
sub read_until {
    my ($fh, $re, $timeout) = @_;

    my $sel = IO::Select->new($fh);
    my $out = '';
    my $deadline = time + $timeout;

    while (time < $deadline && $out !~ $re) {
        next unless $sel->can_read(0.2);
        sysread($fh, my $buf, 4096) or last;
        $out .= $buf;
    }

    return $out;
}

sub wait_exit {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    return undef;
}

sub port_closed {
    return !IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Timeout => 1);
}

# a failed test must stop its own stack, never the default run dir's
END {
    local $?;
    local @ENV{keys %env} = values %env;
    kill 'TERM', -$_ for @started;
    system('make', '-s', '-C', $top, 'stop') if @started;
}

subtest 'make run brings the stack up and Ctrl-C takes it down' => sub {
    my ($pid, $out) = make_bg('run');
    my $text = read_until($out, qr/Ctrl-C stops/, 120);

    like($text, qr/creating a PostgreSQL cluster/, 'a new cluster')
        or diag $text;
    like($text, qr/applied migration 001_schema_migrations/,
         'migrations applied');
    like($text, qr{URL\s+http://127\.0\.0\.1:$port/}, 'prints the URL');
    like($text, qr/\{"status":"ok","db":"ok"\}/, 'and a healthy answer');

    my $res = $http->get('/api/health');
    is($res->{status}, 200, 'health answers 200 on BULLETDROP_PORT');
    is_deeply($res->{json}, { status => 'ok', db => 'ok' }, 'ok, ok');

    $pg->psql('CREATE TABLE kept (note text); '
              . "INSERT INTO kept VALUES ('still here')");

    kill 'INT', -$pid;    # what Ctrl-C sends to the foreground job
    my $status = wait_exit($pid, 60);
    ok(defined $status, 'make run ends after Ctrl-C');
    ok(port_closed(), 'nginx is gone');
    ok(!$pg->running, 'PostgreSQL is stopped');
};

subtest 'a second make run reuses the data; make stop ends it' => sub {
    my ($pid, $out) = make_bg('run');
    my $text = read_until($out, qr/Ctrl-C stops/, 120);

    like($text, qr/reusing the PostgreSQL cluster/, 'the cluster is reused')
        or diag $text;
    unlike($text, qr/applied migration/, 'nothing left to migrate');
    is($pg->psql('SELECT note FROM kept')->[0][0], 'still here',
       'the data from the first run is there');

    my ($again, $again_out) = make_bg('run');
    my $refusal = read_until($again_out, qr/make stop/, 60);
    like($refusal, qr/already runs in .*run 'make stop' first/,
         'a third make run on the same run dir is refused');
    is(wait_exit($again, 30) >> 8, 2, 'make reports the failure');
    is($http->get('/api/health')->{status}, 200,
       'and the running stack is untouched');

    my ($stop, $stop_out) = make_bg('stop');
    is(wait_exit($stop, 60), 0, 'make stop succeeds')
        or diag read_until($stop_out, qr/\z\A/, 1);
    my $status = wait_exit($pid, 30);
    is($status, 0, 'the foreground make run ends cleanly');
    ok(port_closed(), 'nginx is gone');
    ok(!$pg->running, 'PostgreSQL is stopped');
};

subtest 'make migrate on a stopped stack leaves it stopped' => sub {
    my $pg_log = "$run_dir/pg/postgresql.log";
    my $starts = sub { scalar(() = slurp($pg_log) =~ /ready to accept/g) };
    my $before = $starts->();

    my ($pid, $out) = make_bg('migrate');
    is(wait_exit($pid, 60), 0, 'make migrate succeeds')
        or diag read_until($out, qr/\z\A/, 1);
    is($starts->(), $before + 1, 'it started PostgreSQL for the occasion');
    ok(!$pg->running, 'PostgreSQL is stopped again afterwards');
};

done_testing;
