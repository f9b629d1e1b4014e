#!/usr/bin/perl
# `make run` as a newcomer uses it: the stack comes up in the run dir and
# answers health, with an admin account, an API key and a ShareX config
# made for it and printed; uploads land in the run dir and are served at
# /static/; Ctrl-C stops nginx and PostgreSQL; a second run reuses the
# data and the account; `make stop` ends a stack running in the
# background; `make fsck` checks the uploads, running or not.

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
use BulletDrop::Test qw(free_port wait_until sample nginx_clean);
use BulletDrop::Util qw(top_dir slurp);
use JSON::PP ();

my $top = top_dir();
my $run_dir = tempdir('bulletdrop-run-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{BULLETDROP_KEEP});
chmod 0755, $run_dir;
my $port = free_port();
my %env = (BULLETDROP_RUN_DIR => $run_dir, BULLETDROP_PORT => $port);
my $pg = BulletDrop::Pg->new(dir => "$run_dir/pg");
my $http = BulletDrop::HTTP->new(port => $port);
my @started;
my %first_run;

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

# what the banner says about the admin account
sub banner_admin {
    my ($text) = @_;
    my %a;
    ($a{username}) = $text =~ /^\s+Admin\s+(\S+)\s*$/m;
    ($a{password}) = $text =~ /^\s+Password\s+(\S+)\s*$/m;
    ($a{api_key}) = $text =~ /^\s+API key\s+(\S+)\s*$/m;
    return \%a;
}

sub file_mode { (stat $_[0])[2] & 07777 }

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

    my $secret = "$run_dir/jwt.secret";
    ok(-f $secret, 'a JWT secret in the run dir');
    is(sprintf('%04o', file_mode($secret)), '0600',
       'readable by its owner only');
    like(slurp($secret), qr/\A[A-Za-z0-9_-]{64}\z/,
         '64 characters of base64url');

    my $printed = banner_admin($text);
    is($printed->{username}, 'admin', 'the banner names the admin user');
    cmp_ok(length($printed->{password} // ''), '>=', 16,
           'with a password of 16 characters or more');
    like($printed->{api_key}, qr/\Abd_[A-Za-z0-9_-]{43}\z/, 'and an API key');

    my $file = "$run_dir/admin.json";
    ok(-f $file, 'admin.json in the run dir');
    is(sprintf('%04o', file_mode($file)), '0600',
       'admin.json is readable by its owner only');
    my $saved = eval { JSON::PP->new->decode(slurp($file)) } // {};
    is_deeply({ map { $_ => $saved->{$_} } qw(username password api_key) },
              $printed, 'admin.json holds what the banner printed');

    my $login = $http->request('POST', '/api/auth/login',
                               json => { username => 'admin',
                                         password => $printed->{password} });
    is($login->{status}, 200, 'the printed password logs in');
    my $token = $login->{json}{access_token};
    $first_run{token} = $token;

    my $me = $http->get('/api/users/me', token => $printed->{api_key});
    is($me->{status}, 200, 'the printed API key authenticates');
    is($me->{json}{username}, 'admin', 'as admin');
    is($me->{json}{role}, 'admin', 'whose role is admin');

    my ($sxcu) = $text =~ /^\s+ShareX\s+(\S+)\s*$/m;
    is($sxcu, "$run_dir/bulletdrop.sxcu", 'the banner names a ShareX config '
       . 'in the run dir');
    is(sprintf('%04o', file_mode("$run_dir/bulletdrop.sxcu")), '0600',
       'readable by its owner only');
    my $config = eval {
        JSON::PP->new->decode(slurp("$run_dir/bulletdrop.sxcu"))
    } // {};
    is_deeply([ $config->{RequestURL}, $config->{Headers} ],
              [ "http://127.0.0.1:$port/api/uploads/sharex",
                { Authorization => "Bearer $printed->{api_key}" } ],
              'that uploads to this stack with the printed API key');

    my $png = sample('png', 4000);
    my $up = $http->request('POST', '/api/uploads',
                            token => $printed->{api_key},
                            headers => [ 'X-Filename' => 'dev.png' ],
                            body => $png);
    is($up->{status}, 201, 'an upload with the API key: 201');
    my $id = $up->{json}{id} // '';
    is(eval { slurp("$run_dir/uploads/images/$id.png") }, $png,
       'lands in <run dir>/uploads/images/<id>.png');
    is($up->{json}{url}, "http://img.localhost/static/images/$id.png",
       'its link is on img.localhost, the first domain make run seeded');
    is($http->get("/static/images/$id.png", host => "img.localhost:$port")
         ->{body}, $png, 'and is served there');
    is($http->get("/static/images/$id.png")->{status}, 404,
       'but not on the main host');
    is($http->get('/static/.tmp/', host => 'img.localhost')->{status}, 404,
       '/static/.tmp/ is not served');
    like($text, qr{^\s+Files on\s+http://img\.localhost:$port/ }m,
         'the banner names the file domains');

    my ($fsck, $fsck_out) = make_bg('fsck');
    is(wait_exit($fsck, 60), 0, 'make fsck on the running stack: all is well')
        or diag read_until($fsck_out, qr/\z\A/, 1);

    %first_run = (%first_run, %$printed, secret => slurp($secret),
                  file => slurp($file));

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

    my $printed = banner_admin($text);
    is_deeply($printed, { map { $_ => $first_run{$_} }
                          qw(username password api_key) },
              'the banner prints the same admin, password and API key');
    is(slurp("$run_dir/admin.json"), $first_run{file},
       'admin.json is left as it was');
    is(slurp("$run_dir/jwt.secret"), $first_run{secret},
       'the JWT secret is kept');
    is($pg->psql("SELECT count(*) FROM users")->[0][0], 1,
       'no second user was made');

    my $me = $http->get('/api/users/me', token => $first_run{api_key});
    is($me->{json}{role}, 'admin', 'the API key still works');
    is($http->get('/api/users/me', token => $first_run{token})->{status},
       200, 'and so does a token from the first run');

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

subtest 'a lost admin.json is reported, and the stack still runs' => sub {
    unlink "$run_dir/admin.json" or die "unlink: $!";

    my ($pid, $out) = make_bg('run');
    my $text = read_until($out, qr/Ctrl-C stops/, 120);

    like($text, qr/user 'admin' exists but \S*admin\.json is missing/,
         'the banner says the admin exists without its file') or diag $text;
    unlike($text, qr/^\s+Password/m, 'and prints no password');
    is($http->get('/api/health')->{status}, 200, 'the stack serves');
    ok(!-e "$run_dir/admin.json", 'no admin.json is made up');

    my ($stop, $stop_out) = make_bg('stop');
    is(wait_exit($stop, 60), 0, 'make stop succeeds')
        or diag read_until($stop_out, qr/\z\A/, 1);
    is(wait_exit($pid, 30), 0, 'make run ends cleanly');
};

subtest 'make fsck on a stopped stack finds a stray file, and leaves the '
        . 'stack stopped' => sub {
    my $stray = "$run_dir/uploads/documents/" . ('Z' x 16) . '.txt';
    open my $fh, '>', $stray or die "$stray: $!";
    close $fh;

    my ($pid, $out) = make_bg('fsck');
    my $said = read_until($out, qr/(?!)/, 60);    # all it says, to the end
    isnt(wait_exit($pid, 60), 0, 'make fsck fails');
    like($said, qr/no upload for file: \Q$stray\E/, 'naming the stray file')
        or diag $said;
    ok(!$pg->running, 'PostgreSQL is stopped again afterwards');
    unlink $stray;
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

nginx_clean("$run_dir/nginx", "make run's nginx ran clean, every run");

done_testing;
