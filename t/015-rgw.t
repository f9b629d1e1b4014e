#!/usr/bin/perl
# The S3 server of the storage tests and the client every Perl tool uses:
# a throwaway Ceph RGW comes up on loopback and checks every signature
# (a wrong secret, a payload other than the one signed: refused), objects
# go in and come out byte for byte (from files on disk, path and
# virtual-host style, through the library and the command), the gateway
# can be made slow or absent and comes back, and when it is stopped
# nothing of it remains.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use Digest::MD5 ();
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

use BulletDrop::RGW;
use BulletDrop::S3;
use BulletDrop::Util qw(top_dir run_cmd slurp spew);

my $dir = tempdir('bulletdrop-test-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{BULLETDROP_KEEP});

my $rgw = BulletDrop::RGW->new(dir => "$dir/rgw");
note(sprintf 'RGW up in %.2f s, daemons %d MB RSS', $rgw->startup_time,
     $rgw->rss / 1024);

sub file_digest { Digest::SHA->new(256)->addfile($_[0], 'b')->hexdigest }

# files of random bytes, written to disk
my %file;
for ([small => 1024], [large => 8 << 20]) {
    my ($name, $size) = @$_;
    open my $in, '<:raw', '/dev/urandom' or die $!;
    my $bytes;
    read $in, $bytes, $size;
    spew("$dir/$name", $bytes);
    $file{$name} = { path => "$dir/$name", size => $size,
                     sha256 => sha256_hex($bytes),
                     md5 => Digest::MD5::md5_hex($bytes) };
}

subtest 'the signatures are those of AWS\'s own SigV4 examples' => sub {
    # docs.aws.amazon.com, "Signature calculations for the Authorization
    # header": example credentials, 20130524T000000Z, us-east-1
    my %c = (access_key => 'AKIAIOSFODNN7EXAMPLE',
             secret => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
             region => 'us-east-1', date => '20130524T000000Z');
    my $host = 'examplebucket.s3.amazonaws.com';
    my $empty = sha256_hex('');
    my %base = (host => $host, 'x-amz-content-sha256' => $empty,
                'x-amz-date' => $c{date});
    my $sig = sub { (BulletDrop::S3::sign(%c, @_) =~ /Signature=(\w+)/)[0] };

    is($sig->(method => 'GET', path => '/test.txt', payload_hash => $empty,
              headers => { %base, range => 'bytes=0-9' }),
       'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
       'GET Object');
    my $put = sha256_hex('Welcome to Amazon S3.');
    is($sig->(method => 'PUT',
              path => '/' . BulletDrop::S3::uri_encode('test$file.text', 1),
              payload_hash => $put,
              headers => { %base, 'x-amz-content-sha256' => $put,
                           date => 'Fri, 24 May 2013 00:00:00 GMT',
                           'x-amz-storage-class' => 'REDUCED_REDUNDANCY' }),
       '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
       'PUT Object (a key with $ in it)');
    is($sig->(method => 'GET', path => '/', query => { lifecycle => '' },
              payload_hash => $empty, headers => \%base),
       'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
       'GET Bucket lifecycle (a query name without a value)');
    is($sig->(method => 'GET', path => '/', payload_hash => $empty,
              query => { prefix => 'J', 'max-keys' => 2 }, headers => \%base),
       '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
       'GET Bucket, two query parameters sorted');
    is(BulletDrop::S3::uri_encode("a b/c+d~ü", 1), 'a%20b/c%2Bd~%C3%BC',
       'keys: unreserved bytes and / kept, the rest %XX of their UTF-8');
};

my $s3 = $rgw->s3(bucket => 'bd-test');

subtest 'a bucket is made, once' => sub {
    ok(eval { $rgw->make_bucket('bd-test'); 1 }, 'made') or diag($@);
    ok(eval { $s3->make_bucket }, 'made again: it is ours already')
        or diag($@);
    is_deeply([ $s3->list ], [], 'and empty');
};

subtest 'files go in and come out byte for byte' => sub {
    for my $f (@file{qw(small large)}) {
        my $key = "images/$f->{size} bytes.bin";
        my $res = $s3->put($key, file => $f->{path});
        is($res->{status}, 200, "PUT $f->{size} bytes from a file")
            or diag($s3->error($res));

        $res = $s3->get($key, file => "$dir/out");
        is($res->{status}, 200, 'GET to a file');
        is(file_digest("$dir/out"), $f->{sha256}, 'the same bytes');

        $res = $s3->head($key);
        is($res->{headers}{'content-length'}, $f->{size}, 'HEAD: its size');
        is($res->{headers}{etag}, qq("$f->{md5}"), 'and its MD5 as ETag');
    }

    my $res = $s3->get('images/1024 bytes.bin',
                       headers => { Range => 'bytes=100-109' });
    is($res->{status}, 206, 'a range is answered 206');
    is($res->{content}, substr(slurp($file{small}{path}), 100, 10),
       'with those 10 bytes');

    my @list = $s3->list(prefix => 'images/');
    is_deeply([ map { "$_->{size} $_->{key} $_->{etag}" } @list ],
              [ "1024 images/1024 bytes.bin $file{small}{md5}",
                "8388608 images/8388608 bytes.bin $file{large}{md5}" ],
              'both listed, with sizes and ETags');
    is(scalar $s3->list(prefix => 'images/', max_keys => 1), 2,
       'a list over pages of one key has both');
    is(scalar $s3->list(prefix => 'other/'), 0, 'another prefix: none');

    for my $key (map { $_->{key} } @list) {
        is($s3->delete($key)->{status}, 204, "DELETE $key");
        is($s3->head($key)->{status}, 404, 'then HEAD: 404');
    }
    is(scalar $s3->list, 0, 'the bucket is empty again');
    is($s3->delete('never-there')->{status}, 204,
       'deleting what is not there is no error');
};

subtest 'virtual-host style names the bucket in the host' => sub {
    my $v = $rgw->s3(bucket => 'bd-test', style => 'virtual');
    my $res = $v->put('v.txt', content => "virtual\n");
    is($res->{status}, 200, 'PUT');
    like($res->{url}, qr{^http://bd-test\.localhost:\d+/v\.txt$},
         'to http://bd-test.localhost:PORT/v.txt');
    is($s3->get('v.txt')->{content}, "virtual\n",
       'the same object in path style');
    $s3->delete('v.txt');
};

subtest 'the command puts, lists, gets, heads and removes' => sub {
    local $ENV{BULLETDROP_S3_ENDPOINT} = $rgw->endpoint;
    local $ENV{BULLETDROP_S3_BUCKET} = 'bd-test';
    local $ENV{BULLETDROP_S3_CREDENTIALS} = $rgw->credentials_file;
    my @cmd = ($^X, top_dir() . '/bin/bulletdrop-s3');

    my ($status, $out, $err) = run_cmd([ @cmd, 'put', 'cli/a b.bin',
                                         $file{small}{path} ], check => 0);
    is($status, 0, 'put exits 0') or diag($err);
    ($status, $out) = run_cmd([ @cmd, 'ls', 'cli/' ], check => 0);
    is($out, "1024\tcli/a b.bin\n", 'ls: size<TAB>key');
    ($status, $out) = run_cmd([ @cmd, 'get', 'cli/a b.bin' ], check => 0);
    is(sha256_hex($out), $file{small}{sha256}, 'get to standard output');
    ($status, $out) = run_cmd([ @cmd, 'head', 'cli/a b.bin' ], check => 0);
    like($out, qr/^content-length: 1024$/m, 'head: the size');
    ($status, $out, $err) = run_cmd([ @cmd, 'get', 'cli/none' ], check => 0);
    is($status >> 8, 1, 'get of a missing key exits 1');
    like($err, qr/404 NoSuchKey/, 'saying what the store answered');
    ($status) = run_cmd([ @cmd, 'rm', 'cli/a b.bin' ], check => 0);
    is($status, 0, 'rm exits 0');
    ($status, $out) = run_cmd([ @cmd, 'ls' ], check => 0);
    is($out, '', 'nothing left');
    ($status) = run_cmd([ @cmd, 'put', 'only-a-key' ], check => 0);
    is($status >> 8, 2, 'a usage error exits 2');
};

subtest 'the credentials file is read as AWS writes it' => sub {
    my $path = $rgw->credentials_file;
    is((stat $path)[2] & 07777, 0600, 'mode 0600');
    is_deeply([ BulletDrop::S3::read_credentials($path) ],
              [ $rgw->access_key, $rgw->secret ], 'key and secret');

    spew("$dir/creds", "# comment\n; another\naws_access_key_id=AK1\r\n"
         . "region = x\n[other]\naws_access_key_id = AK2\n[default]\n"
         . "  aws_secret_access_key =  S/K+1  \n");
    is_deeply([ BulletDrop::S3::read_credentials("$dir/creds") ],
              [ 'AK1', 'S/K+1' ], 'comments, CRLF, other sections and '
              . 'keys, keys before any section');

    spew("$dir/creds", "aws_access_key_id = AK\naws_secret_access_key = "
         . "TOPSECRET\naws_secret_access_key = TOPSECRET2\n");
    ok(!eval { BulletDrop::S3::read_credentials("$dir/creds"); 1 },
       'a key given twice is refused');
    unlike($@, qr/TOPSECRET/, 'without showing the secret');
};

subtest 'a request signed with another secret is refused' => sub {
    my $bad = $rgw->s3(bucket => 'bd-test', secret => 'not-the-secret');
    my $res = $bad->put('forged', content => 'x');
    is($res->{status}, 403, 'PUT: 403');
    like($bad->error($res), qr/^403 SignatureDoesNotMatch/,
         'SignatureDoesNotMatch');
    is($bad->get('forged')->{status}, 403, 'GET: 403');
    is($s3->head('forged')->{status}, 404, 'nothing was stored');
};

subtest 'a payload other than the one signed is refused' => sub {
    my $res = $s3->put('tampered', content => 'the real bytes',
        headers => { 'x-amz-content-sha256' => sha256_hex('other bytes') });
    is($res->{status}, 400, 'a signed hash of other bytes: 400');
    like($s3->error($res), qr/XAmzContentSHA256Mismatch/,
         'XAmzContentSHA256Mismatch');
    is($s3->head('tampered')->{status}, 404, 'nothing was stored');

    $res = $s3->put('unsigned', content => 'bytes', unsigned_payload => 1);
    is($res->{status}, 200, 'UNSIGNED-PAYLOAD is accepted');
    $s3->delete('unsigned');
};

subtest 'a paused gateway holds requests, and answers once resumed' => sub {
    my $slow = $rgw->s3(bucket => 'bd-test', timeout => 1);
    $rgw->pause;
    my $t0 = time;
    my $res = $slow->head('anything');
    is($res->{status}, 599, 'paused: no answer');
    like($res->{content}, qr/timed out/i, 'the request timed out');
    cmp_ok(time - $t0, '>=', 0.9, 'after the client\'s 1 s');
    $rgw->resume;
    is($slow->head('anything')->{status}, 404, 'resumed: it answers');
};

subtest 'a stopped gateway refuses connections, and comes back' => sub {
    $s3->put('kept', content => 'kept');
    $rgw->stop_gateway;
    my $res = $s3->get('kept');
    is($res->{status}, 599, 'stopped: no answer');
    like($res->{content}, qr/refused/i, 'the connection is refused');

    my $t0 = time;
    $rgw->start_gateway;
    note(sprintf 'gateway back in %.2f s', time - $t0);
    $res = $s3->get('kept');
    is($res->{status}, 200, 'started again on the same port: it answers');
    is($res->{content}, 'kept', 'with what it stored before');
};

subtest 'stopped, nothing of it remains' => sub {
    my %pids = %{ $rgw->pids };
    is_deeply([ sort keys %pids ], [ qw(mon osd rgw watchdog) ],
              'it ran a monitor, an OSD, radosgw and a watchdog');
    $rgw->stop;
    is_deeply([ grep { kill 0, $_ } values %pids ], [],
              'none of those processes is left');
    my $res = $s3->head('kept');
    is($res->{status}, 599, 'the port answers no more');
};

done_testing;
