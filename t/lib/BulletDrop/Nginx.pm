package BulletDrop::Nginx;

# Debian's nginx binary with our module, in a prefix directory of ours:
# configuration written from a template, started in the foreground as our
# child, stopped with a signal.
#
# BULLETDROP_PRELOAD (set by `make test-asan`: the ASan and UBSan runtimes,
# colon-separated) is preloaded into every nginx started here, with the
# sanitizers' reports going to files in <prefix>/sanitizer/.  problems()
# reads the error log and that directory for what a healthy nginx never
# leaves: a dead worker, an [alert], [crit] or [emerg], a sanitizer report.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::Util qw(top_dir run_cmd slurp spew children_of);

our $BINARY = $ENV{BULLETDROP_NGINX} // '/usr/sbin/nginx';

sub module_path {
    my $so = $ENV{BULLETDROP_MODULE}
        // top_dir() . '/build/ngx_http_bulletdrop_module.so';
    croak "$so is missing: run 'make' first" unless -f $so;
    return $so;
}

# prefix: the nginx prefix (conf/, logs/, temp dirs); port: where it listens
sub new {
    my ($class, %o) = @_;

    croak 'prefix is required' unless $o{prefix};

    my $self = bless { prefix => $o{prefix}, port => $o{port} }, $class;

    make_path(map { "$self->{prefix}/$_" } qw(conf logs tmp));
    chmod 0755, $self->{prefix};

    return $self;
}

sub prefix    { $_[0]{prefix} }
sub port      { $_[0]{port} }
sub conf_file { "$_[0]{prefix}/conf/nginx.conf" }
sub error_log { "$_[0]{prefix}/logs/error.log" }
sub pid_file  { "$_[0]{prefix}/logs/nginx.pid" }
sub pid       { $_[0]{pid} }

# what `nginx -t` logs: a configuration test says its refusals there (and
# on its stderr, which check() returns), not in the error log
sub check_log { "$_[0]{prefix}/logs/check.log" }

# where the sanitizers write their reports, one file per process:
# asan.<pid>, ubsan.<pid>
sub sanitizer_dir { "$_[0]{prefix}/sanitizer" }

# Fills @NAME@ placeholders; every placeholder must be given.
sub render {
    my ($template, %vars) = @_;

    (my $text = $template) =~ s{\@([A-Z_]+)\@}{
        exists $vars{$1} ? $vars{$1} : croak "no value for \@$1\@"
    }ge;

    return $text;
}

sub write_conf {
    my ($self, $text) = @_;
    spew($self->conf_file, $text);
    return;
}

sub _args {
    my ($self, $log) = @_;
    return ('-p', "$self->{prefix}/", '-c', $self->conf_file,
            '-e', $log // $self->error_log);
}

# The environment an nginx of ours runs in: with BULLETDROP_PRELOAD, the
# runtimes preloaded and the sanitizers' options.  The workers (which
# nginx gives an empty environment, and which run as nobody when we are
# root) keep what the runtimes read in the master before the fork; they
# need a report directory they may write to, or reports are lost without
# a word.
sub _env {
    my ($self) = @_;

    my $preload = $ENV{BULLETDROP_PRELOAD};
    return () unless defined $preload && $preload ne '';

    my $dir = $self->sanitizer_dir;
    make_path($dir);
    chmod 01777, $dir;

    my $strip = top_dir() . '/';
    my ($shim, $supp) = _report_paths($preload);

    # ASan: a report ends the process (abort: the master logs the death as
    # an [alert]).  Leak checking stays off: nginx leaves its cycle's pool
    # to exit() by design, so every `nginx -t` would report leaks, and
    # LeakSanitizer cannot stop the world in a worker that strace is
    # tracing.  ASAN_OPTIONS and UBSAN_OPTIONS given to the tests are
    # applied after these (the last setting of a flag wins).
    # fast_unwind_on_malloc=0: the stacks of an allocation and of its
    # free go through nginx, which has no frame pointers (whole stacks for
    # a use after free, at some CPU on every malloc).
    my $asan = join ':', 'detect_leaks=0', 'abort_on_error=1',
        'halt_on_error=1', 'disable_coredump=1', 'fast_unwind_on_malloc=0',
        "strip_path_prefix=$strip", $ENV{ASAN_OPTIONS} // (),
        "log_path=$dir/asan";

    # UBSan: reported and carried on, so a test goes on to show every
    # place (each is reported once per process); the report still fails
    # the test.  Its report path is set by the library of _report_paths.
    my $ubsan = join ':', 'print_stacktrace=1', 'halt_on_error=0',
        'report_error_type=1', "strip_path_prefix=$strip",
        $ENV{UBSAN_OPTIONS} // (), defined $supp ? "suppressions=$supp" : ();
    $ubsan =~ s/(?:\A|:)log_path=[^:]*//g;

    return (LD_PRELOAD => join(':', $preload, $shim // ()),
            ASAN_OPTIONS => $asan, UBSAN_OPTIONS => $ubsan,
            BULLETDROP_ASAN_LOG => "$dir/asan",
            BULLETDROP_UBSAN_LOG => "$dir/ubsan");
}

# gcc's ASan and UBSan runtimes (libasan, libubsan) each keep a report
# file.  The UBSan runtime sets its path when it starts, which it does at
# its first report: in a worker, whose environment (and the
# /proc/self/environ that the runtime reads it from) nginx has rewritten,
# so without its options; and through __sanitizer_set_report_path, which
# binds to ASan's copy: ASan's reports would then go to stderr (nginx's
# error log) and UBSan's too.  This library, preloaded after them (and
# needing them, so that its constructor runs after theirs), starts UBSan
# in the master, with a signed overflow at a place the suppression file
# names (no report), then sets each runtime's own report path from
# BULLETDROP_ASAN_LOG and BULLETDROP_UBSAN_LOG.
my $REPORT_PATHS_C = <<'EOF';
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

static char bd_names[8][4096];
static int  bd_n;

static int
bd_find(struct dl_phdr_info *info, size_t size, void *data)
{
    const char  *base = strrchr(info->dlpi_name, '/');

    base = base ? base + 1 : info->dlpi_name;
    if ((strncmp(base, "libasan.so", 10) == 0
         || strncmp(base, "libubsan.so", 11) == 0)
        && bd_n < 8 && strlen(info->dlpi_name) < 4096)
    {
        strcpy(bd_names[bd_n++], info->dlpi_name);
    }
    return 0;
}

static volatile int  bd_sink;

#line 1 "bulletdrop-ubsan-start"
static void
bd_ubsan_start(void)
{
    volatile int  x = INT_MAX;

    bd_sink = x + 1;
}

__attribute__((constructor)) static void
bd_report_paths(void)
{
    int          i;
    void        *h;
    const char  *base, *path;
    void       (*set)(const char *);

    bd_ubsan_start();

    dl_iterate_phdr(bd_find, NULL);

    for (i = 0; i < bd_n; i++) {
        base = strrchr(bd_names[i], '/');
        base = base ? base + 1 : bd_names[i];
        path = getenv(strncmp(base, "libasan", 7) == 0
                      ? "BULLETDROP_ASAN_LOG" : "BULLETDROP_UBSAN_LOG");
        h = dlopen(bd_names[i], RTLD_LAZY | RTLD_NOLOAD);
        if (path == NULL || h == NULL) {
            continue;
        }
        /* the object's own definition: it is searched first */
        *(void **) &set = dlsym(h, "__sanitizer_set_report_path");
        if (set != NULL) {
            set(path);
        }
        dlclose(h);
    }
}
EOF

my $SUPPRESSIONS = "signed-integer-overflow:bulletdrop-ubsan-start\n";

# (the library's path, the suppression file's), built once for a set of
# runtimes; () without both runtimes
sub _report_paths {
    my ($preload) = @_;

    my @libs = grep { m{(?:\A|/)lib(?:asan|ubsan)\.so} } split /:/, $preload;
    return () unless @libs == 2;

    require Digest::MD5;
    my $dir = top_dir() . '/build/sanitizer';
    my $name = "$dir/report-paths-" . Digest::MD5::md5_hex(
        join "\0", $REPORT_PATHS_C, $SUPPRESSIONS, @libs);
    my ($so, $supp) = ("$name.so", "$name.supp");
    return ($so, $supp) if -f $so && -f $supp;

    make_path($dir);
    my $tmp = "$name.$$.tmp";
    spew($tmp, $SUPPRESSIONS);
    rename $tmp, $supp or croak "rename $tmp: $!";

    my ($status, $out, $err) = run_cmd(
        [ $ENV{CC} // 'cc', '-shared', '-fPIC', '-O1',
          '-fsanitize=signed-integer-overflow', '-o', $tmp,
          '-x', 'c', '-', '-x', 'none', '-Wl,--no-as-needed', @libs,
          '-ldl' ],
        stdin => $REPORT_PATHS_C, check => 0);
    croak "cannot build $so:\n$err$out" if $status != 0;
    rename $tmp, $so or croak "rename $tmp: $!";
    return ($so, $supp);
}

# nginx -t: returns (ok, its output)
sub check {
    my ($self) = @_;
    my %env = $self->_env;
    local @ENV{keys %env} = values %env;
    my ($status, $out, $err) = run_cmd(
        [$BINARY, $self->_args($self->check_log), '-t'], check => 0);
    return ($status == 0, $err . $out);
}

# Starts the master in the foreground as our child and waits until it
# accepts connections on its port.
sub start {
    my ($self) = @_;

    croak 'already started' if $self->{pid};

    my ($ok, $out) = $self->check;
    croak "nginx configuration test failed:\n$out" unless $ok;

    # nginx writes it once its sockets are bound: until then, whoever
    # answers on the port is somebody else
    unlink $self->pid_file;

    $self->note_run;

    my %env = $self->_env;
    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        @ENV{keys %env} = values %env;
        exec $BINARY, $self->_args, '-g', 'daemon off;'
            or POSIX::_exit(127);
    }

    $self->{pid} = $pid;

    my $deadline = time + 15;

    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            croak "nginx exited at start:\n" . $self->log_tail(20);
        }

        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port},
                                      Timeout => 1);
        if ($s && -s $self->pid_file) {
            $self->_wait_workers($deadline);
            return $pid;
        }

        sleep 0.02;
    }

    $self->stop;
    croak "nginx did not listen on port $self->{port}:\n"
        . $self->log_tail(20);
}

# The master listens before it forks its workers: a test that asks for
# them at once must find them all.  (One that dies as it starts is left to
# problems().)
sub _wait_workers {
    my ($self, $deadline) = @_;
    my ($n) = $self->{runs}[-1]{conf} =~ /^\s*worker_processes\s+(\w+)\s*;/m;
    $n //= 1;
    $n = (`getconf _NPROCESSORS_ONLN` =~ /(\d+)/)[0] // 1 if $n eq 'auto';
    sleep 0.02 while $self->worker_pids < $n && time < $deadline;
    return;
}

# QUIT lets workers finish their requests; TERM does not wait.
sub stop {
    my ($self, $signal) = @_;

    my $pid = delete $self->{pid} or return;

    local $?;
    $signal //= 'QUIT';

    # a master that died by itself (a sanitizer abort, a crash) is gone
    # before we ask
    if (waitpid($pid, WNOHANG) == $pid) {
        $self->_master_exit($?, 'before it was stopped');
        return;
    }

    kill $signal, $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $self->_master_exit($?, "after $signal");
            return;
        }
        sleep 0.02;
    }

    # workers outlive a killed master and would keep the port
    kill 'KILL', children_of($pid), $pid;
    waitpid $pid, 0;

    # a fast shutdown that hangs is a bug (a graceful one may wait for a
    # connection a test left open)
    push @{ $self->{master_problems} },
        "the nginx master $pid did not exit within 10 s of TERM: killed"
        if $signal eq 'TERM';
    return;
}

# SIGKILL of the master, then of its workers (the master first, so that
# it logs none of their deaths), as when the machine goes away: nothing
# runs its exit handlers.  Not a problem of this nginx (it was asked for).
sub sigkill {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    local $?;
    my @workers = children_of($pid);
    kill 'KILL', $pid;
    kill 'KILL', @workers if @workers;
    waitpid $pid, 0;
    # the workers were the master's children: whoever reaps them now,
    # wait until they are dead (gone, or zombies), so that nothing of this
    # nginx runs after this
    my $alive = sub {
        my $stat = eval { slurp("/proc/$_[0]/stat") } // return 0;
        return $stat !~ /\)\s+[ZX]\s/;
    };
    my $deadline = time + 10;
    sleep 0.01 while grep({ $alive->($_) } @workers) && time < $deadline;
    return;
}

sub _master_exit {
    my ($self, $status, $when) = @_;
    return if $status == 0;
    my $how = $status & 127 ? 'on signal ' . ($status & 127)
                            : 'with code ' . ($status >> 8);
    push @{ $self->{master_problems} },
        "the nginx master exited $how $when";
    return;
}

# Where a run's lines begin in the error log, and its configuration:
# problems() names the configuration each bad line was logged under.
# start() notes its runs; a caller notes one it did not start (offset =>
# 0: the whole log).
sub note_run {
    my ($self, %o) = @_;
    push @{ $self->{runs} }, { offset => $o{offset}
                                         // -s $self->error_log // 0,
                               conf => $self->conf_text };
    return;
}

# The configuration as this nginx reads it, for diagnostics: its file,
# then each file it includes from inside the prefix (a test's sites and
# snippets; not /etc/nginx/mime.types), once, under its name.
sub conf_text {
    my ($self) = @_;
    return '' unless -f $self->conf_file;

    my $text = slurp($self->conf_file);
    my (@queue, %seen) = ($text);
    while (defined(my $conf = shift @queue)) {
        for my $inc ($conf =~ /^\s*include\s+([^;\s]+)\s*;/mg) {
            my $path = $inc =~ m{\A/} ? $inc : "$self->{prefix}/conf/$inc";
            next unless index($path, "$self->{prefix}/") == 0;
            for my $file (sort glob $path) {
                next if $seen{$file}++ || !-f $file;
                my $more = slurp($file);
                $text .= "\n# ---- included: $file\n$more";
                push @queue, $more;
            }
        }
    }
    return $text;
}

# how many times it was started (or noted)
sub runs { scalar @{ $_[0]{runs} // [] } }

sub worker_pids {
    my ($self) = @_;
    return $self->{pid} ? children_of($self->{pid}) : ();
}

# CPU seconds the workers have used so far, all their threads together
sub worker_cpu {
    my ($self) = @_;

    my $tick = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
    my $sum = 0;

    for my $pid ($self->worker_pids) {
        my $stat = eval { slurp("/proc/$pid/stat") } // next;
        my ($rest) = $stat =~ /\)\s+(.*)/s or next;
        my @f = split ' ', $rest;
        $sum += $f[11] + $f[12];    # utime, stime
    }

    return $sum / $tick;
}

sub log_text {
    my ($self) = @_;
    return -f $self->error_log ? slurp($self->error_log) : '';
}

sub log_tail {
    my ($self, $n) = @_;
    my @lines = split /\n/, $self->log_text;
    splice @lines, 0, @lines - $n if @lines > $n;
    return join "\n", @lines;
}

# The error log lines that say something went wrong in nginx: anything at
# [alert], [crit] or [emerg] (a worker that died on a signal is one), and
# a worker (or other child) that exited with a code other than 0.  Lines
# are matched on nginx's own format (time, [level], pid#tid), so a
# client's text quoted inside a line cannot pass for one.  Returns
# [offset, line] pairs.
my $LOG_LINE = qr{\A\d{4}/\d\d/\d\d\ \d\d:\d\d:\d\d
                  \ \[(\w+)\]\ \d+\#\d+:\ (.*)\z}sx;

sub bad_log_lines {
    my ($text) = @_;
    my @bad;
    my $offset = 0;

    for my $line (split /^/m, $text) {
        my $at = $offset;
        $offset += length $line;
        chomp $line;
        my ($level, $msg) = $line =~ $LOG_LINE or next;
        # "exited on signal" is an [alert] already; a non-zero exit code
        # is a [notice], of the master's, about its child
        push @bad, [ $at, $line ]
            if $level =~ /\A(?:alert|crit|emerg)\z/
            || $level eq 'notice'
               && $msg =~ /\A[a-z ]+ process \d+ exited with code [1-9]\d*\z/;
    }

    return @bad;
}

# The sanitizer reports left in a directory: [file, text] pairs.
sub sanitizer_reports {
    my ($dir) = @_;
    opendir my $dh, $dir or return ();
    my @files = sort grep { -f "$dir/$_" && -s _ } readdir $dh;
    return map { [ "$dir/$_", slurp("$dir/$_") ] } @files;
}

# What went wrong in this nginx, all its runs in this prefix together:
#   {lines => [the bad error log lines],
#    allowed => [those that a pattern in `expect` matched],
#    reports => [[file, text], ...] (sanitizer reports: never allowed),
#    master => [the master's own bad exits],
#    confs => [the configurations the bad lines were logged under]}
#   expect  => [qr/.../, ...]: error log lines a test says it causes
sub problems {
    my ($self, %o) = @_;
    my @expect = @{ $o{expect} // [] };

    my (@lines, @allowed, %conf_at);
    my @runs = @{ $self->{runs} // [] };
    for my $bad (bad_log_lines($self->log_text)) {
        my ($at, $line) = @$bad;
        if (grep { $line =~ $_ } @expect) {
            push @allowed, $line;
            next;
        }
        push @lines, $line;
        my ($run) = grep { $runs[$_]{offset} <= $at } reverse 0 .. $#runs;
        $conf_at{$run} = 1 if defined $run;
    }

    return { lines => \@lines, allowed => \@allowed,
             reports => [ sanitizer_reports($self->sanitizer_dir) ],
             master => [ @{ $self->{master_problems} // [] } ],
             confs => [ map { $runs[$_]{conf} } sort { $a <=> $b }
                        keys %conf_at ] };
}

# The problems as text for a test's diagnostics (empty when none): the
# lines, the configuration they were logged under (else the last one),
# the head of each sanitizer report.
sub problems_text {
    my ($self, $p) = @_;
    $p //= $self->problems;

    my @lines = @{ $p->{lines} };
    my @reports = @{ $p->{reports} };
    my @master = @{ $p->{master} };
    return '' unless @lines || @reports || @master;

    my $text = '';
    $text .= "nginx: $_\n" for @master;
    if (@lines) {
        $text .= 'the error log ' . $self->error_log . " says:\n";
        $text .= "  $_\n" for @lines;
    }
    # `nginx -t` and the master, or every worker, often report the same
    # thing: each report once, with the other files that hold it
    # (the same: the same errors, through the same functions)
    my (@order, %same);
    for my $r (@reports) {
        my $key = join "\n",
            (grep { /ERROR:|SUMMARY:|runtime error:/ } split /\n/, $r->[1]),
            join ' ', $r->[1] =~ /^\s*#\d+ 0x[0-9a-f]+ in (\S+)/mg;
        $key =~ s/0x[0-9a-f]+|==\d+==//g;
        push @order, $key unless $same{$key};
        push @{ $same{$key} }, $r;
    }
    for my $key (@order) {
        my ($first, @others) = @{ $same{$key} };
        my ($file, $report) = @$first;
        my @l = split /\n/, $report;
        my $more = @l > 60 ? @l - 60 : 0;
        splice @l, 60 if $more;
        $text .= "sanitizer report $file:\n" . join('', map { "  $_\n" } @l)
               . ($more ? "  ... $more more lines\n" : '')
               . (@others ? '  (the same in ' . join(', ', map {
                     $_->[0] =~ s{.*/}{}r } @others) . ")\n" : '');
    }

    my @confs = @{ $p->{confs} };
    @confs = ($self->{runs}[-1]{conf}) if !@confs && $self->{runs};
    for my $conf (grep { $_ ne '' } @confs) {
        $text .= "under this configuration:\n"
               . join('', map { "  | $_\n" } split /\n/, $conf);
    }

    return $text;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    $self->stop('TERM') if $self->{pid};
}

1;
