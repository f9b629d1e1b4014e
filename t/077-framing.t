#!/usr/bin/perl
# Where one request ends and the next begins.  A body whose chunked framing
# is broken cannot be told from what follows it, so its 400 closes the
# connection, says "Connection: close", and nothing after it is answered
# as a request of its own (no request smuggled inside a body).  A refusal
# made while the body is still coming (a file type found wrong after 100
# Continue, a part's extension, a second file) says "Connection: close"
# too, and closes: a client that pools connections (ShareX does) opens a
# new one for its next upload rather than finding this one dead.  A body
# read whole and then refused keeps its keep-alive connection.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Test::More;
use Time::HiRes qw(time);

use BulletDrop::HTTP qw(build_request parse_response multipart);
use BulletDrop::Test qw(is_error leaves_nothing sample);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', max_file_size => '256k');

my $alice = $t->new_user('alice', key => 1);
my $key = $alice->{key};

# a request for alice's profile, to hide after a broken body
my $smuggled = build_request('GET', '/api/users/me', token => $key,
                             headers => [ Connection => 'keep-alive' ]);

# Sends $bytes (in pieces, waiting $pause seconds between them) on one
# connection and reads until the server closes it or $timeout passes:
# (every response in order, whether the server closed).
sub exchange {
    my ($pieces, %o) = @_;

    my $sock = $t->http->connect;
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my ($raw, $eof) = ('', 0);

    my $read = sub {
        my ($until) = @_;
        while (!$eof && time < $until) {
            next unless $sel->can_read($until - time);
            my $n = sysread $sock, my $buf, 65536;
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EINTR};
                $eof = 1;
                last;
            }
            $eof = 1 if $n == 0;
            $raw .= $buf;
            return if $o{first} && $raw =~ /\r\n\r\n/;
        }
    };

    for my $piece (@$pieces) {
        local $SIG{PIPE} = 'IGNORE';
        syswrite $sock, $piece;
        $read->(time + ($o{pause} // 0));
    }
    $read->(time + ($o{timeout} // 5));
    close $sock;

    # interim answers (100 Continue) aside, each answer has a length
    $raw =~ s{\AHTTP/1\.1 100[^\r]*\r\n\r\n}{};
    my @responses;
    while ($raw =~ m{\AHTTP/1\.1 }) {
        my $head_end = index($raw, "\r\n\r\n") + 4;
        my ($len) = substr($raw, 0, $head_end)
                    =~ /^Content-Length: *(\d+)\r$/mi;
        my $end = $head_end + ($len // length($raw) - $head_end);
        push @responses, parse_response(substr $raw, 0, $end);
        $raw = substr $raw, $end;
    }

    return (\@responses, $eof);
}

sub chunked_head {
    my ($path, %o) = @_;
    return "POST $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n"
        . "Content-Type: $o{type}\r\n"
        . ($o{name} ? "X-Filename: $o{name}\r\n" : '')
        . "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
}

# one broken body, on the routes that read bodies in each way
my %routes = (
    'a JSON route' => [ '/api/users/me/api-keys',
                        type => 'application/json' ],
    'a raw upload' => [ '/api/uploads', type => 'application/octet-stream',
                        name => 'a.txt' ],
);

my %broken = (
    'a chunk size that is not hex' => "zz\r\nhello\r\n0\r\n\r\n",
    'chunk data longer than its size' => "5\r\nhello, world\r\n0\r\n\r\n",
);

for my $route (sort keys %routes) {
    my ($path, %o) = @{ $routes{$route} };

    for my $how (sort keys %broken) {
        subtest "$route, $how: 400, the connection closes, nothing "
            . 'smuggled' => sub {
            my $before = $t->uploads_state;
            my ($res, $closed) = exchange(
                [ chunked_head($path, %o) . $broken{$how} . $smuggled ]);

            is(scalar @$res, 1, 'one answer, not two');
            is_error($res->[0] // {}, 400, 'bad_request', 'a JSON 400');
            is($res->[0]{headers}{connection}, 'close',
               'it says Connection: close');
            ok($closed, 'and the server closed the connection');
            leaves_nothing($t, $before, 'nothing stored');
        };
    }

    subtest "$route, a broken chunk after the body began: 400, "
        . 'Connection: close' => sub {
        my ($res, $closed) = exchange(
            [ chunked_head($path, %o) . "5\r\nhello\r\n",
              "zz\r\n" . $smuggled ], pause => 0.3);

        is(scalar @$res, 1, 'one answer');
        is_error($res->[0] // {}, 400, 'bad_request', 'a JSON 400');
        is($res->[0]{headers}{connection}, 'close',
           'it says Connection: close');
        ok($closed, 'and the server closed the connection');
    };
}

subtest 'a broken chunked body on any path: one answer, then the end' => sub {
    my $t2 = BulletDrop::Test->new;
    $t2->start_nginx(files => 1, registration => 'open');
    $t2->add_domains('img.localhost');

    my $file = '/static/images/AAAAAAAAAAAAAAAA.png';
    for my $req (['GET /api/health'], ['GET /api/nope'],
                 ['DELETE /api/health'], ['POST /api/auth/login'],
                 ['POST /d/abc'], ['GET /static/images/x.png'],
                 ["GET $file", 'img.localhost'],
                 ["OPTIONS $file", 'img.localhost'])
    {
        my ($head, $host) = @$req;
        my $sock = $t2->http->connect;
        print {$sock} "$head HTTP/1.1\r\nHost: " . ($host // 'localhost')
            . "\r\n"
            . "Content-Type: text/plain\r\n"
            . "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            . $smuggled;
        my $raw = $t2->http->read_all($sock, 5);
        my @statuses = $raw =~ m{^HTTP/1\.1 (\d{3})}mg;
        is(scalar @statuses, 1, "$head: one answer (@statuses)");
        like($raw, qr{^Connection: close\r$}m, "$head: Connection: close");
        like($raw, qr{^Content-Type: application/json\r$}m, "$head: JSON")
            if $head =~ /^OPTIONS/;
    }

    $t2->teardown;
};

# An upload refused once its body shows what is wrong, with 100 Continue
# as ShareX asks for it: the client has been invited to send, and gets
# the refusal while more is on its way.
sub refused_midway {
    my ($what, $status, $code, $name, $data, %o) = @_;

    subtest "$what: $status, Connection: close, then a new connection "
        . 'works' => sub {
        my $before = $t->uploads_state;
        my $x = $t->begin_upload($key, $name, $data, expect => 1,
                                 headers => [ Connection => 'keep-alive' ],
                                 %o);
        is($x->first_status(5), 100, 'invited with 100 Continue');
        $x->send_all_but(1000);
        my $res = $x->answer(5);

        is_error($res // {}, $status, $code, "$status $code");
        is($res && $res->{headers}{connection}, 'close',
           'it says Connection: close, not keep-alive');
        ok($x->closed(5), 'and the server closes the connection');
        $x->close;
        leaves_nothing($t, $before, 'nothing stored');

        my $next = $t->upload($key, 'next.png', sample('png', 3000));
        is($next->{status}, 201, 'the next upload, on a new connection, '
                                 . 'is taken');
    };
}

refused_midway('a .png that is not a PNG', 415, 'type_mismatch', 'shot.png',
               "not a png\n" x 3000);
refused_midway('a part named .exe', 415, 'extension_not_allowed',
               'tool.exe', 'x' x 30_000);

subtest 'a second file part: refused, Connection: close' => sub {
    my $before = $t->uploads_state;
    my ($type, $body) = multipart(parts => [
        { name => 'file', filename => 'one.png', data => sample('png', 3000) },
        { name => 'file', filename => 'two.png',
          data => sample('png', 30_000) } ]);
    my $x = $t->http->begin('POST', '/api/uploads', body => $body,
        headers => [ 'Content-Type' => $type, Expect => '100-continue',
                     Connection => 'keep-alive', $t->auth($key) ]);
    is($x->first_status(5), 100, 'invited with 100 Continue');
    $x->send_all_but(1000);
    my $res = $x->answer(5);

    ok($res && $res->{status} == 400, 'a 400')
        or diag $res ? "$res->{status} $res->{body}" : 'no answer';
    is($res && $res->{headers}{connection}, 'close',
       'it says Connection: close');
    ok($x->closed(5), 'and the server closes the connection');
    $x->close;
    leaves_nothing($t, $before, 'nothing stored');
};

subtest 'a body read whole and refused keeps the connection' => sub {
    my $bad = "POST /api/users/me/api-keys HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $key\r\n"
        . "Content-Type: application/json\r\nContent-Length: 5\r\n"
        . "Connection: keep-alive\r\n\r\n{nope";
    my $last = build_request('GET', '/api/users/me', token => $key);
    my ($res, $closed) = exchange([ $bad . $last ]);

    is(scalar @$res, 2, 'two answers on one connection');
    is_error($res->[0] // {}, 400, 'invalid_json', 'the first: 400');
    is($res->[0]{headers}{connection}, 'keep-alive',
       'which keeps the connection');
    is($res->[1] && $res->[1]{status}, 200, 'the next request is answered');
};

done_testing;
