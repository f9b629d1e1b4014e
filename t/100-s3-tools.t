#!/usr/bin/perl
# A server moves its files into a bucket and keeps every link.  A node
# that stored its uploads locally (a few files, one expiring, one
# view-limited, one burnt after reading) is copied into a Ceph RGW bucket
# by `bulletdrop-s3 migrate`, while it keeps serving; the same database is
# then served by an nginx with bulletdrop_storage s3, and every old link
# answers byte for byte with the same Content-Type and Content-Disposition
# as before.  The objects carry the headers the module itself gives the
# objects it uploads (the Perl rules are the C ones: checked against
# bd_deliver.c for many names, and against the module's own objects).  A
# second migrate copies nothing; `bulletdrop-s3 fsck` finds the bucket
# clean, then exactly an orphan object, a missing object and a stale
# multipart upload, and --repair fixes the two it can; `make fsck` uses
# it when nginx's configuration stores in S3.  A backup from the bucket
# restores into a fresh bucket and database with byte-identical objects.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();

use BulletDrop::RGW;
use BulletDrop::S3;
use BulletDrop::Stack;
use BulletDrop::Test qw(sample wait_until);
use BulletDrop::Util qw(top_dir run_cmd slurp spew);

my $top = top_dir();
my $S3TOOL = "$top/bin/bulletdrop-s3";
my $BACKUP = "$top/bin/bulletdrop-backup";
my $RESTORE = "$top/bin/bulletdrop-restore";

my $t = BulletDrop::Test->new;
my $rgw = BulletDrop::RGW->new(dir => $t->dir . '/rgw');
$rgw->make_bucket('bd-live');
my $s3 = $rgw->s3(bucket => 'bd-live');
my @bucket = ('--endpoint', $rgw->endpoint, '--bucket', 'bd-live',
              '--credentials', $rgw->credentials_file);

# a sweep far away: rows due for it stay, as they do for up to a minute
my %common = (registration => 'open', files => 1, workers => 2,
              sweep_interval => '1h',
              allowed_extensions => '.jpg .png .pdf .txt .md .csv .bin');
$t->start_nginx(%common);
$t->add_domains('img.localhost');
my $alice = $t->new_user('alice', key => 1);
my $dir = $t->upload_dir;

# ---- helpers ----------------------------------------------------------

# bulletdrop-s3 with the bucket's options: (status, stdout, stderr)
sub s3tool {
    my (@args) = @_;
    my ($status, $out, $err) = run_cmd([$S3TOOL, @bucket, @args], check => 0);
    return ($status >> 8, $out, $err);
}

# an upload of alice's (headers: X-BulletDrop-*): its path
sub upload {
    my ($name, $data, @headers) = @_;
    my $res = $t->upload($alice->{key}, $name, $data, as => 'raw',
                         headers => \@headers);
    die "upload $name: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    return $t->pg->psql("SELECT category || '/' || id || '.' || ext "
                        . "FROM uploads WHERE id = '$res->{json}{id}'")
             ->[0][0];
}

# a link's answer on the file domain: "status sha256 size | type | disposition"
sub served {
    my ($rel) = @_;
    my $res = $t->request('GET', "/static/$rel", host => 'img.localhost');
    return join ' | ', "$res->{status} " . sha256_hex($res->{body}) . ' '
                       . length($res->{body}),
                       $res->{headers}{'content-type'} // '-',
                       $res->{headers}{'content-disposition'} // '-';
}

# the live rows: path => "sha256 size"
sub rows {
    return map { ("$_->[0]/$_->[1].$_->[2]" => "$_->[4] $_->[3]") }
           @{ $t->pg->psql('SELECT category, id, ext, size, sha256 '
                           . 'FROM uploads', @_) };
}

# a bucket's objects: key => "sha256 size | type | disposition"
sub objects {
    my ($client) = @_;
    my %o;
    for my $obj ($client->list) {
        my $res = $client->get($obj->{key});
        die "get $obj->{key}: " . $client->error($res)
            unless $res->{success};
        $o{ $obj->{key} } = join ' | ',
            sha256_hex($res->{content}) . ' ' . length $res->{content},
            $res->{headers}{'content-type'} // '-',
            $res->{headers}{'content-disposition'} // '-';
    }
    return %o;
}

# ---- the local node ---------------------------------------------------

my %kept;    # path => what the local node answered for it
my %name = (
    png  => 'shot 1.png',
    txt  => "rapport \"été\" 100%.txt",
    pdf  => 'invoice.pdf',
    bin  => "données\\brutes.bin",
    md   => 'notes.md',
);
for my $ext (sort keys %name) {
    my $data = $ext =~ /^(?:txt|md)\z/ ? "une ligne\n" x 200
             : sample($ext, 3000 + length $ext);
    my $rel = upload($name{$ext}, $data);
    $kept{$rel} = served($rel);
}
my $expiring = upload('soon.png', sample('png', 2500, 'soon'),
                      'X-BulletDrop-Expires' => '1h');
$kept{$expiring} = served($expiring);
my $limited = upload('few.jpg', sample('jpg', 2600, 'few'),
                     'X-BulletDrop-Max-Views' => 5);
$kept{$limited} = served($limited);
# burnt after reading: the row stays until the sweep, its file is gone
my $burnt = upload('burn.png', sample('png', 2700, 'burn'),
                   'X-BulletDrop-Max-Views' => 1);
like(served($burnt), qr/^200 /, 'a burn-after-read file is viewed');
ok(wait_until(sub { !-e "$dir/$burnt" }, 5), 'and its file goes at once');
# a file without a row (a crashed upload's)
spew("$dir/images/AAAAAAAAAAAAAAAA.png", sample('png', 1000, 'stray'));

like($kept{$_}, qr/^200 /, "the local node serves $_") for sort keys %kept;

subtest 'the module\'s rules for objects\' headers are the Perl tool\'s '
        . '(bd_deliver.c, compiled)' => sub {
    my $c = $t->dir . '/deliver-dump.c';
    spew($c, <<'EOF');
#include <stdio.h>
#include <string.h>
#include "bd_deliver.h"
/* lines "ext<TAB>hexname" in; "type<TAB>disposition" out */
int main(void) {
    char line[2048], ext[64], name[600], out[2048];
    while (fgets(line, sizeof line, stdin)) {
        char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
        size_t n = 0, i;
        bd_deliver_type_t t;
        if (!tab || !nl) return 1;
        *tab = *nl = '\0';
        strcpy(ext, line);
        for (i = 0; tab[1 + 2 * i] && tab[2 + 2 * i]; i++) {
            unsigned v; sscanf(tab + 1 + 2 * i, "%2x", &v); name[n++] = (char) v;
        }
        bd_deliver_type(ext, strlen(ext), &t);
        bd_deliver_disposition(t.inline_ok, name, n, out, sizeof out);
        printf("%s\t%s\n", t.content_type, out);
    }
    return 0;
}
EOF
    my $bin = $t->dir . '/deliver-dump';
    run_cmd([$ENV{CC} // 'cc', '-std=c99', '-I', "$top/src", '-o', $bin, $c,
             "$top/src/bd_deliver.c", "$top/src/bd_text.c"], quiet => 1);
    srand 17;
    my @exts = (qw(png jpg jpeg gif webp avif bmp ico mp4 webm mov m4v ogv
                   mkv pdf txt md json html htm svg xml js css sh bin zip
                   exe dat tar gz docx x), '');
    my @pieces = ('a', 'Z', '9', ' ', '"', '\\', '%', ';', "'", '*', '(',
                  '~', "\t", "\x7f", 'é', 'ü', '日本', '😀', "\xff", "\xc3",
                  '.', '-', '_', '#', '$', '&', '+', '^', '`', '|', '!');
    my (@in, @names);
    for my $i (1 .. 400) {
        # (bytes: the pieces are the UTF-8 of this file, and stray bytes)
        my $name = join '', map { $pieces[rand @pieces] } 1 .. 1 + int rand 12;
        push @names, [ $exts[rand @exts], $name ];
    }
    my $out = run_cmd([$bin], capture => 1, stdin => join '', map {
        "$_->[0]\t" . unpack('H*', $_->[1]) . "\n" } @names);
    my @c = split /\n/, $out;
    my @bad;
    for my $i (0 .. $#names) {
        my $h = BulletDrop::S3::object_headers(@{ $names[$i] });
        my $perl = "$h->{'content-type'}\t$h->{'content-disposition'}";
        push @bad, "$names[$i][0] " . unpack('H*', $names[$i][1])
                   . ": C '$c[$i]', Perl '$perl'" if $perl ne ($c[$i] // '');
    }
    is(scalar @c, scalar @names, 'the C program answered every name');
    is_deeply(\@bad, [], '400 random names and extensions: the same headers');
};

# ---- migrate ----------------------------------------------------------

subtest 'a dry run says what it would copy, and copies nothing' => sub {
    my ($status, $out, $err) = s3tool('migrate', '--db', $t->pg->conninfo,
                                      '--upload-dir', $dir, '--dry-run');
    is($status, 0, 'exit 0') or diag $err;
    is(scalar(() = $out =~ /^would put /mg), scalar keys %kept,
       'one line for each live row') or diag $out;
    like($err, qr/dry run: 8 rows: 7 to copy .* 1 due for the sweep/,
         'the summary');
    is_deeply([ $s3->list ], [], 'the bucket is still empty');
};

subtest 'migrate copies every live row\'s file, with the module\'s headers, '
        . 'and reports the file without a row' => sub {
    my ($status, $out, $err) = s3tool('migrate', '--db', $t->pg->conninfo,
                                      '--upload-dir', $dir);
    is($status, 0, 'exit 0') or diag "$out\n$err";
    like($err, qr/8 rows: 7 copied \(\d+ bytes\), 0 already in the bucket, 1 due for the sweep \(not copied\), 0 deleted meanwhile, 0 failed; 1 files without a row/,
         'the summary says so');
    like($out, qr{^no upload for file \(not copied\): \Q$dir\E/images/AAAAAAAAAAAAAAAA\.png$}m,
         'the file without a row is named');
    my %o = objects($s3);
    is_deeply([ sort keys %o ], [ sort keys %kept ],
              'the bucket holds exactly the live rows\' objects');
    my %rows = rows();
    is_deeply({ map { ($_ => (split / \| /, $o{$_})[0]) } keys %o },
              { map { ($_ => $rows{$_}) } keys %o },
              'byte for byte their rows\' SHA-256 and size');
    is_deeply({ map { ($_ => join ' | ', (split / \| /, $o{$_})[1, 2]) } keys %o },
              { map { ($_ => join ' | ', (split / \| /, $kept{$_})[1, 2]) } keys %o },
              'each object\'s Content-Type and Content-Disposition are what '
              . 'the local node served');
};

# an upload that lands locally between the two runs
my $late = upload('late arrival.txt', "arrived late\n" x 50);
$kept{$late} = served($late);

# ---- the switch -------------------------------------------------------

my $s3conf = { endpoint => $rgw->endpoint, bucket => 'bd-live',
               credentials => $rgw->credentials_file };
$t->restart_nginx(%common, s3 => $s3conf);

subtest 'switched to the bucket, migrate again copies what came in between'
        => sub {
    my ($status, $out, $err) = s3tool('migrate', '--db', $t->pg->conninfo,
                                      '--upload-dir', $dir);
    is($status, 0, 'exit 0') or diag $err;
    # (the burnt row may be swept by now: the new nginx sweeps at start)
    like($err, qr/[89] rows: 1 copied \(\d+ bytes\), 7 already in the bucket/,
         'one copied, the rest already there');

    ($status, $out, $err) = s3tool('migrate', '--db', $t->pg->conninfo,
                                   '--upload-dir', $dir);
    is($status, 0, 'a third run: exit 0');
    like($err, qr/[89] rows: 0 copied \(0 bytes\), 8 already in the bucket/,
         'and nothing to copy');
};

subtest 'every old link is served from the bucket, byte for byte, with the '
        . 'same headers' => sub {
    # the local files go away: what is served comes from the bucket
    mkdir "$dir.old" or die "mkdir $dir.old: $!";
    for my $c (qw(images documents other)) {
        rename "$dir/$c", "$dir.old/$c" or die "rename $dir/$c: $!";
    }
    for my $rel (sort keys %kept) {
        is(served($rel), $kept{$rel}, "$rel");
    }
    like(served($burnt), qr/^404 /, 'the burnt file stays gone');
};

subtest 'objects the module uploads carry the headers the tool computes'
        => sub {
    my @names = ('new "one" 50%.png', 'résumé.pdf', 'plain.bin', 'table.csv',
                 "tab\there.txt");
    for my $n (@names) {
        my ($ext) = $n =~ /\.(\w+)\z/;
        my $rel = upload($n, $ext =~ /^(?:txt|csv)\z/ ? "hi,1\n"
                             : sample($ext, 1500, $n));
        my $res = $s3->head($rel);
        my ($row) = @{ $t->pg->psql("SELECT encode(convert_to(name, 'UTF8'), "
            . "'hex'), ext FROM uploads WHERE category || '/' || id || '.' "
            . "|| ext = '$rel'") };
        my $want = BulletDrop::S3::object_headers($row->[1],
                                                  pack 'H*', $row->[0]);
        is(($res->{headers}{'content-type'} // '-') . ' | '
           . ($res->{headers}{'content-disposition'} // '-'),
           "$want->{'content-type'} | $want->{'content-disposition'}",
           "the module's object for '$n'");
    }
};

# ---- fsck -------------------------------------------------------------

sub fsck { s3tool('fsck', '--db', $t->pg->conninfo, @_) }

subtest 'fsck: the migrated bucket is clean' => sub {
    my ($status, $out, $err) = fsck();
    is($status, 0, 'exit 0') or diag "$out\n$err";
    is($out, '', 'nothing listed');
    like($err, qr/: clean$/m, 'and says so');
};

my ($victim) = grep { m{^images/} } sort keys %kept;
my $orphan = 'documents/BBBBBBBBBBBBBBBB.txt';
my $upload_id;

subtest 'fsck lists exactly an orphan object, a missing object and a stale '
        . 'multipart upload' => sub {
    ok($s3->put($orphan, content => "no row\n")->{success}, 'an orphan');
    ok($s3->delete($victim)->{success}, "a row's object deleted: $victim");
    $upload_id = $s3->begin_multipart('other/CCCCCCCCCCCCCCCC.zip');
    ok($upload_id, 'a multipart upload begun, never completed');

    my ($status, $out, $err) = fsck();
    is($status, 1, 'within the grace period: exit 1');
    my $id = ($victim =~ m{/(.{16})\.})[0];
    is($out, "no object for upload $id (user $alice->{id}, alice): $victim\n",
       'only the missing object: the other two may be uploads under way');
    like($err, qr/2 objects or multipart uploads without a row are younger/,
         'which it counts');

    ($status, $out, $err) = fsck('--grace', '0');
    is($status, 1, '--grace 0: exit 1');
    my @lines = split /\n/, $out;
    is(scalar @lines, 3, 'three problems') or diag $out;
    is($lines[0], "no object for upload $id (user $alice->{id}, alice): "
       . $victim, 'the missing object');
    like($lines[1], qr{^no upload for object: \Q$orphan\E \(7 bytes, },
         'the orphan');
    like($lines[2], qr{^incomplete multipart upload: other/CCCCCCCCCCCCCCCC\.zip \(upload id \Q$upload_id\E, begun },
         'the multipart upload');
};

subtest 'fsck --repair aborts the upload and deletes the orphan; the '
        . 'missing object is for migrate or a backup' => sub {
    my ($status, $out, $err) = fsck('--grace', '0', '--repair');
    is($status, 1, 'exit 1: the missing object is left') or diag $err;
    like($out, qr/^aborted multipart upload \Q$upload_id\E/m, 'aborted');
    like($out, qr/^deleted \Q$orphan\E$/m, 'deleted');
    is_deeply([ $s3->multipart_uploads ], [], 'no multipart upload left');
    ok(!$s3->head($orphan)->{success}, 'the orphan is gone');

    # the old tree still has the file: migrate puts it back
    ($status, $out, $err) = s3tool('migrate', '--db', $t->pg->conninfo,
                                   '--upload-dir', "$dir.old");
    is($status, 0, 'migrate from the old tree') or diag $err;
    like($err, qr/: 1 copied/, 'copies the missing object back');
    ($status, $out, $err) = fsck('--grace', '0');
    is($status, 0, 'fsck is clean again') or diag "$out\n$err";
};

subtest 'make fsck checks the bucket when nginx stores in S3' => sub {
    # the fixture's directory is laid out as a run dir: pg/, nginx/
    local $ENV{BULLETDROP_RUN_DIR} = $t->dir;
    my $make_fsck = sub {
        my ($status, $out, $err) = run_cmd(['make', '-s', '-C', $top, 'fsck'],
                                           check => 0);
        return ($status >> 8, "$out$err");
    };
    my ($status, $out) = $make_fsck->();
    is($status, 0, 'clean') or diag $out;
    like($out, qr/bulletdrop-s3: .* in bd-live: clean/, 'said by bulletdrop-s3');
    ok($s3->delete($victim)->{success}, 'an object deleted');
    ($status, $out) = $make_fsck->();
    isnt($status, 0, 'then not clean');
    like($out, qr/no object for upload .*\Q$victim\E/, 'and names it');
    s3tool('migrate', '--db', $t->pg->conninfo, '--upload-dir', "$dir.old");
};

# ---- backup and restore -------------------------------------------------

subtest 'a backup from the bucket restores into a fresh bucket, byte for '
        . 'byte' => sub {
    my $root = $t->dir . '/backups';
    my ($status, $out, $err) = run_cmd([$BACKUP, '--db', $t->pg->conninfo,
        '--root', $root, @bucket], check => 0);
    is($status, 0, 'the backup is made') or diag $err;
    chomp(my $b = $out);
    like($err, qr/downloaded from bucket bd-live/, 'from the bucket');
    my %rows = rows();
    my %manifest = map { my @f = split /\t/; ($f[2] => "$f[0] $f[1]") }
                   split /\n/, slurp("$b/MANIFEST");
    delete $rows{$burnt};
    is_deeply(\%manifest, \%rows, 'its manifest is the live rows');
    my %files = map { ($_ => sha256_hex(slurp("$b/files/$_")) . ' '
                             . -s "$b/files/$_") } keys %manifest;
    is_deeply(\%files, \%manifest, 'its files are theirs');
    my $info = JSON::PP->new->decode(slurp("$b/BACKUP"));
    is($info->{store}{bucket}, 'bd-live', 'BACKUP names the bucket');
    is($info->{files_from}{downloaded}, scalar keys %manifest,
       'every file downloaded');

    ($status, undef, $err) = run_cmd([$BACKUP, '--db', $t->pg->conninfo,
        '--root', $root, @bucket], check => 0);
    is($status, 0, 'a second backup') or diag $err;
    like($err, qr/\d+ linked from the previous backup, 0 downloaded/,
         'links the first one\'s files, downloads nothing');

    $t->pg->create_app_db(name => 'restored');
    my $R = $t->pg->conninfo(dbname => 'restored', user => 'restored');
    my @fresh = ('--endpoint', $rgw->endpoint, '--bucket', 'bd-fresh',
                 '--credentials', $rgw->credentials_file);
    ($status, undef, $err) = run_cmd([$RESTORE, '--db', $R, @fresh, $b],
                                     check => 0);
    is($status, 0, 'restored into a new bucket') or diag $err;
    my $fresh = $rgw->s3(bucket => 'bd-fresh');
    my %live = objects($s3);
    my %new = objects($fresh);
    is_deeply(\%new, \%live, 'the same objects, bytes and headers');

    ($status, undef, $err) = run_cmd([$RESTORE, '--db', $R, @fresh, $b],
                                     check => 0);
    is($status >> 8, 1, 'a second restore is refused');
    like($err, qr/the bucket bd-fresh has \d+ objects/, 'the bucket is not '
         . 'empty');

    ($status, my $fout, $err) = run_cmd([$S3TOOL, @fresh, 'fsck', '--db', $R,
                                         '--grace', '0'], check => 0);
    is($status, 0, 'the restored pair is fsck-clean') or diag "$fout\n$err";
};

done_testing;
