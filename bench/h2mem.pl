#!/usr/bin/perl

# Worker memory per upload over HTTP/2 with TLS; run it through
# bench/h2mem.sh (see bench/README.md, "HTTP/2 memory benchmark").
#
# The production issue asks us to "state the worker memory per 50 MB h2
# upload".  This states it, for HTTP/2 and, beside it, HTTP/1.1, both over
# TLS, on the configuration of nginx-conf/bulletdrop.conf's API server.
#
# What a worker holds for an upload (nginx 1.22.1: src/http/v2/ngx_http_v2.c,
# src/http/ngx_http_request_body.c; the module's src/ngx_http_bulletdrop_*)
#
#   The module reads bodies unbuffered (r->request_body_no_buffering, in
#   ngx_http_bulletdrop_body.c): nginx hands over what it has read, the
#   module writes it to the upload's temp file and hashes it, and nginx
#   reuses its buffer.  The module has no body buffer of its own.
#
#   HTTP/2, once per worker: the receive buffer, http2_recv_buffer_size
#   (256k).  ngx_http_v2_init() allocates it from the cycle's pool on the
#   worker's first HTTP/2 connection; every connection's read handler
#   decrypts into it (ngx_ssl_recv() fills up to 256k - 32 bytes) and parses
#   frames out of it, one connection at a time.  256k is above glibc's mmap
#   threshold: only the pages written count, at most 256 KB, whatever the
#   number of connections.
#
#   HTTP/2, per stream: the body buffer.  ngx_http_v2_read_request_body()
#   sizes it, for an unbuffered body, as client_body_buffer_size (64k: the
#   module sets it in its locations unless the configuration does) raised
#   to http2_body_preread_size (64k) and capped at 2^31 - 1, and DATA are
#   copied into it from the receive buffer.  Flow control bounds it: the
#   stream's window is never more than the buffer's room, and
#   ngx_http_v2_read_unbuffered_request_body() sends a WINDOW_UPDATE only
#   once the module has taken the buffer's bytes (rb->busy == NULL).  So a
#   stream holds one 64 KiB buffer whatever the file's size; the rest of
#   the file waits in the client.
#   Also per stream, for a moment: the preread buffer.  The SETTINGS nginx
#   sends grant each new stream http2_body_preread_size (64k) of window
#   before the handler asks for the body; DATA that arrive meanwhile (while
#   the module checks the API key) go to a 64 KiB buffer, which
#   ngx_http_v2_read_request_body() copies into the body buffer and
#   ngx_pfree()s.  Then the stream's fake connection and request (the
#   request's pool, request_pool_size 4k; header_in, 1k), and the module's
#   state: the upload struct, an EVP_MD_CTX (SHA-256) and, for multipart,
#   the parser (bd_multipart_t: about 10 KB, 8 KiB of it for part headers).
#
#   HTTP/2, per connection (each upload here has its own): the connection's
#   pool, the h2 connection with its pool (http2_pool_size, 4k), the
#   streams index, HPACK's table (4 KiB once used), and OpenSSL's SSL object
#   with its record buffers (about 17 KB each way; nginx sets
#   SSL_MODE_RELEASE_BUFFERS, so an empty read buffer is given back).
#
#   HTTP/1.1: ngx_http_read_client_request_body() allocates one body buffer
#   of client_body_buffer_size (64k); SSL_read() decrypts straight into it.
#   TCP's window is the flow control: the rest waits in the kernel's socket
#   buffers, which are not the worker's memory.  No receive buffer per
#   worker, no preread buffer; the same module state.
#
#   Bounded, then, by buffers: about 64 KiB + a connection's TLS + a few KB
#   of state per upload, nothing that grows with the file.  The run checks
#   it: 5 MB against 50 MB at the same concurrency and the same duration.
#   BENCH_BODY_BUFFER moves the body buffer (and BENCH_PREREAD the
#   preread one) to check which buffer governs what.  Over HTTP/2 the body
#   buffer cannot be made smaller than 64 KiB in practice: with
#   http2_body_preread_size under 65535, ngx_http_v2_state_headers()
#   refuses (REFUSED_STREAM) a stream whose DATA may come before the client
#   has acknowledged the SETTINGS, which curl 7.88's uploads do; with
#   BENCH_PREREAD=16k curl gave up on most uploads ("Connection died, tried
#   5 times").
#
# How it measures
#
#   The test suite's fixture (PostgreSQL, nginx with the module, on a free
#   port) plus a server block like bulletdrop.conf's API server, on a
#   second port: listen ssl http2, a throwaway self-signed certificate made
#   by openssl in the temp dir, tls.conf's protocols, ciphers and session
#   cache, location /api/ { bulletdrop_api; }; bulletdrop_max_file_size
#   50m, bulletdrop_db_pool 8; worker_processes 1, so that one worker takes
#   every upload.  Not from bulletdrop.conf: the limit_req zones (they
#   would refuse 16 uploads at once), OCSP stapling (a self-signed
#   certificate has none), and bulletdrop_fsync (off here: fsync does not
#   change what the worker holds, and would write 800 MB per run to disk).
#
#   Each run gets a fresh worker (nginx restarted), warmed by three small
#   GETs of /api/users/me (plain HTTP, HTTP/1.1 over TLS, HTTP/2 over TLS:
#   the database connection, the key in the auth cache, OpenSSL's first
#   handshake, HTTP/2's receive buffer allocated), none with a body, so no
#   freed body buffer is waiting to be reused.  Then "rest" is read, N
#   uploads start at once (one connection each, curl --http2 or --http1.1,
#   -k; see BENCH_CLIENT), each held by --limit-rate to size /
#   BENCH_SECONDS so that every size stays in flight about as long, and
#   the worker's /proc/PID/smaps_rollup (Rss, Pss, Pss_Anon, Private_Dirty)
#   and status (VmHWM) are read every 50 ms until all have answered; then
#   once more ("after").
#   Private_Dirty is the worker's own memory: its heap, and the pages it
#   shared with the master until it wrote them.  Rss also counts code and
#   libraries paged in for the first time.  Pss splits each shared page
#   among the processes that map it, so the worker's Pss moves when curl
#   processes map or unmap libcrypto: its peak is not the uploads' alone.
#   Pss_Anon, its anonymous part, does not have that noise.  VmHWM, the
#   kernel's own peak of Rss, is reset at rest (clear_refs 5); it catches a
#   spike between two samples, but the kernel updates it only on some
#   paths (munmap, exit), not when glibc gives memory back with madvise, so
#   it can also stay below the sampled peak.  Every upload must get a 201
#   with the right size, and its file must be stored with that size.
#
#   Per upload: (peak - rest) / N, which also carries what a worker holds
#   once (the 256 KB receive buffer, at most), and the slope from N = 4 to
#   N = 16, (peak16 - peak4) / 12, which does not.
#
# Settings, from the environment (defaults in brackets):
#   BENCH_COUNTS [1,4,16]     concurrent uploads, for each protocol and body
#   BENCH_SIZE [52428800]     bytes of each file (50 MB)
#   BENCH_SMALL [5242880]     bytes of the file compared with it (5 MB)
#   BENCH_SMALL_COUNT [4]     its concurrency (0: no comparison)
#   BENCH_SECONDS [3]         how long each upload lasts (curl --limit-rate)
#   BENCH_KINDS [raw,multipart]  bodies: raw (X-Filename, curl -T) and
#                             multipart (curl -F file=@...)
#   BENCH_PROTOCOLS [h2,h1]   HTTP/2 and HTTP/1.1, both over TLS
#   BENCH_MUX [16]            one more run: that many HTTP/2 streams over
#                             one connection (curl --parallel); 0: none
#   BENCH_CLIENT [parallel]   parallel: one curl for all the uploads,
#                             each on its own connection (--parallel
#                             --parallel-immediate); processes: a curl
#                             process per upload.  Debian 12's curl 7.88
#                             spends CPU while an HTTP/2 stream waits for
#                             its window (strace: poll() says writable,
#                             nothing is sent): 16 processes stayed
#                             runnable at about 11% of a core each, the
#                             worker got 5 to 11%, and 16 HTTP/2 uploads
#                             meant to last 3 s took 17 to 36 s (with the
#                             same memory figures)
#   BENCH_PREREAD             http2_body_preread_size of the TLS server
#                             (nginx's default, 64k, unless set)
#   BENCH_BODY_BUFFER         client_body_buffer_size of its /api/ (the
#                             module's default, 64k, unless set)
#   BENCH_KEEP                keep the temp directory (BULLETDROP_KEEP too)
#   TMPDIR                    where the stack lives (/tmp unless set)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

BEGIN { $ENV{BULLETDROP_KEEP} = 1 if $ENV{BENCH_KEEP} }

use BulletDrop::Test qw(free_port);
use BulletDrop::Util qw(slurp);
use BulletDrop::Bench qw(env_num loadavg say_step elapsed fixture spawn
                         ended run_out png_file ncpu);

$| = 1;

sub env_list {
    my ($name, $default, $re) = @_;
    my @v = split /,/, $ENV{$name} // $default;
    for (@v) {
        die "$name: '$_' is not one of the choices\n" unless /\A(?:$re)\z/;
    }
    return @v;
}

my %cfg = (
    size        => env_num('BENCH_SIZE', 50 * 1024 * 1024),
    small       => env_num('BENCH_SMALL', 5 * 1024 * 1024),
    small_count => env_num('BENCH_SMALL_COUNT', 4),
    seconds     => env_num('BENCH_SECONDS', 3),
    mux         => env_num('BENCH_MUX', 16),
    client      => $ENV{BENCH_CLIENT} // 'parallel',
);
die "BENCH_CLIENT is processes or parallel\n"
    unless $cfg{client} =~ /\A(?:processes|parallel)\z/;
my @counts = env_list('BENCH_COUNTS', '1,4,16', '[1-9][0-9]*');
my @kinds = env_list('BENCH_KINDS', 'raw,multipart', 'raw|multipart');
my @protocols = env_list('BENCH_PROTOCOLS', 'h2,h1', 'h2|h1');
die "BENCH_SECONDS must be at least 1\n" unless $cfg{seconds} >= 1;
for my $name (qw(BENCH_PREREAD BENCH_BODY_BUFFER)) {
    die "$name must look like 64k\n"
        if defined $ENV{$name} && $ENV{$name} !~ /\A[0-9]+[kKmM]?\z/;
}
my $preread = defined $ENV{BENCH_PREREAD}
            ? "        http2_body_preread_size $ENV{BENCH_PREREAD};\n" : '';
my $body_buffer = defined $ENV{BENCH_BODY_BUFFER}
            ? "            client_body_buffer_size $ENV{BENCH_BODY_BUFFER};\n"
            : '';

my %proto_name = (h2 => 'HTTP/2', h1 => 'HTTP/1.1');
my %curl_proto = (h2 => '--http2', h1 => '--http1.1');
my %version = (h2 => '2', h1 => '1.1');

my $load_start = loadavg();
my $uptime_start = `uptime`;
chomp $uptime_start;

# ---- the stack -------------------------------------------------------

say_step("load average $load_start on " . ncpu() . ' cores');
my $t = fixture();
my $dir = $t->dir;
my $tls_port = free_port();
my ($crt, $crt_key) = $t->tls_cert;

# nginx-conf/tls.conf's, but for DHE (the throwaway key is ECDSA)
my $ciphers = join ':', map { ("ECDHE-ECDSA-$_", "ECDHE-RSA-$_") }
                        qw(AES128-GCM-SHA256 AES256-GCM-SHA384
                           CHACHA20-POLY1305);

# bulletdrop.conf's API server, as far as a throwaway stack can have it
my $tls_server = <<"EOF";
    server {
        listen 127.0.0.1:$tls_port ssl http2;
        server_name localhost;

        ssl_certificate $crt;
        ssl_certificate_key $crt_key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $ciphers;
        ssl_prefer_server_ciphers off;
        ssl_session_timeout 1d;
        ssl_session_cache shared:BulletDropTLS:10m;
        ssl_session_tickets off;
$preread
        location /api/ {
$body_buffer            bulletdrop_api;
        }
    }
EOF

my %options = (registration => 'open', workers => 1, fsync => 'off',
               max_file_size => '50m', db_pool => 8, http => $tls_server);

$t->start_nginx(%options);
say_step("nginx with the module: plain HTTP on " . $t->port
         . ", TLS with http2 on $tls_port");

my $user = $t->new_user('bench', key => 1);
my $key = $user->{key};

my %file = (
    $cfg{size} => png_file("$dir/big.png", $cfg{size}, 'big'),
);
$file{ $cfg{small} } = png_file("$dir/small.png", $cfg{small}, 'small')
    if $cfg{small_count} && $cfg{small} != $cfg{size};

# ---- /proc -----------------------------------------------------------

# the worker's memory in kB: Rss, Pss, Pss_Anon, Private_Dirty
# (smaps_rollup), VmHWM (status)
sub mem_of {
    my ($pid) = @_;
    my %m;
    if (open my $fh, '<', "/proc/$pid/smaps_rollup") {
        while (<$fh>) {
            $m{$1} = $2
                if /^(Rss|Pss|Pss_Anon|Private_Dirty):\s+(\d+) kB/;
        }
    }
    if (open my $fh, '<', "/proc/$pid/status") {
        while (<$fh>) {
            $m{$1} = $2 if /^(VmHWM):\s+(\d+) kB/;
        }
    }
    return \%m;
}

# uploads under way in the worker: its temp files with no name (O_TMPFILE)
# in $dir, and any named ones there
sub temp_files {
    my ($pid, $dir) = @_;
    my $n = 0;
    if (opendir my $dh, $dir) {
        $n = grep { !/\A\.\.?\z/ } readdir $dh;
    }
    opendir my $dh, "/proc/$pid/fd" or return $n;
    for my $fd (grep { /\A\d+\z/ } readdir $dh) {
        my $to = readlink "/proc/$pid/fd/$fd" // next;
        $n++ if $to =~ m{\A\Q$dir\E/#\d+ \(deleted\)\z};
    }
    return $n;
}

# TCP connections established to 127.0.0.1:$port (the server's side)
sub connections {
    my ($port) = @_;
    my $local = sprintf '0100007F:%04X', $port;
    open my $fh, '<', '/proc/net/tcp' or return 0;
    return scalar grep { (split ' ')[1] eq $local && (split ' ')[3] eq '01' }
                  <$fh>;
}

sub one_worker {
    my @pids = $t->nginx->worker_pids;
    die "expected one worker, found @pids\n" unless @pids == 1;
    return $pids[0];
}

sub empty_uploads {
    my $root = $t->upload_dir;
    opendir my $dh, $root or return;
    for my $cat (grep { !/\A\./ } readdir $dh) {
        next unless -d "$root/$cat";
        opendir my $ch, "$root/$cat" or next;
        unlink map { "$root/$cat/$_" } grep { -f "$root/$cat/$_" } readdir $ch;
    }
}

# ---- curl --------------------------------------------------------------

my $api = "https://127.0.0.1:$tls_port/api/uploads";

# the arguments of one upload of $path as $kind, named $name
sub upload_args {
    my ($kind, $path, $name) = @_;
    return $kind eq 'raw'
        ? ('-X', 'POST', '-T', $path,
           '-H', 'Content-Type: application/octet-stream',
           '-H', "X-Filename: $name", $api)
        : ('-F', "file=\@$path;type=image/png;filename=$name", $api);
}

my @curl = ('curl', '-sS', '-k', '--max-time', '120',
            '-H', "Authorization: Bearer $key");

# A fresh worker, warmed without a body: the database connection and the
# key's place in the auth cache (plain HTTP), OpenSSL's first handshake
# and HTTP/2's receive buffer (TLS); returns its pid.
sub fresh_worker {
    $t->restart_nginx(%options);
    my $me = '/api/users/me';
    my @get = ([ "http://127.0.0.1:" . $t->port . $me ],
               [ '--http1.1', "https://127.0.0.1:$tls_port$me" ],
               [ '--http2', "https://127.0.0.1:$tls_port$me" ]);
    for my $g (@get) {
        my ($st, $out) = run_out(30, @curl, '-o', '/dev/null', '-w',
                                 '%{http_code} %{http_version}', @$g);
        die "warm-up GET @$g: $out\n" unless $out =~ /\A200 /;
    }
    return one_worker();
}

# Checks one answer: a 201 over the protocol asked for, the size, the
# stored file's size; returns '' or what is wrong.
sub check_answer {
    my ($proto, $size, $out, $body_file) = @_;
    my ($code, $ver) = $out =~ /\A(\d+) (\S+)\z/ or return "curl: $out";
    return "answered $code" unless $code eq '201';
    return "spoke HTTP/$ver" unless $ver eq $version{$proto};
    my $json = eval { JSON::PP::decode_json(slurp($body_file)) }
        or return 'no JSON in the answer';
    return "size $json->{size}" unless ($json->{size} // -1) == $size;
    my ($stored) = ($json->{url} // '') =~ m{/static/(.*)\z}
        or return "url $json->{url}";
    my $on_disk = -s $t->upload_dir . "/$stored" // -1;
    return "stored $on_disk bytes" unless $on_disk == $size;
    return '';
}

# One run: $count uploads of $size bytes as $kind over $proto, each its own
# curl and connection (or, with $mux, one curl multiplexing $count streams
# over one HTTP/2 connection).
sub run {
    my (%o) = @_;
    my ($proto, $kind, $size, $count) = @o{qw(proto kind size count)};
    my $path = $file{$size};
    my $rate = int($size / $cfg{seconds} / 1024) . 'K';
    my $label = sprintf '%s %s %s%s', $proto_name{$proto}, $kind,
        mb($size), $o{mux} ? ', 1 connection' : '';

    my $pid = fresh_worker();
    # VmHWM from here on (Linux's "5" resets the peak to the current Rss)
    open my $cr, '>', "/proc/$pid/clear_refs" or die "clear_refs: $!\n";
    print {$cr} "5\n";
    close $cr or die "clear_refs: $!\n";
    my $rest = mem_of($pid);
    say_step("$label x$count: worker $pid at rest, Rss $rest->{Rss} kB, Pss "
             . "$rest->{Pss} kB, Private_Dirty $rest->{Private_Dirty} kB; "
             . "--limit-rate $rate each");

    my $w = '%{http_code} %{http_version}';
    my (@curls, @outs);
    my $one_curl = $o{mux} || $cfg{client} eq 'parallel';
    if ($one_curl) {
        # one curl for all: --parallel multiplexes them over one HTTP/2
        # connection, or with --parallel-immediate gives each its own;
        # each transfer writes its -w line, in order of completion
        my @args = ('--parallel', '--parallel-max', $count,
                    $o{mux} ? () : '--parallel-immediate');
        for my $i (1 .. $count) {
            push @args, '--next' if $i > 1;
            push @args, @curl[1 .. $#curl], $curl_proto{$proto},
                 '--limit-rate', $rate, '-o', "$dir/up.$i.body",
                 '-w', "$i $w\\n", upload_args($kind, $path, "up$i.png");
        }
        push @curls, spawn("$dir/up.all.out", 'curl', @args);
    } else {
        for my $i (1 .. $count) {
            push @curls, spawn("$dir/up.$i.out", @curl, $curl_proto{$proto},
                               '--limit-rate', $rate,
                               '-o', "$dir/up.$i.body", '-w', $w,
                               upload_args($kind, $path, "up$i.png"));
        }
    }

    my %peak = map { $_ => 0 } qw(Rss Pss Pss_Anon Private_Dirty);
    my ($most, $conns, $samples) = (0, 0, 0);
    my $t0 = time;
    my %alive = map { $_ => 1 } @curls;
    while (%alive) {
        my $m = mem_of($pid);
        $samples++;
        for (keys %peak) {
            $peak{$_} = $m->{$_} if ($m->{$_} // 0) > $peak{$_};
        }
        my $n = temp_files($pid, $t->upload_dir . '/.tmp');
        $most = $n if $n > $most;
        $n = connections($tls_port);
        $conns = $n if $n > $conns;
        for my $c (keys %alive) {
            delete $alive{$c} if ended($c);
        }
        die "$label: the uploads took longer than 150 s\n"
            if time - $t0 > 150;
        sleep 0.05;
    }
    my $secs = time - $t0;
    my $after = mem_of($pid);

    # every answer, checked
    my %line;
    if ($one_curl) {
        for (split /\n/, slurp("$dir/up.all.out")) {
            $line{$1} = $2 if /\A(\d+) (\d+ \S+)\z/;
        }
    } else {
        %line = map { $_ => slurp("$dir/up.$_.out") } 1 .. $count;
    }
    my @bad;
    for my $i (1 .. $count) {
        my $why = check_answer($proto, $size, $line{$i} // 'no answer',
                               "$dir/up.$i.body");
        push @bad, "upload $i: $why" if $why;
    }
    empty_uploads();

    my %r = (label => $label, proto => $proto, kind => $kind, size => $size,
             count => $count, mux => $o{mux}, small => $o{small},
             secs => $secs,
             samples => $samples, most => $most, conns => $conns,
             rest => $rest,
             peak => \%peak, after => $after, hwm => $after->{VmHWM},
             ok => $count - @bad, bad => \@bad);
    printf "    %.1f s, %d samples; at once: %d temp files, %d connections; "
         . "peak Rss +%d "
         . "kB, Pss +%d kB, Pss_Anon +%d kB, Private_Dirty +%d kB, VmHWM +%d "
         . "kB; after: Rss +%d kB; 201 with the size stored: %d of %d\n",
           $secs, $samples, $most, $conns, $peak{Rss} - $rest->{Rss},
           $peak{Pss} - $rest->{Pss}, $peak{Pss_Anon} - $rest->{Pss_Anon},
           $peak{Private_Dirty} - $rest->{Private_Dirty},
           $after->{VmHWM} - $rest->{Rss}, $after->{Rss} - $rest->{Rss},
           $r{ok}, $count;
    print "    $_\n" for @bad;
    return \%r;
}

sub mb {
    my ($bytes) = @_;
    return $bytes % (1024 * 1024) == 0 ? $bytes / (1024 * 1024) . ' MB'
         : "$bytes B";
}

# ---- the runs ----------------------------------------------------------

my @runs;
for my $proto (@protocols) {
    for my $kind (@kinds) {
        for my $count (@counts) {
            push @runs, run(proto => $proto, kind => $kind,
                            size => $cfg{size}, count => $count);
        }
    }
}
if ($cfg{small_count} && $file{ $cfg{small} } && $cfg{small} != $cfg{size}) {
    for my $kind (@kinds) {
        push @runs, run(proto => 'h2', kind => $kind, size => $cfg{small},
                        count => $cfg{small_count}, small => 1);
    }
}
if ($cfg{mux} && grep { $_ eq 'h2' } @protocols) {
    push @runs, run(proto => 'h2', kind => $kinds[0], size => $cfg{size},
                    count => $cfg{mux}, mux => 1);
}

# ---- the table ---------------------------------------------------------

my $uptime_end = `uptime`;
chomp $uptime_end;

print "\n";
printf "BulletDrop worker memory per upload over TLS, %s, nginx 1.22 + the "
     . "module,\nLinux %s, %d cores; one worker; each upload lasts about "
     . "%d s (--limit-rate)\n", scalar(localtime), (POSIX::uname())[2],
       ncpu(), $cfg{seconds};
print "http2_body_preread_size $ENV{BENCH_PREREAD}\n" if $preread;
print "client_body_buffer_size $ENV{BENCH_BODY_BUFFER} (TLS server's /api/)\n"
    if $body_buffer;
print "uptime at the start: $uptime_start\n";
print "uptime at the end:   $uptime_end\n\n";

my @head = ('', 'N', 'at once', 'conns', 'rest Rss', 'peak dRss', 'dRss/N',
            'dHWM', 'peak dPss', 'dPssAnon', 'peak dPrivD', 'dPrivD/N',
            'after dRss', '201+size');
my $fmt = "%-30s %3s %7s %5s %8s %9s %7s %6s %9s %8s %11s %8s %10s %8s\n";
printf $fmt, @head;
for my $r (@runs) {
    my ($rest, $peak, $n) = ($r->{rest}, $r->{peak}, $r->{count});
    my %d = map { $_ => $peak->{$_} - $rest->{$_} } keys %$peak;
    printf $fmt, $r->{label}, $n, $r->{most}, $r->{conns}, $rest->{Rss},
        $d{Rss}, int($d{Rss} / $n + 0.5), $r->{hwm} - $rest->{Rss},
        $d{Pss}, $d{Pss_Anon},
        $d{Private_Dirty}, int($d{Private_Dirty} / $n + 0.5),
        $r->{after}{Rss} - $rest->{Rss}, "$r->{ok}/$n";
}
print "(kB.  rest: a fresh worker after three GETs, before the uploads; "
    . "peak: the highest of\n the 50 ms samples; d: minus rest; dHWM: "
    . "VmHWM (reset at rest) minus rest Rss; PrivD:\n Private_Dirty; "
    . "at once: the most uploads' temp files open together in the worker;\n"
    . " conns: the most TLS connections established together)\n"
    . "(Pss moves with the other processes that map the same libraries "
    . "(libcrypto: every\n curl), so its peak is not the uploads' alone; "
    . "Pss_Anon and Private_Dirty are)\n";

# the slope between the two largest counts of each series: what one more
# upload costs, without what the worker holds once
my %by;
for my $r (grep { !$_->{mux} && $_->{size} == $cfg{size} } @runs) {
    push @{ $by{"$r->{proto} $r->{kind}"} }, $r;
}
my @slopes;
for my $proto (@protocols) {
    for my $kind (@kinds) {
        my @s = sort { $a->{count} <=> $b->{count} }
                @{ $by{"$proto $kind"} // [] };
        next unless @s >= 2;
        my ($lo, $hi) = @s[-2, -1];
        my $dn = $hi->{count} - $lo->{count};
        my %slope = map {
            $_ => (($hi->{peak}{$_} - $hi->{rest}{$_})
                   - ($lo->{peak}{$_} - $lo->{rest}{$_})) / $dn
        } qw(Rss Pss_Anon Private_Dirty);
        push @slopes, sprintf "  %-18s from N = %d to %d: Rss %+.0f kB, "
            . "Pss_Anon %+.0f kB, Private_Dirty %+.0f kB per upload",
            "$proto_name{$proto} $kind", $lo->{count}, $hi->{count},
            @slope{qw(Rss Pss_Anon Private_Dirty)};
    }
}
if (@slopes) {
    print "\nWhat one more concurrent ${\ mb($cfg{size}) } upload adds "
        . "(the slope of the peaks):\n";
    print "$_\n" for @slopes;
}

my @small = grep { $_->{small} } @runs;
if (@small) {
    print "\nThe file's size, at N = $cfg{small_count} over HTTP/2 "
        . "(peak Private_Dirty - rest):\n";
    for my $s (@small) {
        my ($big) = grep { $_->{proto} eq 'h2' && $_->{kind} eq $s->{kind}
                           && $_->{size} == $cfg{size} && !$_->{mux}
                           && $_->{count} == $s->{count} } @runs;
        next unless $big;
        printf "  %-10s %s: %d kB   %s: %d kB\n", $s->{kind},
            mb($s->{size}), $s->{peak}{Private_Dirty}
                            - $s->{rest}{Private_Dirty},
            mb($big->{size}), $big->{peak}{Private_Dirty}
                              - $big->{rest}{Private_Dirty};
    }
}

my $failed = grep { @{ $_->{bad} } } @runs;
printf "\n%s  (the whole run: %.0f s)\n",
    $failed ? "FAILED: $failed runs had uploads without a 201 and their size"
            : 'every upload: 201, its size in the answer and on disk',
    elapsed();
exit($failed ? 1 : 0);
