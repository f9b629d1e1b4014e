package BulletDrop::HTTP;

# A raw HTTP/1.1 client over real sockets, for tests that need control of
# the bytes: partial requests, early closes, many connections at once.

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);

our @EXPORT_OK = qw(build_request parse_response form_encode multipart
                    chunked);

my $JSON = JSON::PP->new->utf8->canonical;

# When set, a file that every answer from /api/ and /d/ is appended to, a
# JSON line each (BulletDrop::Test sets it to one in its directory, and
# checks them against docs/openapi.yaml when the test ends).
our $RECORD;

sub record_answer {
    my ($method, $path, $host, $res) = @_;
    return unless defined $RECORD && $res && $path =~ m{\A/(?:api|d)/};

    my $h = $res->{headers};
    my %line = (method => $method, path => $path, host => $host,
                status => 0 + $res->{status}, bytes => length $res->{body},
                map { defined $h->{$_->[1]} ? ($_->[0] => $h->{$_->[1]}) : () }
                    [ type => 'content-type' ], [ allow => 'allow' ],
                    [ retry_after => 'retry-after' ]);
    $line{json} = $res->{json} if defined $res->{json};
    $line{json_error} = JSON::PP::true if $res->{json_error};

    # one write, so that lines of forked clients do not interleave
    open my $fh, '>>', $RECORD or return;
    syswrite $fh, $JSON->encode(\%line) . "\n";
    close $fh;
    return;
}

# norecord => 1: a client of another server (Prometheus, say), whose
# answers are not the module's to check against docs/openapi.yaml
sub new {
    my ($class, %o) = @_;
    croak 'port is required' unless $o{port};
    return bless { port => $o{port}, host => $o{host} // 'localhost',
                   norecord => $o{norecord} }, $class;
}

# from: the local address to connect from (any 127.x.y.z is this machine)
sub connect {
    my ($self, %o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $self->{port},
                                     $o{from} ? (LocalAddr => $o{from}) : (),
                                     Proto => 'tcp', Timeout => 5)
        or croak "cannot connect to 127.0.0.1:$self->{port}"
                 . ($o{from} ? " from $o{from}" : '') . ": $!";
    $sock->autoflush(1);
    return $sock;
}

# name => value pairs (Perl strings, sent as UTF-8) as
# application/x-www-form-urlencoded
sub form_encode {
    my (@pairs) = @_;
    my @out;
    while (my ($k, $v) = splice @pairs, 0, 2) {
        push @out, join '=', map {
            my $s = $_;
            utf8::encode($s);
            $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
            $s;
        } $k, $v;
    }
    return join '&', @out;
}

# headers: an array ref of name => value pairs (order and repeats kept)
# json:    a Perl structure sent as an application/json body
# form:    an array ref of pairs sent as a form body
# token:   sent as "Authorization: Bearer <token>"
sub build_request {
    my ($method, $path, %o) = @_;

    my $body = $o{body};
    my @extra;

    if (exists $o{json}) {
        $body = $JSON->encode($o{json});
        push @extra, 'Content-Type' => 'application/json';
    } elsif (exists $o{form}) {
        $body = form_encode(@{ $o{form} });
        push @extra, 'Content-Type' => 'application/x-www-form-urlencoded';
    }

    push @extra, Authorization => "Bearer $o{token}" if defined $o{token};

    # a Content-Type of the caller's wins
    my %given = map { lc($_) => 1 }
                @{ $o{headers} // [] }[grep { $_ % 2 == 0 }
                                        0 .. $#{ $o{headers} // [] }];
    my @add;
    while (my ($k, $v) = splice @extra, 0, 2) {
        push @add, $k => $v unless $given{lc $k};
    }

    # so does a Connection of the caller's (keep-alive: to see who closes)
    my @h = (Host => $o{host} // 'localhost',
             $given{connection} ? () : (Connection => 'close'), @add,
             @{ $o{headers} // [] });
    push @h, 'Content-Length' => length $body
        if defined $body && !grep { lc eq 'content-length'
                                     || lc eq 'transfer-encoding' }
                                   @h[grep { $_ % 2 == 0 } 0 .. $#h];

    my $req = "$method $path HTTP/1.1\r\n";
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }

    return $req . "\r\n" . ($body // '');
}

# {status, reason, headers (lower-case names; repeats joined by ", "),
#  body, json (when the body is JSON), elapsed (seconds), interim (the
#  statuses of 1xx answers before it, such as 100 Continue)}
sub parse_response {
    my ($raw, %o) = @_;

    my @interim;
    while ($raw =~ s{\AHTTP/1\.[01][ ](1\d\d)[^\r\n]*\r\n
                     (?:[^\r\n]+\r\n)*\r\n}{}x) {
        push @interim, $1;
    }

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    croak "no HTTP response: '$raw'" unless defined $head
        && $head =~ m{^HTTP/1\.[01] (\d{3}) ?([^\r\n]*)};

    my %res = (status => $1, reason => $2, headers => {}, raw => $raw,
               interim => \@interim);

    for my $line ((split /\r\n/, $head)[1 .. 100]) {
        last unless defined $line;
        my ($k, $v) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $res{headers}{$k} = exists $res{headers}{$k}
                            ? "$res{headers}{$k}, $v" : $v;
    }

    $body //= '';

    if (($res{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $decoded = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $decoded .= substr $body, 0, $n, '';
            $body =~ s/^\r\n//;
        }
        $body = $decoded;
    }

    $body = '' if $o{head};
    $res{body} = $body;

    if (($res{headers}{'content-type'} // '') =~ m{^application/json}
        && length $body)
    {
        $res{json} = eval { JSON::PP->new->utf8->decode($body) };
        $res{json_error} = $@ if $@;
    }

    return \%res;
}

# reads until the server closes (requests say "Connection: close")
sub read_all {
    my ($self, $sock, $timeout) = @_;

    my $sel = IO::Select->new($sock);
    my $deadline = time + ($timeout // 30);
    my $raw = '';

    while (1) {
        my $left = $deadline - time;
        croak "no complete response within ${\($timeout // 30)}s"
            if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $sock, my $buf, 65536;
        # a server that answered before it read all we sent may reset
        last if !defined $n && $!{ECONNRESET} && $raw ne '';
        croak "read: $!" unless defined $n;
        last if $n == 0;
        $raw .= $buf;
    }

    return $raw;
}

sub request {
    my ($self, $method, $path, %o) = @_;

    my $t0 = time;
    my $sock = $self->connect(from => $o{from});
    print {$sock} build_request($method, $path, host => $self->{host}, %o);

    my $res = parse_response($self->read_all($sock, $o{timeout}),
                             head => $method eq 'HEAD');
    $res->{elapsed} = time - $t0;
    record_answer($method, $path, $o{host} // $self->{host}, $res)
        unless $self->{norecord};

    return $res;
}

sub get { my ($self, $path, %o) = @_; $self->request('GET', $path, %o) }

# Sends every request on its own connection first, then reads all the
# answers as they come; each answer carries its own elapsed time.
sub parallel {
    my ($self, @requests) = @_;

    my (@socks, %index, @res, @t0);
    my $sel = IO::Select->new;

    for my $i (0 .. $#requests) {
        my ($method, $path, %o) = @{ $requests[$i] };
        my $sock = $self->connect(from => $o{from});
        $t0[$i] = time;
        print {$sock} build_request($method, $path, host => $self->{host},
                                    %o);
        $socks[$i] = $sock;
        $index{fileno $sock} = $i;
        $sel->add($sock);
    }

    my @raw = ('') x @requests;
    my $deadline = time + 60;

    while ($sel->count) {
        croak 'parallel requests: no complete answers within 60s'
            if time > $deadline;

        for my $sock ($sel->can_read(1)) {
            my $i = $index{fileno $sock};
            my $n = sysread $sock, my $buf, 65536;

            if (!$n) {
                $sel->remove($sock);
                close $sock;
                $res[$i] = parse_response($raw[$i],
                                          head => $requests[$i][0] eq 'HEAD');
                $res[$i]{elapsed} = time - $t0[$i];
                my ($method, $path, %o) = @{ $requests[$i] };
                record_answer($method, $path, $o{host} // $self->{host},
                              $res[$i]) unless $self->{norecord};
                next;
            }

            $raw[$i] .= $buf;
        }
    }

    return @res;
}

# A multipart/form-data body, built byte by byte as a client would (or as
# a careless one would): returns (Content-Type value, body).
#   parts     [ { name => 'file', filename => 'a.png', data => ... }, ... ]
#             a part may also have
#               filename_star  the value after "filename*=", as sent
#                              (UTF-8''%E2%9C%93.png)
#               raw_filename   1: the filename goes between the quotes
#                              as given, without escaping " and \
#               type           its Content-Type
#               disposition    the whole Content-Disposition value instead
#               headers        more header lines, as sent ("X-A: b")
#               head           the whole header block instead (no final
#                              empty line)
#   boundary  (a random one); quote => 1: quoted in the Content-Type
#   preamble  text before the first boundary; epilogue: after the last
#   close     0: no closing boundary (the body ends after the last part)
sub multipart {
    my (%o) = @_;

    my $b = $o{boundary} // '----bulletdrop' . join '',
                            map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 24;
    my $type = 'multipart/form-data; boundary='
               . ($o{quote} ? qq{"$b"} : $b);

    my $body = defined $o{preamble} ? "$o{preamble}\r\n" : '';

    for my $p (@{ $o{parts} // [] }) {
        my $head = $p->{head};

        if (!defined $head) {
            my $cd = $p->{disposition};
            if (!defined $cd) {
                $cd = 'form-data';
                $cd .= qq{; name="$p->{name}"} if defined $p->{name};
                if (defined $p->{filename}) {
                    my $f = $p->{filename};
                    $f =~ s/(["\\])/\\$1/g unless $p->{raw_filename};
                    $cd .= qq{; filename="$f"};
                }
                $cd .= "; filename*=$p->{filename_star}"
                    if defined $p->{filename_star};
            }
            my @lines = ("Content-Disposition: $cd");
            push @lines, "Content-Type: $p->{type}" if defined $p->{type};
            push @lines, @{ $p->{headers} // [] };
            $head = join "\r\n", @lines;
        }

        $body .= "--$b\r\n$head\r\n\r\n" . ($p->{data} // '') . "\r\n";
    }

    $body .= "--$b--" . ($o{epilogue} // '') if $o{close} // 1;

    return ($type, $body);
}

# data in Transfer-Encoding: chunked framing, in chunks of the sizes
# given (the last size repeats; default: one chunk), ending with the
# zero-size chunk unless last => 0
sub chunked {
    my ($data, %o) = @_;

    my @sizes = @{ $o{sizes} // [ length $data || 1 ] };
    my ($out, $off) = ('', 0);

    while ($off < length $data) {
        my $n = @sizes > 1 ? shift @sizes : $sizes[0];
        my $piece = substr $data, $off, $n;
        $out .= sprintf("%x\r\n", length $piece) . "$piece\r\n";
        $off += length $piece;
    }

    $out .= "0\r\n\r\n" if $o{last} // 1;
    return $out;
}

# A request whose body the test sends when it likes (see
# BulletDrop::HTTP::Exchange): the head goes out now, with the first
# `send` bytes of the body (none unless told).
#   body     the body the request is meant to have (sent later, maybe
#            never in full); a Content-Length header given in headers is
#            declared as is, whatever the body's length
#   send     bytes of it sent at once
# and the options of build_request (headers, token, host ...).
sub begin {
    my ($self, $method, $path, %o) = @_;

    my $body = delete $o{body} // '';
    my $send = delete $o{send} // 0;

    # the head as build_request makes it for this body
    my $req = build_request($method, $path, host => $self->{host}, %o,
                            body => $body);
    my $head = substr $req, 0, length($req) - length($body);

    my ($declared) = $head =~ /^Content-Length: *(\d+)\r$/mi;
    my $chunked = $head =~ /^Transfer-Encoding: *chunked\r$/mi;

    my $x = BulletDrop::HTTP::Exchange->new(
        sock => $self->connect(from => $o{from}), body => $body,
        declared => $chunked ? undef : $declared // 0,
        head => $method eq 'HEAD',
        request => [ $method, $path, $o{host} // $self->{host} ]);
    $x->send($head, head => 1);
    $x->send_more($send) if $send;

    return $x;
}

package BulletDrop::HTTP::Exchange;

# One request on its own connection, driven a step at a time: send some
# of the body, see whether an answer came, send more or go away.
#
#   my $x = $http->begin('POST', '/api/uploads', body => $body,
#                        headers => [...], send => 1024);
#   my $res = $x->answer(5);      # the final answer, or undef if none yet
#   $x->sent; $x->unsent;         # body bytes sent, and not (yet) sent
#   $x->send_rest; $x->close;

use Carp qw(croak);
use IO::Select;
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    $o{sock}->blocking(0);
    return bless { %o, sent => 0, raw => '', eof => 0, t0 => time },
        $class;
}

# body bytes sent so far
sub sent { $_[0]{sent} }

# body bytes not sent: of the declared Content-Length, or (chunked) of
# the body that was planned
sub unsent {
    my ($self) = @_;
    my $total = $self->{declared} // length $self->{body};
    return $total - $self->{sent};
}

sub total { $_[0]{declared} // length $_[0]{body} }

# Writes bytes (of the body, unless head => 1), waiting while the server
# does not take them.  False when the server closed or reset the
# connection, or took nothing for `timeout` seconds (10).
sub send {
    my ($self, $bytes, %o) = @_;

    local $SIG{PIPE} = 'IGNORE';
    my $sel = IO::Select->new($self->{sock});
    my $off = 0;

    while ($off < length $bytes) {
        return 0 unless $sel->can_write($o{timeout} // 10);
        my $n = syswrite $self->{sock}, $bytes, 65536, $off;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            return 0;
        }
        $off += $n;
        $self->{sent} += $n unless $o{head};
    }

    return 1;
}

# the next $n bytes of the planned body (all that is left when $n is
# undef); false as send
sub send_more {
    my ($self, $n) = @_;
    my $left = length($self->{body}) - $self->{sent};
    $n = $left if !defined $n || $n > $left;
    return 1 if $n <= 0;
    return $self->send(substr $self->{body}, $self->{sent}, $n);
}

sub send_rest { $_[0]->send_more }

# the planned body, but for its last $n bytes
sub send_all_but {
    my ($self, $n) = @_;
    return $self->send_more(length($self->{body}) - $self->{sent} - $n);
}

# reads what has come, for up to $timeout seconds or until $done says
# enough (given the bytes so far)
sub _read {
    my ($self, $timeout, $done) = @_;

    my $sel = IO::Select->new($self->{sock});
    my $deadline = time + $timeout;

    until ($done->($self->{raw}) || $self->{eof}) {
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread $self->{sock}, my $buf, 65536;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            $self->{eof} = 1;          # reset: nothing more will come
            last;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            last;
        }
        $self->{raw} .= $buf;
    }

    return $done->($self->{raw});
}

# whether $raw holds a whole final answer (after any 1xx)
sub _complete {
    my ($raw, $eof, $head_only) = @_;

    $raw =~ s{\AHTTP/1\.[01] 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n}{}
        while $raw =~ m{\AHTTP/1\.[01] 1\d\d};

    my $end = index $raw, "\r\n\r\n";
    return 0 if $end < 0;

    my $head = substr $raw, 0, $end;
    my $body = substr $raw, $end + 4;
    my ($status) = $head =~ m{\AHTTP/1\.[01] (\d{3})};

    return 1 if $head_only || ($status // 0) =~ /\A(?:204|304)\z/;
    if ($head =~ /^Content-Length: *(\d+)\r?$/mi) {
        return length($body) >= $1;
    }
    if ($head =~ /^Transfer-Encoding: *chunked\r?$/mi) {
        return $body =~ /(?:\A|\r\n)0\r\n(?:[^\r\n]+\r\n)*\r\n\z/;
    }
    return $eof;
}

# The final answer, once it is whole (waiting up to $timeout seconds,
# 5 by default), parsed as parse_response does, with elapsed since the
# request began; undef when none came in time.  1xx answers before it are
# in {interim}.
sub answer {
    my ($self, $timeout) = @_;

    my $got = $self->_read($timeout // 5, sub {
        _complete($_[0], $self->{eof}, $self->{head}) });
    $got ||= _complete($self->{raw}, $self->{eof}, $self->{head});
    return undef unless $got;

    my $res = BulletDrop::HTTP::parse_response($self->{raw},
                                               head => $self->{head});
    $res->{elapsed} = time - $self->{t0};
    BulletDrop::HTTP::record_answer(@{ $self->{request} }, $res)
        unless $self->{recorded}++;
    return $res;
}

# The status of the first answer, interim or final, waiting up to
# $timeout seconds; undef when none came.
sub first_status {
    my ($self, $timeout) = @_;
    $self->_read($timeout // 5, sub { $_[0] =~ /\r\n\r\n/ });
    my ($status) = $self->{raw} =~ m{\AHTTP/1\.[01] (\d{3})};
    return $status;
}

# whether the server closes the connection within $timeout seconds
# (reading, and keeping, whatever else it sends meanwhile)
sub closed {
    my ($self, $timeout) = @_;
    $self->_read($timeout // 5, sub { 0 });
    return $self->{eof};
}

# the client goes away
sub close {
    my ($self) = @_;
    CORE::close($self->{sock}) if $self->{sock};
    delete $self->{sock};
    return;
}

package BulletDrop::HTTP;

1;
