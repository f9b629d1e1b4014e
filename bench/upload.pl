#!/usr/bin/perl

# The upload benchmark; run it through bench/upload.sh (see bench/README.md).
#
# In one run, on this machine, all on 127.0.0.1:
#   1. a throwaway BulletDrop stack (PostgreSQL + nginx with the module, the
#      test suite's fixture), a user and an API key made through the API;
#   2. a second, plain nginx (the same binary) whose DAV module takes PUT;
#   3. wrk, with the same settings and the same 300 KB PNG, against DAV PUT
#      and BulletDrop's POST /api/uploads/sharex (bulletdrop_fsync off) in
#      turns, then BulletDrop with bulletdrop_fsync on;
#   4. 32 parallel 50 MB uploads against one worker of each server, its
#      VmRSS read from /proc every 100 ms;
#   5. a table.  Everything is stopped and removed at the end, however the
#      run ends.
#
# Settings, from the environment (defaults in brackets):
#   BENCH_DURATION [15]  seconds of each measured wrk run
#   BENCH_ROUNDS [3]     how many times DAV and BulletDrop take turns
#   BENCH_WARMUP [3]     seconds of wrk before a server's first run, not
#                        counted
#   BENCH_THREADS [2], BENCH_CONNECTIONS [16]   wrk -t, -c
#   BENCH_WORKERS [2]    worker_processes of both servers for the wrk runs
#   BENCH_SIZE [307200]  bytes of the small file
#   BENCH_BIG_COUNT [32], BENCH_BIG_SIZE [52428800], BENCH_BIG_RATE [8M]
#                        the parallel uploads: how many, bytes, and curl's
#                        --limit-rate each (so that all are under way at once)
#   BENCH_SKIP           comma-separated parts to leave out: dav, off, on, rss
#   BENCH_PROFILE [0]    1: perf record the workers during the first
#                        fsync-off run and print the top of perf report
#   BENCH_KEEP           keep the temp directory (BULLETDROP_KEEP does too)
#   TMPDIR               where the temp directory goes (both servers' files,
#                        PostgreSQL): /tmp unless set

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

BEGIN { $ENV{BULLETDROP_KEEP} = 1 if $ENV{BENCH_KEEP} }

use BulletDrop::Nginx;
use BulletDrop::Test qw(free_port);
use BulletDrop::Util qw(slurp);
use BulletDrop::Bench qw(env_num loadavg say_step elapsed fixture spawn
                         reap ended run_out png_file ncpu cpu_of
                         client_cpu machine_cpu);

$| = 1;

my %cfg = (
    duration    => env_num('BENCH_DURATION', 15),
    warmup      => env_num('BENCH_WARMUP', 3),
    threads     => env_num('BENCH_THREADS', 2),
    connections => env_num('BENCH_CONNECTIONS', 16),
    workers     => env_num('BENCH_WORKERS', 2),
    size        => env_num('BENCH_SIZE', 300 * 1024),
    big_count   => env_num('BENCH_BIG_COUNT', 32),
    big_size    => env_num('BENCH_BIG_SIZE', 50 * 1024 * 1024),
    big_rate    => $ENV{BENCH_BIG_RATE} // '8M',
    rounds      => env_num('BENCH_ROUNDS', 3),
    profile     => $ENV{BENCH_PROFILE} // 0,
);
my %skip = map { $_ => 1 } split /,/, $ENV{BENCH_SKIP} // '';

die "BENCH_BIG_RATE must look like 8M or 500K\n"
    unless $cfg{big_rate} =~ /\A[0-9]+[KMG]?\z/;

my $wrk_dir = "$FindBin::Bin/wrk";

my $load_start = loadavg();
my $ncpu = ncpu();

# the plain nginx with DAV, stopped before the fixture tears down
my $dav;

END {
    local $?;
    $dav->stop('TERM') if $dav;
}

# ---- files -------------------------------------------------------------

sub empty_dir {
    my ($dir) = @_;
    opendir my $dh, $dir or return 0;
    my @files = grep { -f "$dir/$_" } readdir $dh;
    unlink map { "$dir/$_" } @files;
    return scalar @files;
}

sub count_files {
    my ($dir) = @_;
    opendir my $dh, $dir or return 0;
    return scalar grep { !/\A\.\.?\z/ } readdir $dh;
}

# temp files in $dir: those named there, and those with no name
# (O_TMPFILE) that process $pid has open
sub count_temp_files {
    my ($pid, $dir) = @_;
    my $n = count_files($dir);
    opendir my $dh, "/proc/$pid/fd" or return $n;
    for my $fd (grep { /\A\d+\z/ } readdir $dh) {
        my $to = readlink "/proc/$pid/fd/$fd" // next;
        $n++ if $to =~ m{\A\Q$dir\E/#\d+ \(deleted\)\z};
    }
    return $n;
}

# ---- the stacks --------------------------------------------------------

sub dav_conf {
    my ($prefix, $port, $workers) = @_;
    return <<"EOF";
worker_processes $workers;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;

    server {
        listen 127.0.0.1:$port;

        location /dav/ {
            root $prefix/html;
            # a new file for every request, however alike the requests
            rewrite ^ /dav/\$request_id.png break;
            dav_methods PUT;
            client_max_body_size 100m;
            # the same filesystem as the root: the body is renamed in place
            client_body_temp_path $prefix/tmp/dav;
        }
    }
}
EOF
}

sub start_dav {
    my ($workers) = @_;
    $dav->stop('QUIT') if $dav;
    $dav->write_conf(dav_conf($dav->prefix, $dav->port, $workers));
    $dav->start;
}

sub bd_options {
    my (%o) = @_;
    return (registration => 'open', workers => $cfg{workers},
            fsync => 'off', max_file_size => '100m', %o);
}

sub one_worker {
    my ($nginx) = @_;
    my @pids = $nginx->worker_pids;
    die "expected one worker, found @pids\n" unless @pids == 1;
    return $pids[0];
}

# ---- wrk ---------------------------------------------------------------

sub wrk {
    my ($label, $port, $script, $duration, @args) = @_;

    my @cmd = ('wrk', "-t$cfg{threads}", "-c$cfg{connections}",
               "-d${duration}s", '--latency', '--timeout', '10s',
               '-s', "$wrk_dir/$script", "http://127.0.0.1:$port", '--',
               @args);
    my ($status, $out) = run_out($duration + 30, @cmd);
    die "wrk failed ($status):\n$out" if $status;

    my ($line) = $out =~ /^RESULT (.*)$/m or die "no RESULT from wrk:\n$out";
    my %r = map { split /=/, $_, 2 } split ' ', $line;
    $r{label} = $label;
    $r{raw} = $out;
    $r{errors} = $r{connect} + $r{read} + $r{write} + $r{status}
               + $r{timeout};
    return \%r;
}

sub show_wrk {
    my ($r) = @_;
    (my $raw = $r->{raw}) =~ s/^RESULT.*\n//m;
    $raw =~ s/^/    /mg;
    print $raw;
}

# ---- set up ------------------------------------------------------------

say_step("load average $load_start on $ncpu cores (the 'other' column "
         . 'tells whether anything else took CPU during the runs)');
my $t = fixture();
my $dir = $t->dir;
$t->start_nginx(bd_options());

my $user = $t->new_user('bench', key => 1);
my $key = $user->{key};

$dav = BulletDrop::Nginx->new(prefix => "$dir/dav", port => free_port());
# the workers run as nobody (the master is root): they must write there
make_path("$dir/dav/html/dav");
my (undef, undef, $nobody_uid, $nobody_gid) = getpwnam('nobody');
chown $nobody_uid, $nobody_gid, "$dir/dav/html/dav"
    if $> == 0 && defined $nobody_uid;
chmod 0777, "$dir/dav/html/dav" unless $> == 0;
say_step('starting nginx with DAV PUT on port ' . $dav->port);
start_dav($cfg{workers});

my $small = png_file("$dir/shot.png", $cfg{size}, 'small');
my $small_sha = sha256_hex(slurp($small));

# one of each, checked byte for byte before anything is measured
{
    my ($st, $out) = run_out(30, 'curl', '-sS', '-w', '\n%{http_code}',
        '-H', "Authorization: Bearer $key",
        '-F', "file=\@$small;type=image/png;filename=shot.png",
        "http://127.0.0.1:" . $t->port . '/api/uploads/sharex');
    my ($body, $code) = $out =~ /\A(.*)\n(\d+)\z/s
        or die "curl to BulletDrop: $out\n";
    die "BulletDrop did not take an upload: $code $body\n"
        . "(is src/ngx_http_bulletdrop_upload.c finished?)\n"
        unless $code == 201;
    my $json = JSON::PP::decode_json($body);
    die "BulletDrop stored other bytes: $json->{sha256}\n"
        unless $json->{sha256} eq $small_sha;
    my ($stored) = $json->{url} =~ m{/static/(.*)\z};
    die "the stored file differs\n"
        unless sha256_hex(slurp($t->upload_dir . "/$stored")) eq $small_sha;

    ($st, $out) = run_out(30, 'curl', '-sS', '-o', '/dev/null', '-w',
        '%{http_code}', '-T', $small,
        'http://127.0.0.1:' . $dav->port . '/dav/check.png');
    die "DAV PUT answered $out\n" unless $out eq '201';
    opendir my $dh, "$dir/dav/html/dav" or die "$dir/dav/html/dav: $!";
    my @put = grep { /\.png\z/ } readdir $dh;
    die "DAV stored @put\n" unless @put == 1
        && sha256_hex(slurp("$dir/dav/html/dav/$put[0]")) eq $small_sha;
    say_step("both servers store the same $cfg{size} bytes (sha256 "
             . substr($small_sha, 0, 12) . '...)');
}

my (%results, %warm);

# The files of one run go before the next: dirty pages of a deleted file
# are dropped, not written, so no run pays for another's writeback.
sub clean_all {
    empty_dir("$dir/dav/html/dav");
    empty_dir($t->upload_dir . '/images');
    system('sync');
}

sub bd_rows {
    return $t->pg->psql('SELECT count(*) FROM uploads')->[0][0];
}

sub throughput {
    my ($name, $label, $port, $script, @args) = @_;

    clean_all();
    if ($cfg{warmup} && !$warm{$name}++) {
        say_step("$label: ${\ $cfg{warmup}}s warm-up");
        wrk($label, $port, $script, $cfg{warmup}, @args);
        clean_all();
    }

    my ($perf, $perf_data);
    if ($cfg{profile} && $name eq 'off' && !$results{off}) {
        $perf_data = "$dir/perf.data";
        my @pids = $t->nginx->worker_pids;
        $perf = spawn("$dir/perf.out", 'perf', 'record', '-g', '-o',
                      $perf_data, '-p', join(',', @pids));
    }

    my $rows = $name eq 'dav' ? 0 : bd_rows();
    my @server = $name eq 'dav' ? $dav->worker_pids : $t->nginx->worker_pids;
    my @db = $name eq 'dav' ? () : $t->pg->processes;
    my @before = (cpu_of(@server), cpu_of(@db), client_cpu(), machine_cpu());

    say_step("$label: ${\ $cfg{duration}}s measured, wrk -t$cfg{threads} "
             . "-c$cfg{connections}");
    my $r = wrk($label, $port, $script, $cfg{duration}, @args);

    my @after = (cpu_of(@server), cpu_of(@db), client_cpu(), machine_cpu());
    my ($srv, $db, $cli, $all) = map { $after[$_] - $before[$_] } 0 .. 3;
    my $secs = $r->{duration_us} / 1e6;
    $r->{srv_ms} = 1000 * $srv / ($r->{requests} || 1);
    $r->{db_ms} = 1000 * $db / ($r->{requests} || 1);
    $r->{cli_ms} = 1000 * $cli / ($r->{requests} || 1);
    $r->{other_cores} = ($all - $srv - $db - $cli) / $secs;
    $r->{busy_cores} = $all / $secs;
    show_wrk($r);
    printf "    CPU per request: nginx workers %.3f ms, PostgreSQL %.3f ms, "
         . "wrk %.3f ms\n    cores busy %.2f of %d, of which other "
         . "processes %.2f\n", @$r{qw(srv_ms db_ms cli_ms busy_cores)},
         $ncpu, $r->{other_cores};

    if ($perf) {
        kill 'INT', $perf;
        reap($perf, 60);
        for my $sort ('dso', 'dso,symbol') {
            my ($st, $out) = run_out(120, 'perf', 'report', '-i',
                $perf_data, '--no-children', '--stdio', '--sort', $sort,
                '-g', 'none', '--percent-limit', '0.7');
            my @lines = map { s/\s+-\s+-\s*$//r }
                        grep { /\S/ && !/^#/ } split /\n/, $out;
            splice @lines, 25 if @lines > 25;
            print "    perf report --sort $sort (nginx workers):\n";
            print map { "      $_\n" } @lines;
        }
    }

    # every answer was a 201 and made a row, or the figures mean nothing
    if ($name eq 'dav') {
        $r->{stored} = count_files("$dir/dav/html/dav");
    } else {
        $r->{stored} = bd_rows() - $rows;
    }
    push @{ $results{$name} }, $r;
    return $r;
}

# ---- throughput ------------------------------------------------------

my $bd_port = $t->port;

# DAV and BulletDrop take turns, so that a drift of the machine (page
# cache, writeback, a neighbour) falls on both
for my $round (1 .. $cfg{rounds}) {
    my $n = $cfg{rounds} > 1 ? " (round $round of $cfg{rounds})" : '';
    throughput('dav', "DAV PUT$n", $dav->port, 'dav.lua', $small)
        unless $skip{dav};
    throughput('off', "BulletDrop, fsync off$n", $bd_port, 'sharex.lua',
               $small, $key) unless $skip{off};
}

unless ($skip{on}) {
    $t->restart_nginx(bd_options(fsync => 'on'));
    throughput('on', 'BulletDrop, fsync on', $bd_port, 'sharex.lua', $small,
               $key);
}
clean_all();

# ---- memory ------------------------------------------------------------

sub status_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return {};
    my %s;
    while (<$fh>) {
        $s{$1} = $2 if /^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):\s+(\d+)/;
    }
    return \%s;
}

# The worker of $nginx while $count curl uploads of $big run at once:
# {base, peak, hwm, codes => [...], most => most temp files seen at once}
sub rss_run {
    my ($label, $nginx, $tmp_dir, $curl) = @_;

    my $pid = one_worker($nginx);
    my $base = status_of($pid);
    say_step("$label: $cfg{big_count} uploads of $cfg{big_size} bytes at "
             . "$cfg{big_rate}/s each; worker $pid, VmRSS "
             . "$base->{VmRSS} kB");

    my @curls;
    for my $i (1 .. $cfg{big_count}) {
        push @curls, spawn("$dir/big.$i.out", 'curl', '-sS', '-o',
                           "$dir/big.$i.body", '-w', '%{http_code}',
                           '--max-time', '120', '--limit-rate',
                           $cfg{big_rate}, $curl->($i));
    }

    my ($peak, $anon, $most, @trace) = (0, 0, 0);
    my $t0 = time;
    my %alive = map { $_ => 1 } @curls;
    while (%alive) {
        my $s = status_of($pid);
        my $rss = $s->{VmRSS} // 0;
        my $tmp = count_temp_files($pid, $tmp_dir);
        $peak = $rss if $rss > $peak;
        $anon = $s->{RssAnon} if ($s->{RssAnon} // 0) > $anon;
        $most = $tmp if $tmp > $most;
        push @trace, [ time - $t0, $rss, $s->{RssAnon} // 0, $tmp ];
        for my $c (keys %alive) {
            delete $alive{$c} if ended($c);
        }
        die "$label: the uploads took longer than 180 s\n"
            if time - $t0 > 180;
        sleep 0.1;
    }
    my $end = status_of($pid);

    my @codes = map { my $f = "$dir/big.$_.out"; -f $f ? slurp($f) : '?' }
                1 .. $cfg{big_count};
    my $ok = grep { $_ eq '201' } @codes;

    # one line a second
    my $next = 0;
    for my $p (@trace) {
        next if $p->[0] < $next;
        printf "    %5.1fs  VmRSS %7d kB  RssAnon %7d kB  temp files %2d\n",
               @$p;
        $next = int($p->[0]) + 1;
    }
    printf "    %5.1fs  all answered: %d of %d 201 (others: %s)\n",
           time - $t0, $ok, $cfg{big_count},
           join(' ', grep { $_ ne '201' } @codes) || 'none';

    return { base => $base->{VmRSS}, peak => $peak, after => $end->{VmRSS},
             anon_base => $base->{RssAnon}, anon_peak => $anon,
             ok => $ok, most => $most, secs => time - $t0 };
}

unless ($skip{rss}) {
    my $big = png_file("$dir/big.png", $cfg{big_size}, 'big');

    $t->restart_nginx(bd_options(workers => 1));
    # the worker's first requests set up what every later one reuses
    for (1 .. 2) {
        my ($st, $out) = run_out(30, 'curl', '-sS', '-o', '/dev/null', '-w',
            '%{http_code}', '-H', "Authorization: Bearer $key", '-F',
            "file=\@$small;type=image/png", "http://127.0.0.1:$bd_port"
            . '/api/uploads/sharex');
        die "warm-up upload: $out\n" unless $out eq '201';
    }
    $results{rss_bd} = rss_run('BulletDrop memory', $t->nginx,
        $t->upload_dir . '/.tmp', sub {
            ('-H', "Authorization: Bearer $key",
             '-F', "file=\@$big;type=image/png;filename=big$_[0].png",
             "http://127.0.0.1:$bd_port/api/uploads/sharex");
        });
    empty_dir($t->upload_dir . '/images');

    start_dav(1);
    for (1 .. 2) {
        run_out(30, 'curl', '-sS', '-o', '/dev/null', '-T', $small,
                'http://127.0.0.1:' . $dav->port . "/dav/warm$_.png");
    }
    $results{rss_dav} = rss_run('DAV PUT memory', $dav, "$dir/dav/tmp/dav",
        sub {
            ('-T', $big, 'http://127.0.0.1:' . $dav->port
                         . "/dav/big$_[0].png");
        });
    clean_all();
}

# ---- the table ---------------------------------------------------------

sub ms { sprintf '%.2f ms', $_[0] / 1000 }

print "\n";
printf "BulletDrop upload benchmark, %s, Linux %s, %d cores, load "
     . "average %s at the start, %s at the end\n", scalar(localtime),
       (POSIX::uname())[2], $ncpu, $load_start, loadavg();
printf "wrk -t%d -c%d -d%ds, %d-byte PNG, worker_processes %d\n\n",
       @cfg{qw(threads connections duration size workers)};

# every round's figures, then the rounds together: requests over time for
# the rate, the worst round's p99
sub total {
    my ($runs) = @_;
    my ($req, $us, $err, $stored, $cpu, $other) = (0, 0, 0, 0, 0, 0);
    for my $r (@$runs) {
        $cpu += ($r->{srv_ms} + $r->{db_ms}) * $r->{requests};
        $other += $r->{other_cores} * $r->{duration_us};
        $req += $r->{requests};
        $us += $r->{duration_us};
        $err += $r->{errors};
        $stored += $r->{stored};
    }
    my @p50 = sort { $a <=> $b } map { $_->{p50_us} } @$runs;
    my @p99 = sort { $a <=> $b } map { $_->{p99_us} } @$runs;
    return { rps => $req / ($us / 1e6), requests => $req, errors => $err,
             stored => $stored, p50_us => $p50[$#p50 / 2],
             p99_us => $p99[-1], cpu_ms => $cpu / ($req || 1),
             other_cores => $other / ($us || 1) };
}

my %kind = (dav => 'DAV PUT', off => 'BulletDrop, fsync off',
            on => 'BulletDrop, fsync on');
my %all = map { $_ => total($results{$_}) }
          grep { $results{$_} } keys %kind;

printf "%-36s %7s %9s %9s %7s %6s %6s %8s %6s\n",
       '', 'req/s', 'p50', 'p99', 'MB/s', 'errors', 'x DAV', 'CPU/req',
       'other';
my $row = sub {
    my ($label, $r, $dav) = @_;
    printf "%-36s %7.0f %9s %9s %7.1f %6d %6s %5.2f ms %6.2f\n", $label,
           $r->{rps}, ms($r->{p50_us}), ms($r->{p99_us}),
           $r->{rps} * $cfg{size} / 1e6, $r->{errors},
           $dav ? sprintf('%.2f', $r->{rps} / $dav->{rps}) : '-',
           $r->{cpu_ms} // $r->{srv_ms} + $r->{db_ms}, $r->{other_cores};
};
for my $name (qw(dav off on)) {
    my $runs = $results{$name} or next;
    for my $i (0 .. $#$runs) {
        # a round against its own DAV round; fsync on against all of them
        my $dav = !$results{dav} ? undef
                : $name eq 'off' ? $results{dav}[$i] // $all{dav}
                : $name eq 'dav' ? $runs->[$i] : $all{dav};
        $row->($runs->[$i]{label}, $runs->[$i], $dav);
    }
    $row->("$kind{$name}, all rounds", $all{$name}, $all{dav})
        if @$runs > 1;
}
print "(all rounds: p50 their median, p99 the worst round's; CPU/req: "
    . "CPU time of the nginx\n workers and PostgreSQL per request; other: "
    . "cores that processes outside the\n benchmark kept busy, which "
    . "slows it)\n";
for my $name (qw(dav off on)) {
    my $a = $all{$name} or next;
    printf "%s: %d responses, %d files stored\n", $kind{$name},
           $a->{requests}, $a->{stored};
}

my %verdict;
if ($all{dav} && $all{off}) {
    my $x = $all{off}{rps} / $all{dav}{rps};
    my @each = map { $results{off}[$_]{rps} / $results{dav}[$_]{rps} }
               grep { $results{dav}[$_] } 0 .. $#{ $results{off} };
    my @sorted = sort { $a <=> $b } @each;
    my $median = @sorted % 2 ? $sorted[$#sorted / 2]
               : ($sorted[@sorted / 2 - 1] + $sorted[@sorted / 2]) / 2;
    $verdict{throughput} = sprintf '%.2fx DAV PUT (fsync off), target '
        . '>= 0.90x: %s', $x, $x >= 0.9 ? 'met' : 'NOT MET';
    $verdict{throughput} .= sprintf "\n    (each round: %s; median %.2f)",
        join(' ', map { sprintf '%.2f', $_ } @each), $median if @each > 1;
    $verdict{cpu} = sprintf 'CPU per upload (nginx + PostgreSQL): %.2fx '
        . "DAV PUT's (%.2f ms against %.2f ms)",
        $all{off}{cpu_ms} / $all{dav}{cpu_ms}, $all{off}{cpu_ms},
        $all{dav}{cpu_ms};
}

for my $name (qw(rss_bd rss_dav)) {
    my $m = $results{$name} or next;
    $m->{per} = ($m->{peak} - $m->{base}) / $cfg{big_count};
    $m->{anon_per} = ($m->{anon_peak} - $m->{anon_base}) / $cfg{big_count};
}
if ($results{rss_bd}) {
    printf "\n%-24s %10s %10s %10s %11s %13s %8s %6s\n", '', 'base',
           'peak', 'after', 'per upload', '(RssAnon)', 'at once', '201s';
    for my $name (qw(rss_bd rss_dav)) {
        my $m = $results{$name} or next;
        printf "%-24s %7d kB %7d kB %7d kB %8.0f kB %10.0f kB %8d %3d/%d\n",
               $name eq 'rss_bd' ? 'BulletDrop worker VmRSS'
                                 : 'DAV worker VmRSS',
               @$m{qw(base peak after per anon_per most ok)},
               $cfg{big_count};
    }
    print "(peak: the highest of the 100 ms samples; per upload: "
        . "(peak - base) / $cfg{big_count},\n and the same for RssAnon; "
        . "at once: the most temp files seen together)\n";
    my $m = $results{rss_bd};
    $verdict{memory} = sprintf '%.0f kB of worker RSS per concurrent upload, '
        . 'target < 1024 kB: %s', $m->{per},
        $m->{per} < 1024 && $m->{ok} == $cfg{big_count} ? 'met' : 'NOT MET';
}

print "\n";
print "  $_\n" for grep { defined } @verdict{qw(throughput cpu memory)};
printf "\n(the whole run: %.0f s)\n", elapsed();

my $failed = grep { $_->{errors} } values %all;
$failed++ if $results{rss_bd} && $results{rss_bd}{ok} != $cfg{big_count};
exit($failed ? 1 : 0);
