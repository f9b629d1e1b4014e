#!/usr/bin/perl
# Backups that restore.  bin/bulletdrop-backup copies the database and the
# upload tree while clients keep uploading and deleting, and every row of
# its dump has its file, byte for byte; a second backup hard-links what the
# first one had; only the newest N stay; a crashed backup never looks
# complete; an rclone remote gets the files.  bin/bulletdrop-restore puts
# a backup onto a fresh stack, where every row is served and fsck finds
# nothing; it refuses a damaged or partial backup, and a target that is
# not empty unless asked.  Rows due for the sweep (a burn-after-read file
# viewed, whose file goes at once; expired rows, one whose file the sweep
# already took) need no file: the backup succeeds on its first snapshot,
# with or without a previous backup, holds none of their files, and the
# restore removes their rows as the sweep would, usage refunded.  `make
# restore` and `make backup` do the same for a run dir.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

use BulletDrop::HTTP;
use BulletDrop::Stack;
use BulletDrop::Test qw(sample wait_until);
use BulletDrop::Util qw(top_dir run_cmd slurp spew);

my $top = top_dir();
my $BACKUP = "$top/bin/bulletdrop-backup";
my $RESTORE = "$top/bin/bulletdrop-restore";

my $t = BulletDrop::Test->new;
# a sweep far away: rows due for it stay, as they do for up to a minute
$t->start_nginx(registration => 'open', files => 1, workers => 2,
                sweep_interval => '1h');
$t->add_domains('img.localhost');
my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);
my $root = $t->dir . '/backups';

# ---- helpers ----------------------------------------------------------

# bulletdrop-backup of the fixture's stack: (status, stdout, stderr)
sub backup {
    my (@args) = @_;
    return run_cmd([$BACKUP, '--db', $t->pg->conninfo,
                    '--upload-dir', $t->upload_dir, @args], check => 0);
}

sub restore { run_cmd([$RESTORE, @_], check => 0) }

# the complete backups of a root, oldest first
sub backups_in {
    my ($dir) = @_;
    opendir my $dh, $dir or return ();
    return map { "$dir/$_" } sort grep { /\A\d{8}T\d{6}Z/ } readdir $dh;
}

sub info { JSON::PP->new->decode(slurp("$_[0]/BACKUP")) }

# a backup's manifest: path => "sha256 size"
sub manifest {
    my ($dir) = @_;
    return map { my @f = split /\t/; ($f[2] => "$f[0] $f[1]") }
           split /\n/, slurp("$dir/MANIFEST");
}

# the uploads rows of a database: path => "sha256 size"
sub rows_of {
    my ($pg, $conninfo) = @_;
    return map { ("$_->[0]/$_->[1].$_->[2]" => "$_->[4] $_->[3]") }
           @{ $pg->psql('SELECT category, id, ext, size, sha256 FROM uploads',
                        $conninfo ? (conninfo => $conninfo) : ()) };
}

sub tables_in {
    my ($pg, $conninfo) = @_;
    return $pg->psql("SELECT count(*) FROM pg_tables WHERE schemaname = "
                     . "'public'", conninfo => $conninfo)->[0][0];
}

# A restored stack, started: it serves each of $rows (path => "sha256
# size") byte-exact on img.localhost, and each user's usage (the API's) is
# the sum of their rows in the restored database.
sub served_and_counted {
    my ($stack, $conninfo, $rows) = @_;
    # the workers learn the file domains from the database once started
    my ($first) = sort keys %$rows;
    ok(wait_until(sub {
           $stack->request('GET', "/static/$first", host => 'img.localhost')
              ->{status} != 503 }, 10),
       'the new stack knows img.localhost from the restored database');
    my @unserved;
    for my $rel (sort keys %$rows) {
        my $res = $stack->request('GET', "/static/$rel",
                                  host => 'img.localhost');
        push @unserved, "$rel: $res->{status}"
            unless $res->{status} == 200
                   && sha256_hex($res->{body}) . ' ' . length $res->{body}
                      eq $rows->{$rel};
    }
    is_deeply(\@unserved, [], 'the new stack serves every restored row ('
              . scalar(keys %$rows) . '), byte-exact, on img.localhost');

    for my $user ($alice, $bob) {
        my $me = $stack->get('/api/users/me', token => $user->{key});
        my @theirs = @{ $stack->pg->psql(
            'SELECT count(*), coalesce(sum(size), 0) FROM uploads '
            . "WHERE user_id = $user->{id}", conninfo => $conninfo) };
        is($me->{status}, 200, "$user->{name}'s API key works there");
        is_deeply($me->{json}{usage},
                  { files => 0 + $theirs[0][0], bytes => 0 + $theirs[0][1] },
                  "$user->{name}'s usage is the sum of their rows "
                  . "($theirs[0][0])");
    }
    return;
}

sub files_in {
    my ($dir) = @_;
    my @files;
    for my $c (qw(images documents other)) {
        opendir my $dh, "$dir/$c" or next;
        push @files, map { "$c/$_" } grep { !/\A\.\.?\z/ } readdir $dh;
    }
    return @files;
}

my @KINDS = (['png', 1500], ['pdf', 2500], ['txt', 900], ['mp4', 3000]);

sub upload_one {
    my ($user, $i, $http) = @_;
    my ($ext, $size) = @{ $KINDS[$i % @KINDS] };
    my $data = sample($ext, $size + $i % 97, "$user->{name}-$i-$$");
    local $t->{http} = $http if $http;
    my $res = $t->upload($user->{key}, "f$i.$ext", $data);
    die "upload $i: $res->{status} $res->{body}" unless $res->{status} == 201;
    return $res->{json};
}

# ---- a tree, and clients that keep changing it --------------------------

my %seeded;
for my $i (1 .. 120) {
    my $user = $i % 2 ? $alice : $bob;
    push @{ $seeded{ $user->{name} } }, upload_one($user, $i)->{id};
}

# Each client uploads, and deletes one of its user's uploads every other
# time, until the stop file appears; it logs "time op" for each success.
my $stop = $t->dir . '/stop-clients';
my @clients;
for my $c (0 .. 3) {
    my $user = $c % 2 ? $bob : $alice;
    # the seeded uploads of this user, shared by its two clients by parity
    my @mine = grep { $_ % 2 == int($c / 2) }
               0 .. $#{ $seeded{ $user->{name} } };
    @mine = @{ $seeded{ $user->{name} } }[@mine];
    my $log = $t->dir . "/client$c.log";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $http = BulletDrop::HTTP->new(port => $t->port);
        open my $fh, '>', $log or POSIX::_exit(1);
        $fh->autoflush(1);
        my $i = 1000 * ($c + 1);
        until (-e $stop) {
            my $rec = eval { upload_one($user, $i++, $http) } or next;
            print {$fh} time . " upload\n";
            push @mine, $rec->{id};
            next unless $i % 2 && @mine > 10;
            my $id = splice @mine, int(rand @mine), 1;
            my $res = eval { $http->request('DELETE', "/api/uploads/$id",
                                            token => $user->{key}) };
            print {$fh} time . " delete\n" if $res && $res->{status} == 204;
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, { pid => $pid, log => $log };
}

# what the clients did between two times
sub ops_between {
    my ($from, $to) = @_;
    my %n = (upload => 0, delete => 0);
    for my $c (@clients) {
        for (split /\n/, eval { slurp($c->{log}) } // '') {
            my ($at, $op) = split / /;
            $n{$op}++ if $at >= $from && $at <= $to;
        }
    }
    return \%n;
}

wait_until(sub { my $n = ops_between(0, time); $n->{delete} >= 5 }, 30)
    or BAIL_OUT('the clients are not uploading and deleting');

# ---- backups while they run ----------------------------------------------

my @made;
subtest 'backups made while uploads and deletes run are whole' => sub {
    for my $round (1, 2) {
        my $t0 = time;
        my ($status, $out, $err) = backup('--root', $root, '--keep', 2);
        my $t1 = time;
        is($status, 0, "backup $round succeeds") or diag $err;
        chomp $out;
        my @lines = split /\n/, $out;
        ok(-f "$lines[-1]/BACKUP", "backup $round: its directory is the "
           . 'last line of its output') and push @made, $lines[-1];
        my $n = ops_between($t0, $t1);
        ok($n->{upload} > 0 && $n->{delete} > 0,
           "backup $round ran while clients uploaded ($n->{upload}) and "
           . "deleted ($n->{delete})");
        like($err, qr/complete in/, "backup $round says it is complete");
        note("backup $round: $1 snapshot(s)")
            if $err =~ /snapshot (\d+) of/;
    }

    for my $b (@made) {
        my %m = manifest($b);
        ok(scalar(keys %m) >= 100, "$b: its manifest has "
           . scalar(keys %m) . ' files');
        my @bad = grep { !-f "$b/files/$_"
                         || sha256_hex(slurp("$b/files/$_")) . ' '
                            . -s "$b/files/$_" ne $m{$_} } sort keys %m;
        is_deeply(\@bad, [], "$b: every manifest file is there, its "
                  . 'SHA-256 and size as its row says');
        is_deeply([ sort(files_in("$b/files")) ], [ sort keys %m ],
                  "$b: no file that is not in the manifest");
        my ($status, undef, $err) = restore('--verify-only', $b);
        is($status, 0, "$b: bulletdrop-restore --verify-only finds it "
           . 'whole: the dump\'s upload rows are the manifest') or diag $err;
    }
};

spew($stop, '');
my @statuses = map { waitpid $_->{pid}, 0; $? } @clients;
is_deeply(\@statuses, [ (0) x @clients ], 'the clients exited 0');

# after the churn: the state a backup now must hold exactly
my %live = rows_of($t->pg);

subtest 'the next backup hard-links what the previous one has; keep 2' => sub {
    my ($status, $out, $err) = backup('--root', $root, '--keep', 2);
    is($status, 0, 'a third backup succeeds') or diag $err;
    chomp(my $b3 = (split /\n/, $out)[-1]);
    push @made, $b3;

    is_deeply([ backups_in($root) ], [ @made[1, 2] ],
              'the root keeps the two newest; the first is gone');
    ok(!-e $made[0], 'the first backup\'s directory is removed');
    is_deeply([ grep { /^\./ && !/\A\.\.?\z|\A\.lock\z/ }
                map { s{.*/}{}r } glob("$root/.*") ], [],
              'nothing partial or expired is left in the root');

    my %m2 = manifest($made[1]);
    my %m3 = manifest($b3);
    is_deeply(\%m3, \%live, 'its manifest is the live table, row for row');

    my @shared = grep { $m2{$_} } sort keys %m3;
    ok(@shared > 50, scalar(@shared) . ' files are in both backups');
    my @other_inode = grep { (stat "$made[1]/files/$_")[1]
                             != (stat "$b3/files/$_")[1] } @shared;
    is_deeply(\@other_inode, [], 'each of them is the same inode in both');
    is(info($b3)->{files_from}{previous}, scalar @shared,
       'BACKUP says that many came from the previous backup');
    is(info($b3)->{files_from}{copied}, 0,
       'none was copied (the root is on the upload dir\'s filesystem)');
};

subtest 'on another filesystem: copies once, then hard links' => sub {
    my $shm = "/dev/shm/bulletdrop-092-$$";
    plan skip_all => '/dev/shm is not another writable filesystem'
        unless -d '/dev/shm' && -w '/dev/shm'
               && (stat '/dev/shm')[0] != (stat $t->upload_dir)[0];
    make_path($shm);

    my ($s1, $o1, $e1) = backup('--root', $shm, '--keep', 3);
    my ($s2, $o2, $e2) = backup('--root', $shm, '--keep', 3);
    is($s1 + $s2, 0, 'two backups succeed') or diag "$e1$e2";
    my @b = backups_in($shm);
    is(scalar @b, 2, 'two backups in the root');
    my $n = keys %live;
    is(info($b[0])->{files_from}{copied}, $n, "the first copied all $n");
    is(info($b[1])->{files_from}{previous}, $n,
       'the second linked them all from the first');
    is(info($b[1])->{files_from}{copied}, 0, 'and copied none');
    my @other = grep { (stat "$b[0]/files/$_")[1] != (stat "$b[1]/files/$_")[1] }
                keys %live;
    is_deeply(\@other, [], 'the same inodes');
    my ($st, undef, $err) = restore('--verify-only', $b[1]);
    is($st, 0, 'the copy is whole') or diag $err;
    remove_tree($shm);
};

my $b3 = $made[2];

# ---- a restore onto a fresh stack ----------------------------------------

my $t2 = BulletDrop::Test->new;
my $up = $t2->dir . '/uploads';
$t2->pg->create_app_db(name => 'restored');
my $R = $t2->pg->conninfo(dbname => 'restored', user => 'restored');

subtest 'a target that is not empty is refused unless --force' => sub {
    my ($status, undef, $err) = restore('--db', $t2->pg->conninfo,
                                        '--upload-dir', $up, $b3);
    isnt($status, 0, 'a database with tables (a migrated one): refused');
    like($err, qr/the target is not empty: the database has \d+ tables/,
         'and says why');
    like($err, qr/Nothing was restored; --force replaces them/,
         'that nothing was restored, and what --force would do');
    is_deeply([ files_in($up) ], [], 'no file was copied');

    make_path("$up/images");
    spew("$up/images/AAAAAAAAAAAAAAAA.png", 'not a backup');
    ($status, undef, $err) = restore('--db', $R, '--upload-dir', $up, $b3);
    isnt($status, 0, 'an upload dir with a file: refused');
    like($err, qr/the target is not empty: \Q$up\E has 1 files/,
         'and says why');
    is(tables_in($t2->pg, $R), 0, 'the empty database stays empty');

    ($status, undef, $err) = restore('--db', $R, '--upload-dir', $up,
                                     $made[1]);
    isnt($status, 0, 'still refused without --force');
    ($status, undef, $err) = restore('--db', $R, '--upload-dir', $up,
                                     '--force', $made[1]);
    is($status, 0, 'with --force, the second backup is restored over it')
        or diag $err;
    ok(!-e "$up/images/AAAAAAAAAAAAAAAA.png", 'the stray file is gone');
    my %want = manifest($made[1]);
    is_deeply({ rows_of($t2->pg, $R) }, \%want,
              'the rows are the second backup\'s');

    ($status, undef, $err) = restore('--db', $R, '--upload-dir', $up, $b3);
    isnt($status, 0, 'a restored target is not empty either');
    ($status, undef, $err) = restore('--db', $R, '--upload-dir', $up,
                                     '--force', $b3);
    is($status, 0, 'the third backup with --force replaces it') or diag $err;
    is_deeply([ sort(files_in($up)) ], [ sort keys %live ],
              'the upload dir holds exactly the third backup\'s files');
};

subtest 'the restored stack has every row, file and byte' => sub {
    my %rows = rows_of($t2->pg, $R);
    is_deeply(\%rows, \%live, 'the rows are those of the original stack');
    my @bad = grep { !-f "$up/$_" || sha256_hex(slurp("$up/$_")) . ' '
                                     . -s "$up/$_" ne $rows{$_} }
              sort keys %rows;
    is_deeply(\@bad, [], 'every file on disk is byte-exact: SHA-256 and '
              . 'size as its row says');
    is_deeply([ BulletDrop::Stack::fsck_report(pg => $t2->pg,
                                               conninfo => $R,
                                               upload_dir => $up) ],
              [], 'fsck finds nothing');

    $t2->start_nginx(db => $R, upload_dir => $up, files => 1,
                     registration => 'open', workers => 2);
    # the rows are the original's: usage from one snapshot for both tables
    served_and_counted($t2, $R, \%rows);
    my $res = $t2->upload($alice->{key}, 'after.png', sample('png', 1234));
    is($res->{status}, 201, 'and takes a new upload');
};

# ---- damaged, partial and crashed backups -----------------------------------

subtest 'a damaged or partial backup is refused and the target is untouched'
        => sub {
    $t2->pg->create_app_db(name => 'victim');
    my $V = $t2->pg->conninfo(dbname => 'victim', user => 'victim');
    my $vdir = $t2->dir . '/victim';
    my $n = 0;
    my ($some) = sort keys %live;

    my @cases = (
        [ 'a changed byte in a file', sub {
              my $f = "$_[0]/files/$some";
              my $data = slurp($f);
              substr($data, 100, 1) = chr(ord(substr $data, 100, 1) ^ 1);
              spew($f, $data) },
          qr/\Q$some\E has SHA-256 [0-9a-f]{64}, not [0-9a-f]{64}/ ],
        [ 'a truncated dump', sub {
              truncate "$_[0]/db.dump", (-s "$_[0]/db.dump") / 2 or die },
          qr/db\.dump is \d+ bytes, not \d+/ ],
        [ 'a missing file', sub { unlink "$_[0]/files/$some" or die },
          qr/\Q$some\E is missing/ ],
        [ 'a file no row names', sub {
              spew("$_[0]/files/other/BBBBBBBBBBBBBBBB.mp4", 'x') },
          qr/other\/BBBBBBBBBBBBBBBB\.mp4 is in no manifest line/ ],
        [ 'a manifest line changed', sub {
              my $m = slurp("$_[0]/MANIFEST");
              $m =~ s/^([0-9a-f])/$1 eq '0' ? '1' : '0'/e;
              spew("$_[0]/MANIFEST", $m) },
          qr/MANIFEST has SHA-256/ ],
        [ 'no BACKUP marker (partial)', sub { unlink "$_[0]/BACKUP" or die },
          qr/is not a complete backup: it has no BACKUP marker/ ],
    );

    for my $case (@cases) {
        my ($what, $damage, $says) = @$case;
        my $copy = $t2->dir . '/damaged-' . $n++;
        # a copy of its own (the backup's files are the live inodes)
        run_cmd(['cp', '-r', $b3, $copy]);
        $damage->($copy);
        my ($status, undef, $err) = restore('--db', $V, '--upload-dir', $vdir,
                                            $copy);
        is($status >> 8, 1, "$what: refused, exit status 1");
        like($err, $says, "$what: it says what is wrong");
        like($err, qr/(?:damaged\ \(\d+\ problems?\)|no\ BACKUP\ marker.*)
                      ;\ nothing\ was\ restored/x,
             "$what: and that nothing was restored");
        is(tables_in($t2->pg, $V), 0, "$what: the database is untouched");
        is_deeply([ files_in($vdir) ], [], "$what: no file was copied");
    }
};

subtest 'a backup killed mid-way leaves nothing that looks complete' => sub {
    my @before = backups_in($root);

    # a lock pg_dump waits on: the backup is caught inside its dump
    my $holder = fork // die "fork: $!";
    if (!$holder) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        $ENV{PGAPPNAME} = 'bd-092-lock';
        { exec 'psql', '-X', '-q', '-d', $t->pg->conninfo, '-c',
               'BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; '
               . 'SELECT pg_sleep(60); COMMIT;' }
        POSIX::_exit(127);
    }
    my $activity = sub {
        $t->pg->psql("SELECT count(*) FROM pg_stat_activity WHERE $_[0]",
                     dbname => 'postgres', user => 'postgres')->[0][0];
    };
    ok(wait_until(sub { $activity->("application_name = 'bd-092-lock' "
                                    . "AND query LIKE '%pg_sleep%'") }, 10),
       'a session holds the users table');

    my $pid = fork // die "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec $BACKUP, '--db', $t->pg->conninfo, '--upload-dir',
               $t->upload_dir, '--root', $root, '--keep', 2 }
        POSIX::_exit(127);
    }
    ok(wait_until(sub { $activity->("application_name = 'bulletdrop-backup' "
                                    . "AND wait_event_type = 'Lock'") }, 30),
       'the backup\'s pg_dump waits for it');
    my ($partial) = glob("$root/.partial-*");
    ok($partial && -d $partial, 'its work is under .partial-<name>');

    kill 'KILL', -$pid;
    waitpid $pid, 0;
    $t->pg->psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 . "WHERE application_name = 'bd-092-lock'",
                 dbname => 'postgres', user => 'postgres');
    waitpid $holder, 0;

    is_deeply([ backups_in($root) ], \@before,
              'killed: no new backup among the complete ones');
    my ($status, undef, $err) = restore('--verify-only', $partial);
    isnt($status, 0, 'restoring what it left is refused');
    like($err, qr/no BACKUP marker/, 'as not a complete backup');

    my ($s, $out, $e) = backup('--root', $root, '--keep', 2);
    is($s, 0, 'the next backup succeeds') or diag $e;
    like($e, qr/removing \Q$partial\E, left by a backup that did not finish/,
         'and removes what the killed one left');
    ok(!-e $partial, 'which is gone');
    is(scalar(backups_in($root)), 2, 'two complete backups, as kept');
};

# ---- the push --------------------------------------------------------------

subtest 'an rclone remote gets the files and each kept backup' => sub {
    plan skip_all => 'no rclone (make deps installs it)'
        unless grep { -x "$_/rclone" } split /:/, $ENV{PATH};

    # a local-filesystem remote, named as an S3 one would be
    my $remote_dir = $t->dir . '/remote';
    spew($t->dir . '/rclone.conf', "[offsite]\ntype = local\n");
    local $ENV{RCLONE_CONFIG} = $t->dir . '/rclone.conf';
    my $remote = "offsite:$remote_dir/bulletdrop";
    my $proot = $t->dir . '/pushed';

    my @pushed;
    for my $round (1 .. 3) {
        # changes between the backups: new files, and one gone
        upload_one($alice, 5000 + $round) for 1 .. 2;
        my ($victim) = map { $_->[0] } @{ $t->pg->psql(
            "SELECT id FROM uploads WHERE user_id = $alice->{id} LIMIT 1") };
        is($t->delete("/api/uploads/$victim", token => $alice->{key})
             ->{status}, 204, "round $round: an upload deleted");
        my ($status, $out, $err) = backup('--root', $proot, '--keep', 2,
                                          '--rclone-remote', $remote);
        is($status, 0, "round $round: backup and push succeed") or diag $err;
        like($err, qr/pushed \S+ to \Q$remote\E/, "round $round: it says so");
        push @pushed, (split /\n/, $out)[-1];
    }

    my @kept = map { s{.*/}{}r } backups_in($proot);
    opendir my $dh, "$remote_dir/bulletdrop/backups";
    is_deeply([ sort grep { !/\A\./ } readdir $dh ], \@kept,
              'the remote holds the two kept backups, no more');
    my %union = map { manifest("$proot/$_") } @kept;
    is_deeply([ sort(files_in("$remote_dir/bulletdrop/files")) ],
              [ sort keys %union ],
              'and exactly the files they name');
    for my $name (@kept) {
        for my $f (qw(BACKUP MANIFEST db.dump)) {
            is(sha256_hex(slurp("$remote_dir/bulletdrop/backups/$name/$f")),
               sha256_hex(slurp("$proot/$name/$f")), "$name/$f pushed whole");
        }
    }
    my @bad = grep { sha256_hex(slurp("$remote_dir/bulletdrop/files/$_"))
                     . ' ' . -s "$remote_dir/bulletdrop/files/$_"
                     ne $union{$_} } sort keys %union;
    is_deeply(\@bad, [], 'every pushed file is byte-exact');

    # fetched back as the README says, it is a whole backup
    my $name = $kept[-1];
    my $back = $t->dir . "/fetched/$name";
    run_cmd(['rclone', 'copy', "$remote/backups/$name", $back]);
    spew($t->dir . '/fetch-list',
         join '', map { "$_\n" } sort keys %{{ manifest($back) }});
    run_cmd(['rclone', 'copy', '--files-from-raw', $t->dir . '/fetch-list',
             "$remote/files", "$back/files"]);
    my ($status, undef, $err) = restore('--verify-only', $back);
    is($status, 0, 'a backup fetched back from the remote is whole')
        or diag $err;
};

subtest 'a row whose file is lost: from the previous backup, or no '
        . 'backup' => sub {
    my $lroot = $t->dir . '/lost';
    my ($status, $out, $err) = backup('--root', $lroot);
    is($status, 0, 'a first backup, with every file') or diag $err;
    my ($rel) = sort keys %{{ rows_of($t->pg) }};
    my $file = $t->upload_dir . "/$rel";
    my $keep = slurp($file);
    unlink $file or die "unlink $file: $!";

    ($status, $out, $err) = backup('--root', $lroot);
    is($status, 0, 'the next backup succeeds') or diag $err;
    my $dir = $t->upload_dir;
    like($err, qr/\Q1 rows had no file in $dir (deleted meanwhile, or lost: \E
                  \Qmake fsck tells); their files came from the previous \E
                  \Qbackup: $rel\E/x,
         'and says the file came from the previous one');
    my ($b) = reverse backups_in($lroot);
    is_deeply(info($b)->{not_in_live_tree}, [ $rel ],
              'its BACKUP names it');
    is(sha256_hex(slurp("$b/files/$rel")), (split / /, $live{$rel})[0],
       'with the bytes its row says');

    my @before = backups_in($root);
    ($status, $out, $err) = backup('--root', $t->dir . '/lost-first',
                                   '--retries', 2);
    is($status >> 8, 1, 'without a previous backup, it fails: exit '
       . 'status 1');
    like($err, qr/snapshot 1: 1 rows lose their files/,
         'after a second snapshot');
    like($err, qr/\Q1 upload rows have no file in $dir, not because \E
                  \Qof a delete under way (make fsck lists them): $rel; \E
                  \Qno backup was made\E/x, 'and names the row');
    is_deeply([ backups_in($t->dir . '/lost-first') ], [],
              'nothing that looks like a backup is there');

    spew($file, $keep);
};

# ---- rows due for the sweep ----------------------------------------------------

subtest 'rows due for the sweep need no file; none is kept; the restore '
        . 'sweeps their rows, usage refunded' => sub {
    my $droot = $t->dir . '/due';
    my $dir = $t->upload_dir;

    # an upload of alice's with limits, as ShareX sends one: its path
    my $limited = sub {
        my ($name, $data, @headers) = @_;
        my $res = $t->upload($alice->{key}, $name, $data, as => 'raw',
                             headers => \@headers);
        die "upload $name: $res->{status} $res->{body}"
            unless $res->{status} == 201;
        return $t->pg->psql("SELECT category || '/' || id || '.' || ext "
                            . "FROM uploads WHERE id = '$res->{json}{id}'")
                 ->[0][0];
    };
    my $row = sub {
        $t->pg->psql('SELECT views, expires_at <= now() FROM uploads '
                     . "WHERE category || '/' || id || '.' || ext = '$_[0]'")
          ->[0] // [];
    };

    # burn after read, in a backup while it still had its view
    my $burn = $limited->('burn.png', sample('png', 4000, "burn-$$"),
                          'X-BulletDrop-Max-Views' => 1);
    my ($status, $out, $err) = backup('--root', $droot);
    is($status, 0, 'a backup while the burn-after-read file is unseen')
        or diag $err;
    my ($before) = backups_in($droot);
    my %had = manifest($before);
    ok($had{$burn} && -f "$before/files/$burn", 'it has the file');

    is($t->request('GET', "/static/$burn", host => 'img.localhost')
         ->{status}, 200, 'the burn-after-read file is viewed once');
    ok(wait_until(sub { !-e "$dir/$burn" }, 5),
       'the worker removes its file at once');
    is_deeply($row->($burn), [1, ''], 'its row stays, 1 view of 1, until '
              . 'the sweep');

    # expired: one whose file the sweep took (file first, row next), one
    # the sweep has not come to
    my $swept = $limited->('swept.txt', "swept\n" x 300,
                           'X-BulletDrop-Expires' => '1s');
    my $expired = $limited->('expired.pdf', sample('pdf', 2000, "exp-$$"),
                             'X-BulletDrop-Expires' => '1s');
    ok(wait_until(sub { ($row->($swept)->[1] // '') eq 't'
                        && ($row->($expired)->[1] // '') eq 't' }, 10),
       'two uploads expire');
    unlink "$dir/$swept" or die "unlink $dir/$swept: $!";
    ok(-f "$dir/$expired", 'one of them still has its file');

    my @due = sort($burn, $swept, $expired);
    my %all = rows_of($t->pg);
    my %want = %all;
    delete @want{@due};
    my %due_rows = map { ($_ => $all{$_}) } @due;

    # onto the previous backup (which has the burnt file), and with none
    my @made_due;
    for my $case (['onto a previous backup', $droot],
                  ['with no previous backup', $t->dir . '/due-first',
                   '--retries', 1]) {
        my ($what, $r, @opts) = @$case;
        ($status, $out, $err) = backup('--root', $r, @opts);
        is($status, 0, "$what: the backup succeeds") or diag $err;
        my $b = (backups_in($r))[-1];
        push @made_due, $b;
        is(info($b)->{snapshot_attempts}, 1, "$what: on its first snapshot "
           . '(BACKUP says 1 attempt)');
        like($err, qr/\(\d+ upload rows; snapshot 1 of \d+\)/,
             "$what: the output says snapshot 1");
        unlike($err, qr/rows lose their files/, "$what: no retry");
        like($err, qr/3 rows were due for the sweep at the snapshot/,
             "$what: it says 3 rows were due for the sweep");
        is_deeply(info($b)->{not_in_live_tree}, [],
                  "$what: no file taken from a previous backup");
        my %m = manifest($b);
        is_deeply(\%m, \%want, "$what: its manifest is every other row");
        is_deeply([ grep { -e "$b/files/$_" } @due ], [],
                  "$what: none of their files is in it");
        is_deeply({ map { my @f = split /\t/; ($f[2] => "$f[0] $f[1]") }
                    split /\n/, slurp("$b/DUE") }, \%due_rows,
                  "$what: DUE lists the three rows");
        is(info($b)->{due}{rows}, 3, "$what: BACKUP counts them");
        my ($st, undef, $e) = restore('--verify-only', $b);
        is($st, 0, "$what: --verify-only finds it whole") or diag $e;
    }

    # onto a fresh database and upload dir
    $t2->pg->create_app_db(name => 'due');
    my $D = $t2->pg->conninfo(dbname => 'due', user => 'due');
    my $dup = $t2->dir . '/due-uploads';
    my $usage = sub {
        $t2->pg->psql('SELECT user_id, sum(files), sum(bytes) FROM usage '
                      . 'GROUP BY 1 ORDER BY 1', conninfo => $D);
    };
    ($status, undef, $err) = restore('--db', $D, '--upload-dir', $dup,
                                     $made_due[0]);
    is($status, 0, 'the backup is restored') or diag $err;
    like($err, qr/removed the 3 rows that were due for the sweep/,
         'and says it removed the 3 rows due for the sweep');
    my %rows = rows_of($t2->pg, $D);
    is_deeply(\%rows, \%want, 'the rows due are gone; every other row is '
              . 'there');
    is_deeply([ sort(files_in($dup)) ], [ sort keys %want ],
              'the upload dir holds exactly their files');
    my @bad = grep { sha256_hex(slurp("$dup/$_")) . ' ' . -s "$dup/$_"
                     ne $rows{$_} } sort keys %rows;
    is_deeply(\@bad, [], 'byte-exact');
    is_deeply([ BulletDrop::Stack::fsck_report(pg => $t2->pg,
                                               conninfo => $D,
                                               upload_dir => $dup) ],
              [], 'fsck finds nothing');
    my %sum;
    for my $rel (keys %want) {
        my ($id) = $rel =~ m{/([^.]+)\.};
        my ($user, $size) = @{ $t->pg->psql(
            "SELECT user_id, size FROM uploads WHERE id = '$id'")->[0] };
        $sum{$user}[0]++;
        $sum{$user}[1] += $size;
    }
    is_deeply($usage->(),
              [ map { [ $_, @{ $sum{$_} } ] } sort { $a <=> $b } keys %sum ],
              'the usage table: each user\'s files and bytes are those of '
              . 'the rows left (the due ones refunded)');

    $t2->restart_nginx(db => $D, upload_dir => $dup, files => 1,
                       registration => 'open', workers => 2,
                       sweep_interval => '1h');
    served_and_counted($t2, $D, \%rows);
    is_deeply([ map { $t2->request('GET', "/static/$_", host => 'img.localhost')
                        ->{status} } @due ], [ 404, 404, 404 ],
              'the rows due are not served there');
};

# ---- as the systemd unit runs it ---------------------------------------------

subtest 'the shipped units pass systemd-analyze; the environment alone '
        . 'configures a backup' => sub {
    my $units = "$top/docs/systemd";
    my $env_file = "$units/bulletdrop-backup.env";
    my %env = map { /\A(\w+)="?(.*?)"?\z/ ? ($1 => $2) : () }
              grep { /\A\w+=/ } split /\n/, slurp($env_file);
    is_deeply([ sort keys %env ],
              [ qw(BULLETDROP_BACKUP_KEEP BULLETDROP_BACKUP_ROOT
                   BULLETDROP_DB BULLETDROP_UPLOAD_DIR) ],
              'the example environment file sets the four settings');

    # the units as installed, but with this tree's script and settings
    my $dir = $t->dir . '/units';
    make_path($dir);
    my $ours = $t->dir . '/backup.env';
    spew($ours, "BULLETDROP_DB=" . $t->pg->conninfo . "\n"
                . "BULLETDROP_UPLOAD_DIR=" . $t->upload_dir . "\n"
                . "BULLETDROP_BACKUP_ROOT=" . $t->dir . "/env-backups\n"
                . "BULLETDROP_BACKUP_KEEP=1\n");
    my $service = slurp("$units/bulletdrop-backup.service");
    like($service, qr{^ExecStart=/usr/bin/bulletdrop-backup$}m,
         'the service runs the installed script');
    like($service, qr{^EnvironmentFile=/etc/default/bulletdrop-backup$}m,
         'configured by /etc/default/bulletdrop-backup');
    $service =~ s{^ExecStart=\S+}{ExecStart=$BACKUP}m;
    $service =~ s{^EnvironmentFile=\S+}{EnvironmentFile=$ours}m;
    spew("$dir/bulletdrop-backup.service", $service);
    spew("$dir/bulletdrop-backup.timer",
         slurp("$units/bulletdrop-backup.timer"));

    SKIP: {
        skip 'no systemd-analyze', 1
            unless -x '/usr/bin/systemd-analyze';
        my ($status, $out, $err) = run_cmd(
            ['systemd-analyze', 'verify', '--man=no',
             "$dir/bulletdrop-backup.service",
             "$dir/bulletdrop-backup.timer"], check => 0);
        is("$status $out$err", '0 ', 'systemd-analyze verify finds nothing '
           . 'wrong with the service and the timer');
    }

    # what systemd does: the file's variables, the script without options
    local @ENV{ keys %env };
    for (split /\n/, slurp($ours)) {
        my ($k, $v) = split /=/, $_, 2;
        $ENV{$k} = $v;
    }
    my ($status, $out, $err) = run_cmd([$BACKUP], check => 0);
    is($status, 0, 'bulletdrop-backup with no options, configured by the '
       . 'environment, succeeds') or diag $err;
    ($status, $out, $err) = run_cmd([$BACKUP], check => 0);
    is($status, 0, 'twice') or diag $err;
    is(scalar(backups_in($t->dir . '/env-backups')), 1,
       'and BULLETDROP_BACKUP_KEEP=1 keeps one');
};

# ---- make restore and make backup ----------------------------------------

subtest 'make restore onto an empty run dir; make fsck; make backup' => sub {
    my $run = $t->dir . '/run';
    local $ENV{BULLETDROP_RUN_DIR} = $run;
    local $ENV{BULLETDROP_BACKUP_ROOT} = $t->dir . '/run-backups';

    my ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'restore',
                                        "BACKUP=$b3"], check => 0);
    is($status, 0, 'make restore BACKUP=... succeeds') or diag "$out$err";
    is_deeply([ sort(files_in("$run/uploads")) ], [ sort keys %live ],
              'the run dir\'s uploads/ has the backup\'s files');

    ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'fsck'],
                                    check => 0);
    is($status, 0, 'make fsck is clean') or diag "$out$err";
    like($err, qr/every upload has its file and every file its upload/,
         'and says so');

    ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'restore',
                                     "BACKUP=$b3"], check => 0);
    isnt($status, 0, 'a second make restore onto it is refused');
    like($err, qr/the target is not empty/, 'as not empty');

    ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'backup'],
                                    check => 0);
    is($status, 0, 'make backup of the restored run dir succeeds')
        or diag "$out$err";
    my ($mine) = backups_in($ENV{BULLETDROP_BACKUP_ROOT});
    is(slurp("$mine/MANIFEST"), slurp("$b3/MANIFEST"),
       'its manifest is the one it was restored from');
    ok(!BulletDrop::Pg->new(dir => "$run/pg")->running,
       'the run dir\'s PostgreSQL is stopped again');
};

done_testing;
