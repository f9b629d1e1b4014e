#!/usr/bin/perl

# The serving benchmark; run it through bench/serve.sh.
#
# In one run, on this machine, all on 127.0.0.1:
#   1. a throwaway BulletDrop stack (PostgreSQL + nginx with the module, the
#      test suite's fixture), with img.localhost as a file domain, a user
#      and an API key made through the API;
#   2. through the API, a 300 KB and a 5 MB PNG uploaded three times each:
#      permanent, expiring (X-BulletDrop-Expires: 7d) and with a view limit
#      (X-BulletDrop-Max-Views: 2000000000, so that every GET is one
#      atomic UPDATE in PostgreSQL);
#   3. wrk GETs of each of those six files, through BulletDrop
#      (Host: img.localhost, /static/..., bulletdrop_files on) and, as the
#      baseline, from the same file through a plain location of the same
#      server (/plain/..., alias to the upload dir, bulletdrop_files off):
#      the same nginx, workers, sendfile and file; only the module's work
#      differs.  The two take turns, in the other order every round;
#   4. a table: requests/s, p50/p99, the ratio per round and its mean, the
#      targets (0.95x for a permanent file, 0.8x for an expiring one or
#      one with a view limit), and CPU per request.  Everything is stopped
#      and removed at the end, however the run ends.
#
# Every answer must be a 200: the run stops at the first run that has
# another.  Each file's warm-up runs bench/wrk/get.lua with its check (the
# status and the length of every answer, in Lua); the measured runs go
# without it, since it makes wrk's own CPU per answer four times as much,
# and nginx logs every answer that is not a 200 (its only access log: 200s
# write nothing).  A 499 is a request that wrk left when it stopped: at
# most one per connection.
#
# Settings, from the environment (defaults in brackets):
#   BENCH_DURATION [10]  seconds of each measured wrk run
#   BENCH_ROUNDS [2]     how many times each pair of runs is made (the
#                        order of the two flips every round)
#   BENCH_WARMUP [1]     seconds of wrk before each target's first run, not
#                        counted, with the Lua check (0: no warm-up, and no
#                        Lua check unless BENCH_CHECK=1)
#   BENCH_THREADS [2], BENCH_CONNECTIONS [16]   wrk -t, -c
#   BENCH_WORKERS [2]    worker_processes
#   BENCH_SMALL [307200], BENCH_BIG [5242880]   bytes of the two files
#   BENCH_SKIP           comma-separated parts to leave out: small, big,
#                        permanent, expiring, maxviews
#   BENCH_CHECK [0]      1: the Lua check in the measured runs too (wrk
#                        then costs more CPU than nginx)
#   BENCH_KEEP           keep the temp directory (BULLETDROP_KEEP does too)
#   TMPDIR               where the temp directory goes: /tmp unless set

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use POSIX ();
use Time::HiRes qw(sleep);

BEGIN { $ENV{BULLETDROP_KEEP} = 1 if $ENV{BENCH_KEEP} }

use BulletDrop::Test;
use BulletDrop::Util qw(slurp);
use BulletDrop::Bench qw(env_num loadavg say_step elapsed fixture run_out
                         png_bytes ncpu cpu_of client_cpu machine_cpu);

$| = 1;

my %cfg = (
    duration    => env_num('BENCH_DURATION', 10),
    warmup      => env_num('BENCH_WARMUP', 1),
    threads     => env_num('BENCH_THREADS', 2),
    connections => env_num('BENCH_CONNECTIONS', 16),
    workers     => env_num('BENCH_WORKERS', 2),
    rounds      => env_num('BENCH_ROUNDS', 2),
    small       => env_num('BENCH_SMALL', 300 * 1024),
    big         => env_num('BENCH_BIG', 5 * 1024 * 1024),
    check       => env_num('BENCH_CHECK', 0),
);
my %skip = map { $_ => 1 } split /,/, $ENV{BENCH_SKIP} // '';
for (keys %skip) {
    die "BENCH_SKIP: '$_'? (small, big, permanent, expiring, maxviews)\n"
        unless /\A(small|big|permanent|expiring|maxviews)\z/;
}
die "BENCH_DURATION and BENCH_ROUNDS must be at least 1\n"
    unless $cfg{duration} && $cfg{rounds};

my $wrk_dir = "$FindBin::Bin/wrk";
my $HOST = 'img.localhost';
my $MAX_VIEWS = 2_000_000_000;

my @sizes = grep { !$skip{$_->{name}} } (
    { name => 'small', bytes => $cfg{small} },
    { name => 'big',   bytes => $cfg{big} },
);
my @kinds = grep { !$skip{$_->{name}} } (
    { name => 'permanent', label => 'permanent', target => 0.95,
      headers => [] },
    { name => 'expiring', label => 'expiring', target => 0.80,
      headers => [ 'X-BulletDrop-Expires' => '7d' ] },
    { name => 'maxviews', label => 'max-views', target => 0.80,
      headers => [ 'X-BulletDrop-Max-Views' => $MAX_VIEWS ] },
);
die "BENCH_SKIP leaves nothing to measure\n" unless @sizes && @kinds;

sub size_label {
    my ($n) = @_;
    return $n >= 1 << 20 && $n % (1 << 20) == 0 ? ($n >> 20) . ' MB'
         : $n >= 1024 && $n % 1024 == 0 ? ($n >> 10) . ' KB'
         : "$n B";
}

my $load_start = loadavg();
my $ncpu = ncpu();

# ---- the stack ---------------------------------------------------------

say_step("load average $load_start on $ncpu cores (the 'other' column "
         . 'tells whether anything else took CPU during the runs)');
my $t = fixture();
my $dir = $t->dir;

# The fixture's file-domain server, plus the baseline: the same upload
# dir through a plain alias, where the module does nothing.  sendfile and
# tcp_nopush are in the http block, so both locations have them.  The
# server's one access log (it replaces the fixture's, which logs every
# request) takes only the answers that are not 200s: the same small cost
# for both locations, and a check of every answer wrk gets.
my $uploads = $t->upload_dir;
my $odd_log = $t->nginx->prefix . '/logs/not200.log';
my $server = <<"EOF";
        bulletdrop_files on;
        access_log $odd_log bench_odd if=\$bench_odd;

        location /api/ {
            bulletdrop_api;
        }

        location /static/ {
            alias $uploads/;
        }

        # the baseline: the same files, without the module
        location /plain/ {
            bulletdrop_files off;
            alias $uploads/;
        }
EOF

my %options = (registration => 'open', workers => $cfg{workers},
               base_domain => 'localhost',
               http => <<'EOF',
    sendfile on;
    tcp_nopush on;

    map $status $bench_odd {
        200      0;
        default  1;
    }
    log_format bench_odd '$status $request_method $host $request_uri '
                         '$body_bytes_sent $request_time';
EOF
               server => $server);
$t->start_nginx(%options);
die "the configuration is not the one meant: $uploads\n"
    unless $t->upload_dir eq $uploads;

$t->add_domains($HOST);
my $user = $t->new_user('bench', key => 1);
say_step("file domain $HOST added; user and API key made");

# ---- the files ---------------------------------------------------------

# [ {size, kind, id, path (under /static/), plain, sha, served} ]
my @files;

for my $size (@sizes) {
    my $data = png_bytes($size->{bytes}, $size->{name});
    my $sha = sha256_hex($data);

    for my $kind (@kinds) {
        my $res = $t->upload($user->{key}, "shot-$size->{name}.png", $data,
            as => 'raw', timeout => 60,
            headers => [ 'X-BulletDrop-Domain' => $HOST,
                         @{ $kind->{headers} } ]);
        die "upload of the $kind->{label} $size->{bytes}-byte file: "
            . "$res->{status} " . substr($res->{body} // '', 0, 300) . "\n"
            unless $res->{status} == 201 && ref $res->{json} eq 'HASH';
        my $rec = $res->{json};
        die "the upload answered sha256 $rec->{sha256}\n"
            unless $rec->{sha256} eq $sha;
        my ($path) = ($rec->{url} // '') =~ m{\Ahttps?://[^/]+(/static/.*)\z}
            or die "no /static/ url in the answer: $res->{body}\n";
        (my $plain = $path) =~ s{\A/static/}{/plain/};

        my %f = (size => $size, kind => $kind, id => $rec->{id},
                 path => $path, plain => $plain, sha => $sha,
                 served => 0, runs => 0);

        # one GET of each way, checked: the bytes, and that the module
        # served the one and not the other
        my $bd = $t->get($path, host => $HOST, timeout => 60);
        $f{served}++ if $bd->{status} == 200;
        my $cache = $bd->{headers}{'cache-control'} // '';
        die "GET $path (Host: $HOST): $bd->{status} "
            . substr($bd->{body}, 0, 200) . "\n" unless $bd->{status} == 200;
        die "GET $path: other bytes\n" unless sha256_hex($bd->{body}) eq $sha;
        die "GET $path: not served by the module (no nosniff)\n"
            unless ($bd->{headers}{'x-content-type-options'} // '')
                   eq 'nosniff';
        # a while for a permanent file and one with days left (t/085)
        die "GET $path: Cache-Control '$cache' for a $kind->{label} file\n"
            unless $kind->{name} eq 'maxviews' ? $cache eq 'no-store'
                                               : $cache =~ /\Amax-age=\d+\z/;

        my $al = $t->get($plain, host => $HOST, timeout => 60);
        die "GET $plain: $al->{status}\n" unless $al->{status} == 200;
        die "GET $plain: other bytes\n" unless sha256_hex($al->{body}) eq $sha;
        die "GET $plain: the module's headers on the baseline\n"
            if exists $al->{headers}{'x-content-type-options'};

        push @files, \%f;
    }
    say_step(sprintf '%s file (%d bytes) uploaded as %s; each served '
             . 'whole both ways', size_label($size->{bytes}),
             $size->{bytes}, join(', ', map { $_->{label} } @kinds));
}

# the log of answers that are not 200s takes them
{
    my $res = $t->get('/plain/images/none.png', host => $HOST);
    die "GET /plain/images/none.png: $res->{status}\n"
        unless $res->{status} == 404;
    my @lines = -f $odd_log ? split /\n/, slurp($odd_log) : ();
    die "$odd_log does not have the 404\n"
        unless grep { m{\A404 GET \Q$HOST\E /plain/images/none\.png } }
               @lines;
}

# ---- wrk ---------------------------------------------------------------

my $port = $t->port;

# the lines of the answers that were not 200s since the last call
my $odd_seen = (-s $odd_log) || 0;
sub odd_answers {
    open my $fh, '<', $odd_log or return ();
    seek $fh, $odd_seen, 0;
    my @lines = <$fh>;
    $odd_seen = tell $fh;
    chomp @lines;
    return @lines;
}

# the lines of nginx's error log at warn or above since the runs began
my $log_from = length $t->nginx->log_text;
sub error_log_warnings {
    return grep { /\[(warn|error|crit|alert|emerg)\]/ }
           split /\n/, substr($t->nginx->log_text, $log_from);
}

sub error_log_tail {
    my @log = error_log_warnings();
    splice @log, 0, @log - 10 if @log > 10;
    return "the nginx error log's last warnings:\n"
         . (join('', map { "    $_\n" } @log) || "    (none)\n");
}

sub wrk {
    my ($path, $bytes, $duration, $check) = @_;

    odd_answers();
    my @cmd = ('wrk', "-t$cfg{threads}", "-c$cfg{connections}",
               "-d${duration}s", '--latency', '--timeout', '10s',
               '-s', "$wrk_dir/get.lua", "http://127.0.0.1:$port", '--',
               $path, $HOST, $bytes, $check ? 'check' : ());
    my ($status, $out) = run_out($duration + 30, @cmd);
    die "wrk failed ($status):\n$out" if $status;

    my ($line) = $out =~ /^RESULT (.*)$/m or die "no RESULT from wrk:\n$out";
    my ($check_line) = $out =~ /^CHECK (.*)$/m
        or die "no CHECK from wrk:\n$out";
    my %r = map { split /=/, $_, 2 } split ' ', "$line $check_line";
    $r{raw} = $out;
    $r{socket_errors} = $r{connect} + $r{read} + $r{write} + $r{timeout};

    die "wrk did not check the answers\n" if $check && !$r{checked};

    # the bytes read hold every answer's body at least
    die "\nFAILED: GET $path (Host: $HOST): $r{bytes} bytes read for "
        . "$r{requests} answers of $bytes bytes\n" . error_log_tail()
        . "\nwrk said:\n$out" if $r{bytes} < $r{requests} * $bytes;

    if ($r{non200} || $r{badlen}) {
        die "\nFAILED: GET $path (Host: $HOST): $r{non200} answers that "
            . "were not 200 and $r{badlen} 200s that were not $bytes bytes, "
            . "of $r{answers} (the first: status:length $r{first})\n"
            . error_log_tail() . "\nwrk said:\n$out";
    }

    # wrk's own count (statuses over 399), and nginx's log of the rest
    my @odd = odd_answers();
    my @gone = grep { /\A499 / } @odd;
    my @bad = grep { !/\A499 / } @odd;
    $r{left} = @gone;
    if ($r{status} || @bad || @gone > $cfg{connections}) {
        splice @bad, 10 if @bad > 10;
        die "\nFAILED: GET $path (Host: $HOST): wrk counted $r{status} "
            . "answers over 399; nginx logged " . scalar(@bad)
            . ' answers that were not 200 and ' . scalar(@gone)
            . " 499s (clients that left):\n"
            . join('', map { "    $_\n" } @bad)
            . error_log_tail() . "\nwrk said:\n$out";
    }
    return \%r;
}

my %warm;
my @runs;    # every measured run

sub measure {
    my ($f, $side, $round) = @_;
    my $path = $side eq 'bd' ? $f->{path} : $f->{plain};
    my $what = sprintf '%s %s, %s', size_label($f->{size}{bytes}),
        $f->{kind}{label}, $side eq 'bd' ? "BulletDrop ($HOST)"
                                         : 'alias (no module)';

    if ($cfg{warmup} && !$warm{$path}++) {
        my $r = wrk($path, $f->{size}{bytes}, $cfg{warmup}, 1);
        if ($side eq 'bd') {
            $f->{served} += $r->{requests};
            $f->{runs}++;
        }
    }

    my @server = $t->nginx->worker_pids;
    my @db = $t->pg->processes;
    my @before = (cpu_of(@server), cpu_of(@db), client_cpu(), machine_cpu());

    my $r = wrk($path, $f->{size}{bytes}, $cfg{duration}, $cfg{check});

    my @after = (cpu_of(@server), cpu_of(@db), client_cpu(), machine_cpu());
    my ($srv, $db, $cli, $all) = map { $after[$_] - $before[$_] } 0 .. 3;
    my $n = $r->{requests} || 1;
    my $secs = $r->{duration_us} / 1e6;
    $r->{srv_ms} = 1000 * $srv / $n;
    $r->{db_ms} = 1000 * $db / $n;
    $r->{cli_ms} = 1000 * $cli / $n;
    $r->{other_cores} = ($all - $srv - $db - $cli) / $secs;
    @$r{qw(file side round)} = ($f, $side, $round);
    if ($side eq 'bd') {
        $f->{served} += $r->{requests};
        $f->{runs}++;
    }

    say_step(sprintf '%-36s %7.0f req/s, p50 %6.2f ms, p99 %7.2f ms%s',
             $what, $r->{rps}, $r->{p50_us} / 1000, $r->{p99_us} / 1000,
             ($r->{socket_errors}
              ? ", $r->{socket_errors} SOCKET ERRORS" : '')
             . ($r->{left} ? ", $r->{left} left (499)" : ''));
    push @runs, $r;
    return $r;
}

say_step(sprintf 'measuring: %d round(s) of %d pairs, wrk -t%d -c%d '
         . '-d%ds each (a %ds warm-up before each first run)',
         $cfg{rounds}, scalar @files, @cfg{qw(threads connections duration
                                              warmup)});

# Each file's two runs come one after the other, so a drift of the machine
# falls on both; their order flips from one pair to the next and from one
# round to the next.
for my $round (1 .. $cfg{rounds}) {
    for my $i (0 .. $#files) {
        my @sides = ($i + $round) % 2 ? qw(bd alias) : qw(alias bd);
        measure($files[$i], $_, $round) for @sides;
    }
}

# ---- views -------------------------------------------------------------

# A view limit is counted by the database at each GET, or ahead: up to 64
# views at a time per worker, leased to the server, which serves them
# from shared memory;
# other views are sent by each worker within a second.  Each run's last
# requests may have been counted without wrk seeing their answers: at
# most one per connection.
sleep 1.5;
my %views = map { $_->[0] => $_->[1] }
            @{ $t->pg->psql('SELECT id, views FROM uploads') };
my @views_odd;
for my $f (@files) {
    my $v = $views{ $f->{id} } // -1;
    my $slack = $f->{runs} * $cfg{connections}
                + ($f->{kind}{name} eq 'maxviews'
                   ? 64 * $cfg{workers} : 0);
    $f->{views} = $v;
    push @views_odd, $f
        if $v < $f->{served} || $v > $f->{served} + $slack;
}

# ---- the nginx error log -----------------------------------------------

my @log = error_log_warnings();
my @crashes = grep { /exited on signal|worker process \d+ exited/ } @log;

# ---- the table ---------------------------------------------------------

sub ms { sprintf '%.2f', $_[0] / 1000 }

print "\n";
printf "BulletDrop serving benchmark, %s, Linux %s, %d cores, load "
     . "average %s at the start, %s at the end\n", scalar(localtime),
       (POSIX::uname())[2], $ncpu, $load_start, loadavg();
printf "wrk -t%d -c%d -d%ds, worker_processes %d, sendfile on, tcp_nopush "
     . "on, access log of non-200s only%s\n", @cfg{qw(threads connections
       duration workers)}, $cfg{check} ? ', every answer checked in Lua'
                                       : '';
print "alias: GET /plain/<category>/<id>.<ext> from the same nginx, "
    . "location /plain/ { alias <upload dir>/; }\n"
    . "BulletDrop: GET /static/<category>/<id>.<ext>, Host: $HOST "
    . "(bulletdrop_files on), the same file\n\n";

# the rounds of one side together: requests over time for the rate, the
# median p50, the worst p99, CPU per request over all requests
sub total {
    my (@r) = @_;
    my ($req, $us, $err, $other) = (0, 0, 0, 0);
    my %cpu;
    for my $r (@r) {
        $req += $r->{requests};
        $us += $r->{duration_us};
        $err += $r->{socket_errors};
        $cpu{$_} += $r->{$_} * $r->{requests} for qw(srv_ms db_ms cli_ms);
        $other += $r->{other_cores} * $r->{duration_us};
    }
    my @p50 = sort { $a <=> $b } map { $_->{p50_us} } @r;
    my @p99 = sort { $a <=> $b } map { $_->{p99_us} } @r;
    return { rps => $req / ($us / 1e6), requests => $req,
             socket_errors => $err, p50_us => $p50[$#p50 / 2],
             p99_us => $p99[-1],
             (map { $_ => $cpu{$_} / ($req || 1) } keys %cpu),
             other_cores => $other / ($us || 1) };
}

printf "%-7s %-10s %5s   %s   %s\n", '', '', '', '-' x 8 . ' alias '
       . '-' x 7, '-' x 4 . ' BulletDrop ' . '-' x 6;
printf "%-7s %-10s %5s   %7s %6s %7s   %7s %6s %7s   %6s %4s\n", 'file',
       'kind', 'round', 'req/s', 'p50', 'p99', 'req/s', 'p50', 'p99',
       'ratio', 'err';

my (@verdicts, @cpu_rows);
my $failed = 0;

for my $f (@files) {
    my (@ratios, %side);
    for my $round (1 .. $cfg{rounds}) {
        my ($al) = grep { $_->{file} == $f && $_->{side} eq 'alias'
                         && $_->{round} == $round } @runs;
        my ($bd) = grep { $_->{file} == $f && $_->{side} eq 'bd'
                         && $_->{round} == $round } @runs;
        push @{ $side{alias} }, $al;
        push @{ $side{bd} }, $bd;
        my $x = $bd->{rps} / $al->{rps};
        push @ratios, $x;
        my $err = $al->{socket_errors} + $bd->{socket_errors};
        printf "%-7s %-10s %5d   %7.0f %6s %7s   %7.0f %6s %7s   %5.2fx "
             . "%4d\n", size_label($f->{size}{bytes}), $f->{kind}{label},
               $round, $al->{rps}, ms($al->{p50_us}), ms($al->{p99_us}),
               $bd->{rps}, ms($bd->{p50_us}), ms($bd->{p99_us}), $x, $err;
        push @cpu_rows, [ $f, $round, $al, $bd ];
    }
    my $al = total(@{ $side{alias} });
    my $bd = total(@{ $side{bd} });
    my $mean = 0;
    $mean += $_ / @ratios for @ratios;
    my $err = $al->{socket_errors} + $bd->{socket_errors};
    $failed++ if $err;
    if ($cfg{rounds} > 1) {
        printf "%-7s %-10s %5s   %7.0f %6s %7s   %7.0f %6s %7s   %5.2fx "
             . "%4d\n", size_label($f->{size}{bytes}), $f->{kind}{label},
               'mean', $al->{rps}, ms($al->{p50_us}), ms($al->{p99_us}),
               $bd->{rps}, ms($bd->{p50_us}), ms($bd->{p99_us}), $mean, $err;
    }
    push @cpu_rows, [ $f, 'all', $al, $bd ] if $cfg{rounds} > 1;
    my $met = $mean >= $f->{kind}{target};
    push @verdicts, sprintf '%-7s %-10s %.2fx the alias\'s req/s%s, target '
        . '>= %.2fx: %s', size_label($f->{size}{bytes}), $f->{kind}{label},
        $mean, @ratios > 1 ? ' (mean of ' . join(', ', map {
            sprintf '%.2f', $_ } @ratios) . ')' : '',
        $f->{kind}{target}, $met ? 'met' : 'NOT MET';
}
print "(p50, p99 in ms; mean: req/s over all rounds, the median p50, the "
    . "worst p99,\n and the mean of the rounds' ratios; err: socket errors "
    . "and timeouts of both runs)\n\n";

print "CPU per request, ms (alias / BulletDrop), and the cores other "
    . "processes kept busy\n";
printf "%-7s %-10s %5s   %15s   %15s   %15s   %11s\n", 'file', 'kind',
       'round', 'nginx workers', 'PostgreSQL', 'wrk', 'other';
for my $row (@cpu_rows) {
    my ($f, $round, $al, $bd) = @$row;
    printf "%-7s %-10s %5s   %7.3f/%-7.3f   %7.3f/%-7.3f   %7.3f/%-7.3f   "
         . "%5.2f/%-5.2f\n", size_label($f->{size}{bytes}),
           $f->{kind}{label}, $round eq 'all' ? 'all' : $round,
           $al->{srv_ms}, $bd->{srv_ms}, $al->{db_ms}, $bd->{db_ms},
           $al->{cli_ms}, $bd->{cli_ms}, $al->{other_cores},
           $bd->{other_cores};
}
print "(CPU time of the nginx workers, of every PostgreSQL process and of "
    . "wrk over a run,\n divided by the requests it completed; other: "
    . "cores busy outside those three.\n Well above 0.1, the figures are "
    . "low and noisy)\n\n";

print "Views recorded by the database against the answers wrk and the "
    . "checks completed:\n";
for my $f (@files) {
    my $odd = grep { $_ == $f } @views_odd;
    printf "  %-7s %-10s %9d views, %9d answers (+ at most %d in flight at "
         . "wrk's stops)%s\n", size_label($f->{size}{bytes}),
           $f->{kind}{label}, $f->{views}, $f->{served},
           $f->{runs} * $cfg{connections}, $odd ? '  MISMATCH' : '';
}
$failed++ if @views_odd;

printf "\nnginx error log during the runs: %d lines at warn or above%s\n",
       scalar @log,
       @crashes ? sprintf(', %d worker crash(es)', scalar @crashes) : '';
print map { "    $_\n" } @log[0 .. ($#log < 9 ? $#log : 9)];
$failed++ if @crashes;

print "\nTargets (the mean of the rounds' ratios; 0.95x for a permanent "
    . "file, 0.8x with limits):\n";
print "  $_\n" for @verdicts;
printf "\n(the whole run: %.0f s)\n", elapsed();

exit($failed ? 1 : 0);
