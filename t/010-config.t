#!/usr/bin/perl
# The module loads into Debian's nginx, and `nginx -t` refuses every bad
# database setting with a message that names the problem.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Nginx;
use BulletDrop::Test;
use BulletDrop::Util qw(top_dir run_cmd slurp);

my $t = BulletDrop::Test->new(pg => 0);

sub refused {
    my ($name, $like, %conf) = @_;
    my ($ok, $out) = $t->check_conf(%conf);
    ok(!$ok, "$name: nginx -t fails");
    like($out, $like, "$name: and says why") or diag $out;
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
        db => undef);

refused('bulletdrop_api with an argument',
        qr/invalid number of arguments in "bulletdrop_api"/,
        db => 'host=/tmp',
        server => "location /api/ { bulletdrop_api on; }\n");

subtest 'the production example passes nginx -t' => sub {
    my $dir = $t->dir;
    my ($status) = run_cmd(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                            '-nodes', '-days', '1', '-subj', '/CN=test',
                            '-keyout', "$dir/key.pem",
                            '-out', "$dir/cert.pem"], check => 0);
    is($status, 0, 'a throwaway certificate');

    # only what points at this machine's files changes
    my $conf = slurp(top_dir() . '/nginx-conf/production.conf');
    my $module = BulletDrop::Nginx::module_path();
    my $prefix = $t->nginx->prefix;
    $conf =~ s{/usr/lib/nginx/modules/ngx_http_bulletdrop_module\.so}{$module};
    $conf =~ s{/etc/letsencrypt/live/example\.com/fullchain\.pem}
              {$dir/cert.pem};
    $conf =~ s{/etc/letsencrypt/live/example\.com/privkey\.pem}{$dir/key.pem};
    $conf =~ s{/var/log/nginx/}{$prefix/logs/}g;
    $conf =~ s{/run/nginx\.pid}{$prefix/logs/nginx.pid};

    $t->nginx->write_conf($conf);
    my ($ok, $out) = $t->nginx->check;
    ok($ok, 'syntax and directives are right') or diag $out;
};

done_testing;
