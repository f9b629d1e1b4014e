#!/usr/bin/perl
# The web app in a real browser: Debian's chromium, driven by
# playwright-core, against the stack `make run` starts (nginx-conf/dev.conf
# serving www/dist/, real PostgreSQL).  Each scenario is a script in
# www/test/ that prints "ok N - ..." / "not ok N - ..." and exits non-zero
# when one failed; this file starts the stack, runs them in turn, and fails
# if any failed or if nginx logged an alert or a worker died.
#
# Screenshots of every page at 375 and 1280 px land in
# build/screenshots/ (BULLETDROP_SHOTS to put them elsewhere).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use File::Temp qw(tempdir);

use BulletDrop::Stack;
use BulletDrop::Test qw(free_port nginx_clean browser_scenario);
use BulletDrop::Util qw(top_dir);

my $top = top_dir();
my $chromium = '/usr/bin/chromium';

for my $need (["$top/www/dist/index.html", "run 'make www'"],
              ["$top/www/node_modules/playwright-core", "run 'make www'"],
              [$chromium, "run 'make deps' (Debian's chromium)"]) {
    next if -e $need->[0];
    fail("$need->[0] is missing: $need->[1]");
    done_testing;
    exit;
}

my $dir = tempdir('bulletdrop-web-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{BULLETDROP_KEEP});
chmod 0755, $dir;
my $shots = $ENV{BULLETDROP_SHOTS} // "$top/build/screenshots";
make_path($shots, "$dir/work");

my $stack = BulletDrop::Stack->new(dir => $dir, port => free_port(),
                                   log => sub { note $_[0] });
$stack->up;
my $admin = $stack->admin;
ok($admin->{password} && $admin->{api_key}, 'the stack made its admin')
    or diag explain $admin;
like($stack->seed_domains($admin), qr/img\.localhost/,
     'the file domains are seeded');

my %env = (BD_URL => $stack->url, BD_ADMIN_USER => $admin->{username},
           BD_ADMIN_PASSWORD => $admin->{password},
           BD_ADMIN_KEY => $admin->{api_key}, BD_SHOTS => $shots,
           BD_WORK => "$dir/work", BD_CHROMIUM => $chromium);

browser_scenario($_, env => \%env)
    for qw(user.mjs keys.mjs admin.mjs security.mjs screens.mjs);

my $prefix = $stack->nginx->prefix;
$stack->down;
nginx_clean($prefix, 'nginx: no worker died, no alert in its log');

done_testing;
