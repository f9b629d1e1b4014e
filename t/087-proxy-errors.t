#!/usr/bin/perl
# nginx's own refusals in the API's JSON, and the module behind a proxy.
#
# - "error_page ... /e" with "bulletdrop_error_page" in /e: limit_req's
#   429 (with Retry-After), a 413 of client_max_body_size and a 414 of a
#   line too long are the module's JSON errors, with their status, and the
#   worker goes on serving.
# - bulletdrop_forwarded_proto: links say https when a proxy that realip
#   believes (set_real_ip_from) says X-Forwarded-Proto: https, and never
#   when anybody else says it.  The login limiter and the log see the
#   client realip names, not the proxy.
# Clients come from loopback addresses of their own: 127.0.0.2 is the
# proxy, 127.0.0.1 anybody else.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;

use BulletDrop::Test qw(is_error free_port);
use BulletDrop::Util qw(slurp run_cmd);

my $PROXY = '127.0.0.2';

my $t = BulletDrop::Test->new;

my $http = <<'EOF';
    limit_req_zone $binary_remote_addr zone=api:1m rate=1r/m;
    limit_req_status 429;
    limit_req_log_level warn;
    large_client_header_buffers 4 2k;

    set_real_ip_from 127.0.0.2;
    real_ip_header X-Forwarded-For;
    bulletdrop_forwarded_proto on;
EOF

my $server = <<'EOF';
        # a URI, not a named location: a request line too long has none
        # to go to a named location with
        error_page 413 414 429 /_bulletdrop/error;
        error_page 494 =431 /_bulletdrop/error;

        location = /_bulletdrop/error {
            internal;
            bulletdrop_error_page retry_after=7s;
        }

        location /api/ {
            bulletdrop_api;
        }

        # a location that limits: /api/health through it
        location = /api/health {
            limit_req zone=api burst=1 nodelay;
            bulletdrop_api;
        }

        location = /api/uploads/sharex {
            limit_req zone=api burst=1 nodelay;
            bulletdrop_api;
        }

        # nginx's own body limit, set before bulletdrop_api
        location = /api/auth/register {
            client_max_body_size 100;
            bulletdrop_api;
        }

        location /static/ {
            root @PREFIX@/html;
        }

        location /off/ {
            bulletdrop_forwarded_proto off;
            rewrite ^/off(/.*)$ $1 break;
            bulletdrop_api;
        }
EOF

# and a TLS server, where a proxy's word cannot undo TLS
my $tls_port = free_port();
$http .= $t->tls_api_server($tls_port);

$t->start_nginx(registration => 'open', login_limit => 'user=50 addr=3 '
                . 'period=15m', http => $http, server => $server);

my $token = $t->new_user('alice',
                          password => 'alice long password')->{token};

subtest 'limit_req\'s 429 is JSON, with Retry-After' => sub {
    my @res = map { $t->get('/api/health') } 1 .. 3;
    is($res[0]{status}, 200, 'the first is served');
    is($res[1]{status}, 200, 'and the burst');
    is_error($res[2], 429, 'rate_limited', 'then a JSON 429');
    is($res[2]{headers}{'retry-after'}, '7', 'Retry-After: retry_after');

    # an upload on the limited address is refused before its body, and
    # the worker serves the next client
    my $res = $t->get('/api/health', from => '127.0.0.3');
    is($res->{status}, 200, 'another address is served meanwhile');
    # over nginx's default client_max_body_size of 1m, which the error
    # page's location must not apply again
    for my $expect (1, 0) {
        my $how = $expect ? 'with Expect' : 'sent whole';
        $res = $t->{http}->request(
            $t->upload_request($token, 'big.bin', 'x' x 2_000_000,
                               sharex => 1, expect => $expect));
        is_error($res, 429, 'rate_limited',
                 "a 2 MB upload is refused too ($how)");
        ok(!grep({ $_ == 100 } @{ $res->{interim} // [] }),
           "with no 100 Continue ($how)");
        is(lc($res->{headers}{connection} // ''), 'close',
           "and the connection closed: its body is not waited for ($how)");
    }
    $res = $t->http->request('HEAD', '/api/health');
    is($res->{status}, 429, 'HEAD: 429');
    is($res->{body} // '', '', 'without a body');
};

subtest 'nginx\'s 413, 414 and 494 are JSON' => sub {
    my $res = $t->http->request('POST', '/api/auth/register',
                                json => { username => 'bob',
                                          password => 'x' x 200 });
    is_error($res, 413, 'body_too_large', 'client_max_body_size: a JSON 413');

    $res = $t->get('/api/uploads?' . ('a' x 3000));
    is_error($res, 414, 'too_long', 'a request line too long: a JSON 414');

    $res = $t->get('/api/health', headers => [ 'X-Big' => 'b' x 3000 ]);
    is_error($res, 431, 'headers_too_large',
             'a header too large: nginx\'s 494 as a JSON 431');

    $res = $t->get('/api/users/me', token => $token);
    is($res->{status}, 200, 'the worker serves on');
};

subtest 'links say https only when a believed proxy says so' => sub {
    my %via = (
        'the proxy, for a client, says https' =>
            [ $PROXY, [ 'X-Forwarded-For' => '203.0.113.9',
                        'X-Forwarded-Proto' => 'https' ], 'https' ],
        'the proxy, for a client, says http' =>
            [ $PROXY, [ 'X-Forwarded-For' => '203.0.113.9',
                        'X-Forwarded-Proto' => 'http' ], 'http' ],
        'the proxy says nothing of the scheme' =>
            [ $PROXY, [ 'X-Forwarded-For' => '203.0.113.9' ], 'http' ],
        'the proxy names no client (realip believed nothing)' =>
            [ $PROXY, [ 'X-Forwarded-Proto' => 'https' ], 'http' ],
        'anybody else says https' =>
            [ '127.0.0.1', [ 'X-Forwarded-For' => '203.0.113.9',
                             'X-Forwarded-Proto' => 'https' ], 'http' ],
        'the proxy says something else' =>
            [ $PROXY, [ 'X-Forwarded-For' => '203.0.113.9',
                        'X-Forwarded-Proto' => 'https, http' ], 'http' ],
    );

    for my $case (sort keys %via) {
        my ($from, $headers, $scheme) = @{ $via{$case} };
        my $res = $t->{http}->request(
            $t->upload_request($token, 'a.txt', "hello\n",
                               headers => $headers),
            from => $from);
        is($res->{status}, 201, "$case: stored");
        like($res->{json}{url} // '', qr{\A\Q$scheme\E://localhost/},
             "$case: the link says $scheme");
        like($res->{json}{delete_url} // '',
             qr{\A\Q$scheme\E://localhost(?::\d+)?/d/},
             "$case: the delete link too");
    }

    my $res = $t->http->request('GET', '/off/api/uploads', token => $token,
                                from => $PROXY,
                                headers => [ 'X-Forwarded-For' => '1.2.3.4',
                                             'X-Forwarded-Proto' => 'https' ]);
    is($res->{status}, 200, 'bulletdrop_forwarded_proto off: served');
    like($res->{json}{uploads}[0]{url} // '', qr{\Ahttp://},
         'and the links say the connection\'s scheme');
};

subtest 'a browser session behind the proxy is the HTTPS one' => sub {
    my $login = sub {
        my ($from, $origin, @via) = @_;
        return $t->http->request('POST', '/api/auth/login', from => $from,
            headers => [ Origin => $origin, @via ],
            json => { username => 'alice', password => 'alice long password',
                      session => JSON::PP::true });
    };
    my @via = ('X-Forwarded-For' => '198.51.100.7',
               'X-Forwarded-Proto' => 'https');

    my $res = $login->($PROXY, 'https://localhost', @via);
    is($res->{status}, 200, 'the https page logs in through the proxy');
    my $cookie = $res->{headers}{'set-cookie'} // '';
    like($cookie, qr/\A__Host-bd_session=[^;]+;/, 'with the __Host- cookie');
    like($cookie, qr/;\s*Secure\b/, 'Secure');
    my ($token) = $cookie =~ /\A__Host-bd_session=([^;]+)/;

    $res = $t->http->request('POST', '/api/users/me/api-keys', from => $PROXY,
        headers => [ Origin => 'https://localhost', @via,
                     Cookie => "__Host-bd_session=$token" ],
        json => { name => 'through the proxy' });
    is($res->{status}, 201,
       'a change made with the cookie from the https page passes CSRF');

    $res = $login->($PROXY, 'http://localhost', @via);
    is_error($res, 403, 'csrf', 'an http Origin is not the site\'s there');

    $res = $login->('127.0.0.1', 'https://localhost', @via);
    is_error($res, 403, 'csrf',
             'a client that says https itself is not believed');
    $res = $login->('127.0.0.1', 'http://localhost');
    like($res->{headers}{'set-cookie'} // '', qr/\Abd_session=/,
         'and over plain HTTP the cookie is the plain one');
};

subtest 'over TLS the cookie stays Secure, whatever a proxy says' => sub {
    my ($rc, $out) = run_cmd(
        ['curl', '-sSk', '-D', '-', '-o', '/dev/null', '--max-time', '20',
         '--interface', $PROXY,
         "https://127.0.0.1:$tls_port/api/auth/login",
         '-H', "Origin: https://127.0.0.1:$tls_port",
         '-H', 'X-Forwarded-For: 198.51.100.8',
         '-H', 'X-Forwarded-Proto: http',
         '--json', '{"username": "alice", "password": "alice long password",'
                   . ' "session": true}'], check => 0);
    is($rc, 0, 'the proxy logs in over TLS, saying "http"');
    my ($cookie) = $out =~ /^set-cookie: ([^\r\n]*)/mi;
    like($cookie // '', qr/\A__Host-bd_session=[^;]+;.*; Secure\b/,
         'the cookie is the __Host- one, Secure');
};

subtest 'a Host that is not a name and a port makes no link' => sub {
    for my $host ('localhost:1:2', 'localhost:99999', 'localhost:0',
                  'localhost:080', 'localhost:', '[::1', 'a[b]', '[-]',
                  '[a.b]', '[a.b]:1', '[.:.:]', '-a-', 'a-.b', 'a.-b',
                  ('a' x 64) . '.test',
                  join('.', ('abcdefgh') x 30))
    {
        my $res = $t->{http}->request(
            $t->upload_request($token, 'h.txt', "hi\n", host => $host));
        is_error($res, 400, 'invalid_host', "Host: $host is refused");
    }
    for my $host ('localhost:8080', '[::1]:8080', '[::1]', 'LocalHost',
                  'localhost.:8080', '[::ffff:1.2.3.4]', 'a-b.localhost')
    {
        my $res = $t->{http}->request(
            $t->upload_request($token, 'h.txt', "hi\n", host => $host));
        is($res->{status}, 201, "Host: $host is taken");
        (my $name = lc $host) =~ s/\.(?=:|\z)//;
        like($res->{json}{delete_url} // '',
             qr{\Ahttp://\Q$name\E/d/}, "and is the delete link's: $name");
    }

    # an absolute-form request: nginx serves the request line's host,
    # and a Host header that names another makes no link
    my ($method, $path, %o) =
        $t->upload_request($token, 'h.txt', "hi\n", host => 'evil.test');
    my $res = $t->{http}->request($method, "http://localhost$path", %o);
    is_error($res, 400, 'invalid_host',
             'a request line naming localhost, Host naming evil.test');
};

subtest 'the login limiter counts the client, not the proxy' => sub {
    my $login = sub {
        my ($client, $password) = @_;
        return $t->http->request('POST', '/api/auth/login', from => $PROXY,
            headers => [ 'X-Forwarded-For' => $client ],
            json => { username => 'alice', password => $password });
    };

    is($login->('198.51.100.1', 'a wrong guess')->{status}, 401,
       "the guesser's failure $_") for 1 .. 3;
    is_error($login->('198.51.100.1', 'alice long password'), 429,
             'too_many_attempts', 'the guesser is limited');
    is($login->('198.51.100.2', 'alice long password')->{status}, 200,
       'another client behind the same proxy logs in');

    my @lines = grep { /auth failed: password/ } split /\n/,
                     $t->nginx->log_text;
    is(scalar(grep { /client: 198\.51\.100\.1,/ } @lines), 3,
       'the log names the client three times');
    is(scalar(grep { /client: 127\.0\.0\.2,/ } @lines), 0,
       'and never the proxy');
};

subtest 'bad values are refused' => sub {
    my $running = slurp($t->nginx->conf_file);
    for my $bad ('retry_after=0', 'retry_after=abc', 'retry=1s',
                 'retry_after=1s x')
    {
        my $conf = $t->conf(server => <<"EOF");
        location \@e {
            bulletdrop_error_page $bad;
        }
        location /api/ { bulletdrop_api; }
EOF
        $t->nginx->write_conf($conf);
        my ($ok) = $t->nginx->check;
        ok(!$ok, "bulletdrop_error_page $bad: nginx -t fails");
    }
    $t->nginx->write_conf($running);
};

done_testing;
