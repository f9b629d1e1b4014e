package BulletDrop::Test;

# The test fixture: a throwaway PostgreSQL cluster (migrated with sql/) and
# nginx with the freshly built module, in a temporary directory, on a free
# loopback port.  Both are stopped when the test ends, however it ends.
#
#   my $t = BulletDrop::Test->new;               # cluster up, migrated
#   $t->start_nginx(db_pool => 2, db_timeout => '1s');
#   my $res = $t->get('/api/health');            # {status, headers, json...}
#
# BULLETDROP_KEEP=1 keeps the directory (and says where) for a post-mortem.

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP;
use BulletDrop::Migrate;
use BulletDrop::Nginx;
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir spew);

our @EXPORT_OK = qw(free_port wait_until);

my @live;

END {
    local $?;
    for my $fixture (grep { defined } @live) {
        $fixture->teardown;
    }
}

$SIG{INT} = $SIG{TERM} = sub { exit 130 };

# a server closing on a client mid-write is a result to check, not a reason
# to die without tearing down
$SIG{PIPE} = 'IGNORE';

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "no free port: $!";
    return $s->sockport;
}

# polls $cond every 50 ms for up to $timeout seconds; returns its last value
sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $deadline;
        sleep 0.05;
    }
}

# pg => 0: no PostgreSQL; pg_tcp => 1: it also listens on 127.0.0.1
sub new {
    my ($class, %o) = @_;

    my $dir = tempdir('bulletdrop-test-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{BULLETDROP_KEEP});
    chmod 0755, $dir;
    print STDERR "# BULLETDROP_KEEP: test files stay in $dir\n"
        if $ENV{BULLETDROP_KEEP};

    my $self = bless { dir => $dir, port => free_port() }, $class;
    push @live, $self;

    if ($o{pg} // 1) {
        $self->{pg} = BulletDrop::Pg->new(
            dir => "$dir/pg", tcp_port => $o{pg_tcp} ? free_port() : undef);
        $self->{pg}->init;
        $self->{pg}->start;
        $self->{pg}->create_app_db;
        BulletDrop::Migrate::apply(conninfo => $self->{pg}->conninfo,
                                   dir => top_dir() . '/sql',
                                   log => sub {});
    }

    $self->{nginx} = BulletDrop::Nginx->new(prefix => "$dir/nginx",
                                            port => $self->{port});
    $self->{http} = BulletDrop::HTTP->new(port => $self->{port});

    # a real file for nginx's static module to serve
    mkdir "$dir/nginx/html";
    mkdir "$dir/nginx/html/static";
    spew("$dir/nginx/html/static/hello.txt", "hello\n");

    return $self;
}

sub dir   { $_[0]{dir} }
sub port  { $_[0]{port} }
sub pg    { $_[0]{pg} }
sub nginx { $_[0]{nginx} }
sub http  { $_[0]{http} }

# The configuration for start_nginx().
#   workers     worker_processes (1)
#   db          bulletdrop_db value (this cluster); undef: none
#   db_pool, db_timeout, db_queue: the directives, when given
#   http        more directives for the http block
#   server      the server block's body (default: the API and a static dir)
sub conf {
    my ($self, %o) = @_;

    my $db = exists $o{db} ? $o{db}
           : $self->{pg} ? $self->{pg}->conninfo : undef;

    my $http = '';
    $http .= qq{    bulletdrop_db "$db";\n} if defined $db;
    for my $d (qw(db_pool db_timeout db_queue)) {
        $http .= "    bulletdrop_$d $o{$d};\n" if defined $o{$d};
    }
    $http .= $o{http} // '';

    my $server = $o{server} // <<'EOF';
        location /api/ {
            bulletdrop_api;
        }

        location /static/ {
            root @PREFIX@/html;
        }
EOF

    my $text = <<'EOF';
load_module @MODULE@;

worker_processes @WORKERS@;
pid @PREFIX@/logs/nginx.pid;
error_log @PREFIX@/logs/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log @PREFIX@/logs/access.log;
    client_body_temp_path @PREFIX@/tmp/body;
    proxy_temp_path @PREFIX@/tmp/proxy;
    fastcgi_temp_path @PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @PREFIX@/tmp/uwsgi;
    scgi_temp_path @PREFIX@/tmp/scgi;

@HTTP@
    server {
        listen 127.0.0.1:@PORT@;

@SERVER@
    }
}
EOF

    # the snippets may use @PREFIX@ too
    $text =~ s/\@HTTP\@/$http/;
    $text =~ s/\@SERVER\@/$server/;

    return BulletDrop::Nginx::render($text,
        MODULE  => BulletDrop::Nginx::module_path(),
        PREFIX  => $self->{nginx}->prefix,
        PORT    => $self->{port},
        WORKERS => $o{workers} // 1);
}

sub start_nginx {
    my ($self, %o) = @_;
    $self->{nginx}->write_conf($self->conf(%o));
    $self->{nginx}->start;
    return $self;
}

# nginx -t on a configuration: (ok, output)
sub check_conf {
    my ($self, %o) = @_;
    $self->{nginx}->write_conf($self->conf(%o));
    return $self->{nginx}->check;
}

sub get     { my $s = shift; $s->{http}->get(@_) }
sub request { my $s = shift; $s->{http}->request(@_) }

# connections of our module as PostgreSQL sees them: backend pids
sub db_backends {
    my ($self) = @_;
    my $rows = $self->{pg}->psql(
        "SELECT pid FROM pg_stat_activity "
        . "WHERE application_name = 'bulletdrop' ORDER BY pid",
        dbname => 'postgres', user => 'postgres');
    return map { $_->[0] } @$rows;
}

sub teardown {
    my ($self) = @_;

    @live = grep { defined && $_ != $self } @live;

    # thawed first, so that nginx does not shut down against a frozen server
    $self->{pg}->thaw if $self->{pg};
    $self->{nginx}->stop('TERM') if $self->{nginx};

    if ($self->{pg}) {
        eval { $self->{pg}->stop('immediate'); 1 } or warn $@;
    }

    delete @$self{qw(nginx pg)};
    return;
}

1;
