#!/usr/bin/perl
# The module loads into Debian's nginx, and `nginx -t` refuses every bad
# database, secret, accounts and uploads setting with a message that names
# the problem.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Nginx;
use BulletDrop::Test;
use BulletDrop::Util qw(slurp spew);

my $t = BulletDrop::Test->new(pg => 0);

sub refused {
    my ($name, $like, %conf) = @_;
    my ($ok, $out) = $t->check_conf(%conf);
    ok(!$ok, "$name: nginx -t fails");
    like($out, $like, "$name: and says why") or diag $out;
}

# refused, pointing at the line of the directive with the bad value
sub refused_at {
    my ($name, $directive, %conf) = @_;

    my ($ok, $out) = $t->check_conf(%conf);
    ok(!$ok, "$name: nginx -t fails");

    my @lines = split /\n/, slurp($t->nginx->conf_file);
    my ($n) = grep { $lines[$_] =~ /^\s*\Q$directive\E\s/ } 0 .. $#lines;
    my $line = defined $n ? $n + 1 : 'none';
    like($out, qr/\[emerg\].*nginx\.conf:$line\b/,
         "$name: and points at the $directive line") or diag $out;
}

my ($ok, $out) = $t->check_conf(db => 'host=/nonexistent dbname=x');
ok($ok, 'a valid configuration loads the module into the distro nginx')
    or diag $out;

($ok, $out) = $t->check_conf(
    db => 'postgresql://bulletdrop@%2Fvar%2Frun%2Fpostgresql/bulletdrop'
          . '?application_name=bd');
ok($ok, 'a connection URI is accepted') or diag $out;

($ok, $out) = $t->check_conf(db => 'host=127.0.0.1 port=5432 dbname=x');
ok($ok, 'a numeric host is accepted') or diag $out;

($ok, $out) = $t->check_conf(db => 'host=localhost,/tmp port=5432,5433');
ok($ok, 'a host list with a matching port list is accepted') or diag $out;

($ok, $out) = $t->check_conf(db => undef,
                             server => "location / { return 204; }\n");
ok($ok, 'the module loads without any bulletdrop directive') or diag $out;

my $libpq_refusal = 'invalid "bulletdrop_db" connection string: '
                    . 'invalid connection (option|URI)';
refused('an unknown connection option', qr/$libpq_refusal.*nosuch/,
        db => 'host=/tmp nosuch=1');

refused('an unterminated quote',
        qr/invalid "bulletdrop_db" connection string: .*quoted string/,
        db => "host=/tmp dbname='x");

refused('a malformed URI',
        qr/invalid "bulletdrop_db" connection string: .*URI/,
        db => 'postgresql://[::1');

refused('a host name that does not resolve',
        qr/invalid "bulletdrop_db": host not found "no-such-host\.invalid"/,
        db => 'host=no-such-host.invalid dbname=x');

refused('more ports than hosts',
        qr/port list does not match the host list/,
        db => 'host=localhost port=5432,5433');

refused('fewer ports than hosts',
        qr/port list does not match the host list/,
        db => 'host=localhost,127.0.0.1,/tmp port=5432,5433');

# nginx's own bounds check: its message points at the directive's line
refused('a pool of 0', qr/value must be between 1 and 1024 in \S+:\d+/,
        db => 'host=/tmp', db_pool => 0);
{
    my @lines = split /\n/, slurp($t->nginx->conf_file);
    my ($n) = grep { $lines[$_] =~ /^\s*bulletdrop_db_pool\s+0;/ }
                   0 .. $#lines;
    my (undef, $out) = $t->check_conf(db => 'host=/tmp', db_pool => 0);
    like($out, qr/nginx\.conf:@{[ $n + 1 ]}\b/,
         'a pool of 0: the line named is the directive\'s');
}

refused('a pool that is not a number',
        qr/"bulletdrop_db_pool" directive invalid number/,
        db => 'host=/tmp', db_pool => 'many');

refused('a timeout of 0', qr/"bulletdrop_db_timeout" must be more than 0/,
        db => 'host=/tmp', db_timeout => '0');

refused('a timeout that is not a time',
        qr/"bulletdrop_db_timeout" directive invalid value/,
        db => 'host=/tmp', db_timeout => 'soon');

refused('a negative queue', qr/"bulletdrop_db_queue" directive invalid number/,
        db => 'host=/tmp', db_queue => '-1');

refused('bulletdrop_db twice', qr/"bulletdrop_db" directive is duplicate/,
        db => 'host=/tmp', http => qq{    bulletdrop_db "host=/tmp";\n});

refused('bulletdrop_db in a server block',
        qr/"bulletdrop_db" directive is not allowed here/,
        db => undef,
        server => qq{bulletdrop_db "host=/tmp";\n}
                  . "location / { return 204; }\n");

refused('the API without a database',
        qr/"bulletdrop_api" needs "bulletdrop_db" in the http block/,
        db => undef, jwt_secret_file => $t->jwt_secret_file,
        upload_dir => $t->nginx->prefix . '/html/static');

refused('the API without an upload dir',
        qr/"bulletdrop_api" needs "bulletdrop_upload_dir"/,
        db => 'host=/tmp', upload_dir => undef);

refused('bulletdrop_api with an argument',
        qr/invalid number of arguments in "bulletdrop_api"/,
        db => 'host=/tmp',
        server => "location /api/ { bulletdrop_api on; }\n");

subtest 'the API needs a JWT secret of 32 bytes or more' => sub {
    my $dir = $t->dir;

    refused('the API without a secret',
            qr/"bulletdrop_api" needs "bulletdrop_jwt_secret_file"/,
            db => 'host=/tmp', jwt_secret_file => undef);

    my $missing = "$dir/no-such.secret";
    refused('a secret file that is not there',
            qr/"bulletdrop_jwt_secret_file".*\Q$missing\E
              |\Q$missing\E.*"bulletdrop_jwt_secret_file"/x,
            db => 'host=/tmp', jwt_secret_file => $missing);

    my %short = (
        'a secret of 31 bytes'                    => 'x' x 31,
        'an empty secret file'                    => '',
        '31 bytes and trailing white space'       => ('y' x 31) . "\n \t\r\n",
    );
    for my $name (sort keys %short) {
        spew("$dir/short.secret", $short{$name});
        refused($name, qr/"bulletdrop_jwt_secret_file".*at least 32 bytes/,
                db => 'host=/tmp', jwt_secret_file => "$dir/short.secret");
    }

    spew("$dir/exact.secret", ('z' x 32) . "\n");
    my ($ok, $out) = $t->check_conf(db => 'host=/tmp',
                                    jwt_secret_file => "$dir/exact.secret");
    ok($ok, '32 bytes and a newline are enough') or diag $out;

    refused('the secret in a server block',
            qr/"bulletdrop_jwt_secret_file" directive is not allowed here/,
            db => 'host=/tmp',
            server => "bulletdrop_jwt_secret_file $dir/exact.secret;\n"
                      . "location /api/ { bulletdrop_api; }\n");
};

subtest 'the accounts directives take their documented values' => sub {
    my ($ok, $out) = $t->check_conf(
        db => 'host=/tmp', jwt_ttl => '1h', default_quota => '100m',
        login_limit => 'user=5 addr=20 period=1m', thread_pool => 'default');
    ok($ok, 'a TTL, a quota, a login limit and the default thread pool')
        or diag $out;

    for my $mode (qw(open invite closed)) {
        ($ok, $out) = $t->check_conf(db => 'host=/tmp',
                                     registration => $mode);
        ok($ok, "registration $mode") or diag $out;
    }

    ($ok, $out) = $t->check_conf(db => 'host=/tmp', default_quota => 'off',
                                 jwt_ttl => '90s');
    ok($ok, 'quota off, a TTL in seconds') or diag $out;

    ($ok, $out) = $t->check_conf(db => 'host=/tmp',
                                 main => "thread_pool hashing threads=2;\n",
                                 thread_pool => 'hashing');
    ok($ok, 'a thread pool of our own') or diag $out;
};

subtest 'bad values of the accounts directives are refused' => sub {
    refused_at('registration "maybe"', 'bulletdrop_registration',
               db => 'host=/tmp', registration => 'maybe');
    refused('registration with two modes',
            qr/invalid number of arguments in "bulletdrop_registration"/,
            db => 'host=/tmp', registration => 'open closed');

    refused_at('a TTL that is not a time', 'bulletdrop_jwt_ttl',
               db => 'host=/tmp', jwt_ttl => 'soon');
    refused_at('a negative TTL', 'bulletdrop_jwt_ttl',
               db => 'host=/tmp', jwt_ttl => '-5m');

    my %limits = (
        'a login limit that is not a number' => 'user=many addr=5 period=1m',
        'a negative login limit'             => 'user=-1 addr=5 period=1m',
        'a login period that is not a time'  => 'user=5 addr=5 period=soon',
        'an unknown login limit parameter'   => 'user=5 addr=5 period=1m '
                                                . 'speed=3',
        'a login limit without "="'          => 'user5 addr=5 period=1m',
    );
    for my $name (sort keys %limits) {
        refused_at($name, 'bulletdrop_login_limit',
                   db => 'host=/tmp', login_limit => $limits{$name});
    }

    refused_at('a quota that is not a size', 'bulletdrop_default_quota',
               db => 'host=/tmp', default_quota => 'lots');

    refused('a thread pool nobody defined', qr/thread pool.*"?nosuch"?/,
            db => 'host=/tmp', thread_pool => 'nosuch');

    refused('registration in a server block',
            qr/"bulletdrop_registration" directive is not allowed here/,
            db => 'host=/tmp',
            server => "bulletdrop_registration open;\n"
                      . "location /api/ { bulletdrop_api; }\n");
};

subtest 'the uploads directives take their documented values' => sub {
    my ($ok, $out) = $t->check_conf(db => 'host=/tmp',
                                    max_file_size => '10m',
                                    allowed_extensions => '.png jpg .TXT',
                                    fsync => 'off');
    ok($ok, 'a size, extensions with and without a dot in any case, '
       . 'fsync off') or diag $out;

    ($ok, $out) = $t->check_conf(db => 'host=/tmp', max_file_size => '512k',
                                 allowed_extensions => '.pdf', fsync => 'on');
    ok($ok, 'one extension, fsync on') or diag $out;

    refused_at('a max file size that is not a size',
               'bulletdrop_max_file_size',
               db => 'host=/tmp', max_file_size => 'huge');
    refused_at('fsync "maybe"', 'bulletdrop_fsync',
               db => 'host=/tmp', fsync => 'maybe');

    for my $active (qw(.html svg .JS .xml)) {
        my ($ok, $out) = $t->check_conf(db => 'host=/tmp',
            allowed_extensions => ".png $active");
        ok(!$ok, "an extension a browser would run ($active): refused");
        my $why = qr/"bulletdrop_allowed_extensions": "\Q$active\E"/i;
        like($out, qr/$why is content a browser would run/,
             "$active: and says why") or diag $out;
    }
};

done_testing;
