package BulletDrop::Pg;

# A project-local PostgreSQL cluster: created with initdb in a directory of
# ours, listening on a Unix socket in that directory (and on loopback TCP
# when asked), run as the "postgres" system user when we are root.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use IO::Select;
use IPC::Open3 qw(open3);
use Time::HiRes qw(time);
use BulletDrop::Util qw(run_cmd slurp spew as_user children_of);

sub bindir {
    my @dirs = sort {
        ($b =~ m{/(\d+)/bin$})[0] <=> ($a =~ m{/(\d+)/bin$})[0]
    } grep { -x "$_/initdb" } glob('/usr/lib/postgresql/*/bin');

    croak "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
        . "(run 'make deps')" unless @dirs;

    return $dirs[0];
}

# dir:      the cluster's home (data/, the socket, log)
# tcp_port: also listen on 127.0.0.1 at this port
# durable:  keep fsync on (the dev stack); tests turn it off for speed
sub new {
    my ($class, %o) = @_;

    croak "dir is required" unless $o{dir};

    my $self = bless {
        dir      => $o{dir},
        tcp_port => $o{tcp_port},
        durable  => $o{durable} // 0,
        bin      => bindir(),
    }, $class;

    # sun_path holds 107 bytes
    croak "PostgreSQL socket path too long: $self->{dir}; set a shorter "
        . "BULLETDROP_RUN_DIR"
        if length($self->socket_dir) + length('/.s.PGSQL.5432') > 107;

    return $self;
}

sub dir        { $_[0]{dir} }
sub data_dir   { "$_[0]{dir}/data" }
sub socket_dir { $_[0]{dir} }
sub log_file   { "$_[0]{dir}/postgresql.log" }

# the system user the server runs as
sub owner { $> == 0 ? 'postgres' : scalar getpwuid($>) }

sub pg_cmd {
    my ($self, $prog, @args) = @_;
    return as_user($self->owner, "$self->{bin}/$prog", @args);
}

sub initialized { -f $_[0]->data_dir . '/PG_VERSION' }

sub init {
    my ($self) = @_;

    return if $self->initialized;

    make_path($self->{dir});
    chmod 0755, $self->{dir};

    if ($> == 0) {
        my ($uid, $gid) = (getpwnam 'postgres')[2, 3];
        croak "no 'postgres' system user (is the postgresql package "
            . "installed?)" unless defined $uid;
        chown $uid, $gid, $self->{dir};

        # the server must be able to reach its own directory
        run_cmd(as_user('postgres', 'test', '-x', $self->{dir}),
                quiet => 1, fail => "the postgres user cannot reach "
                . "$self->{dir}: choose a BULLETDROP_RUN_DIR on a path "
                . "it can traverse");
    }

    run_cmd($self->pg_cmd('initdb', '-D', $self->data_dir, '-U', 'postgres',
                          '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8',
                          '--no-instructions'),
            quiet => 1, fail => 'initdb failed');

    my $conf = join '', map { "$_\n" }
        "# written by BulletDrop",
        "listen_addresses = '"
            . (defined $self->{tcp_port} ? '127.0.0.1' : '') . "'",
        "port = " . ($self->{tcp_port} // 5432),
        "unix_socket_directories = '$self->{dir}'",
        "unix_socket_permissions = 0777",
        "max_connections = 200",
        "timezone = 'UTC'",
        "log_line_prefix = '%m [%p] %q%u\@%d '",
        $self->{durable} ? () : ("fsync = off", "synchronous_commit = off",
                                 "full_page_writes = off");

    spew($self->data_dir . '/postgresql.auto.conf', $conf);
    chown((getpwnam $self->owner)[2, 3], $self->data_dir
          . '/postgresql.auto.conf') if $> == 0;

    return;
}

sub port { $_[0]{tcp_port} // 5432 }

# pg_ctl knows a stale pid file from a live server
sub running {
    my ($self) = @_;

    return 0 unless -f $self->data_dir . '/postmaster.pid';

    my ($rc) = run_cmd($self->pg_cmd('pg_ctl', '-D', $self->data_dir,
                                     'status'), check => 0);
    return $rc == 0;
}

sub postmaster_pid {
    my ($self) = @_;
    my $f = $self->data_dir . '/postmaster.pid';
    return undef unless -r $f;
    my ($pid) = slurp($f) =~ /^(\d+)/;
    return $pid;
}

sub start {
    my ($self) = @_;

    return if $self->running;

    # the log file lives with the cluster, owned by the server's user
    run_cmd($self->pg_cmd('pg_ctl', '-D', $self->data_dir, '-l',
                          $self->log_file, '-w', '-t', '60', 'start'),
            quiet => 1,
            fail => sub { "PostgreSQL did not start:\n"
                          . _tail($self->log_file, 20) });
    return;
}

# Someone else (the foreground `make run`) may stop it at the same time:
# it being gone is success.
sub stop {
    my ($self, $mode) = @_;

    $self->end_session;
    return unless $self->running;

    my ($status, $out, $err) = run_cmd(
        $self->pg_cmd('pg_ctl', '-D', $self->data_dir, '-m', $mode // 'fast',
                      '-w', '-t', '60', 'stop'), check => 0);

    # the other stopper's shutdown may still be under way
    if ($status != 0) {
        my $deadline = time + 30;
        select undef, undef, undef, 0.1
            while $self->running && time < $deadline;
    }

    croak "PostgreSQL did not stop:\n$err$out"
        if $status != 0 && $self->running;

    return;
}

# the postmaster and every backend: SIGSTOP makes a server that accepts
# connections and never answers
sub processes {
    my ($self) = @_;
    my $pm = $self->postmaster_pid or return ();
    return ($pm, children_of($pm));
}

sub freeze { my ($self) = @_; kill 'STOP', $self->processes; return }
sub thaw   { my ($self) = @_; kill 'CONT', $self->processes; return }

sub conninfo {
    my ($self, %o) = @_;
    my $db = $o{dbname} // 'bulletdrop';
    my $user = $o{user} // 'bulletdrop';
    my $port = defined $self->{tcp_port} ? " port=$self->{tcp_port}" : '';
    return "host=$self->{dir}$port dbname=$db user=$user";
}

# a string as an SQL literal (standard_conforming_strings is on)
sub quote {
    my ($s) = @_;
    return 'NULL' unless defined $s;
    $s =~ s/'/''/g;
    return "'$s'";
}

# runs SQL through psql; returns rows as arrays of columns
sub psql {
    my ($self, $sql, %o) = @_;

    my $out = run_cmd(['psql', '-X', '-q', '-A', '-t', '-F', "\t",
                       '-v', 'ON_ERROR_STOP=1',
                       '-d', $o{conninfo} // $self->conninfo(%o),
                       '-c', $sql],
                      capture => 1, fail => "psql failed: $sql");

    # a row of one NULL is an empty line: keep it
    my @lines = split /\n/, $out, -1;
    pop @lines if @lines && $lines[-1] eq '';

    return [ map { [ split /\t/, $_, -1 ] } @lines ];
}

# Quick queries through one psql kept open on the application's database
# (a millisecond each, where psql() starts a process): rows as psql()
# returns them.  For the checks a test makes again and again; a server
# that was restarted meanwhile gets a new session.
sub query {
    my ($self, $sql) = @_;

    for my $try (1, 2) {
        my $rows = eval {
            $self->{session} //= $self->_session;
            $self->_ask($sql);
        };
        return $rows if $rows;
        my $err = $@;
        $self->end_session;
        croak $err if $try == 2 || $err =~ /\bERROR:/;
    }
}

sub _session {
    my ($self) = @_;

    my $pid = open3(my $in, my $out, undef,
                    'psql', '-X', '-q', '-A', '-t', '-F', "\t",
                    '-d', $self->conninfo)
        or croak "psql: $!";
    $in->autoflush(1);
    return { pid => $pid, in => $in, out => $out, buf => '' };
}

# one statement, answered within 30 s; dies on an error or a lost session
sub _ask {
    my ($self, $sql) = @_;

    my $s = $self->{session};
    my $end = '__bulletdrop_end__';
    local $SIG{PIPE} = 'IGNORE';
    print { $s->{in} } "$sql;\n\\echo $end\n" or die "psql session: $!\n";

    my $sel = IO::Select->new($s->{out});
    my $deadline = time + 30;
    my $text;
    while (1) {
        if ($s->{buf} =~ s/\A(.*?)^\Q$end\E\n//ms) {
            $text = $1;
            last;
        }
        my $left = $deadline - time;
        die "psql session: no answer in 30 s to: $sql\n" if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $s->{out}, my $chunk, 65536;
        die "psql session ended\n" unless $n;
        $s->{buf} .= $chunk;
    }

    # psql says what went wrong on the same stream (its stderr)
    die "psql session: $sql\n$text"
        if $text =~ /^(?:psql:.*)?(?:ERROR|FATAL|PANIC):
                    |^(?:server\ closed|no\ connection|connection\ to)/mx;

    my @lines = split /\n/, $text, -1;
    pop @lines if @lines && $lines[-1] eq '';
    return [ map { [ split /\t/, $_, -1 ] } @lines ];
}

sub end_session {
    my ($self) = @_;
    my $s = delete $self->{session} or return;
    close $s->{in};
    close $s->{out};
    waitpid $s->{pid}, 0;
    return;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    $self->end_session;
}

# the application's role and database, owned by that role
sub create_app_db {
    my ($self, %o) = @_;

    my $name = $o{name} // 'bulletdrop';
    my %su = (dbname => 'postgres', user => 'postgres');

    my $have = $self->psql("SELECT 1 FROM pg_roles WHERE rolname = '$name'",
                           %su);
    $self->psql(qq{CREATE ROLE "$name" LOGIN}, %su) unless @$have;

    $have = $self->psql("SELECT 1 FROM pg_database WHERE datname = '$name'",
                        %su);
    $self->psql(qq{CREATE DATABASE "$name" OWNER "$name"}, %su)
        unless @$have;

    return;
}

sub _tail {
    my ($file, $n) = @_;
    my @lines = eval { split /\n/, slurp($file) };
    splice @lines, 0, @lines - $n if @lines > $n;
    return join "\n", @lines;
}

1;
