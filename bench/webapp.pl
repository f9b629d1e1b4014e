#!/usr/bin/perl

# The web app benchmark; run it through bench/webapp.sh.  A throwaway stack
# (the one `make run` starts: nginx-conf/dev.conf serving www/dist/, a
# PostgreSQL cluster of its own) in a temporary directory, then
# www/test/gallery-bench.mjs in Debian's chromium, whose figures it prints.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Temp qw(tempdir);

use BulletDrop::Stack;
use BulletDrop::Test qw(free_port);
use BulletDrop::Util qw(top_dir);

my $top = top_dir();
my $dir = tempdir('bulletdrop-bench-web-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;

my $stack = BulletDrop::Stack->new(dir => $dir, port => free_port(),
                                   log => sub { });
$stack->up;

my $status = eval {
    my $admin = $stack->admin;
    $stack->seed_domains($admin);
    local $ENV{BD_URL} = $stack->url;
    local $ENV{BD_WORK} = $dir;
    system('node', "$top/www/test/gallery-bench.mjs") >> 8;
} // do { warn $@; 1 };

$stack->down;
exit $status;
