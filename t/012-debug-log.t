#!/usr/bin/perl
# With "error_log ... debug" (Debian's nginx is built --with-debug), every
# path of the module runs as it does without, and says what it does: an
# operator can turn tracing on in production without losing a worker.
# nginx's debug lines read the data of every timer and posted event as a
# connection: an event of ours without data killed a worker at its first
# timer.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(wait_until sample);

my $t = BulletDrop::Test->new;
$t->start_nginx(workers => 2, registration => 'open', files => 1,
                sweep_interval => '1s',
                main => "error_log \@PREFIX\@/logs/debug.log debug;\n");
$t->add_domains('img.localhost');

my $debug = $t->nginx->prefix . '/logs/debug.log';
my @workers = $t->nginx->worker_pids;

subtest 'every kind of request, traced' => sub {
    my $alice = $t->new_user('alice', key => 1);
    my $key = $alice->{key};

    my $up = $t->upload($key, 'shot.png', sample('png', 3000));
    is($up->{status}, 201, 'an upload');

    my ($path) = ($up->{json}{url} // '') =~ m{\Ahttp://[^/]+(/.*)\z};
    is($t->get($path, host => 'img.localhost')->{status}, 200,
       'served from its file domain');

    my $once = $t->upload($key, 'once.png', sample('png', 3000),
                          headers => [ 'X-BulletDrop-Max-Views' => 2,
                                       'X-BulletDrop-Expires' => '2s' ]);
    is($once->{status}, 201, 'an upload with limits');
    ($path) = ($once->{json}{url} // '') =~ m{\Ahttp://[^/]+(/.*)\z};
    is($t->get($path, host => 'img.localhost')->{status}, 200,
       'a counted view');

    is($t->upload($key, 'tool.exe', 'x' x 100, as => 'raw')->{status}, 415,
       'a refusal');
    is($t->get('/api/nope')->{status}, 404, 'an unknown route');

    ok(wait_until(sub { !$t->row("SELECT 1 FROM uploads WHERE id = "
                                 . BulletDrop::Pg::quote($once->{json}{id}),
                                 'one') }, 15),
       'the sweep removes the expired upload');
};

subtest 'the workers lived, and the log tells the story' => sub {
    is_deeply([ $t->nginx->worker_pids ], \@workers,
              'the same workers answer');

    open my $fh, '<', $debug or die "$debug: $!";
    my $log = do { local $/; <$fh> };
    like($log, qr/bulletdrop api: "\/api\/uploads" found/, 'routes');
    like($log, qr/bulletdrop db #\d+: idle -> (?:preparing|querying)/,
         'the database pool');
    like($log, qr/bulletdrop: answered 415/, 'refusals');
};

done_testing;
