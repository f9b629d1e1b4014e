package BulletDrop::Stack;

# The local stack behind `make run`, `make stop` and `make migrate`: a
# PostgreSQL cluster and nginx with the module, both living in the run dir
# (BULLETDROP_RUN_DIR, default .run/), nginx on 127.0.0.1:BULLETDROP_PORT
# (default 8080).  The test suite drives the same code.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use File::Spec;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP;
use BulletDrop::Migrate;
use BulletDrop::Nginx;
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir slurp);

sub new {
    my ($class, %o) = @_;

    my $top = top_dir();
    my $dir = $o{dir} // $ENV{BULLETDROP_RUN_DIR} // "$top/.run";
    $dir = File::Spec->rel2abs($dir, $top);
    my $port = $o{port} // $ENV{BULLETDROP_PORT} // 8080;

    croak "BULLETDROP_PORT must be a port number, not '$port'"
        unless $port =~ /^\d+$/ && $port > 0 && $port < 65536;

    make_path($dir);
    chmod 0755, $dir;

    return bless {
        top   => $top,
        dir   => $dir,
        port  => $port,
        log   => $o{log} // sub { print "$_[0]\n" },
        pg    => BulletDrop::Pg->new(dir => "$dir/pg", durable => 1),
        nginx => BulletDrop::Nginx->new(prefix => "$dir/nginx",
                                        port => $port),
    }, $class;
}

sub dir   { $_[0]{dir} }
sub port  { $_[0]{port} }
sub pg    { $_[0]{pg} }
sub nginx { $_[0]{nginx} }
sub url   { "http://127.0.0.1:$_[0]{port}" }

# the nginx master of a stack started earlier, if it is still there
sub running_nginx {
    my ($self) = @_;
    my $f = $self->{nginx}->pid_file;
    return undef unless -r $f;
    my ($pid) = slurp($f) =~ /^(\d+)/;
    return $pid && kill(0, $pid) ? $pid : undef;
}

sub migrate {
    my ($self) = @_;

    $self->{pg}->create_app_db;

    return BulletDrop::Migrate::apply(conninfo => $self->{pg}->conninfo,
                                      dir => "$self->{top}/sql",
                                      log => $self->{log});
}

sub render_conf {
    my ($self) = @_;

    my $template = slurp("$self->{top}/nginx-conf/dev.conf");

    return BulletDrop::Nginx::render($template,
        MODULE => BulletDrop::Nginx::module_path(),
        PREFIX => $self->{nginx}->prefix,
        PORT   => $self->{port},
        DB     => $self->{pg}->conninfo);
}

# Everything `make run` does before it waits: the database up and
# migrated, nginx started as our child.
sub up {
    my ($self) = @_;

    if (my $pid = $self->running_nginx) {
        croak "a stack already runs in $self->{dir} (nginx $pid); "
            . "run 'make stop' first";
    }

    my $new = !$self->{pg}->initialized;
    $self->{log}->($new ? "creating a PostgreSQL cluster in "
                          . $self->{pg}->dir
                        : "reusing the PostgreSQL cluster in "
                          . $self->{pg}->dir);

    $self->{pg}->init;
    $self->{pg}->start;

    eval {
        $self->migrate;
        $self->{nginx}->write_conf($self->render_conf);
        $self->{nginx}->start;
        1;
    } or do {
        my $err = $@;
        $self->{pg}->stop;
        die $err;
    };

    return;
}

sub down {
    my ($self) = @_;

    $self->{nginx}->stop;
    eval { $self->{pg}->stop; 1 } or warn $@;

    return;
}

sub banner {
    my ($self) = @_;

    my $url = $self->url;
    my $health = eval {
        BulletDrop::HTTP->new(port => $self->{port})
            ->get('/api/health', timeout => 10)->{body}
    } // "(no answer: $@)";
    chomp $health;

    return join "\n",
        '',
        'BulletDrop is running.',
        '',
        "  URL         $url/",
        "  Health      curl $url/api/health",
        "              $health",
        "  Run dir     $self->{dir}",
        "  Error log   " . $self->{nginx}->error_log,
        "  Database    psql \"" . $self->{pg}->conninfo . '"',
        '',
        'Ctrl-C stops nginx and PostgreSQL.',
        '';
}

# `make run`: up, then in the foreground until Ctrl-C, or until nginx
# exits (`make stop` from another shell ends it cleanly)
sub run {
    my ($self) = @_;

    my $stop = 0;
    local $SIG{INT} = sub { $stop = 1 };
    local $SIG{TERM} = sub { $stop = 1 };
    local $| = 1;

    $self->up;
    print $self->banner;

    my $nginx = $self->{nginx};

    until ($stop) {
        if (waitpid($nginx->pid, WNOHANG) == $nginx->pid) {
            my $status = $?;
            delete $nginx->{pid};
            $self->{pg}->stop if $self->{pg}->running;

            die "nginx exited with status $status:\n"
                . $nginx->log_tail(20) . "\n" if $status != 0;

            print "nginx stopped; PostgreSQL stopped\n";
            return;
        }

        sleep 0.2;
    }

    print "stopping nginx and PostgreSQL\n";
    $self->down;

    return;
}

# `make stop`: a stack started elsewhere (in the background)
sub stop {
    my ($self) = @_;

    if (my $pid = $self->running_nginx) {
        kill 'QUIT', $pid;

        my $deadline = time + 15;
        sleep 0.1 while kill(0, $pid) && time < $deadline;
        kill 'TERM', $pid if kill 0, $pid;

        $self->{log}->("nginx stopped");
    }

    if ($self->{pg}->initialized && $self->{pg}->running) {
        $self->{pg}->stop;
        $self->{log}->("PostgreSQL stopped");
    }

    return;
}

sub main {
    my ($command) = @_;

    $command //= '';

    # migrate against any database: BULLETDROP_DB is a libpq conninfo/URI
    if ($command eq 'migrate' && $ENV{BULLETDROP_DB}) {
        BulletDrop::Migrate::apply(conninfo => $ENV{BULLETDROP_DB},
                                   dir => top_dir() . '/sql');
        return;
    }

    my $stack = __PACKAGE__->new;

    if ($command eq 'run') {
        $stack->run;

    } elsif ($command eq 'stop') {
        $stack->stop;

    } elsif ($command eq 'migrate') {
        my $pg = $stack->pg;
        my $was_running = $pg->running;
        $pg->init;
        $pg->start;
        eval { $stack->migrate; 1 } or do {
            my $err = $@;
            $pg->stop unless $was_running;
            die $err;
        };
        $pg->stop unless $was_running;

    } else {
        die "usage: BulletDrop::Stack::main(run|stop|migrate)\n";
    }

    return;
}

1;
