#!/usr/bin/perl
# What a user does with their uploads afterwards: lists them newest first,
# page by page; reads one; deletes one (file, row and usage go together).
# An admin may read and delete anyone's; anybody else gets 404, as if
# nothing were there.  And `make fsck` tells when the table and the upload
# dir disagree: a row whose file is gone, a file no row names.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);

use BulletDrop::Test qw(is_error is_upload sample);
use BulletDrop::Util qw(top_dir run_cmd spew);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open');

my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);
my $admin = $t->new_user('root', key => 1, admin => 1);

my @mine;    # Alice's upload records, oldest first
for my $i (1 .. 5) {
    my $res = $t->upload($alice->{key}, "shot$i.png",
                         sample('png', 1000 + $i * 100));
    die "upload $i: $res->{status} $res->{body}" unless $res->{status} == 201;
    push @mine, $res->{json};
}
my $bobs = $t->upload($bob->{key}, 'bob.txt', "Bob's notes\n")->{json};

sub list {
    my ($auth, $query) = @_;
    return $t->get('/api/uploads' . (defined $query ? "?$query" : ''),
                   token => $auth);
}

sub ids { [ map { $_->{id} } @{ $_[0] // [] } ] }

sub without_delete_url {
    my %r = %{ $_[0] };
    delete $r{delete_url};
    return \%r;
}

sub me { $t->get('/api/users/me', token => $_[0])->{json} }

subtest 'the list: own uploads, newest first' => sub {
    my $res = list($alice->{key});
    is($res->{status}, 200, 'status 200');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    my $uploads = $res->{json}{uploads} // [];
    is_deeply(ids($uploads), [ reverse @{ ids(\@mine) } ],
              'Alice\'s five, newest first');
    is(scalar(grep { is_upload($_, undef, "$_->{name}: a record whole") }
              @$uploads), 5, 'all five records whole');
    is_deeply($uploads, [ reverse @mine ],
              'each as the upload answered, its delete link included');
    is($res->{json}{next_before}, undef, 'one page: next_before null');

    is_deeply(ids(list($bob->{key})->{json}{uploads}), [ $bobs->{id} ],
              'Bob sees his own only');
    is_deeply(ids(list($admin->{key})->{json}{uploads}), [],
              'an admin\'s list is their own too');
    is_error(list(undef), 401, 'unauthorized', 'no token: 401');
};

subtest 'the list page by page' => sub {
    my @newest_first = reverse @{ ids(\@mine) };

    for my $limit (1, 2, 3, 5) {
        my (@seen, $before, $pages, $last);
        while (($pages // 0) < 10) {
            $pages++;
            my $res = list($alice->{key}, "limit=$limit"
                           . (defined $before ? "&before=$before" : ''));
            is($res->{status}, 200, "limit $limit, page $pages: 200")
                or last;
            my $page = ids($res->{json}{uploads});
            push @seen, @$page;
            $last = $res->{json}{next_before};
            cmp_ok(scalar @$page, '<=', $limit,
                   "limit $limit, page $pages: at most $limit");
            is($last, $page->[-1], "limit $limit, page $pages: next_before "
               . 'is its last id') if defined $last;
            is($last, undef, "limit $limit, page $pages: a short page ends "
               . 'the list') if @$page < $limit;
            last unless defined $last;
            $before = $last;
        }
        is_deeply(\@seen, \@newest_first,
                  "limit $limit: the pages hold every upload once, newest "
                  . 'first');
    }

    my $res = list($alice->{key}, "limit=2&before=$mine[2]{id}");
    is_deeply(ids($res->{json}{uploads}), [ $mine[1]{id}, $mine[0]{id} ],
              'before the third: the second and the first');

    is(scalar @{ list($alice->{key}, 'limit=200')->{json}{uploads} // [] },
       5, 'limit 200 is allowed');

    for my $query ('limit=0', 'limit=201', 'limit=-1', 'limit=abc',
                   'limit=', 'limit=1.5', 'limit=99999999999999999999999')
    {
        is_error(list($alice->{key}, $query), 400, 'invalid_query',
                 "$query: 400 invalid_query");
    }
    for my $before ('A' x 16, 'not-an-id') {
        my $res = list($alice->{key}, "before=$before");
        is($res->{status}, 400, "before=$before (no such upload): 400");
        like($res->{json}{error} // '', qr/\A[a-z_]+\z/, 'with an error code');
    }

    my $nobody = list($alice->{key}, 'before=' . ('B' x 16));
    my $bob = list($alice->{key}, "before=$bobs->{id}");
    is_deeply([ $bob->{status}, $bob->{body} ],
              [ $nobody->{status}, $nobody->{body} ],
              'before= one of Bob\'s ids: Alice hears what an id nobody has '
              . 'gets');
};

subtest 'one upload: its owner and admins see it, nobody else' => sub {
    my $rec = $mine[0];
    my $res = $t->get("/api/uploads/$rec->{id}", token => $alice->{key});
    is($res->{status}, 200, 'Alice: 200');
    is_upload($res->{json}, { name => 'shot1.png' }, 'a record');
    is_deeply($res->{json}, $rec, 'as the upload answered, delete link and '
              . 'all');

    $res = $t->get("/api/uploads/$rec->{id}", token => $admin->{key});
    is($res->{status}, 200, 'an admin: 200');
    is_deeply($res->{json}, $rec, 'the same record');

    is_error($t->get("/api/uploads/$rec->{id}", token => $bob->{key}),
             404, 'not_found', 'Bob: 404 not_found');
    is_error($t->get("/api/uploads/$rec->{id}"), 401, 'unauthorized',
             'no token: 401');

    for my $id ('A' x 16, 'short', 'A' x 17, 'a.png') {
        is_error($t->get("/api/uploads/$id", token => $admin->{key}), 404,
                 'not_found', "an id '$id' nobody has: 404");
    }
};

subtest 'a deleted upload is gone: file, row, link and usage' => sub {
    my $rec = $mine[4];
    my $file = $t->stored_path($rec);
    my $usage = me($alice->{key})->{usage};
    ok(-f $file, 'the file is there to begin with');

    is_error($t->delete("/api/uploads/$rec->{id}", token => $bob->{key}),
             404, 'not_found', 'Bob deleting it: 404');
    ok(-f $file, 'which leaves it alone');

    my $res = $t->delete("/api/uploads/$rec->{id}", token => $alice->{key});
    is($res->{status}, 204, 'Alice deleting it: 204');
    is($res->{body}, '', 'with no body');

    ok(!-e $file, 'the file is gone');
    is($t->get("/static/images/$rec->{id}.png")->{status}, 404,
       'its link answers 404');
    is($t->pg->psql('SELECT count(*) FROM uploads WHERE id = '
                    . BulletDrop::Pg::quote($rec->{id}))->[0][0],
       0, 'the row is gone');
    is_deeply(me($alice->{key})->{usage},
              { bytes => $usage->{bytes} - $rec->{size},
                files => $usage->{files} - 1 },
              'the usage shrank by its size and one file');
    is_error($t->get("/api/uploads/$rec->{id}", token => $alice->{key}),
             404, 'not_found', 'GET: 404');
    is_error($t->delete("/api/uploads/$rec->{id}", token => $alice->{key}),
             404, 'not_found', 'DELETE again: 404');
    is_deeply(ids(list($alice->{key})->{json}{uploads}),
              [ reverse map { $_->{id} } @mine[0 .. 3] ],
              'the list has the other four');
};

subtest 'an admin deletes anyone\'s upload, charged to its owner' => sub {
    my $rec = $mine[3];
    my $alice_usage = me($alice->{key})->{usage};
    my $admin_usage = me($admin->{key})->{usage};

    is($t->delete("/api/uploads/$rec->{id}", token => $admin->{key})
         ->{status}, 204, 'the admin: 204');
    ok(!-e $t->stored_path($rec), 'the file is gone');
    is_deeply(me($alice->{key})->{usage},
              { bytes => $alice_usage->{bytes} - $rec->{size},
                files => $alice_usage->{files} - 1 },
              'Alice\'s usage shrank');
    is_deeply(me($admin->{key})->{usage}, $admin_usage,
              'the admin\'s did not');

    my $sum = 0;
    $sum += $_->{size} for @{ list($alice->{key})->{json}{uploads} };
    is(me($alice->{key})->{usage}{bytes}, $sum,
       'Alice\'s usage is the sum of what her list shows');
};

subtest 'make fsck: the table and the upload dir agree, until they do '
        . 'not' => sub {
    # the fixture laid out as a run dir: pg/ is there, uploads/ is ours
    symlink $t->upload_dir, $t->dir . '/uploads' or die "symlink: $!";
    my %env = (BULLETDROP_RUN_DIR => $t->dir);
    my $fsck = sub {
        my (@cmd) = @_;
        local @ENV{keys %env} = values %env;
        my ($status, $out, $err) = run_cmd(\@cmd, check => 0);
        return ($status >> 8, [ split /\n/, $out ], $err);
    };
    my @stack = ('perl', '-I' . top_dir() . '/t/lib', '-MBulletDrop::Stack',
                 '-e', 'BulletDrop::Stack::main(@ARGV)', '--', 'fsck');
    my @make = ('make', '-s', '--no-print-directory', '-C', top_dir(), 'fsck');

    my ($status, $lines, $err) = $fsck->(@stack);
    is($status, 0, 'all is well: exit status 0') or diag $err;
    is_deeply($lines, [], 'and nothing listed');

    my $gone = $mine[0];
    unlink $t->stored_path($gone) or die "unlink: $!";
    my $stray = 'images/' . ('S' x 16) . '.png';
    spew($t->upload_dir . "/$stray", sample('png', 1000));

    ($status, $lines, $err) = $fsck->(@stack);
    is($status, 1, 'a file gone and a stray file: exit status 1');
    is(scalar @$lines, 2, 'two lines') or diag explain $lines;
    is(scalar(grep { /\Q$gone->{id}\E/ && /no file/ } @$lines), 1,
       'one names the upload whose file is gone');
    is(scalar(grep { /\Q$stray\E/ && /no upload/ } @$lines), 1,
       'one names the file no upload has');

    ($status, $lines, $err) = $fsck->(@make);
    isnt($status, 0, 'make fsck fails too');
    is(scalar(grep { /\Q$gone->{id}\E|\Q$stray\E/ } @$lines), 2,
       'listing the same two') or diag "$err\n", explain $lines;

    unlink $t->upload_dir . "/$stray";
    $t->pg->psql('DELETE FROM uploads WHERE id = '
                 . BulletDrop::Pg::quote($gone->{id}));
    ($status, $lines) = $fsck->(@make);
    is($status, 0, 'put right: make fsck succeeds');
    is_deeply($lines, [], 'listing nothing');
};

subtest 'a delete link is listed only when it is the upload\'s own' => sub {
    my $rec = $t->upload($alice->{key}, 'old.txt', "from before\n")->{json};
    my ($path) = ($rec->{delete_url} // '') =~ m{(/d/[\w-]+)\z};
    is($t->get($path)->{status}, 200, 'its delete link opens');

    # a token drawn at random, as uploads had before tokens were derived,
    # or one derived with another secret
    $t->pg->query("UPDATE uploads SET delete_token_hash = "
                  . "encode(sha256('drawn at random'), 'hex') "
                  . "WHERE id = '$rec->{id}'");
    my $res = $t->get("/api/uploads/$rec->{id}", token => $alice->{key});
    is($res->{status}, 200, 'the upload is still there');
    ok(!exists $res->{json}{delete_url},
       'no delete_url: the one derived from its id is not its own');
    is_deeply($res->{json}, without_delete_url($rec), 'the rest as before');
    my ($listed) = grep { $_->{id} eq $rec->{id} }
                   @{ list($alice->{key})->{json}{uploads} };
    ok($listed && !exists $listed->{delete_url}, 'nor in the list');
    is_error($t->get($path), 404, 'not_found',
             'and the derived link deletes nothing');
};

done_testing;
