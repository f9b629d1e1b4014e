package BulletDrop::Nginx;

# Debian's nginx binary with our module, in a prefix directory of ours:
# configuration written from a template, started in the foreground as our
# child, stopped with a signal.

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
    my ($self) = @_;
    return ('-p', "$self->{prefix}/", '-c', $self->conf_file,
            '-e', $self->error_log);
}

# nginx -t: returns (ok, its output)
sub check {
    my ($self) = @_;
    my ($status, $out, $err) = run_cmd([$BINARY, $self->_args, '-t'],
                                       check => 0);
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

    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
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
        return $pid if $s && -s $self->pid_file;

        sleep 0.02;
    }

    $self->stop;
    croak "nginx did not listen on port $self->{port}:\n"
        . $self->log_tail(20);
}

# QUIT lets workers finish their requests; TERM does not wait.
sub stop {
    my ($self, $signal) = @_;

    my $pid = delete $self->{pid} or return;

    kill $signal // 'QUIT', $pid;

    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }

    # workers outlive a killed master and would keep the port
    kill 'KILL', children_of($pid), $pid;
    waitpid $pid, 0;
    return;
}

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

sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    $self->stop('TERM') if $self->{pid};
}

1;
