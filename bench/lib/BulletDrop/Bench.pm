package BulletDrop::Bench;

# Helpers shared by the benchmarks (bench/upload.pl, bench/serve.pl): the
# settings, the step lines, the fixture, child processes, the test files
# and CPU accounting.

use strict;
use warnings;

use Digest::SHA ();
use Exporter qw(import);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::Nginx;
# loaded before our END, which therefore runs before the fixture's teardown
use BulletDrop::Test ();
use BulletDrop::Util qw(slurp);

our @EXPORT_OK = qw(env_num loadavg say_step elapsed fixture spawn reap
                    ended run_out png_bytes png_file ncpu cpu_of client_cpu
                    machine_cpu);

# the run's clock: the step lines and the whole run's time
my $started = time;

# children to kill if the run ends early (wrk, curl, perf)
my %children;
# the fixture's temp directory, where run_out() puts the output
my $dir;

END {
    local $?;
    kill 'TERM', keys %children if %children;
}

sub env_num {
    my ($name, $default) = @_;
    my $v = $ENV{$name} // return $default;
    die "$name must be a number, not '$v'\n" unless $v =~ /\A[0-9]+\z/;
    return $v;
}

sub loadavg {
    open my $fh, '<', '/proc/loadavg' or return '?';
    return (split ' ', scalar <$fh>)[0];
}

sub elapsed { time - $started }

sub say_step { printf "[%5.1fs] %s\n", elapsed(), "@_" }

# The test suite's fixture (PostgreSQL, and nginx with the module once
# the script starts it); its temp directory takes run_out()'s output.
sub fixture {
    say_step('starting PostgreSQL and BulletDrop (the test fixture)');
    my $t = BulletDrop::Test->new;
    $dir = $t->dir;

    # nginx runs a private copy of the module: a rebuild during the run
    # (make copies the new .so over the old one, in place) would crash its
    # workers
    my $so = BulletDrop::Nginx::module_path();
    my $copy = "$dir/ngx_http_bulletdrop_module.so";
    system('cp', $so, $copy) == 0 or die "cannot copy $so\n";
    $ENV{BULLETDROP_MODULE} = $copy;
    return $t;
}

# ---- processes ---------------------------------------------------------

# Starts @cmd with its stdout and stderr to $out (a path); returns its pid.
sub spawn {
    my ($out, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    $children{$pid} = 1;
    return $pid;
}

# Whether $pid has ended, without waiting; if so, $? is its exit status.
sub ended {
    my ($pid) = @_;
    return 0 unless waitpid($pid, WNOHANG) == $pid;
    delete $children{$pid};
    return 1;
}

# Waits for $pid up to $timeout seconds (then kills it); its exit status.
sub reap {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        return $? if ended($pid);
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            delete $children{$pid};
            die "'$pid' took longer than $timeout s: killed\n";
        }
        sleep 0.05;
    }
}

# Runs @cmd for up to $timeout seconds: its exit status and its output.
sub run_out {
    my ($timeout, @cmd) = @_;
    my $out = "$dir/cmd.out";
    my $status = reap(spawn($out, @cmd), $timeout);
    return ($status, slurp($out));
}

# ---- files -------------------------------------------------------------

# 1 MB that looks like compressed image data (no structure a multipart
# parser could trip on more than a real screenshot would)
sub noise_block {
    my ($seed) = @_;
    my $out = '';
    my $i = 0;
    $out .= Digest::SHA::sha512("$seed:" . $i++) while length $out < 1 << 20;
    return $out;
}

my $PNG_SIG = "\x89PNG\r\n\x1a\n";

# $size bytes the server takes as a PNG: the signature, then noise
sub png_bytes {
    my ($size, $seed) = @_;
    my $block = noise_block($seed);
    my $out = $PNG_SIG;
    $out .= $block while length $out < $size;
    return substr $out, 0, $size;
}

# the same bytes written to $path a block at a time (a 50 MB file is not
# held in memory); returns $path
sub png_file {
    my ($path, $size, $seed) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $PNG_SIG;
    my $left = $size - length $PNG_SIG;
    my $block = noise_block($seed);
    while ($left > 0) {
        my $n = $left < length $block ? $left : length $block;
        print {$fh} substr $block, 0, $n;
        $left -= $n;
    }
    close $fh or die "$path: $!";
    return $path;
}

# ---- CPU accounting ----------------------------------------------------

my $tick = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my $ncpu = 0;
{
    open my $fh, '<', '/proc/stat' or die "/proc/stat: $!";
    $ncpu = grep { /^cpu\d/ } <$fh>;
}

# the machine's cores
sub ncpu { $ncpu }

# CPU seconds (user + system, all threads) the processes have used so far
sub cpu_of {
    my $sum = 0;
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my ($rest) = <$fh> =~ /\)\s+(.*)/s or next;
        my @f = split ' ', $rest;
        $sum += $f[11] + $f[12];
    }
    return $sum / $tick;
}

# what our children that ended (wrk) used
sub client_cpu {
    my (undef, undef, undef, $cu, $cs) = POSIX::times();
    return ($cu + $cs) / $tick;
}

# CPU seconds the whole machine has been busy (not idle, not waiting)
sub machine_cpu {
    open my $fh, '<', '/proc/stat' or die "/proc/stat: $!";
    my ($line) = <$fh>;
    my (undef, @f) = split ' ', $line;
    my $busy = 0;
    $busy += $f[$_] // 0 for 0, 1, 2, 5, 6, 7;    # not idle, not iowait
    return $busy / $tick;
}

1;
