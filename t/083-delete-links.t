#!/usr/bin/perl
# Delete links, as ShareX keeps them: each upload answers a delete_url,
# /d/<token>, that works with no other credential.  Opened in a browser
# (GET) it shows what would go and a Delete button, and deletes nothing;
# the button's POST deletes the file, its row and its share of the owner's
# usage.  A used, wrong or malformed link is a 404; every page at /d/ is
# kept out of caches, frames and Referer headers.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use MIME::Base64 qw(encode_base64url);

use BulletDrop::Test qw(is_error is_upload sample wait_until);

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', db_pool => 1);

my $alice = $t->new_user('alice', key => 1);
my $bob = $t->new_user('bob', key => 1);

my $NAME = q{<b>&"x'.png};
my $BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,'
            . '*/*;q=0.8';
my %SEALED = (
    'cache-control' => 'no-store',
    'referrer-policy' => 'no-referrer',
    'x-frame-options' => 'DENY',
    'x-content-type-options' => 'nosniff',
    'content-security-policy' => "default-src 'none'; style-src "
        . "'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
);

sub upload_ok {
    my ($key, $name, $data) = @_;
    my $res = $t->upload($key, $name, $data, as => 'raw');
    die "upload $name: $res->{status} $res->{body}"
        unless $res->{status} == 201;
    return $res->{json};
}

# the path of a record's link: its delete_url's, or its url's
sub link_path { path_of($_[0]{delete_url}) }
sub file_path { path_of($_[0]{url}) }
sub path_of   { ($_[0] // '') =~ m{\Ahttp://[^/]+(/.*)\z} ? $1 : undef }
sub static    { $t->get(file_path($_[0])) }
sub me        { $t->get('/api/users/me', token => $_[0])->{json} }

sub rows_of {
    return $t->pg->query('SELECT count(*) FROM uploads WHERE id = '
                         . BulletDrop::Pg::quote($_[0]{id}))->[0][0];
}

# One check that an answer is an HTML page of /d/ with the status given,
# sealed by the headers of %SEALED
sub is_page {
    my ($res, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %got = (status => $res->{status},
               type => $res->{headers}{'content-type'},
               map { $_ => $res->{headers}{$_} } keys %SEALED);
    my $ok = is_deeply(\%got, { status => $status,
                                type => 'text/html; charset=utf-8',
                                %SEALED }, $name);
    diag("the answer was: $res->{status} " . substr($res->{body}, 0, 300))
        unless $ok;
    return $ok;
}

my $png = sample('png', 1536);
my $shot = upload_ok($alice->{key}, $NAME, $png);
my $notes = upload_ok($alice->{key}, 'notes.txt', sample('txt', 100));
my $kept = upload_ok($bob->{key}, 'kept.png', sample('png', 2000));

subtest 'each upload answers an absolute link to /d/<token>' => sub {
    is_upload($shot, { name => $NAME }, 'a record with a delete_url');
    like($shot->{delete_url}, qr{\Ahttp://localhost/d/[A-Za-z0-9_-]{32}\z},
         'http://<the API host>/d/ and 32 base64url characters');
    my ($token) = link_path($shot) =~ m{\A/d/(.*)\z};
    is($t->row('SELECT delete_token_hash FROM uploads WHERE id = '
               . BulletDrop::Pg::quote($shot->{id}), 'hash')->{hash},
       sha256_hex($token // ''), 'stored as its SHA-256 only');
    isnt(link_path($notes), link_path($shot), 'each upload has its own');
};

subtest 'GET shows what would go, escaped, and a form that posts' => sub {
    my $res = $t->get(link_path($shot));
    is_page($res, 200, 'a sealed page, 200, with no Authorization');
    my $body = $res->{body};
    like($body, qr/\A<!DOCTYPE html>/, 'a whole document');
    like($body, qr/&lt;b&gt;&amp;&quot;x&#39;\.png/, 'the name, escaped');
    unlike($body, qr/<b>|&"|"x'/, 'never raw');
    like($body, qr/\b1\.5 KiB\b/, 'the size, in human units');
    like($body, qr/\Q$shot->{created_at}\E/, 'the upload time');
    like($body, qr/\Q$shot->{url}\E/, 'the file\'s link');
    is(scalar(() = $body =~ /<form\b/g), 1, 'one form');
    like($body, qr/<form method="post">/,
         'posting back to this URL (no action)');
    like($body, qr{<button type="submit">Delete</button>}, 'one button');
    is_error($t->get(link_path($shot), host => 'x"y'), 400, 'invalid_host',
             'a Host that cannot make the page\'s link: 400');
};

subtest 'GET again and HEAD delete nothing' => sub {
    is($t->get(link_path($shot))->{status}, 200, 'GET again: 200');
    my $res = $t->request('HEAD', link_path($shot));
    is_page($res, 200, 'HEAD: the same sealed head');
    is($res->{body}, '', 'with no body');
    ok(-f $t->stored_path($shot), 'the file stays');
    is(static($shot)->{body}, $png, 'served as ever');
    is(rows_of($shot), 1, 'the row stays');
    is_deeply(me($alice->{key})->{usage}, { bytes => 1636, files => 2 },
              'the usage counts it still');
};

subtest 'POST from a browser deletes, and says so in HTML' => sub {
    my $res = $t->post(link_path($shot), body => '',
                       headers => [ Accept => $BROWSER, 'Content-Type' =>
                                    'application/x-www-form-urlencoded' ]);
    is_page($res, 200, 'a sealed page, 200, with no Authorization');
    like($res->{body}, qr/&lt;b&gt;&amp;&quot;x&#39;\.png was deleted/,
         'naming the file, escaped');
    ok(!-e $t->stored_path($shot), 'the file is gone');
    is(static($shot)->{status}, 404, 'its link answers 404');
    is(rows_of($shot), 0, 'the row is gone');
    is_deeply(me($alice->{key})->{usage}, { bytes => 100, files => 1 },
              'Alice\'s usage lost its 1536 bytes and one file');
};

subtest 'POST from a script answers JSON' => sub {
    my $res = $t->post(link_path($notes));
    is($res->{status}, 200, '200, with no Authorization');
    is($res->{headers}{'content-type'}, 'application/json', 'JSON');
    is($res->{headers}{'cache-control'}, 'no-store', 'not cached');
    is_deeply($res->{json}, { deleted => JSON::PP::true, id => $notes->{id} },
              '{"deleted": true, "id": ...}');
    ok(!-e $t->stored_path($notes), 'the file is gone');
    is(rows_of($notes), 0, 'the row is gone');
    is_deeply(me($alice->{key})->{usage}, { bytes => 0, files => 0 },
              'Alice\'s usage is back to nothing');
};

subtest 'a used link is a 404, as JSON or as a page' => sub {
    for my $method ('GET', 'POST') {
        is_error($t->request($method, link_path($shot)), 404, 'not_found',
                 "$method: 404 not_found");
        my $res = $t->request($method, link_path($shot),
                              headers => [ Accept => $BROWSER ]);
        is_page($res, 404, "$method from a browser: a sealed 404 page");
        like($res->{body}, qr/wrong, or it was already used/,
             'saying the link is used up');
    }
    ok(-f $t->stored_path($kept), 'Bob\'s file is untouched');
    is_deeply(me($bob->{key})->{usage}, { bytes => 2000, files => 1 },
              'and so is his usage');
};

subtest 'a link used by six clients at once: one is told it deleted' => sub {
    my $racer = upload_ok($alice->{key}, 'race.png', sample('png', 1000));
    my @res = $t->http->parallel(map { ['POST', link_path($racer)] } 1 .. 6);
    my %by;
    $by{ $_->{status} }++ for @res;

    is_deeply(\%by, { 200 => 1, 404 => 5 }, 'one 200, five 404');
    is(rows_of($racer), 0, 'the row is gone');
    my @lines = $t->nginx->log_text
                =~ /upload "\Q$racer->{id}\E" deleted by its delete link/g;
    is(scalar @lines, 1, 'and the log says it once');
};

my @malformed = ('short', 'A' x 31, 'A' x 65, ('A' x 31) . '.',
                 ('A' x 31) . '%21', ('A' x 30) . '%C3%A9',
                 ('A' x 31) . '=');

subtest 'a wrong link is a 404 and deletes nothing' => sub {
    my $random = '/d/' . encode_base64url(join '', map { chr rand 256 }
                                                   1 .. 24);
    for my $path ($random, map { "/d/$_" } @malformed) {
        is_error($t->get($path), 404, 'not_found', "GET $path: 404");
        is_error($t->post($path), 404, 'not_found', "POST $path: 404");
    }
    is_error($t->get('/d/'), 404, 'not_found', '/d/ alone: 404');
    ok(-f $t->stored_path($kept), 'Bob\'s file is still there');
    is(rows_of($kept), 1, 'and its row');
};

subtest 'the database down: 503, and the link works once it is up' => sub {
    my $path = link_path($kept);

    $t->pg->stop;
    is_error($t->get($path), 503, 'database_unavailable', 'GET: 503');
    is_error($t->post($path), 503, 'database_unavailable', 'POST: 503');
    is_error($t->post($path, headers => [ Accept => $BROWSER ]), 503,
             'database_unavailable', 'POST from a browser: 503 JSON too');
    is(scalar(grep { $t->get("/d/$_")->{status} == 404 } @malformed),
       scalar @malformed, 'malformed links: 404 without asking it');
    ok(-f $t->stored_path($kept), 'the file is left alone');
    $t->pg->start;

    ok(wait_until(sub { $t->get('/api/health')->{status} == 200 }, 15),
       'the database is back');
    is($t->get($path)->{status}, 200, 'GET: the page');
    is($t->post($path)->{status}, 200, 'POST: deleted');
    ok(!-e $t->stored_path($kept), 'the file is gone');
    is(rows_of($kept), 0, 'and its row');
};

done_testing;
