package BulletDrop::RGW;

# A throwaway Ceph RGW (the S3 server DigitalOcean Spaces is built on) on
# loopback, for the tests and benchmarks of S3 storage: one monitor, one
# OSD keeping objects in memory (memstore), one radosgw, and an S3 user;
# no manager, no systemd, no keys (auth none).  Everything it writes is in
# its directory: configuration, data, logs, sockets.
#
#   my $rgw = BulletDrop::RGW->new(dir => "$dir/rgw");   # up and answering
#   $rgw->make_bucket('uploads');
#   my $s3 = $rgw->s3(bucket => 'uploads');             # a BulletDrop::S3
#   $rgw->endpoint;  $rgw->credentials_file;            # for nginx
#   $rgw->pause; ...; $rgw->resume;                     # a store that hangs
#   $rgw->stop_gateway; ...; $rgw->start_gateway;       # a store that is down
#   $rgw->stop;                                         # also at exit
#
# Measured on the 2-CPU test machines (Debian 12, Ceph 16.2.15), five
# runs: up and answering signed S3 requests in 0.9 to 1.5 s (monitor
# ~0.2 s, OSD ~0.6 s, the S3 user ~0.4 s, radosgw ~0.2 s; most of the rest
# is the Python ceph CLI starting); ~125 MB RSS for the three daemons
# (monitor 35 MB, OSD 45 MB plus what it stores, radosgw 45 MB with 64
# threads: 73 MB with its default of 512); a gateway restart ~0.1 s.
# t/015-rgw.t takes about 4 s in all.

# It is ended with SIGKILL of the processes it started (memstore writes
# itself to disk on SIGTERM, slowly), only by the process that started it
# (tests fork), at stop(), when the object goes, or at exit.  A watchdog
# process kills the cluster if that process dies without cleaning up
# (a test killed with SIGKILL).
#
# The packages (ceph-mon ceph-osd ceph-common radosgw; `make deps`
# installs them) must be there: a missing radosgw is a failure, not a
# skipped test.
#
# Settings that matter, found the hard way: with auth none, radosgw hangs
# unless ms_mon_client_mode = crc; client_mount_timeout and the rados op
# timeouts turn a hang into an error; public_addr/cluster_addr keep the OSD
# on 127.0.0.1 (else 0.0.0.0); msgr v1 is not bound at all; a low
# paxos_propose_interval makes each pool radosgw creates take milliseconds
# instead of ~2 s; 8 PGs a pool keeps under mon_max_pg_per_osd;
# mon_data_avail_crit = 0 keeps the monitor alive on a nearly full disk;
# rgw_dns_name = localhost makes http://BUCKET.localhost:PORT/ a
# virtual-host style URL.  RGW takes any region in a signature's scope.
# Bucket names need 3 characters or more; CompleteMultipartUpload answers
# an empty ETag (HEAD has it).

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(time sleep);

use BulletDrop::S3;
use BulletDrop::Util qw(run_cmd slurp spew spew_private random_text);

# the clusters this process made (weak: one a test drops is stopped then)
my %LIVE;

END {
    local $?;
    for my $rgw (grep { defined } values %LIVE) {
        $rgw->stop if $rgw->{owner} == $$;
    }
}

# seconds a daemon or a tool gets before it is a failure
my $TIMEOUT = 60;

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "no free port: $!";
    return $s->sockport;
}

# dir:     its home (a temporary directory, removed at exit, if not given)
# port:    radosgw's port (a free one)
# store:   bytes the OSD may hold in memory (2 GiB)
sub new {
    my ($class, %o) = @_;

    for my $tool (qw(ceph-mon ceph-osd ceph monmaptool radosgw
                     radosgw-admin)) {
        croak "no $tool: the Ceph packages are missing (run 'make deps')"
            unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
    }

    my $dir = $o{dir} // tempdir('bulletdrop-rgw-XXXXXX', TMPDIR => 1,
                                 CLEANUP => !$ENV{BULLETDROP_KEEP});
    make_path(map { "$dir/$_" } qw(run log mon osd/osd.0 rgw crash));

    my $self = bless {
        dir        => $dir,
        owner      => $$,
        mon_port   => free_port(),
        port       => $o{port} // free_port(),
        store      => $o{store} // 2 << 30,
        fsid       => _uuid(),
        access_key => _access_key(),
        secret     => random_text(40),
        pids       => {},
        started    => time,
    }, $class;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};

    my $ok = eval { $self->_start; 1 };
    if (!$ok) {
        my $err = $@;
        $self->stop;
        die $err;
    }
    $self->{startup} = time - $self->{started};
    return $self;
}

sub dir        { $_[0]{dir} }
sub conf       { "$_[0]{dir}/ceph.conf" }
sub port       { $_[0]{port} }
sub endpoint   { "http://127.0.0.1:$_[0]{port}" }
sub region     { 'us-east-1' }
sub access_key { $_[0]{access_key} }
sub secret     { $_[0]{secret} }

# seconds new() took to have S3 answering
sub startup_time { $_[0]{startup} }

# the endpoint for virtual-host style (connect to 127.0.0.1 whatever the
# name: peer => '127.0.0.1')
sub virtual_endpoint { "http://localhost:$_[0]{port}" }

# the processes it runs now: {mon, osd, rgw, watchdog} => pid
sub pids { my ($self) = @_; return { %{ $self->{pids} } } }

# resident memory of the daemons, in kB
sub rss {
    my ($self) = @_;
    my $kb = 0;
    for my $name (qw(mon osd rgw)) {
        my $pid = $self->{pids}{$name} or next;
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $kb += $1 if /^VmRSS:\s+(\d+)/ }
    }
    return $kb;
}

# 20 capitals and digits, as AWS's access keys look
sub _access_key {
    my $key = 'BD';
    $key .= uc(random_text(24)) =~ tr/A-Z0-9//cdr while length $key < 20;
    return substr $key, 0, 20;
}

sub _uuid {
    my $u = slurp('/proc/sys/kernel/random/uuid');
    chomp $u;
    return $u;
}

sub _conf_text {
    my ($self) = @_;
    my $d = $self->{dir};
    return <<"EOF";
# written by BulletDrop::RGW: a throwaway cluster on loopback
[global]
fsid = $self->{fsid}
mon_host = v2:127.0.0.1:$self->{mon_port}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
keyring = /dev/null
client_mount_timeout = 15
rados_mon_op_timeout = 30
rados_osd_op_timeout = 30
run_dir = $d/run
admin_socket = $d/run/\$name.\$pid.asok
pid_file = $d/run/\$name.pid
log_file = $d/log/\$name.log
mon_cluster_log_file = $d/log/cluster.log
crash_dir = $d/crash
mon_data = $d/mon/\$name
osd_data = $d/osd/\$name
rgw_data = $d/rgw/\$name
mon_data_avail_crit = 0
mon_data_avail_warn = 0
paxos_propose_interval = 0.01
osd_objectstore = memstore
memstore_device_bytes = $self->{store}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
rgw_frontends = beast endpoint=127.0.0.1:$self->{port}
rgw_dns_name = localhost
rgw_thread_pool_size = 64
EOF
}

sub _start {
    my ($self) = @_;
    my $d = $self->{dir};
    my @c = ('-c', $self->conf);

    spew($self->conf, $self->_conf_text);

    # the monitor: a map of one, its store, the daemon
    $self->_tool('monmaptool', @c, '--create', '--fsid', $self->{fsid},
                 '--addv', 'a', "[v2:127.0.0.1:$self->{mon_port}]",
                 "$d/monmap");
    $self->_tool('ceph-mon', @c, '--mkfs', '-i', 'a', '--monmap',
                 "$d/monmap");
    $self->_spawn(mon => 'ceph-mon', @c, '-i', 'a', '-f');
    $self->_watchdog;
    $self->_wait('the monitor to listen', 'mon', sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $self->{mon_port}, Timeout => 1);
    });

    # the OSD: registered (the first command that needs the monitor in
    # quorum), its memstore made, the daemon, up and in
    my $osd_uuid = _uuid();
    my $id;
    $self->_wait('the monitor to register an OSD', 'mon', sub {
        my ($status, $out) = run_cmd(['timeout', '20', 'ceph', @c, 'osd',
                                      'new', $osd_uuid], check => 0);
        ($id) = $out =~ /^(\d+)$/m if $status == 0;
        return defined $id;
    });
    croak "the OSD was numbered $id, not 0" unless $id == 0;
    $self->_tool('ceph-osd', @c, '-i', '0', '--mkfs', '--osd-uuid',
                 $osd_uuid);
    $self->_spawn(osd => 'ceph-osd', @c, '-i', '0', '-f');
    $self->_wait('the OSD to be up and in', 'osd', sub {
        my ($status, $out) = run_cmd(['timeout', '20', 'ceph', @c, 'osd',
                                      'dump', '--format', 'json'],
                                     check => 0);
        my $map = $status == 0 && eval { JSON::PP::decode_json($out) };
        my ($osd) = grep { $_->{osd} == 0 } @{ $map ? $map->{osds} : [] };
        return $osd && $osd->{up} && $osd->{in};
    });

    # the S3 user, straight into RADOS (the pools it needs are made here)
    $self->_tool('radosgw-admin', @c, 'user', 'create', '--uid',
                 'bulletdrop', '--display-name', 'BulletDrop tests',
                 '--access-key', $self->{access_key},
                 '--secret-key', $self->{secret});

    $self->start_gateway;
    return;
}

# a tool run to its end within $TIMEOUT; dies with its output and the
# tail of the logs it wrote
sub _tool {
    my ($self, $tool, @args) = @_;
    run_cmd(['timeout', $TIMEOUT, $tool, @args], quiet => 1,
            fail => sub { "$tool failed (or took over $TIMEOUT s):\n"
                          . $self->_log_tails(qw(client.admin)) });
    return;
}

# a daemon as our child, in the foreground, its output in log/NAME.out
sub _spawn {
    my ($self, $name, @cmd) = @_;

    my $out = "$self->{dir}/log/$name.out";
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot run $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{pids}{$name} = $pid;
    $self->_write_pids;
    return $pid;
}

# the pids the watchdog kills, kept current
sub _write_pids {
    my ($self) = @_;
    spew("$self->{dir}/run/pids.new",
         join '', map { "$_\n" } grep { defined }
                  @{ $self->{pids} }{qw(rgw osd mon)});
    rename "$self->{dir}/run/pids.new", "$self->{dir}/run/pids";
    return;
}

# A process that outlives us only to SIGKILL the cluster when we are gone
# without stopping it.  A new perl, so that it carries none of the test's
# state, END blocks or objects.
sub _watchdog {
    my ($self) = @_;
    my $script = <<'EOF';
my ($owner, $file) = @ARGV;
$0 = "bulletdrop-rgw-watchdog $owner";
$SIG{HUP} = $SIG{INT} = 'IGNORE';
select undef, undef, undef, 0.5 while kill 0, $owner;
open my $fh, '<', $file or exit 0;
my @pids = grep { /^\d+$/ } map { chomp; $_ } <$fh>;
kill 'KILL', @pids if @pids;
EOF
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        exec $^X, '-e', $script, $self->{owner}, "$self->{dir}/run/pids"
            or POSIX::_exit(127);
    }
    $self->{pids}{watchdog} = $pid;
    return;
}

# Polls $cond until it holds, for $TIMEOUT s; dies when it does not, or
# when the daemon $name (mon, osd, rgw) died, with the logs' tails.
sub _wait {
    my ($self, $what, $name, $cond) = @_;

    my $deadline = time + $TIMEOUT;
    while (1) {
        return 1 if $cond->();
        my $pid = $self->{pids}{$name};
        if ($pid && waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pids}{$name};
            croak "waiting for $what: the $name daemon exited ("
                . _status($?) . "):\n" . $self->_log_tails($name);
        }
        croak "waiting for $what: not within $TIMEOUT s:\n"
            . $self->_log_tails($name) if time > $deadline;
        sleep 0.05;
    }
}

sub _status {
    my ($s) = @_;
    return $s & 127 ? 'signal ' . ($s & 127) : 'status ' . ($s >> 8);
}

my %LOGS = (mon => [qw(mon.out mon.a.log)], osd => [qw(osd.out osd.0.log)],
            rgw => [qw(rgw.out client.rgw.log)],
            'client.admin' => [qw(client.admin.log)]);

# the last lines of the logs of a daemon or the tools
sub _log_tails {
    my ($self, $name) = @_;
    my $text = '';
    for my $log (@{ $LOGS{$name} }) {
        my $path = "$self->{dir}/log/$log";
        next unless -s $path;
        my @lines = split /\n/, slurp($path);
        splice @lines, 0, @lines - 15 if @lines > 15;
        $text .= "--- $path\n" . join("\n", @lines) . "\n";
    }
    return $text || "(no log in $self->{dir}/log)\n";
}

# ---- what a test does to it ---------------------------------------------

# the credentials file nginx and bulletdrop-s3 read, mode 0600
sub credentials_file {
    my ($self) = @_;
    my $path = "$self->{dir}/s3.credentials";
    spew_private($path, "[default]\naws_access_key_id = $self->{access_key}\n"
                        . "aws_secret_access_key = $self->{secret}\n");
    return $path;
}

# a client of a bucket; style => 'virtual' names the bucket in the host
# (BUCKET.localhost, connected to on 127.0.0.1); other options go to
# BulletDrop::S3->new
sub s3 {
    my ($self, %o) = @_;
    my $virtual = ($o{style} // 'path') eq 'virtual';
    return BulletDrop::S3->new(
        endpoint => $virtual ? $self->virtual_endpoint : $self->endpoint,
        region => $self->region, access_key => $self->{access_key},
        secret => $self->{secret}, $virtual ? (peer => '127.0.0.1') : (),
        %o);
}

sub make_bucket {
    my ($self, $bucket) = @_;
    croak "bucket names have 3 characters or more: '$bucket'"
        if length $bucket < 3;
    $self->s3(bucket => $bucket)->make_bucket;
    return $self;
}

# radosgw stopped (SIGSTOP): connections are accepted and never answered
sub pause {
    my ($self) = @_;
    my $pid = $self->{pids}{rgw} or croak 'the gateway is not running';
    kill 'STOP', $pid;
    $self->{paused} = 1;
    return $self;
}

sub resume {
    my ($self) = @_;
    my $pid = $self->{pids}{rgw} or croak 'the gateway is not running';
    kill 'CONT', $pid;
    delete $self->{paused};
    return $self;
}

# radosgw gone: connections to its port are refused
sub stop_gateway {
    my ($self) = @_;
    my $pid = delete $self->{pids}{rgw} or return $self;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    delete $self->{paused};
    $self->_write_pids;
    return $self;
}

# radosgw (again) on the same port, back once it answers a signed request
sub start_gateway {
    my ($self) = @_;
    return $self if $self->{pids}{rgw};

    $self->_spawn(rgw => 'radosgw', '-c', $self->conf, '-n', 'client.rgw',
                  '-f');
    # a signed request about a bucket nobody made: 404 NoSuchBucket says
    # the gateway is up and knows our user (403 would say it does not)
    my $probe = $self->s3(bucket => 'bulletdrop-probe', timeout => 5);
    my $last;
    $self->_wait("radosgw to answer S3 on port $self->{port}", 'rgw', sub {
        $last = $probe->request('GET', '', query => { 'max-keys' => 0 });
        return $last->{status} == 404 || $last->{status} == 200
            if $last->{status} != 403;
        croak "radosgw refuses the test user: "
            . $probe->error($last) . "\n" . $self->_log_tails('rgw');
    });
    return $self;
}

# SIGKILL every process it started (the watchdog too), and wait for them;
# only in the process that started them
sub stop {
    my ($self) = @_;
    return unless $self->{owner} == $$;

    local ($?, $!);
    my %pids = %{ $self->{pids} };
    $self->{pids} = {};
    my @pids = grep { defined } @pids{qw(rgw osd mon watchdog)};
    kill 'CONT', $pids{rgw} if $pids{rgw};
    kill 'KILL', @pids if @pids;
    waitpid $_, 0 for @pids;
    unlink "$self->{dir}/run/pids";
    delete $LIVE{refaddr $self};
    return;
}

sub DESTROY {
    my ($self) = @_;
    $self->stop if $self->{owner} == $$;
}

1;
