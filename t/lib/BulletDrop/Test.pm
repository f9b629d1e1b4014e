package BulletDrop::Test;

# The test fixture: a throwaway PostgreSQL cluster (migrated with sql/) and
# nginx with the freshly built module, in a temporary directory, on a free
# loopback port.  Both are stopped when the test ends, however it ends.
#
#   my $t = BulletDrop::Test->new;               # cluster up, migrated
#   $t->start_nginx(db_pool => 2, db_timeout => '1s');
#   my $res = $t->get('/api/health');            # {status, headers, json...}
#
# Accounts, as a story reads them:
#
#   $t->start_nginx(registration => 'open');
#   $t->register('alice', 'correct horse');      # the response
#   my $token = $t->login('alice', 'correct horse');
#   $t->get('/api/users/me', token => $token);   # or headers => [$t->auth(..)]
#   $t->make_admin('alice');
#   my $jwt = $t->jwt(claims => { sub => '1', exp => undef });  # forged
#
# BULLETDROP_KEEP=1 keeps the directory (and says where) for a post-mortem.

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);
use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64url);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

use BulletDrop::HTTP;
use BulletDrop::Migrate;
use BulletDrop::Nginx;
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir spew random_text);

our @EXPORT_OK = qw(free_port wait_until random_text jwt_forge jwt_decode
                    json_type iso_time is_error is_profile);

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

# The JSON type a decoded value had: null, bool, int, number, string,
# object or array (Perl 5.36 remembers whether a scalar was made as a
# number or a string, however it is used later).
sub json_type {
    no warnings 'experimental::builtin';
    return 'null' unless defined $_[0];
    return 'bool' if JSON::PP::is_bool($_[0]);
    return ref $_[0] eq 'HASH' ? 'object' : 'array' if ref $_[0];
    return 'string' if builtin::created_as_string($_[0]);
    return $_[0] =~ /\A-?[0-9]+\z/ ? 'int' : 'number'
        if builtin::created_as_number($_[0]);
    return 'unknown';
}

# seconds since the epoch of "2026-11-25T08:00:00Z" (a fraction allowed);
# undef unless it has that form
sub iso_time {
    my ($s) = @_;
    my @p = ($s // '')
        =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z\z/
        or return undef;
    return eval { timegm($p[5], $p[4], $p[3], $p[2], $p[1] - 1, $p[0]) };
}

# One check that a response is the API's refusal: the status, the error
# code, a detail, JSON, not cached.
sub is_error {
    my ($res, $status, $code, $name) = @_;

    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $json = ref $res->{json} eq 'HASH' ? $res->{json} : {};
    my %got = (status => $res->{status}, error => $json->{error},
               detail => defined $json->{detail} && length $json->{detail}
                         ? 'given' : 'missing',
               type => $res->{headers}{'content-type'},
               cache => $res->{headers}{'cache-control'});
    my %want = (status => $status, error => $code, detail => 'given',
                type => 'application/json', cache => 'no-store');

    my $ok = Test::More::is_deeply(\%got, \%want, $name);
    Test::More::diag("the answer was: $res->{status} "
                     . substr($res->{body} // '', 0, 300)) unless $ok;
    return $ok;
}

# One check that a decoded value is a user profile, of the types the
# contract says, with the values in $want (undef: null; booleans as 0/1).
sub is_profile {
    my ($p, $want, $name) = @_;

    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my @problems;
    my @keys = qw(created_at default_domain disabled id quota_bytes role
                  usage username);

    if (ref $p ne 'HASH') {
        push @problems, 'not an object';
    } else {
        my %types = (
            id => ['int'], username => ['string'], role => ['string'],
            disabled => ['bool'], usage => ['object'],
            quota_bytes => ['null', 'int'],
            default_domain => ['null', 'string'], created_at => ['string'],
        );
        for my $k (@keys) {
            my $type = json_type($p->{$k});
            push @problems, "$k is $type, not @{ $types{$k} }"
                unless grep { $_ eq $type } @{ $types{$k} };
        }
        if (ref $p->{usage} eq 'HASH') {
            for my $k (qw(bytes files)) {
                my $type = json_type($p->{usage}{$k});
                push @problems, "usage.$k is $type, not int"
                    if $type ne 'int';
            }
            my @u = sort keys %{ $p->{usage} };
            push @problems, "usage has keys @u" if "@u" ne 'bytes files';
        }
        my @have = sort keys %$p;
        push @problems, "keys are @have" if "@have" ne "@keys";
        push @problems, "role is $p->{role}"
            unless ($p->{role} // '') =~ /\A(?:user|admin)\z/;
        push @problems, "created_at '$p->{created_at}' is not a UTC time"
            unless iso_time($p->{created_at});

        for my $k (sort keys %{ $want // {} }) {
            my ($w, $g) = ($want->{$k}, $p->{$k});
            my $flat = sub {
                my ($h) = @_;
                join ',', map { "$_=" . ($h->{$_} // 'null') } sort keys %$w;
            };
            my $same = ref $w eq 'HASH'
                ? ref $g eq 'HASH' && $flat->($w) eq $flat->($g)
                : !defined $w ? !defined $g
                : JSON::PP::is_bool($g) ? (!!$g eq !!$w)
                : defined $g && $g eq $w;
            my $say = sub {
                my ($v) = @_;
                return 'null' unless defined $v;
                return ref $v eq 'HASH' ? '{' . $flat->($v) . '}' : "'$v'";
            };
            push @problems, "$k is " . $say->($g) . ', not ' . $say->($w)
                unless $same;
        }
    }

    my $ok = Test::More::ok(!@problems, $name);
    Test::More::diag(join "\n", @problems) unless $ok;
    return $ok;
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

    # the key our JWTs are signed with, and that tests forge with
    $self->{jwt_secret} = random_text(48);
    spew("$dir/jwt.secret", $self->{jwt_secret}, 0600);

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

# the JWT key, and the file nginx reads it from
sub jwt_secret      { $_[0]{jwt_secret} }
sub jwt_secret_file { "$_[0]{dir}/jwt.secret" }

# The configuration for start_nginx().
#   workers     worker_processes (1)
#   db          bulletdrop_db value (this cluster); undef: none
#   db_pool, db_timeout, db_queue: the directives, when given
#   jwt_secret_file  the fixture's secret whenever there is a database;
#               undef: none; a path: that one (even without a database)
#   registration, jwt_ttl, login_limit, default_quota, thread_pool:
#               the bulletdrop_ directives, when given
#   main        more directives for the main (top) level
#   http        more directives for the http block
#   server      the server block's body (default: the API and a static dir)
sub conf {
    my ($self, %o) = @_;

    my $db = exists $o{db} ? $o{db}
           : $self->{pg} ? $self->{pg}->conninfo : undef;

    my $secret = exists $o{jwt_secret_file} ? $o{jwt_secret_file}
               : defined $db ? $self->jwt_secret_file : undef;

    my $http = '';
    $http .= qq{    bulletdrop_db "$db";\n} if defined $db;
    $http .= "    bulletdrop_jwt_secret_file $secret;\n" if defined $secret;
    for my $d (qw(db_pool db_timeout db_queue registration jwt_ttl
                  login_limit default_quota thread_pool))
    {
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
@MAIN@
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
    my $main = $o{main} // '';
    $text =~ s/\@MAIN\@/$main/;
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

# a fresh nginx (fresh shared memory: login counters start at zero) with
# another configuration, on the same database and secret
sub restart_nginx {
    my ($self, %o) = @_;
    $self->{nginx}->stop('QUIT');
    return $self->start_nginx(%o);
}

# nginx -t on a configuration: (ok, output)
sub check_conf {
    my ($self, %o) = @_;
    $self->{nginx}->write_conf($self->conf(%o));
    return $self->{nginx}->check;
}

# requests take the options of BulletDrop::HTTP: json => {...},
# form => [...], token => ..., headers => [...], body => ..., from => addr
sub get     { my $s = shift; $s->{http}->get(@_) }
sub request { my $s = shift; $s->{http}->request(@_) }
sub post    { my $s = shift; $s->{http}->request('POST', @_) }
sub patch   { my $s = shift; $s->{http}->request('PATCH', @_) }
sub delete  { my $s = shift; $s->{http}->request('DELETE', @_) }

# the header pair that presents a token: headers => [ $t->auth($token) ]
sub auth {
    my ($self, $token) = @_;
    return (Authorization => "Bearer $token");
}

# POST /api/auth/register; the response.
#   invite => code; form => 1: as a form body; from => source address
sub register {
    my ($self, $username, $password, %o) = @_;

    my @fields = (username => $username, password => $password,
                  defined $o{invite} ? (invite => $o{invite}) : ());

    return $self->post('/api/auth/register',
                       $o{form} ? (form => \@fields) : (json => {@fields}),
                       from => $o{from});
}

# POST /api/auth/login; the response.  form => 1, from => address
sub login_response {
    my ($self, $username, $password, %o) = @_;

    my @fields = (username => $username, password => $password);

    return $self->post('/api/auth/login',
                       $o{form} ? (form => \@fields) : (json => {@fields}),
                       from => $o{from});
}

# The access token of a successful login, or undef.  In list context also
# the response.
sub login {
    my ($self, $username, $password, %o) = @_;
    my $res = $self->login_response($username, $password, %o);
    my $token = $res->{status} == 200 && ref $res->{json} eq 'HASH'
              ? $res->{json}{access_token} : undef;
    return wantarray ? ($token, $res) : $token;
}

# Registers (or dies: this is set-up, not the story) and logs in:
# { name, password, id, token, profile }.
#   password => (a random one); invite => code; admin => 1: promoted
sub new_user {
    my ($self, $username, %o) = @_;

    my $password = $o{password} // 'pw-' . random_text(16);

    my $res = $self->register($username, $password, invite => $o{invite});
    croak "cannot register $username: $res->{status} $res->{body}"
        unless $res->{status} == 201 && ref $res->{json} eq 'HASH';

    $self->make_admin($username) if $o{admin};

    my ($token, $login) = $self->login($username, $password);
    croak "cannot log in as $username: $login->{status} $login->{body}"
        unless defined $token;

    return { name => $username, password => $password,
             id => $res->{json}{id}, token => $token,
             profile => $res->{json} };
}

# role 'admin' for a user, straight in the database
sub make_admin {
    my ($self, $username) = @_;
    $self->{pg}->psql("UPDATE users SET role = 'admin' WHERE username = "
                      . BulletDrop::Pg::quote($username));
    return;
}

# one row of SQL as a hash of column => value (psql's text form)
sub row {
    my ($self, $sql, @columns) = @_;
    my $rows = $self->{pg}->psql($sql);
    return undef unless @$rows;
    my %h;
    @h{@columns} = @{ $rows->[0] };
    return \%h;
}

# A JWT signed with this fixture's secret (or key => ...), with claims
# for a user that verify: sub (a string), iat, exp (now + 10 minutes), ver
# (1).  claims => {...} overrides them; a claim given as undef is left out.
# The rest as jwt_forge.
sub jwt {
    my ($self, %o) = @_;

    my $now = int time;
    my %claims = (sub => '1', iat => $now, exp => $now + 600, ver => 1,
                  %{ $o{claims} // {} });
    delete @claims{ grep { !defined $claims{$_} } keys %claims };

    return jwt_forge(key => $self->{jwt_secret}, %o, claims => \%claims);
}

# A JWT built from parts, as any client could build one.
#   header  a hash (default {alg => 'HS256', typ => 'JWT'}) or a raw string
#   claims  a hash or a raw string
#   key     the HMAC key
#   sign    the algorithm to sign with (default: the header's alg, which
#           may be HS256, HS384, HS512 or none)
#   signature  the signature part as given, instead of computing one
sub jwt_forge {
    my (%o) = @_;

    my $json = JSON::PP->new->utf8->canonical;
    my $header = $o{header} // { alg => 'HS256', typ => 'JWT' };
    my $claims = $o{claims} // {};

    my $input = join '.', map { encode_base64url(ref $_ ? $json->encode($_)
                                                        : $_) }
                          $header, $claims;

    return "$input.$o{signature}" if defined $o{signature};

    my $alg = $o{sign} // (ref $header ? $header->{alg} : 'HS256') // '';
    my %hmac = (HS256 => \&hmac_sha256, HS384 => \&hmac_sha384,
                HS512 => \&hmac_sha512);

    return "$input." if $alg eq 'none';
    croak "cannot sign with '$alg'" unless $hmac{$alg};
    croak 'a key is needed to sign' unless defined $o{key};

    return "$input." . encode_base64url($hmac{$alg}->($input, $o{key}));
}

# (header, claims) of a JWT, undecoded and unverified
sub jwt_decode {
    my ($token) = @_;
    my ($h, $c) = split /\./, $token // '';
    my $json = JSON::PP->new->utf8;
    return map { my $p = $_; eval { $json->decode(decode_base64url($p)) } }
           $h // '', $c // '';
}

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
