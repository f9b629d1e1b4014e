#!/usr/bin/perl
# Production, the Debian way: the shipped nginx-conf/ files, loaded as
# Debian's nginx loads them (its stock nginx.conf, the module's file in
# modules-enabled, the site in sites-enabled, the snippets in snippets/),
# changed only where a machine's names, ports and paths differ, and used
# with curl as clients elsewhere use them: over TLS with the real names
# (SNI and Host), their certificate checked against a CA, HTTP/2 and
# HTTP/1.1.  Every name answers with the certificate, in TLS 1.2 or 1.3
# as bulletdrop-tls.conf says, and names that are not the site's get
# nothing; HTTP goes to HTTPS but for certbot's challenges; users
# register with an invite, log in, upload small and large files in every
# way clients send them and get them back byte for byte on the file
# domains, in ranges too; a file too large is refused before its body is
# sent; delete links delete.  The rate limits refuse a client in the
# API's JSON and nobody else.  Behind a proxy that ends TLS, the links
# say https, and every limit, the log and the module see the real
# client, whom nobody else can pretend to be.  Each kind of answer
# carries its security headers, each once; the metrics count what
# happened; nothing is left half-done; nginx stays clean.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Carp qw(croak);
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP ();

use BulletDrop::HTTP;
use BulletDrop::Nginx;
use BulletDrop::Test qw(free_port is_error wait_until);
use BulletDrop::Util qw(top_dir slurp spew run_cmd random_text);

my $TOP = top_dir();
my $DOMAIN = 'example.test';
my @FILE_DOMAINS = map { "$_.$DOMAIN" } qw(img shots cdn media);
my @NAMES = ($DOMAIN, "www.$DOMAIN", "api.$DOMAIN", @FILE_DOMAINS);
my $HSTS = 'max-age=63072000; includeSubDomains';
my $JSON = JSON::PP->new->utf8->canonical;
my $MiB = 1024 * 1024;

my $t = BulletDrop::Test->new(pg_tcp => 1);
my $dir = $t->dir;
my $prefix = $t->nginx->prefix;

# 80, 443 and 9145 of the site, the private address and port its
# "load balancer" listen takes, the proxy's TLS port, and the address
# the proxy connects from (which the Cloudflare snippet is told to
# believe, as it believes Cloudflare's ranges)
my %PORT = (https => $t->port, http => free_port(), metrics => free_port(),
            backend => free_port());
my $BACKEND = '127.0.0.8';
my $PROXY_FROM = '127.0.0.9';

my $API = "https://$DOMAIN:$PORT{https}";

# ---- a CA, and the certificate certbot would have made ----------------

sub openssl { run_cmd([ 'openssl', @_ ], quiet => 1) }

my $CA = "$dir/ca.crt";
my $LIVE = "$dir/letsencrypt/live/$DOMAIN";
make_path($LIVE);
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=BulletDrop test CA', '-keyout', "$dir/ca.key",
        '-out', $CA, '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-subj', "/CN=$DOMAIN",
        '-keyout', "$LIVE/privkey.pem", '-out', "$dir/site.csr");
spew("$dir/site.ext", "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN\n"
     . "basicConstraints=critical,CA:FALSE\n"
     . "keyUsage=critical,digitalSignature\n"
     . "extendedKeyUsage=serverAuth\n");
openssl('x509', '-req', '-in', "$dir/site.csr", '-CA', $CA, '-CAkey',
        "$dir/ca.key", '-CAcreateserial', '-days', '2', '-extfile',
        "$dir/site.ext", '-out', "$LIVE/cert.pem");
spew("$LIVE/fullchain.pem", slurp("$LIVE/cert.pem") . slurp($CA));

# ---- the configuration: the shipped files, substituted ----------------

# One substitution in a shipped file; it must find what it replaces (a
# change to the file must not leave the test rendering something else).
sub subst {
    my ($text, $what, $re, $to) = @_;
    my $n = ($$text =~ s/$re/$to->()/ge);
    croak "rendering $what: nothing matches $re" unless $n;
    return $n;
}

my $etc = "$prefix/conf";
make_path(map { "$etc/$_" } qw(modules-enabled conf.d sites-enabled
                               snippets));
make_path("$dir/www/html/.well-known/acme-challenge", "$dir/lib/bulletdrop");
spew("$dir/www/html/.well-known/acme-challenge/x", "challenge x\n");

my $module = slurp("$TOP/nginx-conf/mod-http-bulletdrop.conf");
subst(\$module, 'mod-http-bulletdrop.conf',
      qr{\bmodules/ngx_http_bulletdrop_module\.so\b},
      sub { BulletDrop::Nginx::module_path() });
spew("$etc/modules-enabled/50-mod-http-bulletdrop.conf", $module);

# the snippets as Debian's package names them, where the site's relative
# "include snippets/..." finds them (next to nginx.conf)
for (['tls.conf', 'bulletdrop-tls.conf'],
     ['security-headers.conf', 'bulletdrop-headers.conf'],
     ['webapp.conf', 'bulletdrop-webapp.conf'])
{
    spew("$etc/snippets/$_->[1]", slurp("$TOP/nginx-conf/$_->[0]"));
}

# the only change that is not a substitution: the test's proxy is not in
# Cloudflare's ranges
my $cf = slurp("$TOP/nginx-conf/cloudflare.conf");
subst(\$cf, 'cloudflare.conf', qr/^(?=real_ip_header )/m,
      sub { "# the test's proxy\nset_real_ip_from $PROXY_FROM;\n\n" });
spew("$etc/snippets/bulletdrop-cloudflare.conf", $cf);

# PostgreSQL as Debian's pg_hba.conf has it for 127.0.0.1: a password
# (the harness keeps its socket, trusted); the workers (www-data) read
# it from a password file of theirs, mode 0600
my $pg = $t->pg;
my $db_password = random_text(24);
spew($pg->data_dir . '/pg_hba.conf',
     "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n");
chown((getpwnam $pg->owner)[2, 3], $pg->data_dir . '/pg_hba.conf')
    if $> == 0;
$pg->psql('SELECT pg_reload_conf()', dbname => 'postgres', user => 'postgres');
$pg->psql("ALTER ROLE bulletdrop PASSWORD '$db_password'",
          dbname => 'postgres', user => 'postgres');
make_path("$dir/etc-bulletdrop");
spew("$dir/etc-bulletdrop/pgpass",
     '127.0.0.1:' . $pg->port . ":bulletdrop:bulletdrop:$db_password\n",
     0600);
chown((getpwnam 'www-data')[2, 3], "$dir/etc-bulletdrop/pgpass")
    if $> == 0;

my $site = slurp("$TOP/nginx-conf/bulletdrop.conf");
subst(\$site, 'the site', qr/\bexample\.com\b/, sub { $DOMAIN });
subst(\$site, 'the site', qr/\blisten (\[::\]:)?80\b/,
      sub { 'listen ' . ($1 // '') . $PORT{http} });
subst(\$site, 'the site', qr/\blisten (\[::\]:)?443\b/,
      sub { 'listen ' . ($1 // '') . $PORT{https} });
subst(\$site, 'the site', qr/\blisten 127\.0\.0\.1:9145;/,
      sub { "listen 127.0.0.1:$PORT{metrics};" });
subst(\$site, 'the site',
      qr/# listen <private address>:8080( default_server)?;/,
      sub { "listen $BACKEND:$PORT{backend}" . ($1 // '') . ';' });
subst(\$site, 'the site', qr/^bulletdrop_db "host=127\.0\.0\.1\K /m,
      sub { ' port=' . $pg->port . ' ' });
subst(\$site, 'the site', qr{/etc/bulletdrop/pgpass\b},
      sub { "$dir/etc-bulletdrop/pgpass" });
subst(\$site, 'the site', qr{/etc/bulletdrop/jwt\.secret\b},
      sub { $t->jwt_secret_file });
subst(\$site, 'the site', qr{/etc/letsencrypt/}, sub { "$dir/letsencrypt/" });
subst(\$site, 'the site', qr{/var/lib/bulletdrop/},
      sub { "$dir/lib/bulletdrop/" });
subst(\$site, 'the site', qr{/var/www/html\b}, sub { "$dir/www/html" });
subst(\$site, 'the site', qr{/usr/share/bulletdrop/www\b},
      sub { "$TOP/www/dist" });
spew("$etc/sites-enabled/bulletdrop", $site);
$t->upload_dir("$dir/lib/bulletdrop/uploads");

# Debian 12's /etc/nginx/nginx.conf, its paths in the test's prefix
my $debug = $ENV{BULLETDROP_DEBUG_LOG}
    ? "error_log $prefix/logs/debug.log debug;\n" : '';
$t->nginx->write_conf(<<"EOF");
user www-data;
worker_processes auto;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log;
$debug
include $etc/modules-enabled/*.conf;

events {
	worker_connections 768;
}

http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;

	include /etc/nginx/mime.types;
	default_type application/octet-stream;

	ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
	ssl_prefer_server_ciphers on;

	access_log $prefix/logs/access.log;

	gzip on;

	# the binary's own temp paths are under /var/lib/nginx
	client_body_temp_path $prefix/tmp/body;
	proxy_temp_path $prefix/tmp/proxy;
	fastcgi_temp_path $prefix/tmp/fastcgi;
	uwsgi_temp_path $prefix/tmp/uwsgi;
	scgi_temp_path $prefix/tmp/scgi;

	include $etc/conf.d/*.conf;
	include $etc/sites-enabled/*;
}
EOF
$t->nginx->start;

# ---- the proxy: a load balancer that ends TLS -------------------------

my $proxy = $t->extra_nginx('proxy');
$PORT{proxy} = $proxy->port;
my $pp = $proxy->prefix;
$proxy->write_conf(<<"EOF");
worker_processes 1;
pid $pp/logs/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log $pp/logs/access.log;
    client_body_temp_path $pp/tmp/body;
    proxy_temp_path $pp/tmp/proxy;
    fastcgi_temp_path $pp/tmp/fastcgi;
    uwsgi_temp_path $pp/tmp/uwsgi;
    scgi_temp_path $pp/tmp/scgi;

    server {
        listen 127.0.0.1:$PORT{proxy} ssl http2;
        server_name $DOMAIN *.$DOMAIN;
        ssl_certificate $LIVE/fullchain.pem;
        ssl_certificate_key $LIVE/privkey.pem;
        client_max_body_size 10m;

        location / {
            proxy_pass http://$BACKEND:$PORT{backend};
            proxy_bind $PROXY_FROM;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header CF-Connecting-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
EOF
$proxy->start;

# ---- curl -------------------------------------------------------------

my $CURL = "$dir/curl";
make_path($CURL);
my $serial = 0;

# Requests made with curl, as clients elsewhere make them: the names
# resolved to this machine (--resolve: SNI and Host are the real names),
# the certificate checked against the test's CA (never -k), HTTP/2 or
# HTTP/1.1.  Several requests run in one curl at once (--parallel; over
# HTTP/2, on one connection per client).  Each request is a hash:
#   url       https://name:port/path
#   h2        1: --http2; else --http1.1
#   from      the client's address (--interface; 127.0.0.1), which its
#             User-Agent names too ("bd-095 <address>", for the logs)
#   to        the address the name resolves to (127.0.0.1)
#   method    GET unless given
#   headers   [ 'Name: value', ... ]
#   expect    1: Expect: 100-continue; 0: none (curl sends it with large
#             and chunked HTTP/1.1 bodies unless told)
#   args      more of curl's arguments (-F, --data-binary, -T -, -r ...)
#   stdin     a file whose bytes curl reads from its standard input
#   out       a file for the body, which is then not read
#   ca        0: the system's CAs instead of the test's
# The answers, in the order of the requests: {status, version, headers
# (lower-case name => value, repeats joined by ", "), count (name =>
# how many times it came), head (the raw head, 1xx included), body,
# json, sent (body bytes sent), time, rc, error, certs}.
sub curl { _curl({}, @_) }

# The same, one after the other at most $rate a second ("15/s")
sub curl_paced { my $rate = shift; _curl({ rate => $rate }, @_) }

sub _curl {
    my ($how, @reqs) = @_;

    my @cmd = ('curl', '--no-progress-meter',
               $how->{rate} ? ('--rate', $how->{rate})
             : @reqs > 1    ? ('--parallel', '--parallel-max', 100) : ());
    my @files;
    for my $i (0 .. $#reqs) {
        my $r = $reqs[$i];
        my ($host, $port) = $r->{url} =~ m{\Ahttps?://([^/:]+):(\d+)/}
            or croak "curl: '$r->{url}' names no host and port";
        my $n = $serial++;
        my ($head, $body) = ("$CURL/$n.head", $r->{out} // "$CURL/$n.body");
        push @files, [ $head, $body ];
        my $from = $r->{from} // '127.0.0.1';

        my $method = $r->{method} // 'GET';
        push @cmd, '--next' if $i;
        push @cmd, '-sS', '--max-time', $r->{timeout} // 60,
            ($r->{ca} // 1) ? ('--cacert', $CA) : (),
            '--resolve', "$host:$port:"
                         . (($r->{to} // '') =~ /:/ ? "[$r->{to}]"
                                                     : $r->{to} // '127.0.0.1'),
            $r->{h2} ? '--http2' : '--http1.1',
            '--interface', $from, '-A', "bd-095 $from",
            '-D', $head, '-o', $body,
            '-w', "\n<<$i<<%{json}>>$i>>%{header_json}<<$i>>\n",
            $method ne 'GET' ? ('-X', $method) : (),
            (map { ('-H', $_) } @{ $r->{headers} // [] }),
            !defined $r->{expect} ? ()
                : ('-H', $r->{expect} ? 'Expect: 100-continue' : 'Expect:'),
            @{ $r->{args} // [] }, $r->{url};
    }

    my ($stdin) = map { $_->{stdin} } grep { $_->{stdin} } @reqs;
    my ($rc, $out, $err) = run_cmd(\@cmd, check => 0,
                                   defined $stdin ? (stdin => slurp($stdin))
                                                  : ());

    my @res;
    for my $i (0 .. $#reqs) {
        my $r = $reqs[$i];
        my ($info, $hjson) = $out =~ /<<$i<<(.*?)>>$i>>(.*?)<<$i>>/s;
        $info = eval { $JSON->decode($info // '') } // {};
        $hjson = eval { $JSON->decode($hjson // '') } // {};

        my %res = (rc => $info->{exitcode} // $rc,
                   error => $info->{errormsg} // $err,
                   status => $info->{http_code} // 0,
                   version => $info->{http_version} // '',
                   sent => $info->{size_upload} // 0,
                   time => $info->{time_total} // 0,
                   certs => $info->{certs} // '', info => $info,
                   head => -f $files[$i][0] ? slurp($files[$i][0]) : '',
                   headers => {}, count => {});
        for my $name (keys %$hjson) {
            my @v = @{ $hjson->{$name} };
            $res{count}{$name} = @v;
            $res{headers}{$name} = join ', ', @v;
        }
        if (!defined $r->{out}) {
            $res{body} = -f $files[$i][1] ? slurp($files[$i][1]) : '';
            $res{json} = eval { $JSON->decode($res{body}) }
                if ($res{headers}{'content-type'} // '')
                   =~ m{\Aapplication/json};
            unlink $files[$i][1];
        }
        unlink $files[$i][0];

        # answers of the API go to the check against docs/openapi.yaml
        my ($host, $path) = $r->{url} =~ m{\Ahttps?://([^/]+)(/.*)\z};
        BulletDrop::HTTP::record_answer($r->{method} // 'GET', $path,
                                        $host, \%res)
            if $res{status} && defined $res{body}
               && $host =~ /\A(?:api\.)?\Q$DOMAIN\E:/;
        push @res, \%res;
    }

    return wantarray ? @res : $res[0];
}

# the API of the main site over TLS, as one request:
#   api($method, $path, token => ..., json => {...}, %curl_options)
sub api {
    my ($method, $path, %o) = @_;
    my $base = delete $o{base} // $API;
    my $token = delete $o{token};
    my $json = delete $o{json};
    return curl({ url => "$base$path", method => $method, %o,
                  headers => [ @{ $o{headers} // [] },
                               defined $token
                                 ? "Authorization: Bearer $token" : () ],
                  args => [ @{ $o{args} // [] },
                            defined $json ? ('--json', $JSON->encode($json))
                                          : () ] });
}

# each client its own address, so that the limits of one client's
# requests are that client's (any 127.x.y.z is this machine)
my $clients = 0;
sub new_client { my $n = ++$clients; '127.0.' . (10 + int($n / 250)) . '.'
                                       . (1 + $n % 250) }

# ---- files, made once -------------------------------------------------

# name => {path, size, sha256}: random bytes after the signature that
# their extension needs
my %FILE;
sub make_file {
    my ($name, $magic, $size) = @_;
    my $path = "$dir/files/$name";
    make_path("$dir/files");
    open my $rnd, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $magic;
    my $left = $size - length $magic;
    while ($left > 0) {
        my $buf;
        my $n = read $rnd, $buf, $left > $MiB ? $MiB : $left;
        die "/dev/urandom: $!" unless $n;
        print {$fh} $buf;
        $left -= $n;
    }
    close $fh or die "$path: $!";
    $FILE{$name} = { name => $name, path => $path, size => $size,
                     sha256 => Digest::SHA->new(256)->addfile($path, 'b')
                                                    ->hexdigest };
    return $FILE{$name};
}

make_file('shot.png', "\x89PNG\r\n\x1a\n", 10 * 1024);
make_file('report.pdf', "%PDF-1.7\n", 5 * $MiB);
make_file('clip.mp4', "\0\0\0\x18ftypisom", 49 * $MiB);
make_file('huge.mp4', "\0\0\0\x18ftypisom", 60 * $MiB);

# $len bytes of a file from $off
sub bytes_of {
    my ($file, $off, $len) = @_;
    open my $fh, '<:raw', $file->{path} or die "$file->{path}: $!";
    seek $fh, $off, 0;
    my $buf = '';
    read $fh, $buf, $len;
    return $buf;
}

sub sha256_file { Digest::SHA->new(256)->addfile($_[0], 'b')->hexdigest }

# ---- the first administrator, and the file domains --------------------

# As on a new server: an invite made by hand in the database (there is
# nobody to make one yet), registered with, and promoted with psql.
my $boot = random_text(22);
$t->pg->psql('INSERT INTO invites (code_hash, expires_at) VALUES ('
             . BulletDrop::Pg::quote(sha256_hex($boot))
             . ", now() + interval '1 hour')");
my %root = (username => 'root', password => 'pw-' . random_text(16));
my $res = api(POST => '/api/auth/register',
              json => { %root, invite => $boot });
die "the first user: $res->{status} $res->{body}"
    unless $res->{status} == 201;
$t->make_admin('root');
$res = api(POST => '/api/auth/login', json => \%root);
my $ROOT = $res->{json}{access_token} // die "root's login: $res->{body}";
my $seeded = api(POST => '/api/domains/seed', token => $ROOT);

# an invite from the administrator
sub invite {
    my $res = api(POST => '/api/admin/invites', token => $ROOT, json => {});
    die "an invite: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    return $res->{json}{code};
}

# ---- the story ----------------------------------------------------------

subtest 'every name answers over TLS with the certificate the CA signed'
=> sub {
    is($seeded->{status}, 200, 'POST /api/domains/seed: 200');
    is_deeply([ sort map { $_->{name} } @{ $seeded->{json}{domains} // [] } ],
              [ sort @FILE_DOMAINS ], 'the file domains are the seed\'s four');

    for my $name (@NAMES) {
        for my $h2 (1, 0) {
            my $res = curl({ url => "https://$name:$PORT{https}/", h2 => $h2,
                             args => [ '--head' ] });
            my $v = $h2 ? 'HTTP/2' : 'HTTP/1.1';
            is($res->{rc}, 0, "$name over $v: curl verifies it with the "
                              . 'CA') or diag $res->{error};
            is($res->{version}, $h2 ? '2' : '1.1', "$name: $v negotiated");
            next unless $h2;
            my ($leaf) = split /-----END CERTIFICATE-----/, $res->{certs};
            like($leaf // '', qr/^Subject:CN = \Q$DOMAIN\E$/m,
                 "$name: the leaf is $DOMAIN\'s");
            my $san = 'X509v3 Subject Alternative Name:'
                    . "DNS:$DOMAIN, DNS:*.$DOMAIN\n";
            ok(index($leaf // '', $san) >= 0,
               "$name: for $DOMAIN and *.$DOMAIN") or diag $leaf;
            ok($res->{certs} =~ /^Subject:CN = BulletDrop test CA$/m,
               "$name: sent with the rest of its chain (fullchain.pem)");
        }
    }

    my $res = curl({ url => "$API/", ca => 0 });
    is($res->{rc}, 60, 'with the system\'s CAs instead, curl refuses it '
                       . '(the check is real)');

    # listen [::]:443 and [::]:80
    $res = curl({ url => "$API/api/config", h2 => 1, from => '::1',
                  to => '::1' });
    is_deeply([ $res->{rc}, $res->{status}, $res->{info}{remote_ip} ],
              [ 0, 200, '::1' ], 'over IPv6 too');
    $res = curl({ url => "http://$DOMAIN:$PORT{http}/", from => '::1',
                  to => '::1' });
    is($res->{status}, 301, '... and its HTTP');
};

subtest 'TLS 1.2 and 1.3 with forward secrecy, resumed from the cache; not '
        . 'TLS 1.1, whatever Debian\'s nginx.conf says' => sub {
    # a request that the server answers and closes on, so that a TLS 1.3
    # session's ticket is read before s_client ends
    my $s_client = sub {
        my (@args) = @_;
        my ($rc, $out, $err) = run_cmd(
            [ 'openssl', 's_client', '-connect', "127.0.0.1:$PORT{https}",
              '-servername', "img.$DOMAIN", '-CAfile', $CA,
              '-verify_return_error', '-ign_eof', @args ],
            stdin => "GET / HTTP/1.1\r\nHost: img.$DOMAIN\r\n"
                     . "Connection: close\r\n\r\n", check => 0);
        return ($rc, "$out$err");
    };
    for my $p ('1_2', '1_3') {
        my ($rc, $out) = $s_client->("-tls$p");
        (my $v = $p) =~ s/_/./;
        is($rc, 0, "TLS $v: a handshake") or diag $out;
        my ($cipher) = $out =~ /^New, TLSv\Q$v\E, Cipher is (\S+)$/m;
        like($cipher // 'none', $v eq '1.2' ? qr/\AECDHE-ECDSA-/
                                           : qr/\ATLS_/,
             "... in TLS $v, with forward secrecy: " . ($cipher // 'none'));
        like($out, qr/^\s*Verify return code: 0 \(ok\)$/m, '... verified');
    }
    my ($rc, $out) = $s_client->('-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0');
    isnt($rc, 0, 'TLS 1.1: no handshake');
    like($out, qr/alert protocol version/,
         '... refused for its version (bulletdrop-tls.conf\'s ssl_protocols '
         . 'rule the port, not those of Debian\'s http {})');

    # resumption from the shared cache, without tickets (TLS 1.3 always
    # sends one: with ssl_session_tickets off, only a name in the cache)
    for my $p ('1_2', '1_3') {
        (my $v = $p) =~ s/_/./;
        my $sess = "$dir/tls$p.session";
        my (undef, $first) = $s_client->("-tls$p", '-sess_out', $sess);
        unlike($first, qr/TLS session ticket lifetime hint/,
               "TLS $v: no session ticket") if $v eq '1.2';
        my (undef, $again) = $s_client->("-tls$p", '-sess_in', $sess);
        like($again, qr/^Reused, TLSv\Q$v\E,/m,
             "TLS $v: a second connection resumes the session "
             . '(ssl_session_cache)');
    }
    ($rc, $out) = $s_client->('-tls1_2', '-cipher',
                              'ECDHE-ECDSA-AES128-SHA256');
    isnt($rc, 0, 'TLS 1.2 with a CBC suite (nginx\'s own default list has '
                 . 'it): refused');
};

subtest 'names that are not the site\'s get nothing' => sub {
    my $res = curl({ url => "https://elsewhere.test:$PORT{https}/" });
    isnt($res->{rc}, 0, 'TLS for another name: no handshake (curl '
                        . "$res->{rc})");
    is($res->{status}, 0, '... and no answer');
    my (undef, $out, $err) = run_cmd(
        [ 'openssl', 's_client', '-connect', "127.0.0.1:$PORT{https}",
          '-noservername' ], stdin => '', check => 0);
    $out .= $err;
    like($out, qr/unrecognized name.*alert number 112/,
         'TLS with no name at all: refused, unrecognized_name');
    unlike($out, qr/BEGIN CERTIFICATE/, '... and no certificate shown');

    $res = curl({ url => "http://elsewhere.test:$PORT{http}/x" });
    is_deeply([ $res->{status}, $res->{rc} ], [ 0, 52 ],
              'HTTP for another name: the connection closes, no answer '
              . '(and no redirect to it)');

    $res = curl({ url => "http://elsewhere.test:$PORT{backend}/api/health",
                  to => $BACKEND });
    is_deeply([ $res->{status}, $res->{rc} ], [ 0, 52 ],
              'the load balancer\'s listen: another name gets no answer '
              . 'either (never links made of it)');
};

subtest 'HTTP goes to HTTPS, the same host, path and query; certbot\'s '
        . 'challenges stay' => sub {
    for my $name (@NAMES) {
        my $res = curl({ url => "http://$name:$PORT{http}/a/b%20c?x=1&y=%2F" });
        is($res->{status}, 301, "http://$name/: 301");
        is($res->{headers}{location}, "https://$name/a/b%20c?x=1&y=%2F",
           "... to https://$name/ and the same path and query");
        ok(!exists $res->{headers}{'strict-transport-security'},
           '... without HSTS (it means nothing over HTTP)');

        $res = curl({ url => "http://$name:$PORT{http}"
                             . '/.well-known/acme-challenge/x' });
        is_deeply([ $res->{status}, $res->{body} ], [ 200, "challenge x\n" ],
                  "http://$name/.well-known/acme-challenge/x: the webroot's "
                  . 'file');
    }

    my $res = curl({ url => "https://www.$DOMAIN:$PORT{https}/a/b?c=d",
                     h2 => 1 });
    is($res->{status}, 301, "https://www.$DOMAIN/: 301");
    is($res->{headers}{location}, "https://$DOMAIN/a/b?c=d",
       "... to https://$DOMAIN/, the same path and query");
    is($res->{headers}{'strict-transport-security'}, $HSTS, '... with HSTS');
};

# what each version's uploads are
my %MATRIX = (
    2 => [
        { file => 'shot.png', form => 1, sharex => 1,
          what => 'multipart, to /api/uploads/sharex as ShareX posts' },
        { file => 'report.pdf', raw => 'X-Filename', expect => 1,
          what => 'raw, named by X-Filename, Expect: 100-continue (nginx '
                  . '1.22 sends no 100 over HTTP/2: curl waits a second)' },
        { file => 'clip.mp4', form => 1, what => 'multipart' },
        { file => 'clip.mp4', raw => 'query', what => 'raw, ?filename=' },
        { file => 'report.pdf', raw => 'query', stdin => 1,
          what => 'raw from a pipe: no length' },
    ],
    '1.1' => [
        { file => 'shot.png', form => 1, sharex => 1, expect => 0,
          what => 'multipart, to /api/uploads/sharex as ShareX posts' },
        { file => 'report.pdf', raw => 'X-Filename', expect => 1,
          what => 'raw, named by X-Filename, Expect: 100-continue' },
        { file => 'clip.mp4', form => 1, expect => 0,
          what => 'multipart, no Expect' },
        { file => 'clip.mp4', raw => 'query', expect => 1,
          what => 'raw, ?filename=, Expect: 100-continue' },
        { file => 'report.pdf', raw => 'query', stdin => 1,
          what => 'raw from a pipe: chunked' },
        { file => 'clip.mp4', form => 1, chunked => 1,
          what => 'multipart, chunked' },
    ],
);

# the file domain of each upload in turn, so that each serves some
my $next_domain = 0;

# One upload of a file by a client of its own, as %MATRIX describes it:
# the answer, and the file domain it asked for
sub upload {
    my ($u, $h2, $token, $base) = @_;
    my $file = $FILE{ $u->{file} };
    my $domain = $FILE_DOMAINS[ $next_domain++ % @FILE_DOMAINS ];
    my $path = $u->{sharex} ? '/api/uploads/sharex' : '/api/uploads';
    my @headers = ("X-BulletDrop-Domain: $domain");
    my @args;

    if ($u->{form}) {
        push @args, '-F', "file=\@$file->{path}";
        push @headers, 'Transfer-Encoding: chunked' if $u->{chunked};
    } else {
        push @headers, 'Content-Type: application/octet-stream';
        if ($u->{raw} eq 'query') {
            $path .= "?filename=$file->{name}";
        } else {
            push @headers, "X-Filename: $file->{name}";
        }
        push @args, $u->{stdin} ? ('-T', '-')
                                : ('--data-binary', "\@$file->{path}");
    }

    my $res = api(POST => $path, base => $base, token => $token, h2 => $h2,
                  from => new_client(), expect => $u->{expect},
                  headers => \@headers, args => \@args,
                  $u->{stdin} ? (stdin => $file->{path}) : ());
    return ($res, $domain);
}

my @kept;    # uploads that stay, for the metrics
my %counted = (ok => 0, file_too_large => 0, rate_limited => 0);

# over HTTP/2 with the main site's name, over HTTP/1.1 with api.'s (as
# the README's ShareX set-up does)
for my $v ('2', '1.1') {
    my $h2 = $v eq '2';
    my $name = $h2 ? 'HTTP/2' : 'HTTP/1.1';
    my $host = $h2 ? "$DOMAIN:$PORT{https}" : "api.$DOMAIN:$PORT{https}";
    my $base = "https://$host";
    my $user;

    subtest "$name: a user registers with an invite and logs in" => sub {
        my %me = (username => $h2 ? 'alice' : 'bob',
                  password => 'pw-' . random_text(16));
        my $from = new_client();
        my $res = api(POST => '/api/auth/register', base => $base,
                      h2 => $h2, from => $from,
                      json => { %me, invite => invite() });
        is_deeply([ $res->{status}, $res->{version} ], [ 201, $v ],
                  "registered over $name");

        $res = api(POST => '/api/auth/login', base => $base, h2 => $h2,
                   from => $from, json => \%me);
        is_deeply([ $res->{status}, $res->{version} ], [ 200, $v ],
                  "logged in over $name");
        $user = { %me, token => $res->{json}{access_token} };

        $res = api(POST => '/api/auth/login', base => $base, h2 => $h2,
                   from => $from, headers => [ "Origin: $base" ],
                   json => { %me, session => JSON::PP::true });
        like($res->{headers}{'set-cookie'} // '',
             qr/\A__Host-bd_session=[^;]+;[ ]Path=\/;[ ]HttpOnly;
                [ ]SameSite=Strict;[ ]Secure;/x,
             'a session: the cookie is __Host-, Secure, for https://');
    };

    subtest "$name: uploads of 10 KB, 5 MB and 49 MB come back byte for "
            . 'byte on their file domains' => sub {
        plan skip_all => 'no user' unless $user && $user->{token};

        for my $u (@{ $MATRIX{$v} }) {
            my $file = $FILE{ $u->{file} };
            my $what = "$file->{name} ("
                . ($file->{size} >= $MiB ? $file->{size} / $MiB . ' MB'
                                         : $file->{size} / 1024 . ' KB')
                . "), $u->{what}";
            my ($res, $domain) = upload($u, $h2, $user->{token}, $base);
            is_deeply([ $res->{status}, $res->{version} ], [ 201, $v ],
                      "$what: 201 over $name")
                or diag "$res->{rc} $res->{error} "
                        . substr($res->{body} // '', 0, 300);
            next unless $res->{status} == 201;
            $counted{ok}++;
            my $rec = $res->{json} // {};
            push @kept, $rec;

            is_deeply([ $rec->{size}, $rec->{sha256} ],
                      [ $file->{size}, $file->{sha256} ],
                      '... its size and SHA-256 are the file\'s');
            like($rec->{url} // '',
                 qr{\Ahttps://\Q$domain\E:$PORT{https}/static/
                    (?:images|documents|other)/[\w-]{16}\.\w+\z}x,
                 "... its link is https://$domain/static/...");
            like($rec->{delete_url} // '',
                 qr{\Ahttps://\Q$host\E/d/[\w-]{32}\z},
                 "... its delete link https://$host/d/...");
            if ($u->{expect} && !$h2) {
                like($res->{head}, qr{\AHTTP/1\.1 100 Continue\r\n}m,
                     '... the body went after a 100 Continue');
            } elsif (!$h2 && defined $u->{expect}) {
                unlike($res->{head}, qr{\AHTTP/1\.1 100}, '... no 100 asked');
            }

            my $out = "$dir/download";
            my $get = curl({ url => $rec->{url}, h2 => $h2, out => $out });
            is_deeply([ $get->{status}, $get->{version},
                        -s $out && sha256_file($out) ],
                      [ 200, $v, $file->{sha256} ],
                      "... served on $domain over $name, byte for byte");
            unlink $out;

            my $from = int($file->{size} / 3);
            my $to = $from + 999;
            my $range = curl({ url => $rec->{url}, h2 => $h2,
                               args => [ '-r', "$from-$to" ] });
            is_deeply([ $range->{status}, $range->{headers}{'content-range'},
                        $range->{body} eq bytes_of($file, $from, 1000) ],
                      [ 206, "bytes $from-$to/$file->{size}", 1 ],
                      '... a range of it: 206 with those bytes');
            $range = curl({ url => $rec->{url}, h2 => $h2,
                            args => [ '-r', '-17' ] });
            ok($range->{status} == 206
               && $range->{body} eq bytes_of($file, $file->{size} - 17, 17),
               '... its last 17 bytes: 206 with those');
        }
    };

    subtest "$name: 60 MB is refused in JSON before the body is sent" => sub {
        plan skip_all => 'no user' unless $user && $user->{token};
        my $huge = $FILE{'huge.mp4'};
        my @cases = (
            [ 'multipart, Expect: 100-continue', 1, 1, 0 ],
            [ 'raw, no Expect', 0, 0,
              # HTTP/2: the stream's window of 64 KiB; HTTP/1.1: what the
              # sockets took before curl read the answer
              $h2 ? 65536 : 16 * $MiB ],
        );
        for my $c (@cases) {
            my ($what, $form, $expect, $most) = @$c;
            my $res = api(POST => '/api/uploads', base => $base,
                          token => $user->{token}, h2 => $h2,
                          from => new_client(), expect => $expect,
                          $form ? (args => [ '-F', "file=\@$huge->{path}" ])
                                : (headers => [ 'X-Filename: huge.mp4' ],
                                   args => [ '--data-binary',
                                             "\@$huge->{path}" ]));
            is($res->{version}, $v, "$what: over $name");
            is_error($res, 413, 'file_too_large', "$what: a JSON 413");
            $counted{file_too_large}++;
            cmp_ok($res->{sent}, '<=', $most,
                   "... after $res->{sent} bytes of the body (at most "
                   . "$most)");
            unlike($res->{head}, qr{\AHTTP/1\.1 100}, '... no 100 Continue');
            like($res->{headers}{connection} // 'close', qr/\Aclose\z/i,
                 '... and the connection closes') unless $h2;
        }

        return if $h2;
        my $res = api(POST => '/api/uploads?filename=huge.mp4',
                      base => $base, token => $user->{token},
                      from => new_client(),
                      stdin => $huge->{path}, args => [ '-T', '-' ],
                      headers => [ 'Content-Type: application/octet-stream' ]);
        is_error($res, 413, 'file_too_large',
                 'chunked from a pipe (no length to judge): a JSON 413');
        $counted{file_too_large}++;
        cmp_ok($res->{sent}, '<', $huge->{size},
               "... cut off after $res->{sent} bytes, before the end");
    };

    subtest "$name: a delete link shows its page, deletes on POST, and "
            . 'the file is gone from its domain' => sub {
        plan skip_all => 'no user' unless $user && $user->{token};
        my ($res) = upload({ file => 'shot.png', form => 1, sharex => 1 },
                           $h2, $user->{token}, $base);
        is($res->{status}, 201, 'an upload to delete');
        $counted{ok}++ if $res->{status} == 201;
        my $rec = $res->{json} // {};
        my $link = $rec->{delete_url} // 'https://x:1/';

        my $page = curl({ url => $link, h2 => $h2 });
        is_deeply([ $page->{status}, $page->{version},
                    $page->{headers}{'content-type'} ],
                  [ 200, $v, 'text/html; charset=utf-8' ],
                  "GET $link: its page, over $name");
        like($page->{body}, qr/\Q$rec->{url}\E/, '... naming the file');
        is(curl({ url => $rec->{url}, h2 => $h2 })->{status}, 200,
           '... and GET deleted nothing');

        my $post = curl({ url => $link, h2 => $h2, method => 'POST',
                          headers => [ 'Accept: application/json' ] });
        is_deeply([ $post->{status}, $post->{json} ],
                  [ 200, { deleted => JSON::PP::true, id => $rec->{id} } ],
                  'POST: deleted');
        my $gone = curl({ url => $rec->{url}, h2 => $h2 });
        is_error($gone, 404, 'not_found', 'the file: a JSON 404 on its domain');
        is(curl({ url => $link, h2 => $h2, method => 'POST' })->{status}, 404,
           'the link again: 404');
    };
}

subtest 'the API\'s limit refuses a client in JSON, and serves another '
        . 'meanwhile' => sub {
    my ($a, $b) = (new_client(), new_client());
    my @res = curl(
        (map { { url => "$API/api/config", h2 => 1, from => $a } } 1 .. 30),
        (map { { url => "$API/api/config", h2 => 1, from => $b } } 1 .. 3));
    my @a = splice @res, 0, 30;
    my @ok = grep { $_->{status} == 200 } @a;
    my @limited = grep { $_->{status} == 429 } @a;
    is(@ok + @limited, 30, '30 requests at once from one client: each 200 '
                           . 'or 429');
    cmp_ok(scalar @ok, '>=', 21, '... at least 21 served (1 and a burst '
                                 . 'of 20)');
    cmp_ok(scalar @limited, '>=', 1, '... the rest refused: ' . @limited);
    is_deeply([ map { $_->{status} } @res ], [ 200, 200, 200 ],
              'another client at the same moment: served');

    my $r = $limited[0] // { headers => {}, count => {} };
    $counted{rate_limited} += @limited;
    is_error($r, 429, 'rate_limited', 'a refusal is the API\'s JSON 429');
    like($r->{headers}{'retry-after'} // '', qr/\A[1-9][0-9]*\z/,
         '... with Retry-After: ' . ($r->{headers}{'retry-after'} // 'none'));
    is($r->{headers}{'strict-transport-security'}, $HSTS, '... and HSTS');
    is_deeply([ grep { $r->{count}{$_} > 1 } sort keys %{ $r->{count} } ],
              [], '... each header once');
};

# over HTTP/1.1, seven connections: over HTTP/2, nginx answers a refused
# upload early, before its body, and ends the stream with RST_STREAM
# NO_ERROR (RFC 9113, 8.1), which Debian 12's curl 7.88 takes for an
# error when it is still sending the body (error 92, no answer shown)
subtest 'the uploads\' limit refuses the 7th quick upload, and the API '
        . 'still serves that client' => sub {
    my $c = new_client();
    my $shot = $FILE{'shot.png'};
    my @res = curl(map { { url => "$API/api/uploads", from => $c,
                           method => 'POST',
                           headers => [ "Authorization: Bearer $ROOT" ],
                           args => [ '-F', "file=\@$shot->{path}" ] } }
                   1 .. 7);
    my @statuses = sort { $a <=> $b } map { $_->{status} } @res;
    is_deeply(\@statuses, [ (201) x 6, 429 ],
              'seven uploads at once: six stored (1 and a burst of 5), one '
              . 'refused')
        or diag join "\n", map { "$_->{status} rc $_->{rc} $_->{error}" } @res;
    my ($r) = grep { $_->{status} == 429 } @res;
    is_error($r // {}, 429, 'rate_limited', '... in the API\'s JSON');
    $counted{ok} += grep { $_->{status} == 201 } @res;
    push @kept, map { $_->{json} } grep { $_->{status} == 201 } @res;
    $counted{rate_limited}++ if $r;

    my $me = api(GET => '/api/users/me', token => $ROOT, from => $c, h2 => 1);
    is($me->{status}, 200, 'GET /api/users/me from the same client: 200');
};

subtest 'the file domains serve files and nothing else of the upload dir'
=> sub {
    my ($rec) = grep { ($_->{url} // '') =~ m{/static/images/} } @kept;
    my ($path) = ($rec->{url} // '') =~ m{\Ahttps://[^/]+(/.*)\z};
    my $P = $PORT{https};
    for my $host ("img.$DOMAIN", "foo.$DOMAIN") {
        for my $p ('/static/.domains', '/static/.tmp/', '/static/images/',
                   '/static/images/../.domains', '/static/%2edomains')
        {
            my $res = curl({ url => "https://$host:$P$p", h2 => 1,
                             args => [ '--path-as-is' ] });
            is($res->{status}, 404, "https://$host$p: 404");
        }
    }
    is(curl({ url => "https://foo.$DOMAIN:$P$path", h2 => 1 })->{status},
       404, "a file on foo.$DOMAIN, a name that is not a file domain: 404");
    is(curl({ url => "https://img.$DOMAIN:$P$path", h2 => 1 })->{status},
       200, "... and on img.$DOMAIN: 200");
};

# ---- behind the proxy --------------------------------------------------

my $VIA = "https://$DOMAIN:$PORT{proxy}";
my $PRIVATE = "http://$DOMAIN:$PORT{backend}";

subtest 'behind a proxy that ends TLS, the links, the cookie and the '
        . 'origin say https' => sub {
    my $x = new_client();
    my $shot = $FILE{'shot.png'};
    my $res = api(POST => '/api/uploads/sharex', base => $VIA, h2 => 1,
                  from => $x, token => $ROOT,
                  args => [ '-F', "file=\@$shot->{path}" ]);
    is($res->{status}, 201, 'an upload through the proxy: 201')
        or diag $res->{body};
    $counted{ok}++ if $res->{status} == 201;
    my $rec = $res->{json} // {};
    push @kept, $rec if $rec->{id};
    like($rec->{url} // '',
         qr{\Ahttps://img\.\Q$DOMAIN\E:$PORT{proxy}/static/images/
            [\w-]+\.png\z}x,
         'its link is https://, on the host and port the client used');
    like($rec->{delete_url} // '',
         qr{\Ahttps://\Q$DOMAIN\E:$PORT{proxy}/d/[\w-]{32}\z},
         'so is its delete link');
    my $out = "$dir/download";
    my $get = curl({ url => $rec->{url} // "$VIA/", h2 => 1, from => $x,
                     out => $out });
    is_deeply([ $get->{status}, -s $out && sha256_file($out) ],
              [ 200, $shot->{sha256} ], 'served through the proxy, whole');

    $res = api(POST => '/api/auth/login', base => $VIA, from => $x,
               headers => [ "Origin: $VIA" ],
               json => { %root, session => JSON::PP::true });
    my ($cookie) = ($res->{headers}{'set-cookie'} // '') =~ /\A([^;]+)/;
    like($res->{headers}{'set-cookie'} // '',
         qr/\A__Host-bd_session=[^;]+;[ ]Path=\/;[ ]HttpOnly;
            [ ]SameSite=Strict;[ ]Secure;/x,
         'a session\'s cookie is __Host-, Secure');
    $res = api(POST => '/api/users/me/api-keys', base => $VIA, from => $x,
               headers => [ "Cookie: $cookie", "Origin: $VIA" ],
               json => { name => 'proxied' });
    is($res->{status}, 201, 'a change made with it from the site\'s own '
                            . "origin ($VIA): 201, not 403 csrf");
    $res = api(POST => '/api/auth/logout', base => $VIA, from => $x,
               headers => [ "Cookie: $cookie", "Origin: $VIA" ]);
    is($res->{status}, 204, 'the logout: 204');

    # every other link the module makes
    my $page = curl({ url => $rec->{delete_url} // "$VIA/", from => $x });
    like($page->{body} // '', qr/\Q$rec->{url}\E/,
         'the delete link\'s page names the https:// link') if $rec->{url};
    my $sxcu = api(GET => '/api/users/me/sharex', base => $VIA, from => $x,
                   token => $ROOT);
    my $sx = eval { $JSON->decode($sxcu->{body}) } // {};
    is($sx->{RequestURL}, "$VIA/api/uploads/sharex",
       'the ShareX configuration uploads to https://');
    my $app = curl({ url => "$VIA/", from => $x });
    my $origins = join ' ', map { "https://$_:$PORT{proxy}" } @FILE_DOMAINS;
    like($app->{headers}{'content-security-policy'} // '',
         qr/ img-src 'self' \Q$origins\E data: /,
         'the app\'s CSP names the file domains as https:// origins');
    my $to_main = curl({ url => "https://img.$DOMAIN:$PORT{proxy}/",
                         from => $x });
    is_deeply([ $to_main->{status}, $to_main->{headers}{location} ],
              [ 302, "$VIA/" ], 'a file domain\'s / goes to https://');
};

subtest 'behind the proxy, the limits count each real client' => sub {
    my ($x, $y, $z) = (new_client(), new_client(), new_client());
    my @res = curl(
        (map { { url => "$VIA/api/config", h2 => 1, from => $x } } 1 .. 30),
        (map { { url => "$VIA/api/config", h2 => 1, from => $y } } 1 .. 3));
    my @x = splice @res, 0, 30;
    my @limited = grep { $_->{status} == 429 } @x;
    cmp_ok(scalar @limited, '>=', 1, '30 requests at once from one client '
           . 'through the proxy: ' . @limited . ' refused');
    is_error($limited[0] // {}, 429, 'rate_limited', '... in JSON');
    $counted{rate_limited} += @limited;
    is_deeply([ map { $_->{status} } @res ], [ 200, 200, 200 ],
              'another client through the same proxy, at the same moment: '
              . 'served');

    # every registration counts against its address, and a made-up
    # invite costs no hash: 50 of them block the address
    my $bad = { username => 'mallory', password => 'pw-' . random_text(16),
                invite => random_text(22) };
    @res = curl_paced('15/s', map { { url => "$VIA/api/auth/register",
                                      from => $z, method => 'POST',
                                      args => [ '--json',
                                                $JSON->encode($bad) ] } }
                                  1 .. 51);
    my $last = pop @res;
    is_deeply([ map { $_->{status} } @res ], [ (403) x 50 ],
              '50 registrations with a made-up invite through the proxy: '
              . '403 each');
    is_error($last, 429, 'too_many_attempts', 'the 51st: 429 '
             . 'too_many_attempts (bulletdrop_login_limit addr=50)');
    is_error(api(POST => '/api/auth/register', base => $VIA, from => $y,
                 json => $bad), 403, 'invalid_invite',
             'another client through the same proxy: still judged on its '
             . 'invite');
    is(api(POST => '/api/auth/login', base => $VIA, from => $y,
           json => \%root)->{status}, 200, '... and logs in');
};

subtest 'a client that is not the proxy is believed nothing' => sub {
    my $f = new_client();
    my @forged = ('CF-Connecting-IP: 203.0.113.7',
                  'X-Forwarded-For: 203.0.113.7',
                  'X-Forwarded-Proto: https');
    my $shot = $FILE{'shot.png'};

    my $res = api(POST => '/api/uploads/sharex', base => $PRIVATE,
                  to => $BACKEND, from => $f, token => $ROOT,
                  headers => \@forged,
                  args => [ '-F', "file=\@$shot->{path}" ]);
    is($res->{status}, 201, 'an upload straight to the private listen, '
                            . 'forging the proxy\'s headers: 201');
    $counted{ok}++ if $res->{status} == 201;
    my $rec = $res->{json} // {};
    push @kept, $rec if $rec->{id};
    like($rec->{url} // '', qr{\Ahttp://img\.\Q$DOMAIN\E:$PORT{backend}/},
         'its link says http: X-Forwarded-Proto from it is not believed');
    like($rec->{delete_url} // '',
         qr{\Ahttp://\Q$DOMAIN\E:$PORT{backend}/d/}, 'so does its delete '
         . 'link');

    $res = api(POST => '/api/auth/login', base => $PRIVATE, to => $BACKEND,
               from => $f, headers => [ @forged, "Origin: $PRIVATE" ],
               json => { %root, session => JSON::PP::true });
    like($res->{headers}{'set-cookie'} // '', qr/\Abd_session=/,
         'its session cookie is the plain-HTTP one (no __Host-, no Secure)');
    unlike($res->{headers}{'set-cookie'} // '', qr/;\s*Secure\b/i, '...');

    my $app = curl({ url => "$PRIVATE/", to => $BACKEND, from => $f,
                     headers => \@forged });
    like($app->{headers}{'content-security-policy'} // '',
         qr{ img-src 'self' http://img\.\Q$DOMAIN\E:$PORT{backend} },
         'the app\'s CSP names http:// origins');

    $res = api(GET => '/api/users/me', from => $f, token => $ROOT, h2 => 1,
               headers => \@forged);
    is($res->{status}, 200, 'the same forged headers over TLS, straight to '
                            . 'the site: answered, as itself');
};

subtest 'the access log names each real client' => sub {
    my @lines = split /\n/, slurp("$prefix/logs/access.log");
    my (@wrong, %seen);
    for (@lines) {
        my ($addr, $ua) = /\A(\S+) .* "bd-095 ([0-9a-f.:]+)"\z/ or next;
        $seen{$ua}++;
        push @wrong, $_ if $addr ne $ua;
    }
    cmp_ok(scalar keys %seen, '>=', $clients, 'every client is in the log');
    is_deeply(\@wrong, [], 'every line names the client that made it: the '
              . 'real one through the proxy, never the proxy, never an '
              . 'address a client wrote');
    ok(!grep({ /\A\Q$PROXY_FROM\E / } @lines), 'the proxy\'s address is '
       . 'in no line');
};

# ---- the headers of each kind of answer ---------------------------------

# An answer to bytes sent as they are over TLS to a name (what curl will
# not send): {status, headers, count, head, body, json}
sub raw_tls {
    my ($name, $bytes) = @_;
    my (undef, $out) = run_cmd(
        [ 'openssl', 's_client', '-quiet', '-connect',
          "127.0.0.1:$PORT{https}", '-servername', $name, '-CAfile', $CA,
          '-verify_return_error' ], stdin => $bytes, check => 0);
    my $res = eval { BulletDrop::HTTP::parse_response($out) }
              // { status => 0, headers => {}, body => $out };
    ($res->{head}) = split /\r\n\r\n/, $out, 2;
    $res->{count}{ lc $1 }++ while $res->{head} =~ /^([^:\s]+):/mg;
    return $res;
}

# a record of an upload that is still there, on img.
my ($file) = grep {
    ($_->{url} // '') =~ m{\Ahttps://img\.\Q$DOMAIN\E:$PORT{https}/}
} @kept;
my ($asset) = slurp("$TOP/www/dist/index.html") =~ m{"(/assets/[^"]+\.js)"};
my $P = $PORT{https};
my $ORIGINS = join ' ', map { "https://$_:$P" } @FILE_DOMAINS;

# the start of the app's CSP: images and media from the enabled file
# domains, on the scheme and port of the request
my $APP_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; "
            . "img-src 'self' $ORIGINS data: blob:; "
            . "media-src 'self' $ORIGINS blob:; ";

my %API_HEADERS = ('x-content-type-options' => 'nosniff',
                   'x-frame-options' => 'DENY',
                   'referrer-policy' => 'no-referrer',
                   'cache-control' => 'no-store');
# nginx's own refusals, made the API's JSON by bulletdrop_error_page
my %NGINX_JSON = (%API_HEADERS, 'content-type' => 'application/json');

my @KINDS = (
    [ 'the API', "$API/api/config", 200, \%API_HEADERS ],
    [ 'the API on api.', "https://api.$DOMAIN:$P/api/config", 200,
      \%API_HEADERS ],
    [ 'an error of the API', "$API/api/nope", 404,
      { %API_HEADERS, 'content-type' => 'application/json',
        error => 'not_found' } ],
    [ 'the API without a credential', "$API/api/users/me", 401,
      { %API_HEADERS, 'www-authenticate' => qr/\ABearer\b/,
        error => 'unauthorized' } ],
    [ 'nginx\'s own 404 on the main site, in JSON', "$API/assets/nope.js",
      404, { %NGINX_JSON, error => 'not_found' } ],
    [ 'nginx\'s own 405 on the main site, in JSON',
      [ "$API/index.html", method => 'DELETE' ], 405,
      { %NGINX_JSON, error => 'method_not_allowed' } ],
    [ 'nginx\'s own 413 on the main site, in JSON (client_max_body_size)',
      [ "$API/", method => 'POST', expect => 1,
        args => [ '--data-binary', "\@$FILE{'report.pdf'}{path}" ] ], 413,
      { %NGINX_JSON, error => 'body_too_large' } ],
    [ 'nginx\'s own 414 on the main site, in JSON',
      "$API/" . ('x' x 9000), 414,
      { %NGINX_JSON, error => 'too_long' }, '1.1' ],
    [ 'nginx\'s 494 (a header too large) on the main site, a JSON 431',
      [ "$API/api/config", headers => [ 'X-Big: ' . ('b' x 9000) ] ], 431,
      { %NGINX_JSON, error => 'headers_too_large' }, '1.1' ],
    [ 'nginx\'s own 400 on the main site, in JSON', sub {
          raw_tls($DOMAIN, "NOT A REQUEST LINE\r\n\r\n") }, 400,
      { %NGINX_JSON, error => 'bad_request' }, '1.1' ],
    [ 'the app', "$API/", 200,
      { 'content-type' => 'text/html',
        'content-security-policy' => qr/\A\Q$APP_CSP\E/,
        'x-content-type-options' => 'nosniff', 'x-frame-options' => 'DENY',
        'referrer-policy' => 'same-origin', 'cache-control' => 'no-cache',
        'permissions-policy' => qr/\Acamera=\(\)/ } ],
    [ 'a route of the app', "$API/files", 200,
      { 'content-type' => 'text/html', 'x-frame-options' => 'DENY',
        'content-security-policy' => qr/\Adefault-src 'self'; / } ],
    [ 'an asset of the app', "$API$asset", 200,
      { 'cache-control' => 'public, max-age=31536000, immutable',
        'x-content-type-options' => 'nosniff' } ],
    [ 'the docs', "$API/docs/", 200,
      { 'content-security-policy' => qr/style-src 'self' 'unsafe-inline'/,
        'x-content-type-options' => 'nosniff', 'x-frame-options' => 'DENY',
        'cache-control' => 'no-cache' } ],
    [ 'the API\'s contract', "$API/api/openapi.json", 200,
      { 'cache-control' => 'no-cache',
        'x-content-type-options' => 'nosniff' } ],
    [ 'a file', $file->{url}, 200,
      { 'x-content-type-options' => 'nosniff',
        'content-security-policy' => 'sandbox',
        'cache-control' => 'max-age=300',
        'access-control-allow-origin' => '*' } ],
    [ 'a file\'s CORS preflight',
      [ $file->{url}, method => 'OPTIONS',
        headers => [ 'Origin: https://elsewhere.test',
                     'Access-Control-Request-Method: GET' ] ], 204,
      { 'access-control-allow-origin' => '*' } ],
    [ 'another method on a file', [ $file->{url}, method => 'PUT' ], 405,
      { 'content-type' => 'application/json',
        allow => 'GET, HEAD, OPTIONS' } ],
    [ 'a file domain\'s 404', "https://img.$DOMAIN:$P/nope", 404,
      { 'content-type' => 'application/json' } ],
    [ 'a file domain\'s /', "https://img.$DOMAIN:$P/", 302,
      { location => "https://$DOMAIN:$P/" } ],
    [ 'www.', "https://www.$DOMAIN:$P/x", 301,
      { location => "https://$DOMAIN/x" } ],
    [ 'a delete link\'s page', $file->{delete_url}, 200,
      { 'referrer-policy' => 'no-referrer', 'x-frame-options' => 'DENY',
        'x-content-type-options' => 'nosniff', 'cache-control' => 'no-store',
        'content-security-policy' => qr/\Adefault-src 'none'/ } ],
);

for my $v ('2', '1.1') {
    subtest "the headers of every kind of answer over HTTP/$v: HSTS and "
            . 'their own, each once' => sub {
        for my $k (@KINDS) {
            my ($what, $url, $status, $want, $only) = @$k;
            next if $only && $only ne $v;
            my ($u, %o) = ref $url eq 'ARRAY' ? @$url : ($url);
            my $res = ref $url eq 'CODE' ? $url->()
                    : curl({ url => $u, h2 => $v eq '2', %o });
            $url = ref $url eq 'CODE' ? 'raw bytes' : $u;
            my %got = (status => $res->{status},
                       hsts => $res->{headers}{'strict-transport-security'});
            my %exp = (status => $status, hsts => $HSTS);
            for my $name (sort keys %$want) {
                my $h = $name eq 'error' ? $res->{json}{error}
                                         : $res->{headers}{$name};
                if (ref $want->{$name}) {
                    $got{$name} = defined $h && $h =~ $want->{$name}
                                ? 'as wanted' : $h;
                    $exp{$name} = 'as wanted';
                } else {
                    $got{$name} = $h;
                    $exp{$name} = $want->{$name};
                }
            }
            $got{twice} = [ grep { $res->{count}{$_} > 1 }
                            sort keys %{ $res->{count} } ];
            $exp{twice} = [];
            is_deeply(\%got, \%exp, "$what: $status, HSTS, its own headers, "
                                    . 'none twice')
                or diag substr($url, 0, 100) . ":\n$res->{head}";
        }
    };
}

subtest 'the metrics count what happened, for the scraper only' => sub {
    my $M = "http://127.0.0.1:$PORT{metrics}/metrics";
    my $res = curl({ url => $M });
    is($res->{status}, 200, "GET $M: 200");
    my %m = map { /\A(\S+) (\S+)\z/ ? ($1 => $2) : () }
            split /\n/, $res->{body} // '';
    is($m{'bulletdrop_uploads_total{result="ok",reason="none"}'},
       $counted{ok}, "uploads: $counted{ok} stored");
    is($m{'bulletdrop_uploads_total{result="refused",'
          . 'reason="file_too_large"}'}, $counted{file_too_large},
       "$counted{file_too_large} refused as too large");
    is(curl({ url => $M, from => '127.0.0.2' })->{status}, 403,
       'from another address: 403');
};

subtest 'nothing is left half-done, and the logs say nothing amiss' => sub {
    ok(wait_until(sub { !$t->temp_files }, 5),
       'no upload under way is left in .tmp (the refused and cut-off '
       . 'ones included)') or diag join ' ', $t->temp_files;
    my $state = $t->uploads_state;
    is($state->{rows}, scalar @{ $state->{files} },
       "each of the $state->{rows} uploads has its file, and no file is "
       . 'without its row');

    # what the test caused on purpose, at [error] (Debian's error_log
    # level): refused credentials (for fail2ban), the app's own 413, the
    # metrics refused to another address
    my @expected = (qr/ bulletdrop: auth failed: /,
                    qr/ client intended to send too large body: \d+ bytes,/,
                    qr/ access forbidden by rule, client: 127\.0\.0\.2,
                       .* "GET \/metrics /x);
    for my $n ([ 'the site', $t->nginx ], [ 'the proxy', $proxy ]) {
        my @bad = grep { /\A\S+ \S+ \[(?:error|crit|alert|emerg)\]/
                         && !(grep { my $re = $_; /$re/ } @expected) }
                  split /\n/, $n->[1]->log_text;
        is_deeply(\@bad, [], "$n->[0]'s error log has no other [error]");
    }
};

done_testing;
