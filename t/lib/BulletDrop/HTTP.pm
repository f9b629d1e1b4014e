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

our @EXPORT_OK = qw(build_request parse_response form_encode);

my $JSON = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, %o) = @_;
    croak 'port is required' unless $o{port};
    return bless { port => $o{port}, host => $o{host} // 'localhost' },
        $class;
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

    my @h = (Host => $o{host} // 'localhost', Connection => 'close', @add,
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
#  body, json (when the body is JSON), elapsed (seconds)}
sub parse_response {
    my ($raw, %o) = @_;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    croak "no HTTP response: '$raw'" unless defined $head
        && $head =~ m{^HTTP/1\.[01] (\d{3}) ?([^\r\n]*)};

    my %res = (status => $1, reason => $2, headers => {}, raw => $raw);

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
                next;
            }

            $raw[$i] .= $buf;
        }
    }

    return @res;
}

1;
