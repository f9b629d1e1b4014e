#!/usr/bin/perl
# The Debian package, built and installed as Debian does its nginx
# modules.  `make deb` builds libnginx-mod-http-bulletdrop at the module's
# version: every file at its Debian path and as the checkout has it, the
# installed nginx's ABI and the shared libraries in Depends, nothing for
# lintian to say.  Then dpkg installs it for real in a throwaway copy of
# this machine: a private mount namespace whose /etc, /usr and /var are
# overlays on the real ones (what dpkg writes lands in a tmpfs that goes
# with the namespace) and whose /run is empty (no nginx to reload there,
# no systemd).  In it, the postinst links the module into
# /etc/nginx/modules-enabled, Debian's own nginx.conf loads it (a
# bulletdrop directive passes nginx -t, and is unknown before the install
# and after the removal), the example site passes nginx -t with the
# package's snippets, and bulletdrop-migrate migrates a database once.
# dpkg -r disables the module, dpkg --purge takes the rest away, and the
# machine itself saw none of it.
#
# Skipped whole when SANITIZE is set: make test-asan runs the suite again
# with a module built with sanitizers, and the package is built from the
# plain one, so it would only test the same package again.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use Digest::SHA qw(sha256_hex);
use File::Basename qw(basename);
use File::Find qw(find);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);

use BulletDrop::Test;
use BulletDrop::Util qw(top_dir run_cmd slurp spew);

plan skip_all => 'SANITIZE is set: the package is built from the plain '
    . 'module, which the run without it tests'
    if $ENV{SANITIZE};

my $top = top_dir();
my $PKG = 'libnginx-mod-http-bulletdrop';

my ($version) = slurp("$top/src/ngx_http_bulletdrop.h")
    =~ /^#define NGX_HTTP_BULLETDROP_VERSION\s+"([^"]+)"/m
    or die 'no NGX_HTTP_BULLETDROP_VERSION in src/ngx_http_bulletdrop.h';
chomp(my $arch = run_cmd(['dpkg', '--print-architecture'], capture => 1));
my $deb = "$top/build/${PKG}_${version}_$arch.deb";
my $changes = "$top/build/bulletdrop_${version}_$arch.changes";

my $t = BulletDrop::Test->new;    # the database bulletdrop-migrate fills
my $dir = $t->dir;

# what the package installs from the checkout, as it is there
my %from_checkout = (
    'usr/share/nginx/modules-available/mod-http-bulletdrop.conf'
        => 'nginx-conf/mod-http-bulletdrop.conf',
    'usr/bin/bulletdrop-migrate' => 'bin/bulletdrop-migrate',
    'usr/bin/bulletdrop-backup'  => 'bin/bulletdrop-backup',
    'usr/bin/bulletdrop-restore' => 'bin/bulletdrop-restore',
    'usr/bin/bulletdrop-s3'      => 'bin/bulletdrop-s3',
    'lib/systemd/system/bulletdrop-backup.service'
        => 'docs/systemd/bulletdrop-backup.service',
    'lib/systemd/system/bulletdrop-backup.timer'
        => 'docs/systemd/bulletdrop-backup.timer',
    'etc/default/bulletdrop-backup' => 'docs/systemd/bulletdrop-backup.env',
    'etc/nginx/snippets/bulletdrop-webapp.conf' => 'nginx-conf/webapp.conf',
    'etc/nginx/snippets/bulletdrop-tls.conf' => 'nginx-conf/tls.conf',
    'etc/nginx/snippets/bulletdrop-cloudflare.conf'
        => 'nginx-conf/cloudflare.conf',
    'etc/nginx/snippets/bulletdrop-headers.conf'
        => 'nginx-conf/security-headers.conf',
    'etc/nginx/snippets/bulletdrop-s3-files.conf'
        => 'nginx-conf/s3-files.conf',
    'usr/share/bulletdrop/nginx/bulletdrop.conf'
        => 'nginx-conf/bulletdrop.conf',
    'etc/fail2ban/filter.d/bulletdrop.conf'
        => 'nginx-conf/fail2ban/filter.d/bulletdrop.conf',
    (map { ("usr/share/bulletdrop/sql/$_" => "sql/$_") }
         map { basename($_) } glob "$top/sql/*.sql"),
    (map { ("usr/share/bulletdrop/www/$_" => "www/dist/$_") }
         files_under("$top/www/dist")),
    (map { ("usr/share/man/man1/$_.1.gz" => "docs/man/$_.1") }
         qw(bulletdrop-migrate bulletdrop-backup bulletdrop-restore
            bulletdrop-s3)),
    "usr/share/doc/$PKG/README.md.gz" => 'README.md',
);

sub files_under {
    my ($root) = @_;
    my @files;
    find({ no_chdir => 1, wanted => sub {
        push @files, substr($File::Find::name, length($root) + 1) if -f;
    } }, $root);
    return sort @files;
}

# ---- the package ---------------------------------------------------------

my ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'deb'],
                                   check => 0);
is($status, 0, 'make deb builds the package') or diag("$out$err");
if ($status != 0) {
    done_testing;
    exit;
}

subtest 'named and versioned as the module, for this architecture' => sub {
    ok(-f $deb, "build/" . basename($deb) . ' is there');
    chomp(my $changelog = run_cmd(['dpkg-parsechangelog', '-l',
                                   "$top/debian/changelog", '-S',
                                   'Version'], capture => 1));
    is($changelog, $version, 'debian/changelog is at the module\'s version');
    my %f = map { $_ => field($_) } qw(Package Version Architecture);
    is_deeply(\%f, { Package => $PKG, Version => $version,
                     Architecture => $arch }, 'and so is the package');
};

sub field {
    my ($name) = @_;
    chomp(my $v = run_cmd(['dpkg-deb', '-f', $deb, $name], capture => 1));
    return $v;
}

subtest 'every file at its Debian path, as the checkout has it' => sub {
    my $x = "$dir/unpacked";
    run_cmd(['dpkg-deb', '-x', $deb, $x]);

    my @problems;
    for my $path (sort keys %from_checkout) {
        my $src = "$top/$from_checkout{$path}";
        if (!-f "$x/$path") {
            push @problems, "no $path";
            next;
        }
        my $data = slurp("$x/$path");
        if ($path =~ /\.gz\z/) {
            gunzip(\$data => \my $plain) or die "$path: $GunzipError";
            $data = $plain;
        }
        push @problems, "$path is not $from_checkout{$path}"
            unless $data eq slurp($src);
    }
    ok(!@problems, scalar(keys %from_checkout) . ' files from the '
       . 'checkout, each where Debian keeps it')
        or diag(join "\n", @problems);

    is(substr(slurp("$x/usr/lib/nginx/modules/"
                    . 'ngx_http_bulletdrop_module.so'), 0, 4), "\x7fELF",
       'the module in /usr/lib/nginx/modules');
    my $jail = slurp("$x/etc/fail2ban/jail.d/bulletdrop.conf");
    like($jail, qr/^\[bulletdrop\]$/m, 'the fail2ban jail in jail.d');
    like($jail, qr/^enabled\s*=\s*false$/m, 'shipped disabled');

    my %listed = map { m{^(\S+)\s+(\S+)\s.*\s\./(\S*)$} ? ($3 => "$1 $2")
                                                         : () }
                 split /\n/, run_cmd(['dpkg-deb', '-c', $deb],
                                     capture => 1);
    is($listed{'etc/bulletdrop/'}, 'drwxr-x--- root/www-data',
       '/etc/bulletdrop: the workers\' group may enter, nobody else');
    is($listed{'var/lib/bulletdrop/'}, 'drwxr-xr-x root/root',
       '/var/lib/bulletdrop: the upload dir\'s parent');
    ok($listed{"usr/share/doc/$PKG/copyright"}, 'a copyright file');

    my $ctl = "$dir/control";
    run_cmd(['dpkg-deb', '-e', $deb, $ctl]);
    is_deeply([ sort split /\n/, slurp("$ctl/conffiles") ],
              [ map { "/etc/$_" } qw(default/bulletdrop-backup
                  fail2ban/filter.d/bulletdrop.conf
                  fail2ban/jail.d/bulletdrop.conf
                  nginx/snippets/bulletdrop-cloudflare.conf
                  nginx/snippets/bulletdrop-headers.conf
                  nginx/snippets/bulletdrop-s3-files.conf
                  nginx/snippets/bulletdrop-tls.conf
                  nginx/snippets/bulletdrop-webapp.conf) ],
              'what lives in /etc is a conffile');
};

subtest 'Depends: the installed nginx\'s ABI and the shared libraries' => sub {
    my ($abi) = run_cmd(['dpkg-query', '-W', '-f', '${Provides}', 'nginx'],
                        capture => 1) =~ /\b(nginx-abi-[\w.+~-]+)/;
    ok($abi, "the installed nginx provides " . ($abi // 'no ABI'));
    my %dep = map { /^(\S+)/ ? ($1 => 1) : () } split /,\s*/,
              field('Depends');
    ok($dep{$abi // ''}, "the package depends on $abi")
        or diag(field('Depends'));
    my @libs = qw(libpq5 libjansson4 libjwt0 libssl3);
    is_deeply([ grep { $dep{$_} } @libs ], \@libs, "and on @libs");
    ok($dep{'postgresql-client'} && $dep{'perl:any'},
       'and on psql and perl, for the commands');
};

subtest 'lintian has nothing to say but its justified overrides' => sub {
    my ($st, $o, $e) = run_cmd(['lintian', '--fail-on', 'error,warning',
                                $changes], check => 0);
    # as root it says so whatever the package
    my $said = join "\n", grep { !/^running with root privileges/ }
                          split /\n/, "$o$e";
    is("$st $said", '0 ', 'lintian ' . basename($changes));
};

# ---- installed in a throwaway copy of the machine ------------------------

my @ns_paths = ("/usr/lib/nginx/modules/ngx_http_bulletdrop_module.so",
                '/usr/bin/bulletdrop-migrate', '/etc/bulletdrop',
                '/etc/nginx/snippets/bulletdrop-tls.conf',
                '/var/lib/bulletdrop');

# what the install must not change on the machine itself
sub machine {
    my ($st, $status) = run_cmd(['dpkg-query', '-W', '-f', '${Status}',
                                 $PKG], check => 0);
    return {
        'modules-enabled' => join(' ', map { basename($_) }
                                       glob '/etc/nginx/modules-enabled/*'),
        'dpkg status file' => sha256_hex(slurp('/var/lib/dpkg/status')),
        'the package' => $st == 0 ? $status : 'unknown to dpkg',
        'its files' => join(' ', grep { -e || -l } @ns_paths),
        'mounts' => scalar(() = slurp('/proc/self/mountinfo') =~ /\n/g),
    };
}

# the namespace's first process: it lives as long as the namespace
my $holder;
END { kill 'TERM', $holder if $holder }

my $why_not = $> != 0 ? 'installing needs root (dpkg, mount namespaces)'
            : machine()->{'the package'} ne 'unknown to dpkg'
              ? "$PKG is installed on this machine: a throwaway install "
                . 'would be an upgrade'
            : undef;

SKIP: {
    skip $why_not, 1 if $why_not;

    my $before = machine();

    # The holder mounts a tmpfs for the overlays' writes, the overlays and
    # an empty /run, says so, and waits: each step enters with nsenter.
    my $ov = "$dir/namespace";
    mkdir $ov or die "mkdir $ov: $!";
    $holder = open(my $ready, '-|', 'unshare', '--mount',
                   '--propagation', 'private', '--', 'sh', '-c', <<'EOF',
set -e
mount -t tmpfs bulletdrop-deb-test "$1"
for d in etc usr var; do
    mkdir "$1/$d.up" "$1/$d.work"
    mount -t overlay bulletdrop-deb-test \
        -o "lowerdir=/$d,upperdir=$1/$d.up,workdir=$1/$d.work" "/$d"
done
mount -t tmpfs bulletdrop-deb-test /run
echo ready
exec sleep 300
EOF
                   'sh', $ov)
        or die "cannot run unshare: $!";
    my $said = readline($ready) // '';
    my $end_ns = sub {
        kill 'TERM', $holder;
        close $ready;
        undef $holder;
    };

    if ($said ne "ready\n") {
        $end_ns->();
        skip 'no private mount namespace with overlays here', 1;
    }

    my $in_ns = sub {
        my ($script) = @_;
        return run_cmd(['nsenter', '--target', $holder, '--mount', '--',
                        'sh', '-c', "set -e\n$script"], check => 0);
    };
    my $probe = '/etc/nginx/conf.d/bulletdrop-probe.conf';
    my $unknown = qr/unknown directive "bulletdrop_max_file_size"/;

    subtest 'dpkg -i: the module is enabled, and Debian\'s nginx.conf '
            . 'loads it' => sub {
        my ($st, $o, $e) = $in_ns->("echo 'bulletdrop_max_file_size 10m;' "
                                    . "> $probe\nnginx -t");
        ok($st != 0 && "$o$e" =~ $unknown, 'before it, a bulletdrop '
           . 'directive in conf.d is unknown to nginx') or diag("$o$e");

        ($st, $o, $e) = $in_ns->("DEBIAN_FRONTEND=noninteractive dpkg -i "
                                 . $deb);
        is($st, 0, 'dpkg -i installs it, its postinst runs')
            or diag("$o$e");
        like($o, qr/^Processing triggers for nginx\b/m,
             'and nginx\'s reload trigger');

        ($st, $o) = $in_ns->('readlink /etc/nginx/modules-enabled/'
                             . '50-mod-http-bulletdrop.conf');
        is($o, "/usr/share/nginx/modules-available/mod-http-bulletdrop.conf\n",
           'modules-enabled links the module\'s file');

        ($st, $o, $e) = $in_ns->('nginx -t');
        is($st, 0, 'nginx -t with Debian\'s nginx.conf loads the module and '
           . 'takes the bulletdrop directive') or diag("$o$e");

        ($st, $o) = $in_ns->('stat -c "%a %U" /etc/bulletdrop/jwt.secret; '
                             . 'wc -c < /etc/bulletdrop/jwt.secret');
        is($o, "600 root\n64\n", 'the postinst made a JWT secret, root\'s '
           . 'only');

        ($st, $o) = $in_ns->('find /etc/systemd -name "bulletdrop*"');
        is($o, '', 'the backup\'s timer is not enabled');
        $in_ns->("rm $probe");
    };

    subtest 'the example site passes nginx -t with the package\'s '
            . 'snippets' => sub {
        my ($crt, $key) = $t->tls_cert;
        my ($st, $o, $e) = $in_ns->(
            "sed -e 's#/etc/letsencrypt/live/example.com/fullchain.pem#$crt#'"
            . " -e 's#/etc/letsencrypt/live/example.com/privkey.pem#$key#'"
            . ' /usr/share/bulletdrop/nginx/bulletdrop.conf'
            . ' > /etc/nginx/sites-available/bulletdrop'
            . "\nln -s /etc/nginx/sites-available/bulletdrop"
            . ' /etc/nginx/sites-enabled/'
            . "\nrm /etc/nginx/sites-enabled/default"
            . "\nnginx -t");
        is($st, 0, 'the site, with a certificate of the test\'s, as the '
           . 'admin enables it (README, Production, step 4: in place of '
           . 'Debian\'s default site)') or diag("$o$e");
        $in_ns->('rm /etc/nginx/sites-enabled/bulletdrop '
                 . '/etc/nginx/sites-available/bulletdrop'
                 . "\nln -s /etc/nginx/sites-available/default"
                 . ' /etc/nginx/sites-enabled/default');
    };

    subtest 'the backup\'s units are valid' => sub {
        plan skip_all => 'no systemd-analyze'
            unless -x '/usr/bin/systemd-analyze';
        my ($st, $o, $e) = $in_ns->(
            'systemd-analyze verify --man=no '
            . '/lib/systemd/system/bulletdrop-backup.service '
            . '/lib/systemd/system/bulletdrop-backup.timer');
        is("$st $o$e", '0 ', 'systemd-analyze verify: the service runs '
           . '/usr/bin/bulletdrop-backup, which is there');
    };

    subtest 'the fail2ban jail is off until a .local file turns it '
            . 'on' => sub {
        plan skip_all => 'no fail2ban-client'
            unless -x '/usr/bin/fail2ban-client';
        my $jails = sub {
            my ($st, $o, $e) = $in_ns->('fail2ban-client -d');
            return $st ? "fail2ban-client -d failed: $o$e"
                       : join ' ', $o =~ /^\['add', '([^']+)'/mg;
        };
        unlike($jails->(), qr/\bbulletdrop\b/,
               'fail2ban reads the installed jail, and leaves it off');
        $in_ns->("printf '[bulletdrop]\\nenabled = true\\n' "
                 . '> /etc/fail2ban/jail.d/bulletdrop.local');
        like($jails->(), qr/\bbulletdrop\b/,
             'jail.d/bulletdrop.local turns it on, with the package\'s '
             . 'filter');
        $in_ns->('rm /etc/fail2ban/jail.d/bulletdrop.local');
    };

    subtest 'bulletdrop-migrate, as installed, migrates a database '
            . 'once' => sub {
        $t->pg->create_app_db(name => 'packaged');
        my $db = $t->pg->conninfo(dbname => 'packaged', user => 'packaged');
        my @sql = map { basename($_) =~ s/\.sql\z//r } glob "$top/sql/*.sql";

        my ($st, $o, $e) = $in_ns->("/usr/bin/bulletdrop-migrate '$db'");
        is($st, 0, 'the first run succeeds') or diag("$o$e");
        is_deeply([ $o =~ /^applied migration (\S+)$/mg ], \@sql,
                  'applying each migration of /usr/share/bulletdrop/sql, '
                  . 'in order');
        my $last = 'bulletdrop-migrate: applied ' . @sql . ' migrations; '
                   . "the database is at $sql[-1]";
        like($o, qr/^\Q$last\E$/m, 'and saying where the database is');
        my $rows = $t->pg->psql('SELECT count(*) FROM schema_migrations',
                                conninfo => $db);
        is($rows->[0][0], scalar @sql, 'each recorded in the ledger');

        ($st, $o, $e) = $in_ns->("BULLETDROP_DB='$db' "
                                 . '/usr/bin/bulletdrop-migrate');
        is("$st $o", "0 bulletdrop-migrate: nothing to apply; the database "
           . "is at $sql[-1]\n", 'a second run applies nothing, and says so')
            or diag($e);
    };

    subtest 'dpkg -r disables the module; dpkg --purge takes the rest '
            . 'away' => sub {
        my ($st, $o, $e) = $in_ns->("dpkg -r $PKG");
        is($st, 0, 'dpkg -r removes it') or diag("$o$e");
        ($st, $o) = $in_ns->('ls /etc/nginx/modules-enabled');
        is($o, "50-mod-http-bulletdrop.conf.removed\n",
           'its link is set aside, as Debian\'s modules do');
        ($st, $o, $e) = $in_ns->("echo 'bulletdrop_max_file_size 10m;' "
                                 . "> $probe\nnginx -t");
        ok($st != 0 && "$o$e" =~ $unknown, 'nginx no longer knows the '
           . 'directive') or diag("$o$e");
        $in_ns->("rm $probe");

        ($st, $o, $e) = $in_ns->("dpkg --purge $PKG");
        is($st, 0, 'dpkg --purge purges it') or diag("$o$e");
        ($st, $o) = $in_ns->('ls /etc/nginx/modules-enabled; for f in '
                             . join(' ', grep { !m{^/var/lib/} } @ns_paths)
                             . '; do [ ! -e $f ] || echo "$f"; done');
        is($o, '', 'no link, no module, no secret, snippet or directory '
           . 'of ours is left');
        # nginx made the upload dir there for the site (nginx -t above)
        ($st, $o) = $in_ns->('ls -A /var/lib/bulletdrop');
        is($o, "uploads\n", 'but the uploads, in /var/lib/bulletdrop');
        ($st, $o, $e) = $in_ns->('nginx -t');
        is($st, 0, 'Debian\'s nginx.conf passes nginx -t as before')
            or diag("$o$e");
    };

    $end_ns->();

    is_deeply(machine(), $before, 'the machine itself is as it was: '
              . 'modules-enabled, dpkg\'s status, the files, the mounts');
}

done_testing;
