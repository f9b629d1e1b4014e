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
# Uploads (the upload dir is <prefix>/html/static, served at /static/):
#
#   my $res = $t->upload($token, 'shot.png', sample('png', 5000));
#   my $res = $t->upload($key, 'notes.txt', $text, as => 'raw',
#                        chunked => 1000);
#   my $x = $t->begin_upload($key, 'big.png', $png, send => 4096);
#   my $answer = $x->answer(5);                  # while the rest is unsent
#   my $before = $t->uploads_state;  ...;  leaves_nothing($t, $before, ...);
#
# BULLETDROP_KEEP=1 keeps the directory (and says where) for a post-mortem.
#
# When the test is done (done_testing), or when a test tears a fixture
# down itself, the fixture checks what its nginx left, all its restarts
# together: a worker that died, an [alert], [crit] or [emerg] line, a
# sanitizer report (make test-asan).  Any of them is a failed test that
# shows the lines, the reports and the configuration.  A test that causes
# such a line on purpose says which, as narrowly as it can:
#
#   $t->expect_log(qr/worker process \d+ exited on signal 9\b/);
#
# An nginx the test configures itself beside the fixture's (a proxy in
# front of it) comes from $t->extra_nginx('proxy'), and is stopped and
# checked with it; so is a second node of the same deployment (same
# database, secret and bucket), $t->node('b', %conf).
#
# The answers from /api/ and /d/ that the test's requests receive
# (BulletDrop::HTTP records them in <dir>/api-answers.jsonl) are checked
# then too, against docs/openapi.yaml: an answer the document does not
# describe is a failed test that names the route, the status and why.

use strict;
use warnings;

use Carp qw(croak);
use Cwd ();
use Digest::SHA qw(sha256 hmac_sha256 hmac_sha384 hmac_sha512);
use Exporter qw(import);
use File::Path ();
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
use BulletDrop::Util qw(top_dir slurp spew random_text run_cmd);

our @EXPORT_OK = qw(free_port wait_until random_text jwt_forge jwt_decode
                    json_type iso_time is_error is_profile is_upload
                    leaves_nothing sample png filler nginx_clean
                    browser_scenario);

my @live;

# whether a check's result can still be a test of its own (it cannot once
# the test file has ended), and whether one failed after that
my ($ENDING, $FAILED_LATE) = (0, 0);

# the fixtures this process made (a forked child leaves its parent's alone)
sub _ours { grep { defined && $_->{pid} == $$ } @live }

END {
    my $status = $?;
    {
        local $?;
        $ENDING = 1;
        # a copy: teardown() takes each fixture off @live
        my @fixtures = _ours();
        $_->teardown for @fixtures;
    }
    # a check that failed after the last test fails the file all the same
    $? = $status || ($FAILED_LATE ? 1 : 0);
}

# Test::More's done_testing (or the end of a test file that has a plan):
# the fixtures are torn down and checked while a check can still be a test.
my $hooked;
sub _hook_done_testing {
    return if $hooked++ || !$INC{'Test2/API.pm'};
    Test2::API::test2_add_callback_testing_done(sub {
        my (undef, $hub) = @_;
        my $plan = $hub->plan;
        # a fixed plan counts its tests: a clean check adds none to it
        local $BulletDrop::Test::QUIET_WHEN_CLEAN =
            defined $plan && $plan =~ /\A\d+\z/;
        my @fixtures = _ours();
        $_->teardown for @fixtures;
    });
    return;
}
our $QUIET_WHEN_CLEAN = 0;

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

    my $self = bless { dir => $dir, port => free_port(), pid => $$,
                       expect_log => [] }, $class;
    push @live, $self;
    _hook_done_testing();

    # this fixture's answers, until it is torn down (a test's: not a
    # benchmark's, which has no Test::More to fail)
    $BulletDrop::HTTP::RECORD = $self->answers_file if $INC{'Test2/API.pm'};

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

# A throwaway self-signed certificate for CN=localhost in the test's dir:
# (certificate file, key file), made once; croaks when openssl fails.
sub tls_cert {
    my ($self) = @_;
    my ($crt, $key) = ("$self->{dir}/tls.crt", "$self->{dir}/tls.key");
    return ($crt, $key) if -s $crt && -s $key;
    my ($status, undef, $err) = run_cmd(
        ['openssl', 'req', '-x509', '-newkey', 'ec',
         '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
         '-subj', '/CN=localhost', '-keyout', $key, '-out', $crt],
        check => 0);
    croak "openssl cannot make a certificate: $err" if $status;
    return ($crt, $key);
}

# A server block for the http snippet of a configuration: the API over TLS
# on 127.0.0.1:$port, with tls_cert()'s certificate.
sub tls_api_server {
    my ($self, $port) = @_;
    my ($crt, $key) = $self->tls_cert;
    return <<"EOF";
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location /api/ {
            bulletdrop_api;
        }
    }
EOF
}

# bulletdrop_upload_dir of the last configuration (before any: the
# default, <prefix>/html/static, which /static/ serves); a test that
# writes its configuration itself says which it named
sub upload_dir {
    my ($self, $dir) = @_;
    $self->{upload_dir} = $dir if defined $dir;
    return exists $self->{upload_dir} ? $self->{upload_dir}
         : $self->{nginx}->prefix . '/html/static';
}

# the JWT key, and the file nginx reads it from
sub jwt_secret      { $_[0]{jwt_secret} }
sub jwt_secret_file { "$_[0]{dir}/jwt.secret" }

# The configuration for start_nginx().
#   workers     worker_processes (1)
#   db          bulletdrop_db value (this cluster); undef: none
#   db_pool, db_timeout, db_queue: the directives, when given
#   jwt_secret_file  the fixture's secret whenever there is a database;
#               undef: none; a path: that one (even without a database)
#   registration, jwt_ttl, login_limit, default_quota, thread_pool,
#   max_file_size, allowed_extensions, fsync, unnamed_temp_files:
#               the bulletdrop_ directives, when given
#   upload_dir  bulletdrop_upload_dir whenever there is a database:
#               <prefix>/html/static unless given; undef: none
#   base_domain, default_expiry, sweep_interval: the directives, when given
#   files       1: the server is also the file domains' (bulletdrop_files
#               on, the uploads under /static/, delete links under /d/)
#   s3          { endpoint, bucket, credentials[, region, options,
#               location] }: bulletdrop_storage s3, the upstream
#               bulletdrop_s3 of the endpoint, and files read from it
#               (nginx-conf/s3-files.conf, then the location's more
#               directives)
#   main        more directives for the main (top) level
#   http        more directives for the http block
#   server      the server block's body (default: the API, delete links
#               and a static dir)
sub conf {
    my ($self, %o) = @_;
    my ($text, $uploads) = $self->_conf_for($self->{nginx}, %o);
    $self->{upload_dir} = $uploads;
    return $text;
}

# conf() for an nginx of this fixture (its own, or a node's): the text,
# and the upload dir it names (undef: none)
sub _conf_for {
    my ($self, $nginx, %o) = @_;

    my $db = exists $o{db} ? $o{db}
           : $self->{pg} ? $self->{pg}->conninfo : undef;

    my $secret = exists $o{jwt_secret_file} ? $o{jwt_secret_file}
               : defined $db ? $self->jwt_secret_file : undef;

    my $uploads = exists $o{upload_dir} ? $o{upload_dir}
                : defined $db ? $nginx->prefix . '/html/static'
                : undef;

    my $http = '';
    $http .= qq{    bulletdrop_db "$db";\n} if defined $db;
    $http .= "    bulletdrop_jwt_secret_file $secret;\n" if defined $secret;
    $http .= "    bulletdrop_upload_dir $uploads;\n" if defined $uploads;
    for my $d (qw(db_pool db_timeout db_queue registration jwt_ttl
                  login_limit default_quota thread_pool max_file_size
                  allowed_extensions fsync unnamed_temp_files base_domain
                  default_expiry sweep_interval))
    {
        $http .= "    bulletdrop_$d $o{$d};\n" if defined $o{$d};
    }
    if (my $s3 = $o{s3}) {
        my ($hostport) = $s3->{endpoint} =~ m{^https?://([^/]+)};
        $http .= "    bulletdrop_storage s3 endpoint=$s3->{endpoint} "
               . "bucket=$s3->{bucket} credentials=$s3->{credentials} "
               . "region=" . ($s3->{region} // 'us-east-1')
               . ($s3->{options} ? " $s3->{options}" : '') . ";\n"
               . "    upstream bulletdrop_s3 {\n"
               . "        server $hostport;\n"
               . "        keepalive 8;\n    }\n";
    }
    $http .= $o{http} // '';

    my $files = <<'EOF';
        bulletdrop_files on;

        location /api/ {
            bulletdrop_api;
        }

        location /d/ {
            bulletdrop_api;
        }

        location /static/ {
            alias @UPLOADS@/;
        }
EOF
    $files =~ s/\@UPLOADS\@/$uploads/ if defined $uploads;
    if ($o{s3}) {
        my $snippet = top_dir() . '/nginx-conf/s3-files.conf';
        my $scheme = $o{s3}{endpoint} =~ /^https/ ? 'https' : 'http';
        my $more = $o{s3}{location} // '';
        $files =~ s{alias [^;]*;}
                   {include $snippet;\n            proxy_pass $scheme://bulletdrop_s3\$bulletdrop_s3_uri;\n$more};
        $files .= "\n        location = /_bulletdrop/error {\n"
                . "            internal;\n"
                . "            bulletdrop_error_page;\n        }\n";
    }

    my $server = $o{server} // ($o{files} ? $files : undef) // <<'EOF';
        location /api/ {
            bulletdrop_api;
        }

        location /d/ {
            bulletdrop_api;
        }

        location /static/ {
            root @PREFIX@/html;
        }

        # uploads under way live there: never served
        location /static/.tmp/ {
            return 404;
        }
EOF

    # metrics => 1: GET /metrics answers with them
    $server .= "\n        location = /metrics {\n"
               . "            bulletdrop_metrics;\n        }\n"
        if $o{metrics};

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
    # BULLETDROP_DEBUG_LOG=1: every nginx also traces to logs/debug.log
    $main .= "error_log \@PREFIX\@/logs/debug.log debug;\n"
        if $ENV{BULLETDROP_DEBUG_LOG} && $main !~ /debug;/;
    $text =~ s/\@MAIN\@/$main/;
    $text =~ s/\@HTTP\@/$http/;
    $text =~ s/\@SERVER\@/$server/;

    $text = BulletDrop::Nginx::render($text,
        MODULE  => BulletDrop::Nginx::module_path(),
        PREFIX  => $nginx->prefix,
        PORT    => $nginx->port,
        WORKERS => $o{workers} // 1);
    return ($text, $uploads);
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

# Another nginx beside the fixture's, from a configuration of the test's
# (a proxy in front of it, say): a BulletDrop::Nginx in <dir>/<name>,
# whose start() waits for <port> (a free one unless given).  The
# fixture stops it before its own and checks it the same way, with the
# lines it expects (expect => [qr/.../]).
sub extra_nginx {
    my ($self, $name, %o) = @_;
    croak "an nginx named $name exists already"
        if grep { $_->{name} eq $name } @{ $self->{extra} // [] };
    my $nginx = BulletDrop::Nginx->new(prefix => "$self->{dir}/$name",
                                       port => $o{port} // free_port());
    push @{ $self->{extra} }, { name => $name, nginx => $nginx,
                                expect => $o{expect} // [] };
    return $nginx;
}

# Another node of the same deployment beside the fixture's nginx (node
# A): the same PostgreSQL and JWT secret, the configuration conf() makes
# of %conf (an s3 => {...} of the same bucket, say), in a prefix of its own
# (<dir>/<name>) on a port of its own, with its own logs and upload dir
# (temp files are a node's own; with s3 the files live in the bucket).
# Started at once; the fixture stops it before its own nginx and checks it
# the same way (no worker died, no [alert], [crit] or [emerg], no sanitizer
# report).  A BulletDrop::Test::Node:
#
#   my $b = $t->node('b', %conf);
#   $b->get($path, host => 'img.localhost');    # requests as the fixture's
#   $b->upload($key, 'a.png', $png);            # upload, begin_upload
#   $b->kill;                                   # SIGKILL, master and workers
#   $b->start(%conf);  $b->restart(%conf);  $b->stop;
#   $b->expect_log(qr/.../);
#
# Node A itself is the fixture: $t->kill_nginx kills it the same way.
sub node {
    my ($self, $name, %conf) = @_;
    my $nginx = $self->extra_nginx($name, port => delete $conf{port});
    my ($extra) = grep { $_->{nginx} == $nginx } @{ $self->{extra} };
    File::Path::make_path($nginx->prefix . '/html/static');
    my $node = BulletDrop::Test::Node->_new($self, $extra);
    $node->start(%conf);
    return $node;
}

# SIGKILL of the fixture's nginx, master and workers at once, as a
# machine that goes away: nothing runs its exit handlers and no master
# logs its workers' deaths
sub kill_nginx {
    my ($self) = @_;
    $self->{nginx}->sigkill;
    return $self;
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
# { name, password, id, token, profile, key }.
#   password => (a random one); invite => code; admin => 1: promoted;
#   key => 1: with an API key too (no password hash: cheaper to use)
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

    my $key;
    if ($o{key}) {
        my $made = $self->post('/api/users/me/api-keys', token => $token,
                               json => { name => 'tests' });
        croak "cannot make a key for $username: $made->{status} "
            . $made->{body} unless $made->{status} == 201;
        $key = $made->{json}{key};
    }

    return { name => $username, password => $password,
             id => $res->{json}{id}, token => $token,
             profile => $res->{json}, key => $key };
}

# PATCH /api/admin/users/ID as an administrator the fixture makes once
# (changes through the module reach every worker's remembered
# credentials at once; changes made with psql only after a few seconds)
sub set_user {
    my ($self, $id, %fields) = @_;
    $self->{admin} //= $self->new_user('fixture-admin', admin => 1);
    my $res = $self->patch("/api/admin/users/$id", json => \%fields,
                           token => $self->{admin}{token});
    croak "cannot change user #$id: $res->{status} $res->{body}"
        unless $res->{status} == 200;
    return $res->{json};
}

# POST /api/domains for each name, as the fixture's administrator: every
# worker serves them once this returns
sub add_domains {
    my ($self, @names) = @_;
    $self->{admin} //= $self->new_user('fixture-admin', admin => 1);
    for my $name (@names) {
        my $res = $self->post('/api/domains', json => { name => $name },
                              token => $self->{admin}{token});
        croak "cannot add domain $name: $res->{status} $res->{body}"
            unless $res->{status} == 201;
    }
    return;
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

# ---- uploads ----------------------------------------------------------

# The request that uploads $data named $name with $auth (a token or an
# API key; undef: none): (method, path, options) for BulletDrop::HTTP's
# request() or begin().
#   as       'multipart' (the default): the part "file" of a form;
#            'raw': the body itself, named by X-Filename;
#            'query': the body itself, named by ?filename= (encoded)
#            (a name of undef: no filename at all)
#   sharex   1: POST /api/uploads/sharex
#   chunked  N: Transfer-Encoding: chunked, in chunks of N bytes
#   expect   1: with Expect: 100-continue
#   length   the Content-Length to declare, whatever the body's length
#   fields   [name => value, ...]: form fields sent before the file
#   after    [name => value, ...]: form fields sent after it
#   form     more options of BulletDrop::HTTP::multipart (boundary,
#            quote, preamble, epilogue, close)
#   part     more keys of the file part (filename_star, type, ...)
#   headers  more headers; host: the Host header
sub upload_request {
    my ($self, $auth, $name, $data, %o) = @_;

    my $as = $o{as} // 'multipart';
    my $path = $o{sharex} ? '/api/uploads/sharex' : '/api/uploads';
    my (@headers, $body);

    if ($as eq 'multipart') {
        my @fields = map { { name => $_->[0], data => $_->[1] } }
                     _pairs($o{fields});
        my @after = map { { name => $_->[0], data => $_->[1] } }
                    _pairs($o{after});
        my ($type, $b) = BulletDrop::HTTP::multipart(
            %{ $o{form} // {} },
            parts => [ @fields,
                       { name => 'file', filename => $name, data => $data,
                         %{ $o{part} // {} } },
                       @after ]);
        push @headers, 'Content-Type' => $type;
        $body = $b;
    } elsif ($as eq 'raw' || $as eq 'query') {
        push @headers, 'Content-Type' => 'application/octet-stream';
        if (defined $name && $as eq 'raw') {
            push @headers, 'X-Filename' => $name;
        } elsif (defined $name) {
            $path .= '?filename=' . _percent($name);
        }
        $body = $data;
    } else {
        croak "upload as '$as'?";
    }

    if ($o{chunked}) {
        push @headers, 'Transfer-Encoding' => 'chunked';
        $body = BulletDrop::HTTP::chunked($body, sizes => [ $o{chunked} ]);
    } elsif (defined $o{length}) {
        push @headers, 'Content-Length' => $o{length};
    }
    push @headers, Expect => '100-continue' if $o{expect};
    push @headers, $self->auth($auth) if defined $auth;

    return ('POST', $path, headers => [ @headers, @{ $o{headers} // [] } ],
            body => $body, defined $o{host} ? (host => $o{host}) : ());
}

sub _pairs {
    my @l = @{ $_[0] // [] };
    my @p;
    push @p, [ splice @l, 0, 2 ] while @l;
    return @p;
}

sub _percent {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

# POST /api/uploads (see upload_request); the response
sub upload {
    my ($self, $auth, $name, $data, %o) = @_;
    my $timeout = delete $o{timeout};
    return $self->{http}->request(
        $self->upload_request($auth, $name, $data, %o),
        timeout => $timeout // 30);
}

# An upload whose body the test sends at its own pace: a
# BulletDrop::HTTP::Exchange with the head sent, and the first `send`
# bytes of the body.  Options as upload_request.
sub begin_upload {
    my ($self, $auth, $name, $data, %o) = @_;
    my $send = delete $o{send};
    return $self->{http}->begin(
        $self->upload_request($auth, $name, $data, %o), send => $send);
}

# files in the upload dir's category dirs: "images/<id>.png", sorted
# (in scalar context: how many)
sub stored_files {
    my ($self) = @_;
    my $dir = $self->upload_dir;
    my @files;
    for my $category (qw(images documents other)) {
        opendir my $dh, "$dir/$category" or next;
        push @files, map { "$category/$_" } grep { !/\A\.\.?\z/ } readdir $dh;
    }
    @files = sort @files;
    return @files;
}

# what is in <upload dir>/.tmp, sorted (in scalar context: how many): the
# files named there (but the probe a starting worker makes and removes),
# and as "#<inode>" the unnamed ones (O_TMPFILE) that a worker is writing,
# seen through /proc
sub temp_files {
    my ($self) = @_;
    my $tmp = Cwd::realpath($self->upload_dir . '/.tmp') // return ();
    my %files = %{ $self->_unnamed($tmp) };

    if (opendir my $dh, $tmp) {
        $files{$_} = 1 for grep { !/\A(?:\.\.?|probe-\d+-\d+\.part)\z/ }
                           readdir $dh;
    }

    my @files = sort keys %files;
    return @files;
}

# the unnamed files in $tmp that the workers hold: "#<inode>" => the
# /proc path of a descriptor of it
sub _unnamed {
    my ($self, $tmp) = @_;
    my %files;

    for my $pid ($self->{nginx} ? $self->{nginx}->worker_pids : ()) {
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (grep { /\A\d+\z/ } readdir $dh) {
            my $to = readlink "/proc/$pid/fd/$fd" // next;
            $files{$1} = "/proc/$pid/fd/$fd"
                if $to =~ m{\A\Q$tmp\E/(#\d+) \(deleted\)\z};
        }
    }

    return \%files;
}

# true once none of nginx's database sessions is running anything (waits
# up to $timeout seconds, 10 by default)
sub db_settled {
    my ($self, $timeout) = @_;
    return wait_until(sub {
        !$self->{pg}->psql("SELECT count(*) FROM pg_stat_activity WHERE "
                           . "application_name = 'bulletdrop' AND "
                           . "state <> 'idle'", dbname => 'postgres',
                           user => 'postgres')->[0][0] }, $timeout // 10);
}

# whether the workers make unnamed temp files: they say when they cannot
sub unnamed_temp_files {
    my ($self) = @_;
    return $self->{nginx}->log_text
        !~ /bulletdrop: \S+ in ".*" failed: uploads under way have names/;
}

# the bytes a worker has written so far to the unnamed temp file #<inode>
sub unnamed_size {
    my ($self, $name) = @_;
    my $tmp = Cwd::realpath($self->upload_dir . '/.tmp') // return undef;
    my $fd = $self->_unnamed($tmp)->{$name} // return undef;
    return -s $fd;
}

# every file under the upload dir, as paths relative to it, sorted
sub all_upload_files {
    my ($self) = @_;
    my $top = $self->upload_dir;
    my @out;
    my @dirs = ('');
    while (defined(my $rel = shift @dirs)) {
        opendir my $dh, $rel eq '' ? $top : "$top/$rel" or next;
        for my $e (grep { !/\A\.\.?\z/ } readdir $dh) {
            my $path = $rel eq '' ? $e : "$rel/$e";
            if (-d "$top/$path" && !-l "$top/$path") {
                push @dirs, $path;
            } else {
                push @out, $path;
            }
        }
    }
    @out = sort @out;
    return @out;
}

# where an upload record's file lives on disk
sub stored_path {
    my ($self, $rec) = @_;
    my ($ext) = ($rec->{url} // '') =~ /\.([^.\/]+)\z/;
    return $self->upload_dir . "/$rec->{category}/$rec->{id}."
        . ($ext // '');
}

# {rows => uploads in the table, files => stored_files, tmp => temp_files}
sub uploads_state {
    my ($self) = @_;
    return { rows => $self->{pg}->query('SELECT count(*) FROM uploads')
                         ->[0][0],
             files => [ $self->stored_files ],
             tmp => [ $self->temp_files ] };
}

# {bytes, files} of a user, as the table says
sub usage_of {
    my ($self, $user_id) = @_;
    my ($row) = @{ $self->{pg}->query(
        'SELECT coalesce(sum(bytes), 0), coalesce(sum(files), 0) '
        . 'FROM usage WHERE user_id = ' . (0 + $user_id)) };
    return $row && { bytes => $row->[0], files => $row->[1] };
}

# lines nginx wrote to the access log so far (one per finished request)
sub access_lines {
    my ($self) = @_;
    my $log = $self->{nginx}->prefix . '/logs/access.log';
    return 0 unless -f $log;
    return scalar(() = slurp($log) =~ /\n/g);
}

# One check that a failed or aborted upload left nothing behind: once
# .tmp is empty (waiting up to 5 s for it), the rows and stored files are
# those of $before (an uploads_state) and .tmp holds nothing.
sub leaves_nothing {
    my ($t, $before, $name) = @_;

    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    wait_until(sub { !$t->temp_files }, 5);
    my $now = $t->uploads_state;
    my $ok = Test::More::is_deeply($now, { %$before, tmp => [] }, $name);
    Test::More::diag(JSON::PP->new->canonical->encode(
        { before => $before, now => $now })) unless $ok;
    return $ok;
}

# One check that a decoded value is an upload record of the types the
# contract says, with the values in $want (undef: null).
#   host         the Host its links name (localhost)
#   scheme       http
#   delete_url   0: the record must not have one (lists, GET by id)
#   ext          the extension the stored file must have
sub is_upload {
    my ($r, $want, $name, %o) = @_;

    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my $host = $o{host} // 'localhost';
    my $scheme = $o{scheme} // 'http';
    my $has_delete = $o{delete_url} // 1;
    my @keys = sort qw(id name category content_type size sha256 url
                       created_at expires_at max_views views domain),
                    $has_delete ? 'delete_url' : ();
    my @problems;

    if (ref $r ne 'HASH') {
        push @problems, 'not an object';
    } else {
        my %types = (id => 'string', name => 'string', category => 'string',
                     content_type => 'string', size => 'int',
                     sha256 => 'string', url => 'string',
                     delete_url => 'string', created_at => 'string',
                     expires_at => 'null', max_views => 'null',
                     views => 'int', domain => 'null');
        for my $k (@keys) {
            my $type = json_type($r->{$k});
            push @problems, "$k is $type, not $types{$k}"
                if $type ne $types{$k};
        }
        my @have = sort keys %$r;
        push @problems, "keys are @have" if "@have" ne "@keys";

        my ($id, $cat) = ($r->{id} // '', $r->{category} // '');
        push @problems, "id '$id' is not 16 base64url characters"
            unless $id =~ /\A[A-Za-z0-9_-]{16}\z/;
        push @problems, "category '$cat'"
            unless $cat =~ /\A(?:images|documents|other)\z/;
        push @problems, "sha256 '" . ($r->{sha256} // '') . "'"
            unless ($r->{sha256} // '') =~ /\A[0-9a-f]{64}\z/;
        my ($ext) = ($r->{url} // '') =~ m{\A\Q$scheme\E://\Q$host\E/static/
                                            \Q$cat\E/\Q$id\E\.([a-z0-9]+)\z}x;
        push @problems, "url '" . ($r->{url} // '') . "' is not "
            . "$scheme://$host/static/$cat/$id.<ext>" unless defined $ext;
        push @problems, "url has .$ext, not .$o{ext}"
            if defined $ext && defined $o{ext} && $ext ne $o{ext};
        if ($has_delete) {
            push @problems, "delete_url '" . ($r->{delete_url} // '')
                . "' is not $scheme://$host/d/<token>"
                unless ($r->{delete_url} // '')
                       =~ m{\A\Q$scheme\E://\Q$host\E/d/[A-Za-z0-9_-]{16,}\z};
        }
        push @problems, "created_at '" . ($r->{created_at} // '')
            . "' is not a UTC time" unless iso_time($r->{created_at});

        for my $k (sort keys %{ $want // {} }) {
            my ($w, $g) = ($want->{$k}, $r->{$k});
            next if !defined $w && !defined $g;
            next if defined $w && defined $g && $w eq $g;
            push @problems, "$k is " . (defined $g ? "'$g'" : 'null')
                . ', not ' . (defined $w ? "'$w'" : 'null');
        }
    }

    my $ok = Test::More::ok(!@problems, $name);
    Test::More::diag(join "\n", @problems) unless $ok;
    return $ok;
}

# ---- files of each kind -----------------------------------------------

# $n bytes that look random (the same for the same seed), with CR, LF,
# CRLF, "--" and blank lines strewn in: what a multipart parser must not
# mistake for structure
sub filler {
    my ($n, $seed) = @_;
    $seed //= 'bulletdrop';
    my $out = '';
    my $i = 0;
    while (length $out < $n) {
        $out .= sha256("$seed:" . $i++) . sha256("$seed;$i")
              . ($i % 2 ? "\r\n--\r\n\r\n-" : "\n\r--\r");
    }
    return substr $out, 0, $n;
}

sub _crc32 {
    my ($data) = @_;
    my $crc = 0xffffffff;
    for my $byte (unpack 'C*', $data) {
        $crc ^= $byte;
        $crc = ($crc >> 1) ^ (($crc & 1) ? 0xedb88320 : 0) for 1 .. 8;
    }
    return $crc ^ 0xffffffff;
}

sub _chunk {
    my ($type, $data) = @_;
    return pack('N', length $data) . $type . $data
         . pack('N', _crc32($type . $data));
}

# A real PNG, $w x $h pixels of RGB, its image data in a zlib stream of
# stored (uncompressed) deflate blocks.  extra => $bytes: a private
# ancillary chunk of those bytes, which viewers skip.
sub png {
    my ($w, $h, %o) = @_;
    ($w, $h) = (1, 1) unless $w && $h;

    my $raw = join '', map {
        my $y = $_;
        "\0" . join '', map { pack 'C3', ($_ * 7) & 255, ($y * 13) & 255,
                                         ($_ ^ $y) & 255 } 0 .. $w - 1
    } 0 .. $h - 1;

    my ($z, $off) = ("\x78\x01", 0);
    do {
        my $piece = substr $raw, $off, 65535;
        $off += length $piece;
        my $last = $off >= length $raw ? 1 : 0;
        $z .= pack('C v v', $last, length $piece, ~length($piece) & 0xffff)
            . $piece;
    } while ($off < length $raw);
    my ($s1, $s2) = (1, 0);
    for my $byte (unpack 'C*', $raw) {
        $s1 = ($s1 + $byte) % 65521;
        $s2 = ($s2 + $s1) % 65521;
    }
    $z .= pack 'N', ($s2 << 16) | $s1;

    return "\x89PNG\r\n\x1a\n"
         . _chunk('IHDR', pack 'N N C C C C C', $w, $h, 8, 2, 0, 0, 0)
         . (defined $o{extra} ? _chunk('bdAt', $o{extra}) : '')
         . _chunk('IDAT', $z)
         . _chunk('IEND', '');
}

# A file of the kind its extension says, exactly $size bytes (default
# 2000; at least what its kind needs): a real PNG (brought to size by a
# private chunk of filler), and for the other kinds the signature a
# sniffer looks for, then filler; kinds without a signature get lines of
# text.  The same arguments give the same bytes; $seed varies them.
sub sample {
    my ($ext, $size, $seed) = @_;
    $size //= 2000;
    $seed //= "$ext$size";
    $ext = lc $ext;

    if ($ext eq 'png') {
        my $base = length png(2, 2, extra => '');
        croak "a PNG needs $base bytes" if $size < $base;
        return png(2, 2, extra => filler($size - $base, $seed));
    }

    my %kind = (
        jpg  => [ "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"
                  . "\x00\x01\x00\x00", "\xff\xd9" ],
        gif  => [ "GIF89a\x01\x00\x01\x00\x80\x00\x00", ';' ],
        webp => [ 'RIFF' . pack('V', $size - 8) . 'WEBPVP8L', '' ],
        pdf  => [ "%PDF-1.4\n", "\n%%EOF\n" ],
        mp4  => [ "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", '' ],
        webm => [ "\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", '' ],
    );
    $kind{jpeg} = $kind{jpg};

    if (!$kind{$ext}) {
        my $text = '';
        my $i = 0;
        $text .= 'line ' . $i++ . " of $seed: the quick brown fox\r\n"
            while length $text < $size;
        return substr $text, 0, $size;
    }

    my ($head, $tail) = @{ $kind{$ext} };
    my $room = $size - length($head) - length($tail);
    croak "a .$ext needs " . (length($head) + length $tail) . ' bytes'
        if $room < 0;

    return $head . filler($room, $seed) . $tail;
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

# Error log lines this test causes on purpose ([alert], [crit], [emerg],
# a worker's death), as patterns: the teardown check lets the lines they
# match pass.  Make them narrow: a pattern for the lines, not for a level.
# Sanitizer reports cannot be expected.
sub expect_log {
    my ($self, @patterns) = @_;
    croak 'expect_log takes patterns: qr/.../'
        if !@patterns || grep { ref ne 'Regexp' } @patterns;
    push @{ $self->{expect_log} }, @patterns;
    return $self;
}

# What the teardown check would find in this fixture's nginx now (see
# BulletDrop::Nginx::problems), the expected lines set apart.
sub log_problems {
    my ($self) = @_;
    my $nginx = $self->{nginx} // $self->{stopped_nginx} // return undef;
    return $nginx->problems(expect => $self->{expect_log});
}

# One check that an nginx ran clean (see the top of this file).  A bad
# nginx is a failed test; a clean one a passed test (unless the file has a
# fixed plan).  After the test file has ended, the diagnostics are printed
# and the file fails through its exit status.
sub check_nginx {
    my ($nginx, $name, %o) = @_;

    my $p = $nginx->problems(expect => $o{expect});
    return 1 unless $nginx->runs || @{ $p->{reports} };

    my $bad = @{ $p->{lines} } || @{ $p->{reports} } || @{ $p->{master} };
    my $text = $bad ? $nginx->problems_text($p) : '';
    $name //= 'nginx ran clean: no worker died, no [alert], [crit] or '
            . '[emerg], no sanitizer report';

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return report_check($bad, $text, $name);
}

# A check's outcome as a test: a passed one when clean (none at all when
# the test's plan is fixed), a failed one with $text; when the test has
# ended already, a failure goes to stderr and fails the file at exit.
sub report_check {
    my ($bad, $text, $name) = @_;

    my $hub = $INC{'Test2/API.pm'} && Test2::API::test2_stack()->top;
    if (!$hub || $ENDING || $hub->ended
        || ($hub->plan // '') eq 'SKIP')
    {
        return 1 unless $bad;
        $FAILED_LATE = 1;
        print STDERR map { "# $_\n" } "not ok: $name", split /\n/, $text;
        return 0;
    }

    return 1 if !$bad && $QUIET_WHEN_CLEAN;

    require Test::More;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = Test::More::ok(!$bad, $name);
    Test::More::diag($text) unless $ok;
    return $ok;
}

# check_nginx for an nginx this fixture did not start (`make run`'s):
# nginx_clean("$run_dir/nginx", $name, expect => [qr/.../])
sub nginx_clean {
    my ($prefix, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (!-f "$prefix/logs/error.log") {
        require Test::More;
        Test::More::ok(0, $name);
        Test::More::diag("no nginx ran in $prefix: it has no logs/error.log");
        return 0;
    }

    my $nginx = BulletDrop::Nginx->new(prefix => $prefix);
    # its log, from the start, under the configuration it has now
    $nginx->note_run(offset => 0);
    return check_nginx($nginx, $name, %o);
}

# One browser scenario of www/test/ (node <script>, with %env set): its
# "ok"/"not ok" lines as notes (failures as diagnostics), then one check
# that it exited 0 with every check passed, and `expect` of them if given
sub browser_scenario {
    my ($script, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    require Test::More;
    require IPC::Open3;

    my %env = %{ $o{env} // {} };
    local @ENV{keys %env} = values %env;
    my $t0 = Time::HiRes::time();
    my $pid = IPC::Open3::open3(my $in, my $out, undef, 'node',
                                top_dir() . "/www/test/$script");
    close $in;

    my ($passed, $failed) = (0, 0);
    while (my $line = <$out>) {
        chomp $line;
        if ($line =~ /^not ok\b/) {
            $failed++;
            Test::More::diag("$script: $line");
        } else {
            $passed++ if $line =~ /^ok\b/;
            Test::More::note("$script: $line");
        }
    }
    waitpid $pid, 0;
    my $status = $? >> 8;

    return Test::More::ok($status == 0 && $failed == 0 && $passed > 0
                          && (!defined $o{expect} || $passed == $o{expect}),
        sprintf '%s: %d checks passed, %d failed (%.1f s)', $script,
        $passed, $failed, Time::HiRes::time() - $t0)
        || Test::More::diag("$script exited with $status");
}

# Whether the answers in a file (BulletDrop::HTTP's record) match
# docs/openapi.yaml, checked by www/test/openapi-answers.mjs: one check as
# check_nginx makes it (a passed test when clean, unless the plan is
# fixed; a failed one with the mismatches).
sub check_answers {
    my ($file, $name) = @_;

    return 1 unless -s $file;
    $name //= 'the API answers received match docs/openapi.yaml';

    my $script = top_dir() . '/www/test/openapi-answers.mjs';
    my ($status, $out, $err) = -d top_dir() . '/www/node_modules/ajv'
        ? run_cmd([ 'node', $script, $file ], check => 0)
        : (1, "www/node_modules has no ajv: run 'make www'\n", '');
    my $bad = $status != 0;
    my $text = $bad ? "$out$err" : '';
    $text =~ s/\n+\z//;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return report_check($bad, $text, $name);
}

sub answers_file { "$_[0]{dir}/api-answers.jsonl" }

sub teardown {
    my ($self) = @_;

    @live = grep { defined && $_ != $self } @live;

    # answers from now on are another live fixture's, or nobody's
    if (($BulletDrop::HTTP::RECORD // '') eq $self->answers_file) {
        my ($other) = grep { $_->{pid} == $$ } reverse @live;
        $BulletDrop::HTTP::RECORD = $other ? $other->answers_file : undef;
    }

    # thawed first, so that nginx does not shut down against a frozen server
    $self->{pg}->thaw if $self->{pg};
    my @extra = @{ delete $self->{extra} // [] };
    $_->{nginx}->stop('TERM') for @extra;
    $self->{nginx}->stop('TERM') if $self->{nginx};

    if ($self->{pg}) {
        eval { $self->{pg}->stop('immediate'); 1 } or warn $@;
    }

    my $nginx = $self->{nginx};
    delete @$self{qw(nginx pg)};

    if ($nginx) {
        $self->{stopped_nginx} = $nginx;
        # (a benchmark uses the fixture without Test::More)
        local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
        check_nginx($nginx, undef, expect => $self->{expect_log});
    }
    for my $x (@extra) {
        local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
        check_nginx($x->{nginx}, "the nginx in $x->{name} ran clean: no "
                    . 'worker died, no [alert], [crit] or [emerg], no '
                    . 'sanitizer report', expect => $x->{expect});
    }

    check_answers($self->answers_file) if $self->{pid} == $$;
    return;
}

1;

# A node of a fixture (BulletDrop::Test::node): its nginx, a client of its
# port, and the fixture's helpers for requests and uploads.
package BulletDrop::Test::Node;

use strict;
use warnings;

use Carp qw(croak);
use Scalar::Util qw(weaken);

sub _new {
    my ($class, $fixture, $extra) = @_;
    my $self = bless { fixture => $fixture, extra => $extra,
                       nginx => $extra->{nginx},
                       http => BulletDrop::HTTP->new(
                           port => $extra->{nginx}->port) }, $class;
    weaken $self->{fixture};
    return $self;
}

sub name   { $_[0]{extra}{name} }
sub nginx  { $_[0]{nginx} }
sub http   { $_[0]{http} }
sub port   { $_[0]{nginx}->port }
sub prefix { $_[0]{nginx}->prefix }

# bulletdrop_upload_dir of its configuration (node-local temp files)
sub upload_dir { $_[0]{upload_dir} }

sub _fixture { $_[0]{fixture} // croak 'the fixture of this node is gone' }

# writes the configuration conf() makes of %conf for this node, and starts
# it (waiting until it listens and its workers are there)
sub start {
    my ($self, %conf) = @_;
    my ($text, $uploads) = $self->_fixture->_conf_for($self->{nginx}, %conf);
    $self->{upload_dir} = $uploads;
    $self->{nginx}->write_conf($text);
    $self->{nginx}->start;
    return $self;
}

sub restart {
    my ($self, %conf) = @_;
    $self->{nginx}->stop('QUIT');
    return $self->start(%conf);
}

sub stop {
    my ($self, $signal) = @_;
    $self->{nginx}->stop($signal // 'QUIT');
    return $self;
}

# SIGKILL of its master and workers (see BulletDrop::Nginx::sigkill)
sub kill {
    my ($self) = @_;
    $self->{nginx}->sigkill;
    return $self;
}

sub worker_pids { $_[0]{nginx}->worker_pids }

# lines of its error log that the teardown check lets pass
sub expect_log {
    my ($self, @patterns) = @_;
    croak 'expect_log takes patterns: qr/.../'
        if !@patterns || grep { ref ne 'Regexp' } @patterns;
    push @{ $self->{extra}{expect} }, @patterns;
    return $self;
}

# what the teardown check would find in its nginx now
sub log_problems {
    my ($self) = @_;
    return $self->{nginx}->problems(expect => $self->{extra}{expect});
}

sub get     { my $s = shift; $s->{http}->get(@_) }
sub request { my $s = shift; $s->{http}->request(@_) }
sub post    { my $s = shift; $s->{http}->request('POST', @_) }
sub patch   { my $s = shift; $s->{http}->request('PATCH', @_) }
sub delete  { my $s = shift; $s->{http}->request('DELETE', @_) }

# the fixture's upload (see BulletDrop::Test::upload_request), to this node
sub upload {
    my ($self, $auth, $name, $data, %o) = @_;
    my $timeout = delete $o{timeout};
    return $self->{http}->request(
        $self->_fixture->upload_request($auth, $name, $data, %o),
        timeout => $timeout // 30);
}

sub begin_upload {
    my ($self, $auth, $name, $data, %o) = @_;
    my $send = delete $o{send};
    return $self->{http}->begin(
        $self->_fixture->upload_request($auth, $name, $data, %o),
        send => $send);
}

1;
