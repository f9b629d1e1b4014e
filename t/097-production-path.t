#!/usr/bin/perl
# The README's "Production" path, run as written: the shell blocks of its
# steps "2. The database and the secrets" and "5. The first
# administrator, the file domains, ShareX" are taken from README.md and run
# by bash, against a PostgreSQL that asks for passwords over TCP as
# Debian's pg_hba.conf does, and an nginx with the module.  Only what
# points at the machine changes: the server's port and socket for
# PostgreSQL's (runuser -u postgres -- psql becomes psql -U postgres on the
# test's socket), a directory of the test's for /etc/bulletdrop, and the
# stack's address for https://api.example.com.  bulletdrop-migrate is the
# checkout's bin/.  Then the ShareX file it downloads is used as ShareX
# would: its request uploads a file, and the link serves it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;

use BulletDrop::Test qw(free_port);
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir run_cmd slurp spew);

my $top = top_dir();

plan skip_all => 'no jq (make deps installs it)'
    unless (run_cmd(['sh', '-c', 'command -v jq'], check => 0))[0] == 0;

# the README's ```sh blocks under a "### N. ..." heading
sub readme_blocks {
    my ($step) = @_;
    my $readme = slurp("$top/README.md");
    my ($section) = $readme =~ /^### \Q$step\E\.[^\n]*\n(.*?)(?=^##)/ms
        or die "README.md has no step $step";
    my @blocks = $section =~ /^```sh\n(.*?)^```$/msg;
    return join '', @blocks;
}

my $t = BulletDrop::Test->new(pg => 0);
my $dir = $t->dir;

# a cluster of the test's own: its superuser by the socket, everyone
# else by password over TCP, as Debian's pg_hba.conf has it for 127.0.0.1
my $pg = BulletDrop::Pg->new(dir => "$dir/pg", tcp_port => free_port());
$pg->init;
spew($pg->data_dir . '/pg_hba.conf', <<'EOF');
local all postgres              trust
host  all all      127.0.0.1/32 scram-sha-256
EOF
chown((getpwnam $pg->owner)[2, 3], $pg->data_dir . '/pg_hba.conf')
    if $> == 0;
$pg->start;

my $sock = $pg->socket_dir;
my $port = $pg->port;
my $etc = "$dir/etc-bulletdrop";
mkdir $etc or die "mkdir $etc: $!";

sub for_the_test {
    my ($sh) = @_;
    $sh =~ s{runuser -u postgres -- psql}
            {psql -X -h $sock -p $port -U postgres}g;
    $sh =~ s{runuser -u postgres -- createdb}
            {createdb -h $sock -p $port -U postgres}g;
    $sh =~ s{\Q127.0.0.1:5432:\E}{127.0.0.1:$port:}g;
    $sh =~ s{host=127\.0\.0\.1 }{host=127.0.0.1 port=$port }g;
    $sh =~ s{/etc/bulletdrop/}{$etc/}g;
    $sh =~ s{https://api\.example\.com}{'http://localhost:' . $t->port}ge;
    return $sh;
}

sub run_step {
    my ($step, $tail) = @_;
    my $script = "set -eu -o pipefail\ncd $dir\nexport PATH=$top/bin:\$PATH\n"
               . "export ADMIN_PASSWORD='admin long password'\n"
               . for_the_test(readme_blocks($step)) . ($tail // '');
    spew("$dir/step$step.sh", $script);
    return run_cmd(['bash', "$dir/step$step.sh"], check => 0);
}

my ($status, $out, $err) =
    run_step(2, "echo \"BULLETDROP_DB=\$BULLETDROP_DB\"\n");
is($status, 0, 'step 2 runs: role, database, pgpass, migrations')
    or diag("$out$err");
my ($conninfo) = $out =~ /^BULLETDROP_DB=(.*)$/m;
like($conninfo // '', qr/passfile=\Q$etc\E\/pgpass/,
     'the conninfo takes the password from the file');
# the last migration of sql/ is among those it names
my ($last) = (sort glob "$top/sql/*.sql")[-1] =~ m{([^/]+)\.sql\z};
like($out . $err, qr/\b\Q$last\E\b/, 'bulletdrop-migrate said what it '
     . 'applied');
my $mode = (stat "$etc/pgpass")[2] & 07777;
is(sprintf('%o', $mode), '600', 'pgpass: 0600, or libpq ignores it');
is((getpwuid((stat "$etc/pgpass")[4]))[0], 'www-data',
   'and www-data\'s, whose workers read it');

# the package's postinst makes the secret: here, as it does
run_cmd(['sh', '-c', "umask 077 && openssl rand -base64 48 > $etc/jwt.secret"]);

# a password is what lets the role in
($status) = run_cmd(['psql', '-X', '-d', "host=127.0.0.1 port=$port "
                     . 'dbname=bulletdrop user=bulletdrop password=wrong',
                     '-c', 'SELECT 1'], check => 0);
isnt($status, 0, 'a wrong password is refused: the server asks for it');

# the module with that conninfo and secret, its workers www-data as
# Debian's are (the password file is theirs)
$t->start_nginx(db => $conninfo, jwt_secret_file => "$etc/jwt.secret",
                registration => 'invite', base_domain => 'localhost',
                $> == 0 ? (main => "user www-data;\n") : ());
my $health = $t->get('/api/health');
is($health->{json}{db}, 'ok', 'nginx reaches the database with it')
    or diag($health->{body});

($status, $out, $err) = run_step(5);
is($status, 0, 'step 5 runs: invite, register, admin, seed, ShareX')
    or diag("$out$err");

my $sxcu = eval { decode_json(slurp("$dir/bulletdrop.sxcu")) };
ok($sxcu, 'bulletdrop.sxcu was saved') or diag($@);
my $port_re = $t->port;
like($sxcu->{RequestURL} // '',
     qr{\Ahttp://localhost:$port_re/api/uploads/sharex\z},
     'it uploads to the API');
my $key = ($sxcu->{Headers} // {})->{Authorization} // '';
like($key, qr/\ABearer \S+/, 'with a new API key');

my $admin = $pg->psql("SELECT role FROM users WHERE username = 'admin'",
                      user => 'postgres');
is($admin->[0][0], 'admin', 'the first account is an administrator');
my $domains = $pg->psql('SELECT name FROM domains ORDER BY name',
                        user => 'postgres');
is(join(' ', map { $_->[0] } @$domains),
   'cdn.localhost img.localhost media.localhost shots.localhost',
   'the four file domains were seeded');

# ShareX's request, as the file describes it
my $res = $t->{http}->request(
    $t->upload_request(undef, 'shot.png', "\x89PNG\r\n\x1a\n" . 'x' x 64,
                       sharex => 1,
                       headers => [ Authorization => $key ]));
is($res->{status}, 201, 'the ShareX key uploads') or diag($res->{body});
my ($host, $path) = ($res->{json}{url} // '') =~ m{\Ahttp://([^/]+)(/.*)\z};
my $got = $t->get($path, host => $host);
is($got->{status}, 200, "the link is served on $host");

done_testing;
