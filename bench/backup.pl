#!/usr/bin/perl
# BulletDrop backup benchmark: bin/bulletdrop-backup on a tree of many
# small files, twice, then once more after 1% new files; the time and the
# disk each run added (du counts a hard-linked file once).  See
# bench/README.md.
#
#   bench/backup.pl                        # 20,000 files of 2 KB
#   BENCH_FILES=100000 BENCH_ROOT=/mnt/other/bd bench/backup.pl
#
# A throwaway PostgreSQL cluster (migrated, the rows inserted with psql:
# no nginx) and upload dir in a temp directory, removed afterwards.
# BENCH_ROOT puts the backup root elsewhere (another filesystem: the
# first run copies, the later ones hard-link from the previous backup).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

use BulletDrop::Migrate;
use BulletDrop::Pg;
use BulletDrop::Util qw(top_dir random_text run_cmd);

my $N = $ENV{BENCH_FILES} // 20000;
my $SIZE = $ENV{BENCH_SIZE} // 2048;
my $top = top_dir();

my $dir = tempdir('bulletdrop-backup-bench-XXXXXX', TMPDIR => 1,
                  CLEANUP => 1);
chmod 0755, $dir;
my $root = $ENV{BENCH_ROOT} // "$dir/backups";
my $uploads = "$dir/uploads";
make_path(map { "$uploads/$_" } qw(images documents other));

my $pg = BulletDrop::Pg->new(dir => "$dir/pg");
$pg->init;
$pg->start;
END { $pg->stop('immediate') if $pg && $pg->running }
$SIG{INT} = $SIG{TERM} = sub { exit 130 };
$pg->create_app_db;
BulletDrop::Migrate::apply(conninfo => $pg->conninfo, dir => "$top/sql",
                           log => sub {});
my ($user) = @{ $pg->psql("INSERT INTO users (username, password_hash) "
                          . "VALUES ('bench', 'x') RETURNING id") };

# $n files and their rows, through COPY
sub add_files {
    my ($n) = @_;
    my $copy = '';
    for (1 .. $n) {
        my $id = random_text(16);
        my $data = random_text($SIZE);
        my $category = (qw(images documents other))[ord($id) % 3];
        my $ext = { images => 'png', documents => 'pdf', other => 'mp4' }
                  ->{$category};
        open my $fh, '>', "$uploads/$category/$id.$ext" or die $!;
        print {$fh} $data;
        close $fh;
        $copy .= join("\t", $id, $user->[0], "$id.$ext", $ext, $category,
                      'application/octet-stream', $SIZE, sha256_hex($data),
                      sha256_hex($id)) . "\n";
    }
    run_cmd(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
             $pg->conninfo, '-c',
             'COPY uploads (id, user_id, name, ext, category, content_type, '
             . 'size, sha256, delete_token_hash) FROM STDIN'],
            stdin => $copy, fail => 'COPY failed');
}

sub du_kb {
    my (@dirs) = @_;
    my $out = run_cmd(['du', '-s', '-k', @dirs], capture => 1);
    return map { (split /\t/)[0] } split /\n/, $out;
}

sub backup {
    my $t0 = time;
    my $out = run_cmd(["$top/bin/bulletdrop-backup", '--db', $pg->conninfo,
                       '--upload-dir', $uploads, '--root', $root,
                       '--keep', 10, '--quiet'], capture => 1);
    my $secs = time - $t0;
    chomp(my $made = (split /\n/, $out)[-1]);
    return ($made, $secs);
}

print "backup root: $root\n";
my $t0 = time;
add_files($N);
printf "tree: %d files of %d bytes, made in %.1f s; %d KB on disk\n",
    $N, $SIZE, time - $t0, du_kb($uploads);

my @made;
for my $run ('first', 'second', 'after 1% new') {
    add_files(int($N / 100)) if $run =~ /new/;
    my ($b, $secs) = backup();
    push @made, $b;
    # du of all of them at once: each inode counted where first seen
    my @kb = du_kb($uploads, @made);
    printf "%-13s %6.2f s   disk added: %6d KB, of which db.dump %d KB "
        . "and MANIFEST %d KB\n", $run, $secs, $kb[-1],
        (-s "$b/db.dump") / 1024, (-s "$b/MANIFEST") / 1024;
}

remove_tree($root) if $ENV{BENCH_ROOT};
