#!/usr/bin/perl

# The S3 storage benchmark; run it through bench/s3.sh (see bench/README.md,
# "S3 storage benchmark").  Figures only: no targets, no verdict.
#
# In one run, on this machine, all on 127.0.0.1:
#   1. a throwaway Ceph RGW (t/lib/BulletDrop/RGW.pm: one monitor, one OSD
#      keeping objects in memory, radosgw) with two buckets, bd-uploads
#      (BulletDrop's) and bd-plain (the baseline's);
#   2. a throwaway BulletDrop stack (the test suite's fixture) with
#      bulletdrop_storage s3 on bd-uploads, its file domain img.localhost
#      reading the bucket through nginx-conf/s3-files.conf, a user and an
#      API key;
#   3. upload throughput: wrk, the same settings and the same file (100 KB
#      and 5 MB), against
#        - BulletDrop's POST /api/uploads/sharex (the body to a temp file,
#          then the module's own PUT to the bucket on a new connection,
#          then the row);
#        - "proxy_pass": a second, plain nginx (the same binary, the same
#          worker_processes) whose location / is proxy_pass to RGW with
#          an upstream keepalive pool: PUT /bd-plain/KEY, signed by this
#          script with BulletDrop::S3::sign and the payload's real
#          SHA-256, as the module signs its own (RGW checks both).  nginx
#          buffers the body to a temp file first (proxy_request_buffering
#          on, its default), as BulletDrop does: the limit for "the same
#          bytes reaching the same store through nginx";
#        - "proxy_pass, no keepalive": the same without the keepalive pool,
#          a new connection to RGW per PUT, as the module's client makes;
#      in turns, the order rotating every round.  Reported: requests/s,
#      MB/s, p50/p99, CPU per upload of the nginx workers (as upload.sh
#      measures it), PostgreSQL, the RGW daemons and wrk, and the ratio to
#      proxy_pass;
#   4. serve throughput: a 100 KB and a 5 MB file uploaded through the API,
#      then wrk GETs of each through the file domain (Host: img.localhost,
#      /static/..., the module's checks and its signed proxy_pass) against
#      a plain location of the same server, /plain/... (bulletdrop_files
#      off), which proxies a GET of the same object to the same upstream
#      with the same proxy settings, signed the same way (SigV4, by this
#      script, a signature per object put in the configuration: the
#      bucket is not public);
#   5. worker memory: one worker, N (4, 8, 16) concurrent 50 MB uploads
#      (raw body, curl --limit-rate so that all are under way together),
#      its /proc/PID/smaps_rollup read every 50 ms until all have
#      answered: through the temp file and the PUT to the bucket (a
#      multipart upload, past part_size 16m);
#   6. the figures.  Everything is stopped and removed at the end, however
#      the run ends.
#
# The requests of each side are built once by bench/wrk/s3put.lua and
# handed to wrk in turn, so the client does the same work per request for
# both; the baseline's keys are a pool (BENCH_KEYS per wrk thread) written
# over and over, where BulletDrop makes a new object each time.  The OSD
# keeps objects in memory: the buckets are emptied (radosgw-admin bucket
# rm --purge-objects --bypass-gc, then gc process) after every run.
#
# Settings, from the environment (defaults in brackets):
#   BENCH_DURATION [10]  seconds of each measured wrk run
#   BENCH_ROUNDS [2]     how many times the sides take turns
#   BENCH_WARMUP [2]     seconds of wrk before a side's first run of a
#                        size, not counted
#   BENCH_THREADS [2], BENCH_CONNECTIONS [16]   wrk -t, -c
#   BENCH_WORKERS [2]    worker_processes of both nginx
#   BENCH_SIZES [102400,5242880]   the files, in bytes
#   BENCH_KEYS           keys per wrk thread for the baseline's PUTs
#                        (64 MB of requests per thread, at most 256)
#   BENCH_MEM_COUNTS [4,8,16], BENCH_MEM_SIZE [52428800],
#   BENCH_MEM_SECONDS [3]   the memory runs: concurrency, bytes, how long
#                        each upload's body lasts (--limit-rate)
#   BENCH_STORE [8589934592]  bytes the OSD may hold (memstore)
#   BENCH_SKIP           comma-separated: upload, serve, memory, close (the
#                        no-keepalive baseline)
#   BENCH_KEEP           keep the temp directory (BULLETDROP_KEEP does too)
#   TMPDIR               where the temp directory goes: /tmp unless set

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
use BulletDrop::RGW;
use BulletDrop::S3;
use BulletDrop::Test qw(free_port);
use BulletDrop::Util qw(slurp spew top_dir);
use BulletDrop::Bench qw(env_num loadavg say_step elapsed fixture spawn
                         ended run_out png_bytes png_file ncpu cpu_of
                         client_cpu machine_cpu);

$| = 1;

sub env_list {
    my ($name, $default) = @_;
    my @v = split /,/, $ENV{$name} // $default;
    /\A[1-9][0-9]*\z/ or die "$name: '$_' is not a number\n" for @v;
    return @v;
}

my %cfg = (
    duration    => env_num('BENCH_DURATION', 10),
    rounds      => env_num('BENCH_ROUNDS', 2),
    warmup      => env_num('BENCH_WARMUP', 2),
    threads     => env_num('BENCH_THREADS', 2),
    connections => env_num('BENCH_CONNECTIONS', 16),
    workers     => env_num('BENCH_WORKERS', 2),
    keys        => env_num('BENCH_KEYS', 0),
    mem_size    => env_num('BENCH_MEM_SIZE', 50 * 1024 * 1024),
    mem_seconds => env_num('BENCH_MEM_SECONDS', 3),
    store       => env_num('BENCH_STORE', 8 << 30),
);
my @sizes = env_list('BENCH_SIZES', '102400,5242880');
my @mem_counts = env_list('BENCH_MEM_COUNTS', '4,8,16');
my %skip = map { $_ => 1 } split /,/, $ENV{BENCH_SKIP} // '';
for (keys %skip) {
    die "BENCH_SKIP: '$_'? (upload, serve, memory, close)\n"
        unless /\A(upload|serve|memory|close)\z/;
}
die "BENCH_DURATION and BENCH_ROUNDS must be at least 1\n"
    unless $cfg{duration} && $cfg{rounds};

my $wrk_dir = "$FindBin::Bin/wrk";
my $HOST = 'img.localhost';
my $BD_BUCKET = 'bd-uploads';
my $PLAIN_BUCKET = 'bd-plain';
my $EMPTY_SHA = sha256_hex('');

sub size_label {
    my ($n) = @_;
    return $n >= 1 << 20 && $n % (1 << 20) == 0 ? ($n >> 20) . ' MB'
         : $n >= 1000 && $n % 1024 == 0 ? ($n >> 10) . ' KB'
         : $n % 1000 == 0 ? ($n / 1000) . ' KB'
         : "$n B";
}

my $load_start = loadavg();
my $uptime_start = `uptime`;
chomp $uptime_start;
my $ncpu = ncpu();

# the plain nginx, stopped before the fixture tears down
my $plain;

END {
    local $?;
    $plain->stop('TERM') if $plain;
}

# ---- the store ---------------------------------------------------------

say_step("load average $load_start on $ncpu cores (the 'other' column "
         . 'tells whether anything else took CPU during the runs)');
my $t = fixture();
my $dir = $t->dir;

say_step('starting Ceph RGW (monitor, OSD on memstore, radosgw)');
my $rgw = BulletDrop::RGW->new(dir => "$dir/rgw", store => $cfg{store});
$rgw->make_bucket($_) for $BD_BUCKET, $PLAIN_BUCKET;
my $rgw_host = '127.0.0.1:' . $rgw->port;
say_step(sprintf 'RGW on %s in %.1f s; buckets %s and %s', $rgw_host,
         $rgw->startup_time, $BD_BUCKET, $PLAIN_BUCKET);

sub rgw_pids { grep { defined } @{ $rgw->pids }{qw(rgw osd mon)} }

# A bucket emptied: its objects deleted at once (no garbage collection
# later), the bucket made again; then what earlier overwrites left to the
# garbage collector.  The OSD's memory is the store.
sub purge {
    my (@buckets) = @_;
    for my $b (@buckets) {
        my ($st, $out) = run_out(300, 'radosgw-admin', '-c', $rgw->conf,
            'bucket', 'rm', "--bucket=$b", '--purge-objects', '--bypass-gc');
        die "radosgw-admin bucket rm $b: $out\n" if $st;
        $rgw->make_bucket($b);
    }
    my ($st, $out) = run_out(300, 'radosgw-admin', '-c', $rgw->conf, 'gc',
                             'process', '--include-all');
    die "radosgw-admin gc process: $out\n" if $st;
}

sub sign_headers {
    my ($method, $path, $payload_sha) = @_;
    my $date = POSIX::strftime('%Y%m%dT%H%M%SZ', gmtime);
    my $auth = BulletDrop::S3::sign(
        method => $method, path => $path, query => {},
        headers => { host => $rgw_host, 'x-amz-date' => $date,
                     'x-amz-content-sha256' => $payload_sha },
        payload_hash => $payload_sha, access_key => $rgw->access_key,
        secret => $rgw->secret, region => $rgw->region, date => $date);
    return ($date, $auth);
}

# ---- BulletDrop --------------------------------------------------------

my $snippet = top_dir() . '/nginx-conf/s3-files.conf';
my $auth_map = "$dir/plain-auth.map";
my $date_map = "$dir/plain-date.map";
spew($_, '') for $auth_map, $date_map;

# The fixture's file-domain server reading the bucket (as Test.pm's
# "files" with "s3" writes it), plus the serving baseline: /plain/ proxies
# a GET of the same object to the same upstream, with s3-files.conf's
# proxy settings and a signature this script made for that object (the
# maps).
my $server = <<"EOF";
        bulletdrop_files on;
        access_log off;

        location /api/ {
            bulletdrop_api;
        }

        location /static/ {
            include $snippet;
            proxy_pass http://bulletdrop_s3\$bulletdrop_s3_uri;
        }

        location = /_bulletdrop/error {
            internal;
            bulletdrop_error_page;
        }

        # the baseline: the same objects, without the module
        location /plain/ {
            bulletdrop_files off;
            rewrite ^/plain/(.*)\$ /$BD_BUCKET/\$1 break;
            proxy_pass http://bulletdrop_s3;
            proxy_method GET;
            proxy_http_version 1.1;
            proxy_pass_request_headers off;
            proxy_pass_request_body off;
            proxy_set_header Connection "";
            proxy_set_header Host $rgw_host;
            proxy_set_header X-Amz-Date \$bench_s3_date;
            proxy_set_header X-Amz-Content-SHA256 $EMPTY_SHA;
            proxy_set_header Authorization \$bench_s3_auth;
            proxy_max_temp_file_size 0;
            proxy_hide_header x-amz-request-id;
            proxy_hide_header x-rgw-object-type;
        }
EOF

my $http = <<"EOF";
    sendfile on;
    tcp_nopush on;

    map \$request_uri \$bench_s3_auth {
        default "";
        include $auth_map;
    }
    map \$request_uri \$bench_s3_date {
        default "";
        include $date_map;
    }
EOF

sub bd_options {
    my (%o) = @_;
    return (registration => 'open', workers => $cfg{workers},
            fsync => 'off', max_file_size => '100m',
            base_domain => 'localhost',
            s3 => { endpoint => $rgw->endpoint, bucket => $BD_BUCKET,
                    credentials => $rgw->credentials_file,
                    region => $rgw->region },
            http => $http, server => $server, %o);
}

$t->start_nginx(bd_options());
$t->add_domains($HOST);
my $user = $t->new_user('bench', key => 1);
my $key = $user->{key};
my $bd_port = $t->port;
say_step("BulletDrop on port $bd_port with bulletdrop_storage s3 "
         . "($BD_BUCKET); file domain $HOST; user and API key made");

my $s3_bd = $rgw->s3(bucket => $BD_BUCKET);
my $s3_plain = $rgw->s3(bucket => $PLAIN_BUCKET);

# ---- the plain nginx ---------------------------------------------------

my $plain_port = free_port();
my $close_port = free_port();

sub plain_conf {
    my ($prefix, $workers) = @_;
    my $location = <<"EOF";
        location / {
            proxy_pass http://UPSTREAM;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $rgw_host;
            client_max_body_size 100m;
            proxy_max_temp_file_size 0;
        }
EOF
    my $ka = $location =~ s/UPSTREAM/rgw_keepalive/r;
    my $close = $location =~ s/UPSTREAM/rgw_close/r;
    return <<"EOF";
worker_processes $workers;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;

    upstream rgw_keepalive {
        server $rgw_host;
        keepalive 16;
    }
    upstream rgw_close {
        server $rgw_host;
    }

    # the store's own PUT through nginx, a pool of connections kept
    server {
        listen 127.0.0.1:$plain_port;
$ka    }

    # the same, a new connection to the store per request
    server {
        listen 127.0.0.1:$close_port;
$close    }
}
EOF
}

$plain = BulletDrop::Nginx->new(prefix => "$dir/plain", port => $plain_port);
$plain->write_conf(plain_conf($plain->prefix, $cfg{workers}));
$plain->start;
say_step("plain nginx: proxy_pass PUT to RGW on $plain_port (keepalive), "
         . "$close_port (a connection per request)");

# ---- checks before anything is measured ----------------------------------

my %file;
for my $size (@sizes, $skip{memory} ? () : $cfg{mem_size}) {
    next if $file{$size};
    $file{$size} = png_file("$dir/file-$size.png", $size, "s3-$size");
}

sub object_sha {
    my ($s3, $obj) = @_;
    my $res = $s3->get($obj);
    die "GET $obj from the bucket: $res->{status} "
        . substr($res->{content} // '', 0, 300) . "\n"
        unless $res->{status} == 200;
    return sha256_hex($res->{content});
}

# what the module stored: the key of the answer's /static/ URL
sub bd_upload_check {
    my ($path, $status, $body) = @_;
    die "BulletDrop did not take the upload: $status $body\n"
        unless $status == 201;
    my $json = JSON::PP::decode_json($body);
    my ($obj) = ($json->{url} // '') =~ m{/static/(.*)\z}
        or die "no /static/ URL in $body\n";
    return ($json, $obj);
}

{
    my $path = $file{ $sizes[0] };
    my $sha = sha256_hex(slurp($path));

    my ($st, $out) = run_out(60, 'curl', '-sS', '-w', '\n%{http_code}',
        '-H', "Authorization: Bearer $key",
        '-F', "file=\@$path;type=image/png;filename=shot.png",
        "http://127.0.0.1:$bd_port/api/uploads/sharex");
    my ($body, $code) = $out =~ /\A(.*)\n(\d+)\z/s
        or die "curl to BulletDrop: $out\n";
    my ($json, $obj) = bd_upload_check($path, $code, $body);
    die "BulletDrop answered sha256 $json->{sha256}\n"
        unless $json->{sha256} eq $sha;
    die "the object in $BD_BUCKET differs\n"
        unless object_sha($s3_bd, $obj) eq $sha;
    die "BulletDrop wrote the file to disk too\n"
        if -e $t->upload_dir . "/$obj";

    for my $port ($plain_port, $skip{close} ? () : $close_port) {
        my $p = "/$PLAIN_BUCKET/check-$port.png";
        my ($date, $auth) = sign_headers('PUT', $p, $sha);
        ($st, $out) = run_out(60, 'curl', '-sS', '-o', '/dev/null', '-w',
            '%{http_code}', '-T', $path, '-H', "X-Amz-Date: $date",
            '-H', "X-Amz-Content-SHA256: $sha", '-H', "Authorization: $auth",
            "http://127.0.0.1:$port$p");
        die "PUT $p through the plain nginx: $out\n" unless $out eq '200';
        die "the object $p differs\n"
            unless object_sha($s3_plain, "check-$port.png") eq $sha;
    }
    say_step("both store the same $sizes[0] bytes in the bucket (sha256 "
             . substr($sha, 0, 12) . '...)');
}

# ---- upload throughput --------------------------------------------------

sub bd_rows { $t->pg->psql('SELECT count(*) FROM uploads')->[0][0] }

# the baseline's requests: $keys per wrk thread, signed now
sub write_put_list {
    my ($size, $keys, $sha) = @_;
    my $list = "$dir/put-$size.list";
    my $text = '';
    my $tag = int(time * 1000) % 1_000_000;
    for my $i (1 .. $keys * $cfg{threads}) {
        my $p = "/$PLAIN_BUCKET/bench/$size-$tag-$i.png";
        my ($date, $auth) = sign_headers('PUT', $p, $sha);
        $text .= "$p\t$date\t$auth\n";
    }
    spew($list, $text);
    return $list;
}

sub wrk {
    my ($port, $script, $duration, @args) = @_;
    my @cmd = ('wrk', "-t$cfg{threads}", "-c$cfg{connections}",
               "-d${duration}s", '--latency', '--timeout', '30s',
               '-s', "$wrk_dir/$script", "http://127.0.0.1:$port", '--',
               @args);
    my ($status, $out) = run_out($duration + 60, @cmd);
    # Debian 12's wrk once stopped at the start of a run with "PANIC:
    # unprotected error in call to Lua API (attempt to call a nil
    # value)", and not again with the same arguments: tried once more
    if ($status && $out =~ /\APANIC: unprotected error/) {
        say_step("wrk: $out" =~ s/\n.*//sr . '; once more');
        ($status, $out) = run_out($duration + 60, @cmd);
    }
    die "wrk failed ($status):\n$out" if $status;
    my ($line) = $out =~ /^RESULT (.*)$/m or die "no RESULT from wrk:\n$out";
    my %r = map { split /=/, $_, 2 } split ' ', $line;
    $r{raw} = $out;
    $r{errors} = $r{connect} + $r{read} + $r{write} + $r{status}
               + $r{timeout};
    return \%r;
}

# wrk with CPU accounting around it: nginx workers ($nginx), PostgreSQL,
# the RGW daemons, wrk, and the rest of the machine
sub measured {
    my ($nginx, $port, $script, @args) = @_;
    my @server = $nginx->worker_pids;
    my @db = $t->pg->processes;
    my @store = rgw_pids();
    my @before = (cpu_of(@server), cpu_of(@db), cpu_of(@store), client_cpu(),
                  machine_cpu());
    my $r = wrk($port, $script, $cfg{duration}, @args);
    my @after = (cpu_of(@server), cpu_of(@db), cpu_of(@store), client_cpu(),
                 machine_cpu());
    my ($srv, $pg, $st, $cli, $all) = map { $after[$_] - $before[$_] } 0 .. 4;
    my $n = $r->{requests} || 1;
    my $secs = $r->{duration_us} / 1e6;
    $r->{srv_ms} = 1000 * $srv / $n;
    $r->{db_ms} = 1000 * $pg / $n;
    $r->{rgw_ms} = 1000 * $st / $n;
    $r->{cli_ms} = 1000 * $cli / $n;
    $r->{rgw_cores} = $st / $secs;
    $r->{busy_cores} = $all / $secs;
    $r->{other_cores} = ($all - $srv - $pg - $st - $cli) / $secs;
    return $r;
}

my %side_label = (bd => 'BulletDrop', plain => 'proxy_pass',
                  close => 'proxy_pass, no keepalive');
my @upload_runs;

sub upload_run {
    my ($side, $size, $round, $warm) = @_;
    my $path = $file{$size};
    my ($nginx, $port, @args);
    if ($side eq 'bd') {
        ($nginx, $port, @args) = ($t->nginx, $bd_port, 'bd', $path, $key);
    } else {
        my $keys = $cfg{keys}
                || POSIX::floor((64 << 20) / $size) || 1;
        $keys = 256 if !$cfg{keys} && $keys > 256;
        my $list = write_put_list($size, $keys, sha256_hex(slurp($path)));
        ($nginx, $port, @args) = ($plain, $side eq 'plain' ? $plain_port
                                                          : $close_port,
                                  's3', $path, $list, $rgw_host,
                                  sha256_hex(slurp($path)));
    }
    my $label = sprintf '%s %s', size_label($size), $side_label{$side};

    if ($warm) {
        say_step("$label: ${\ $cfg{warmup}}s warm-up");
        my $r = wrk($port, 's3put.lua', $cfg{warmup}, @args);
        die "$label warm-up: $r->{errors} errors\n$r->{raw}" if $r->{errors};
        purge($BD_BUCKET, $PLAIN_BUCKET);
    }

    my $rows = $side eq 'bd' ? bd_rows() : 0;
    my $r = measured($nginx, $port, 's3put.lua', @args);
    $r->{stored} = $side eq 'bd' ? bd_rows() - $rows : undef;
    @$r{qw(side size round)} = ($side, $size, $round);
    $r->{mbs} = $r->{rps} * $size / 1e6;
    say_step(sprintf '%-32s %6.0f req/s %7.1f MB/s, p50 %7.2f ms, p99 %7.2f '
        . 'ms; CPU/upload: nginx %.3f, PostgreSQL %.3f, RGW %.3f, wrk '
        . '%.3f ms; other %.2f%s', $label, $r->{rps}, $r->{mbs},
        $r->{p50_us} / 1000, $r->{p99_us} / 1000,
        @$r{qw(srv_ms db_ms rgw_ms cli_ms other_cores)},
        $r->{errors} ? ", $r->{errors} ERRORS" : '');
    die "$label: $r->{errors} errors\n$r->{raw}" if $r->{errors};
    die "$label: $r->{requests} answers but $r->{stored} rows\n"
        if $side eq 'bd' && $r->{stored} < $r->{requests};
    purge($BD_BUCKET, $PLAIN_BUCKET);
    push @upload_runs, $r;
    return $r;
}

unless ($skip{upload}) {
    my @sides = ('plain', 'bd', $skip{close} ? () : 'close');
    say_step(sprintf 'upload throughput: %d round(s), wrk -t%d -c%d -d%ds, '
             . 'sides in turn', $cfg{rounds}, @cfg{qw(threads connections
                                                        duration)});
    for my $size (@sizes) {
        my %warm;
        for my $round (1 .. $cfg{rounds}) {
            my @order = @sides[map { ($_ + $round - 1) % @sides }
                               0 .. $#sides];
            upload_run($_, $size, $round, $cfg{warmup} && !$warm{$_}++)
                for @order;
        }
    }
}

# ---- serve throughput ---------------------------------------------------

my @serve_runs;
my @served;    # [size, /static/ path, /plain/ path]

unless ($skip{serve}) {
    # the files, uploaded through the API, then a signed GET of each for
    # the baseline (RGW allows 15 minutes of clock skew: the serving runs
    # take a few)
    my ($auths, $dates) = ('', '');
    for my $size (@sizes) {
        my $data = png_bytes($size, "s3-$size");
        my $res = $t->upload($key, "serve-$size.png", $data, as => 'raw',
                             timeout => 60,
                             headers => [ 'X-BulletDrop-Domain' => $HOST ]);
        my ($json, $obj) = bd_upload_check('', $res->{status},
                                           $res->{body} // '');
        my ($path) = $json->{url} =~ m{\Ahttps?://[^/]+(/static/.*)\z}
            or die "no /static/ url: $res->{body}\n";
        my $plain_path = "/plain/$obj";
        my ($date, $auth) = sign_headers('GET', "/$BD_BUCKET/$obj",
                                         $EMPTY_SHA);
        $auths .= qq{    "$plain_path" "$auth";\n};
        $dates .= qq{    "$plain_path" "$date";\n};
        push @served, [ $size, $path, $plain_path, sha256_hex($data) ];
    }
    spew($auth_map, $auths);
    spew($date_map, $dates);
    $t->restart_nginx(bd_options());

    for my $s (@served) {
        my ($size, $path, $plain_path, $sha) = @$s;
        for my $p ($path, $plain_path) {
            my $res = $t->get($p, host => $HOST, timeout => 60);
            die "GET $p (Host: $HOST): $res->{status} "
                . substr($res->{body}, 0, 300) . "\n"
                unless $res->{status} == 200;
            die "GET $p: other bytes\n" unless sha256_hex($res->{body}) eq $sha;
        }
    }
    say_step('serve: ' . join(', ', map { size_label($_->[0]) } @served)
             . ' uploaded; each served whole both ways');

    for my $s (@served) {
        my ($size, $path, $plain_path) = @$s;
        my %warm;
        for my $round (1 .. $cfg{rounds}) {
            my @order = $round % 2 ? qw(plain bd) : qw(bd plain);
            for my $side (@order) {
                my $p = $side eq 'bd' ? $path : $plain_path;
                my $label = sprintf '%s GET %s', size_label($size),
                    $side eq 'bd' ? "BulletDrop ($HOST)" : 'proxy_pass';
                if ($cfg{warmup} && !$warm{$side}++) {
                    my $r = wrk($bd_port, 'get.lua', $cfg{warmup}, $p, $HOST,
                                $size, 'check');
                    die "$label: not every answer was a 200 of $size bytes "
                        . "(first: $1)\n$r->{raw}"
                        if $r->{raw} =~ /^CHECK .*first=(\S+)/m && $1 ne '-';
                }
                my $r = measured($t->nginx, $bd_port, 'get.lua', $p, $HOST,
                                 $size);
                die "$label: $r->{errors} errors\n$r->{raw}" if $r->{errors};
                die "$label: $r->{bytes} bytes for $r->{requests} answers\n"
                    if $r->{bytes} < $r->{requests} * $size;
                @$r{qw(side size round)} = ($side, $size, $round);
                $r->{mbs} = $r->{rps} * $size / 1e6;
                say_step(sprintf '%-34s %6.0f req/s %7.1f MB/s, p50 %6.2f '
                    . 'ms, p99 %7.2f ms; CPU/GET: nginx %.3f, PostgreSQL '
                    . '%.3f, RGW %.3f, wrk %.3f ms; other %.2f', $label,
                    @$r{qw(rps mbs)}, $r->{p50_us} / 1000,
                    $r->{p99_us} / 1000,
                    @$r{qw(srv_ms db_ms rgw_ms cli_ms other_cores)});
                push @serve_runs, $r;
            }
        }
    }
}

# ---- worker memory --------------------------------------------------------

# the worker's memory in kB: Rss, Pss_Anon, Private_Dirty (smaps_rollup)
sub mem_of {
    my ($pid) = @_;
    my %m;
    open my $fh, '<', "/proc/$pid/smaps_rollup" or return \%m;
    while (<$fh>) {
        $m{$1} = $2 if /^(Rss|Pss_Anon|Private_Dirty):\s+(\d+) kB/;
    }
    return \%m;
}

# the worker's uploads on disk: temp files with no name (O_TMPFILE) in
# $tmp, and any named ones there
sub temp_files {
    my ($pid, $tmp) = @_;
    my $n = 0;
    if (opendir my $dh, $tmp) {
        $n = grep { !/\A\.\.?\z/ } readdir $dh;
    }
    opendir my $dh, "/proc/$pid/fd" or return $n;
    for my $fd (grep { /\A\d+\z/ } readdir $dh) {
        my $to = readlink "/proc/$pid/fd/$fd" // next;
        $n++ if $to =~ m{\A\Q$tmp\E/#\d+ \(deleted\)\z};
    }
    return $n;
}

# TCP connections established to 127.0.0.1:$port (the client's side, to
# RGW: the module's PUTs under way)
sub connections_to {
    my ($port) = @_;
    my $remote = sprintf '0100007F:%04X', $port;
    open my $fh, '<', '/proc/net/tcp' or return 0;
    return scalar grep { my @f = split ' '; $f[2] eq $remote && $f[3] eq '01' }
                  <$fh>;
}

my @mem_runs;

unless ($skip{memory}) {
    $t->restart_nginx(bd_options(workers => 1));
    my @pids = $t->nginx->worker_pids;
    die "expected one worker, found @pids\n" unless @pids == 1;
    my $pid = $pids[0];
    # the worker's first uploads set up what every later one reuses (the
    # database connection, the key in the auth cache, a PUT to the store)
    for (1 .. 2) {
        my ($st, $out) = run_out(60, 'curl', '-sS', '-o', '/dev/null', '-w',
            '%{http_code}', '-H', "Authorization: Bearer $key", '-H',
            'X-Filename: warm.png', '-H', 'Content-Type: image/png', '-T',
            $file{ $sizes[0] }, '-X', 'POST',
            "http://127.0.0.1:$bd_port/api/uploads");
        die "warm-up upload: $out\n" unless $out eq '201';
    }

    my $size = $cfg{mem_size};
    my $rate = int($size / $cfg{mem_seconds} / 1024) . 'K';
    my $tmp = $t->upload_dir . '/.tmp';
    for my $count (@mem_counts) {
        purge($BD_BUCKET);
        my $rest = mem_of($pid);
        say_step(sprintf 'memory: %d uploads of %d bytes at once, '
            . '--limit-rate %s each; worker %d at rest: Rss %d kB, '
            . 'Private_Dirty %d kB', $count, $size, $rate, $pid,
            $rest->{Rss}, $rest->{Private_Dirty});

        my @args = ('--parallel', '--parallel-max', $count,
                    '--parallel-immediate');
        for my $i (1 .. $count) {
            push @args, '--next' if $i > 1;
            push @args, '-sS', '--max-time', '300', '--limit-rate', $rate,
                 '-o', "$dir/mem.$i.body", '-w', "$i %{http_code}\\n",
                 '-X', 'POST', '-T', $file{$size},
                 '-H', "Authorization: Bearer $key",
                 '-H', 'Content-Type: image/png',
                 '-H', "X-Filename: big$i.png",
                 "http://127.0.0.1:$bd_port/api/uploads";
        }
        my $curl = spawn("$dir/mem.out", 'curl', @args);

        my %peak = map { $_ => 0 } qw(Rss Pss_Anon Private_Dirty);
        my ($most_tmp, $most_put, $t0, $body_end) = (0, 0, time, undef);
        my @trace;
        while (1) {
            my $m = mem_of($pid);
            for (keys %peak) {
                $peak{$_} = $m->{$_} if ($m->{$_} // 0) > $peak{$_};
            }
            my $tmpn = temp_files($pid, $tmp);
            my $puts = connections_to($rgw->port);
            $most_tmp = $tmpn if $tmpn > $most_tmp;
            $most_put = $puts if $puts > $most_put;
            push @trace, [ time - $t0, $m->{Rss}, $m->{Private_Dirty},
                           $tmpn, $puts ];
            last if ended($curl);
            die "memory: the uploads took longer than 300 s\n"
                if time - $t0 > 300;
            sleep 0.05;
        }
        my $secs = time - $t0;
        my $after = mem_of($pid);

        # every answer a 201 of the size, every object in the bucket
        my @lines = split /\n/, slurp("$dir/mem.out");
        my %code = map { /\A(\d+) (\d+)\z/ ? ($1 => $2) : () } @lines;
        my @bad;
        for my $i (1 .. $count) {
            my $c = $code{$i} // '?';
            if ($c ne '201') {
                push @bad, "upload $i: $c";
                next;
            }
            my $json = eval { JSON::PP::decode_json(slurp("$dir/mem.$i.body")) };
            my ($obj) = ($json->{url} // '') =~ m{/static/(.*)\z};
            my $head = $obj ? $s3_bd->head($obj) : undef;
            push @bad, "upload $i: size $json->{size}, object "
                     . ($head ? "$head->{status} "
                                . ($head->{headers}{'content-length'} // '?')
                              : 'none')
                unless ($json->{size} // -1) == $size && $head
                       && $head->{status} == 200
                       && ($head->{headers}{'content-length'} // -1) == $size;
        }

        my $next = 0;
        for my $p (@trace) {
            next if $p->[0] < $next;
            printf "    %5.1fs  Rss %6d kB  Private_Dirty %6d kB  temp files "
                 . "%2d  PUTs to RGW %2d\n", @$p;
            $next = int($p->[0]) + 1;
        }
        printf "    %5.1fs  all answered: %d of %d 201 and stored%s\n", $secs,
               $count - @bad, $count,
               @bad ? ' (' . join('; ', @bad) . ')' : '';
        push @mem_runs, { count => $count, rest => $rest, peak => \%peak,
                          after => $after, tmp => $most_tmp, puts => $most_put,
                          bad => \@bad, secs => $secs };
    }
    purge($BD_BUCKET);
}

# ---- the figures ---------------------------------------------------------

my $uptime_end = `uptime`;
chomp $uptime_end;

print "\n";
printf "BulletDrop S3 storage benchmark, %s, Linux %s, %d cores\n",
       scalar(localtime), (POSIX::uname())[2], $ncpu;
print "uptime at the start: $uptime_start\n";
print "uptime at the end:   $uptime_end\n";
printf "Ceph RGW on loopback (OSD on memstore); wrk -t%d -c%d -d%ds, "
     . "worker_processes %d, %d round(s)\n", @cfg{qw(threads connections
       duration workers rounds)};

# the runs of one side together: requests over time, the median p50, the
# worst p99, CPU per request over all requests
sub total {
    my (@r) = @_;
    my ($req, $us, $other) = (0, 0, 0);
    my %cpu;
    for my $r (@r) {
        $req += $r->{requests};
        $us += $r->{duration_us};
        $cpu{$_} += $r->{$_} * $r->{requests}
            for qw(srv_ms db_ms rgw_ms cli_ms);
        $other += $r->{other_cores} * $r->{duration_us};
    }
    my @p50 = sort { $a <=> $b } map { $_->{p50_us} } @r;
    my @p99 = sort { $a <=> $b } map { $_->{p99_us} } @r;
    return { rps => $req / ($us / 1e6), requests => $req,
             p50_us => $p50[$#p50 / 2], p99_us => $p99[-1],
             (map { $_ => $cpu{$_} / ($req || 1) } keys %cpu),
             other_cores => $other / ($us || 1) };
}

sub table {
    my ($title, $runs, @sides) = @_;
    return unless @$runs;
    print "\n$title\n";
    printf "%-8s %-25s %7s %8s %8s %8s %7s   %7s %7s %7s %7s %6s\n", 'size',
           '', 'req/s', 'MB/s', 'p50', 'p99', 'ratio', 'nginx', 'PG',
           'RGW', 'wrk', 'other';
    for my $size (@sizes) {
        my %all;
        for my $side (@sides) {
            my @r = grep { $_->{side} eq $side && $_->{size} == $size }
                    @$runs;
            $all{$side} = total(@r) if @r;
        }
        my $base = $all{plain} or next;
        for my $side (grep { $all{$_} } @sides) {
            my $a = $all{$side};
            my @each = map {
                my $round = $_->{round};
                my ($b) = grep { $_->{side} eq 'plain' && $_->{size} == $size
                                 && $_->{round} == $round } @$runs;
                $b ? sprintf('%.2f', $_->{rps} / $b->{rps}) : ();
            } grep { $_->{side} eq $side && $_->{size} == $size } @$runs;
            printf "%-8s %-25s %7.0f %8.1f %8.2f %8.2f %6.2fx   %7.3f %7.3f "
                 . "%7.3f %7.3f %6.2f\n", size_label($size),
                   $side_label{$side}, $a->{rps}, $a->{rps} * $size / 1e6,
                   $a->{p50_us} / 1000, $a->{p99_us} / 1000,
                   $a->{rps} / $base->{rps},
                   @$a{qw(srv_ms db_ms rgw_ms cli_ms other_cores)};
            printf "%-8s %-25s %s\n", '', '  (rounds: ' . join(', ', @each)
                   . ')', '' if $side ne 'plain' && @each > 1;
        }
    }
    print "(all rounds together: req/s over their time, p50 the median, p99 "
        . "the worst, in ms;\n ratio: to proxy_pass (rounds: each round "
        . "against its own proxy_pass run);\n CPU per request in ms: nginx "
        . "workers, PostgreSQL, the RGW daemons (radosgw, OSD,\n monitor), "
        . "wrk; other: cores busy outside them (well above 0.1: noisy))\n";
}

table('Uploads (BulletDrop: POST /api/uploads/sharex; proxy_pass: PUT '
      . "/$PLAIN_BUCKET/KEY through a plain nginx)",
      \@upload_runs, qw(plain bd close));
table("Serving (BulletDrop: GET /static/..., Host: $HOST; proxy_pass: "
      . 'GET /plain/... of the same object, same upstream)',
      \@serve_runs, qw(plain bd));

if (@mem_runs) {
    printf "\nWorker memory, one worker, %s uploads (raw body) at once, each "
         . "held to about %d s\n", size_label($cfg{mem_size}),
         $cfg{mem_seconds};
    printf "%4s %9s %10s %8s %14s %10s %10s %6s %6s %8s %7s\n", 'N',
           'rest Rss', 'peak dRss', 'dRss/N', 'peak dPrivD', 'dPrivD/N',
           'after dRss', 'temps', 'PUTs', '201s', 'secs';
    for my $m (@mem_runs) {
        my $n = $m->{count};
        my %d = map { $_ => $m->{peak}{$_} - $m->{rest}{$_} }
                keys %{ $m->{peak} };
        printf "%4d %6d kB %7d kB %5.0f kB %11d kB %7.0f kB %7d kB %6d %6d "
             . "%4d/%-3d %7.1f\n", $n, $m->{rest}{Rss}, $d{Rss}, $d{Rss} / $n,
               $d{Private_Dirty}, $d{Private_Dirty} / $n,
               $m->{after}{Rss} - $m->{rest}{Rss}, $m->{tmp}, $m->{puts},
               $n - @{ $m->{bad} }, $n, $m->{secs};
    }
    if (@mem_runs >= 2) {
        my ($lo, $hi) = @mem_runs[0, -1];
        my $slope = sub {
            my ($k) = @_;
            return (($hi->{peak}{$k} - $hi->{rest}{$k})
                    - ($lo->{peak}{$k} - $lo->{rest}{$k}))
                 / ($hi->{count} - $lo->{count});
        };
        printf "What one more concurrent upload adds, from N = %d to %d: "
             . "Rss %+.0f kB, Private_Dirty %+.0f kB\n", $lo->{count},
               $hi->{count}, $slope->('Rss'), $slope->('Private_Dirty');
    }
    print "(kB; rest: the worker before the uploads; peak: the highest of "
        . "the 50 ms samples,\n through the bodies and the PUTs to the "
        . "bucket; d: minus rest; PrivD: Private_Dirty;\n temps: the most "
        . "descriptors of temp files open at once (two an upload while its\n"
        . " PUT runs); PUTs: the most connections established to RGW's port.\n"
        . " Each body is on disk in its temp file until the store has it: the "
        . "worker holds buffers)\n";
}

my $failed = grep { @{ $_->{bad} } } @mem_runs;
printf "\n%s  (the whole run: %.0f s)\n",
       $failed ? "FAILED: $failed memory run(s) had uploads not stored"
               : 'every request answered as it should',
       elapsed();
exit($failed ? 1 : 0);
