#!/usr/bin/perl
# Prometheus metrics: GET /metrics (bulletdrop_metrics) sums what every
# worker counted, exactly: uploads by result and reason, their bytes,
# durations and sizes, files served by kind and status, spent views,
# refused credentials, the login limiter, the database pools, the sweep
# and the thread pool.  promtool accepts the text; a real Prometheus
# server scrapes it and answers a query with the uploads this test made;
# a reload keeps the counters (the zone survives it).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use POSIX qw(WNOHANG);

use BulletDrop::Test qw(free_port wait_until is_error sample);
use BulletDrop::Util qw(slurp spew run_cmd);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', files => 1, metrics => 1,
                workers => 2, base_domain => 'localhost',
                login_limit => 'user=3 addr=1000 period=1m',
                sweep_interval => '1s',
                # which worker answered each upload
                http => "    log_format bd_pids '\$pid \$status \$uri';\n"
                        . "    access_log \@PREFIX\@/logs/pids.log bd_pids;\n");

my $alice = $t->new_user('alice', key => 1);
$t->add_domains('img.localhost');

# name{labels} => value of every sample of the text
sub samples {
    my ($text) = @_;
    my %s;
    for (split /\n/, $text) {
        next if /^#/ || !/\S/;
        my ($k, $v) = /\A(\S+(?:\{[^}]*\})?) (\S+)\z/ or next;
        $s{$k} = $v;
    }
    return \%s;
}

sub scrape {
    my $res = $t->get('/metrics');
    die "GET /metrics: $res->{status}\n" unless $res->{status} == 200;
    return samples($res->{body});
}

# the same key, with a value of 0 when the series is not there yet
sub at { $_[0]{$_[1]} // 0 }

my $before = scrape();

subtest 'the answer: Prometheus text 0.0.4, GET and HEAD only' => sub {
    my $res = $t->get('/metrics');
    is($res->{status}, 200, 'GET: 200');
    is($res->{headers}{'content-type'},
       'text/plain; version=0.0.4; charset=utf-8', 'the text format');
    is($res->{headers}{'cache-control'}, 'no-store', 'never cached');
    like($res->{body},
         qr/^bulletdrop_build_info\{version="[0-9.]+",
              nginx="1\.\d+\.\d+"\}\ 1$/mx,
         'build_info names the version and nginx');

    my $head = $t->request('HEAD', '/metrics');
    is($head->{status}, 200, 'HEAD: 200');
    is($head->{body}, '', 'without a body');

    my $post = $t->post('/metrics', body => 'x');
    is_error($post, 405, 'method_not_allowed', 'POST: a JSON 405');
    is($post->{headers}{allow}, 'GET, HEAD', 'that says what is allowed');
};

subtest 'uploads are counted exactly across both workers' => sub {
    my $n = 40;
    my (%sizes, $bytes);

    # in parallel, so that both workers take some
    my @kids;
    for my $k (0 .. 3) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $ok = 1;
            for my $i (0 .. $n / 4 - 1) {
                my $size = 1000 * (2 + (($k * 10 + $i) % 10));
                my $res = $t->upload($alice->{key}, "s$k-$i.png",
                                     sample('png', $size));
                $ok &&= $res->{status} == 201;
            }
            POSIX::_exit($ok ? 0 : 1);
        }
        push @kids, $pid;
    }
    for my $pid (@kids) {
        waitpid $pid, 0;
        is($?, 0, "client $pid: every upload got 201");
    }
    for my $k (0 .. 3) {
        for my $i (0 .. $n / 4 - 1) {
            $bytes += length sample('png', 1000 * (2 + (($k * 10 + $i) % 10)));
        }
    }

    # refusals: 3 extensions, 2 bad keys, 1 empty file
    $t->upload($alice->{key}, "x$_.exe", 'MZ') for 1 .. 3;
    $t->upload('bd_notakey', "y$_.png", sample('png', 100)) for 1 .. 2;
    $t->upload($alice->{key}, 'empty.png', '');

    # counted in the log phase, which may end after the client has read
    # the answer (a refusal's unread body is drained first)
    my $m;
    my $d = sub { at($m, $_[0]) - at($before, $_[0]) };
    wait_until(sub {
        $m = scrape();
        $d->('bulletdrop_uploads_total{result="refused",'
             . 'reason="empty_file"}') >= 1
    }, 10);

    is($d->('bulletdrop_uploads_total{result="ok",reason="none"}'), $n,
       "$n uploads ok");
    is($d->('bulletdrop_uploads_total{result="refused",'
            . 'reason="extension_not_allowed"}'), 3, '3 refused by extension');
    is($d->('bulletdrop_uploads_total{result="refused",'
            . 'reason="invalid_token"}'), 2, '2 refused for their key');
    is($d->('bulletdrop_uploads_total{result="refused",'
            . 'reason="empty_file"}'), 1, '1 refused as empty');
    is($d->('bulletdrop_upload_bytes_total'), $bytes,
       "their bytes: $bytes");
    is($d->('bulletdrop_upload_duration_seconds_count'), $n,
       'the duration histogram has each');
    is($d->('bulletdrop_upload_size_bytes_count'), $n,
       'the size histogram too');
    is($d->('bulletdrop_upload_size_bytes_sum'), $bytes, 'with their sum');
    # sizes 2000..11000: all over 1 KiB, none over 16 KiB
    is($d->('bulletdrop_upload_size_bytes_bucket{le="1024"}'), 0,
       'none in the 1 KiB bucket');
    is($d->('bulletdrop_upload_size_bytes_bucket{le="16384"}'), $n,
       'all in the 16 KiB one');
    ok($d->('bulletdrop_upload_duration_seconds_sum') > 0,
       'the durations add up to more than nothing');

    my %pids;
    for (split /\n/, slurp($t->nginx->prefix . '/logs/pids.log')) {
        my ($pid, $status, $uri) = split / /;
        $pids{$pid}++ if $uri eq '/api/uploads' && $status == 201;
    }
    is(scalar(keys %pids), 2, 'and both workers stored some')
        or diag explain \%pids;
};

subtest 'an upload whose client leaves mid-body failed: aborted' => sub {
    my $m0 = scrape();
    my $key = 'bulletdrop_uploads_total{result="failed",reason="aborted"}';
    my $other = 'bulletdrop_uploads_total{result="refused",reason="other"}';

    for my $as (qw(multipart raw)) {
        my $x = $t->begin_upload($alice->{key}, 'cut.png',
                                 sample('png', 100_000), as => $as,
                                 send => 5000);
        $x->close;
    }

    ok(wait_until(sub { at(scrape(), $key) - at($m0, $key) == 2 }, 10),
       'two uploads cut short: failed, aborted');
    is(at(scrape(), $other) - at($m0, $other), 0, 'not refusals');
};

subtest 'files served, by kind and status; spent views' => sub {
    my $m0 = scrape();
    my $d = sub { at(scrape(), $_[0]) - at($m0, $_[0]) };

    my $perm = $t->upload($alice->{key}, 'p.png', sample('png', 500));
    my $exp = $t->upload($alice->{key}, 'e.png', sample('png', 500),
                         headers => [ 'X-BulletDrop-Expires' => '1h' ]);
    my $lim = $t->upload($alice->{key}, 'l.png', sample('png', 500),
                         headers => [ 'X-BulletDrop-Max-Views' => '1' ]);
    is($_->{status}, 201, 'uploaded') for $perm, $exp, $lim;

    my $path = sub { $_[0]{json}{url} =~ m{\Ahttps?://[^/]+(/.*)\z}; $1 };
    my $get = sub {
        $t->request('GET', $path->($_[0]), host => 'img.localhost', @_[1..$#_])
    };

    is($get->($perm)->{status}, 200, 'a permanent file: 200') for 1 .. 3;
    is($get->($perm, headers => [ Range => 'bytes=0-9' ])->{status}, 206,
       'a range of it: 206');
    is($get->($exp)->{status}, 200, 'an expiring one: 200') for 1 .. 2;
    is($get->($lim)->{status}, 200, 'the one view of a limited one: 200');
    is($get->($lim)->{status}, 404, 'then 404');
    my $gone = $t->request('GET', '/static/images/AAAAAAAAAAAAAAAA.png',
                           host => 'img.localhost');
    is($gone->{status}, 404, 'a file that never was: 404');

    # the log phase counts once the answer is sent
    wait_until(sub {
        $d->('bulletdrop_files_served_total{kind="limited",status="404"}')
    }, 5);

    is($d->('bulletdrop_files_served_total{kind="permanent",status="200"}'),
       3, 'permanent 200: 3');
    is($d->('bulletdrop_files_served_total{kind="permanent",status="206"}'),
       1, 'permanent 206: 1');
    is($d->('bulletdrop_files_served_total{kind="expiring",status="200"}'),
       2, 'expiring 200: 2');
    is($d->('bulletdrop_files_served_total{kind="limited",status="200"}'),
       1, 'limited 200: 1');
    is($d->('bulletdrop_files_served_total{kind="limited",status="404"}'),
       1, 'limited 404: 1');
    is($d->('bulletdrop_files_served_total{kind="permanent",status="404"}'),
       1, 'a name of no file: permanent 404');
    is($d->('bulletdrop_views_exhausted_total'), 1,
       'one file ran out of views');
};

subtest 'refused credentials and the login limiter' => sub {
    my $m0 = scrape();
    my $bob = $t->new_user('bob', key => 1);

    $t->login_response('bob', 'wrong') for 1 .. 3;       # 3 password
    $t->login_response('bob', 'wrong');                  # limited
    $t->login_response('bob', $bob->{password});         # limited too
    $t->get('/api/users/me', token => $t->jwt(key => 'nope')) for 1 .. 2;
    $t->get('/api/users/me', token => 'bd_' . ('A' x 43)) for 1 .. 4;
    $t->get('/api/users/me',
            token => $t->jwt(claims => { sub => "$bob->{id}",
                                         exp => time - 60 }));
    $t->get('/api/users/me',
            headers => [ Cookie => 'bd_session=not.a.jwt' ]);

    my $m = scrape();
    my $d = sub { at($m, $_[0]) - at($m0, $_[0]) };
    is($d->("bulletdrop_auth_failures_total{kind=\"$_->[0]\"}"), $_->[1],
       "$_->[0]: $_->[1]")
        for [ password => 3 ], [ token => 2 ], [ api_key => 4 ],
            [ expired => 1 ], [ session => 1 ];
    is($d->('bulletdrop_login_limited_total'), 2, 'limited: 2');

    my $log = $t->nginx->log_text;
    my @lines = $log =~ /^.*bulletdrop: auth failed: .*$/mg;
    my $bob_at = sub {
        my ($kind) = @_;
        scalar grep {
            /\[error\].*auth\ failed:\ $kind\ for\ "bob",
             \ client:\ 127\.0\.0\.1,\ /x } @lines
    };
    is($bob_at->('password'), 3,
       'each wrong password is a line at error with the user and client');
    is($bob_at->('login_limited'), 2, 'and each limited attempt');
    is(scalar(grep { /\[info\].*auth failed: expired, client: / } @lines), 1,
       'an expired token is a line at info');
};

subtest 'the database pools, their queries and reconnects' => sub {
    my $m = scrape();
    is(at($m, 'bulletdrop_worker_processes'), 2, 'two workers count');
    is(at($m, 'bulletdrop_db_connections{state="idle"}')
       + at($m, 'bulletdrop_db_connections{state="busy"}'), 8,
       'their 2 x 4 connections are up (idle or busy)');
    is(at($m, 'bulletdrop_db_queue_length'), 0, 'nothing waits');
    ok(at($m, 'bulletdrop_db_query_duration_seconds_count') > 40,
       'the query histogram counted the queries');
    is(at($m, 'bulletdrop_db_query_duration_seconds_bucket{le="+Inf"}'),
       at($m, 'bulletdrop_db_query_duration_seconds_count'),
       '+Inf is the count');

    my $reconnects = at($m, 'bulletdrop_db_reconnects_total');
    $t->pg->stop;
    $t->expect_log(qr/bulletdrop.*(?:connect|lost|database)/i);
    my $down = $t->get('/api/health');
    is($down->{status}, 503, 'PostgreSQL stopped: health 503');
    $t->pg->start;
    ok(wait_until(sub { $t->get('/api/health')->{status} == 200 }, 30),
       'and back');
    ok(wait_until(sub {
           my $s = scrape();
           at($s, 'bulletdrop_db_connections{state="idle"}')
           + at($s, 'bulletdrop_db_connections{state="busy"}') == 8 }, 30),
       'all 8 connections up again');
    ok(at(scrape(), 'bulletdrop_db_reconnects_total') > $reconnects,
       'the reconnects were counted');
};

subtest 'the sweep and the thread pool' => sub {
    my $m0 = scrape();
    my $res = $t->upload($alice->{key}, 'soon.png', sample('png', 300),
                         headers => [ 'X-BulletDrop-Expires' => '1s' ]);
    is($res->{status}, 201, 'a file that expires in a second');
    ok(wait_until(sub {
           at(scrape(), 'bulletdrop_sweep_removed_total')
           - at($m0, 'bulletdrop_sweep_removed_total') >= 1 }, 20),
       'the sweep removed it');
    is(at(scrape(), 'bulletdrop_sweep_removed_total')
       - at($m0, 'bulletdrop_sweep_removed_total'), 1, 'once');

    my $m = scrape();
    my $jobs = 'bulletdrop_thread_jobs_total{job="password_hash",';
    ok(at($m, $jobs . 'event="posted"}') >= 8,
       'password hashes went to the thread pool');
    is(at($m, $jobs . 'event="done"}'), at($m, $jobs . 'event="posted"}'),
       'and all came back');
    is(at($m, 'bulletdrop_thread_jobs_total{job="fsync",event="done"}'),
       at($m, 'bulletdrop_thread_jobs_total{job="fsync",event="posted"}'),
       'so did the fsyncs');
};

subtest 'promtool accepts the text' => sub {
    my $promtool = which('promtool');
    plan skip_all => 'no promtool (make deps installs prometheus)'
        unless $promtool;

    my $file = $t->dir . '/metrics.txt';
    spew($file, $t->get('/metrics')->{body});
    my $out = `promtool check metrics < $file 2>&1`;
    is($?, 0, 'promtool check metrics: exit 0');
    is($out, '', 'and no complaint') or diag $out;
};

subtest 'a reload keeps the counters' => sub {
    my $m0 = scrape();
    my $ok = 'bulletdrop_uploads_total{result="ok",reason="none"}';
    my @old = worker_pids();

    kill 'HUP', $t->nginx->pid;
    ok(wait_until(sub {
           my @now = worker_pids();
           @now == 2 && !grep { my $p = $_; grep { $_ == $p } @old } @now
       }, 30), 'new workers replaced the old ones');

    my $m = scrape();
    is(at($m, $ok), at($m0, $ok), 'the upload count is what it was');
    is(at($m, 'bulletdrop_upload_bytes_total'),
       at($m0, 'bulletdrop_upload_bytes_total'), 'so are the bytes');

    is($t->upload($alice->{key}, "after$_.png", sample('png', 200))->{status},
       201, 'an upload after the reload') for 1 .. 3;
    is(at(scrape(), $ok) - at($m0, $ok), 3, 'counted on top');
    ok(wait_until(sub { at(scrape(), 'bulletdrop_worker_processes') == 2 },
                  30), 'and only the two new workers count gauges');
};

sub which {
    my ($name) = @_;
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/$name" if -x "$dir/$name";
    }
    return undef;
}

sub worker_pids {
    my $master = $t->nginx->pid;
    opendir my $dh, '/proc' or return;
    my @w;
    for my $pid (grep { /\A\d+\z/ } readdir $dh) {
        my $stat = eval { slurp("/proc/$pid/stat") } // next;
        my ($ppid) = $stat =~ /\) \S+ (\d+)/ or next;
        my $cmd = eval { slurp("/proc/$pid/cmdline") } // '';
        push @w, $pid if $ppid == $master && $cmd =~ /worker process/
                         && $cmd !~ /shutting down/;
    }
    return @w;
}

subtest 'a real Prometheus scrapes it' => sub {
    my $prometheus = which('prometheus');
    plan skip_all => 'no prometheus (make deps installs it)'
        unless $prometheus;

    my $ok = 'bulletdrop_uploads_total{result="ok",reason="none"}';
    my $count = at(scrape(), $ok);

    my $dir = $t->dir . '/prometheus';
    mkdir $dir;
    my $port = free_port();
    spew("$dir/prometheus.yml", <<"EOF");
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: bulletdrop
    static_configs:
      - targets: ['127.0.0.1:${\ $t->port}']
EOF

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$dir/prometheus.log";
        open STDERR, '>&', \*STDOUT;
        no warnings 'exec';
        exec $prometheus, "--config.file=$dir/prometheus.yml",
             "--storage.tsdb.path=$dir/data",
             "--web.listen-address=127.0.0.1:$port";
        POSIX::_exit(127);
    }

    my $http = BulletDrop::HTTP->new(port => $port, norecord => 1);
    my $json = JSON::PP->new;
    my $query = sub {
        my ($q) = @_;
        $q =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
        my $res = eval { $http->get("/api/v1/query?query=$q") } or return;
        return unless $res->{status} == 200;
        my $r = eval { $json->decode($res->{body}) } or return;
        return $r->{data}{result};
    };

    my $value;
    my $seen = wait_until(sub {
        my $r = $query->($ok) or return 0;
        return 0 unless @$r;
        $value = $r->[0]{value}[1];
        return $value == $count;
    }, 60);
    ok($seen, "Prometheus's query API says $count uploads")
        or diag "it says " . ($value // 'nothing') . "\n"
                . eval { slurp("$dir/prometheus.log") };

    # uploads while it watches: a rate has two samples to go by
    is($t->upload($alice->{key}, "watched$_.png", sample('png', 300))
         ->{status}, 201, 'an upload while Prometheus scrapes') for 1 .. 5;
    $seen = wait_until(sub {
        my $r = $query->($ok) or return 0;
        return @$r && ($value = $r->[0]{value}[1]) == $count + 5;
    }, 60);
    ok($seen, 'it sees the 5 more: ' . ($count + 5))
        or diag 'it says ' . ($value // 'nothing');

    # what an operator graphs: uploads/s, p99 upload time, pool pressure
    for my $q ([ 'sum(rate(bulletdrop_uploads_total[1m]))', 'positive' ],
               [ 'histogram_quantile(0.99, sum by (le) '
                 . '(rate(bulletdrop_upload_duration_seconds_bucket[1m])))',
                 'positive' ],
               [ 'sum(bulletdrop_db_connections{state="busy"}) '
                 . '/ sum(bulletdrop_db_connections)', 'fraction' ],
               [ 'bulletdrop_db_queue_length', 'zero' ])
    {
        my ($text, $want) = @$q;
        my $r = $query->($text);
        my $v = $r && ref $r eq 'ARRAY' && @$r == 1 ? $r->[0]{value}[1]
              : undef;
        ok(defined $v && $v =~ /\A[0-9.e+-]+\z/
           && ($want eq 'positive' ? $v > 0
               : $want eq 'zero' ? $v == 0 : $v >= 0 && $v <= 1),
           "$text: $want (" . ($v // 'no answer') . ')')
            or diag explain $r;
    }

    kill 'TERM', $pid;
    waitpid $pid, 0;
};

done_testing;
