#!/usr/bin/perl
# The API's contract, docs/openapi.yaml: a valid OpenAPI 3.1 document; the
# router's table and the document name the same routes, and the error
# table the same codes with the same statuses; the stack `make run` starts
# (nginx-conf/dev.conf with webapp.conf) serves it as /api/openapi.json
# and renders it at /docs in Debian's chromium.  (That every answer the
# suite receives matches it is checked by each test file's fixture: see
# BulletDrop::Test::check_answers, whose own refusals are tested here.)

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP ();

use BulletDrop::HTTP;
use BulletDrop::Stack;
use BulletDrop::Test qw(free_port nginx_clean);
use BulletDrop::Util qw(top_dir slurp spew run_cmd);

my $top = top_dir();
my $www = "$top/www";
my $chromium = '/usr/bin/chromium';

for my $need (["$www/dist/api/openapi.json", "run 'make www'"],
              ["$www/node_modules/\@apidevtools/swagger-parser",
               "run 'make www'"],
              [$chromium, "run 'make deps' (Debian's chromium)"]) {
    next if -e $need->[0];
    fail("$need->[0] is missing: $need->[1]");
    done_testing;
    exit;
}

my $dir = tempdir('bulletdrop-openapi-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{BULLETDROP_KEEP});
chmod 0755, $dir;

# the document as the build made it (the same YAML, parsed by npm's yaml)
my $doc = JSON::PP->new->decode(slurp("$www/dist/api/openapi.json"));
my @methods = qw(get put post delete options head patch trace);

# "METHOD /path/{}" for each operation of paths the router serves
my %documented;
for my $p (keys %{ $doc->{paths} }) {
    my $item = $doc->{paths}{$p};
    next if $item->{'x-bulletdrop-served-by'};
    (my $shape = $p) =~ s/\{[^}]+\}/{}/g;
    $documented{ uc($_) . " $shape" } = $p for grep { $item->{$_} } @methods;
}

subtest 'the document passes swagger-parser\'s validation' => sub {
    my ($status, $out, $err) = run_cmd(
        [ 'node', "$www/test/openapi-lint.mjs", "$top/docs/openapi.yaml" ],
        check => 0);
    is($status, 0, 'valid OpenAPI 3.1, every $ref resolved')
        or diag "$out$err";
    like($out, qr/\Aok: .* valid OpenAPI 3\.1\.\d+/, 'it says so');

    (my $broken = slurp("$top/docs/openapi.yaml"))
        =~ s{\$ref: '#/components/schemas/Profile'}
            {\$ref: '#/components/schemas/Profil'};
    spew("$dir/broken.yaml", $broken);
    ($status, $out) = run_cmd(
        [ 'node', "$www/test/openapi-lint.mjs", "$dir/broken.yaml" ],
        check => 0);
    isnt($status, 0, 'a $ref to nowhere is refused') or diag $out;
};

subtest 'the router\'s routes are the document\'s, both ways' => sub {
    my $c = slurp("$top/src/ngx_http_bulletdrop_api.c");
    my ($table) = $c =~ /_api_routes\[\] = \{(.*?)\n\};/s
        or return fail('no route table in ngx_http_bulletdrop_api.c');
    my %routed;
    while ($table =~ /\{ \{ BD_([A-Z]+), "([^"]+)" \}/g) {
        my ($method, $shape) = ($1, $2);
        $shape =~ s/:\w+/{}/g;
        $routed{"$method $shape"} = 1;
    }
    cmp_ok(scalar keys %routed, '>=', 29, 'the table was read: '
           . scalar(keys %routed) . ' routes');

    my @undocumented = sort grep { !$documented{$_} } keys %routed;
    my @unrouted = sort grep { !$routed{$_} } keys %documented;
    is_deeply(\@undocumented, [], 'every route is documented')
        or diag "not in docs/openapi.yaml: @undocumented";
    is_deeply(\@unrouted, [], 'every documented route is routed')
        or diag "not in the router's table: @unrouted";
};

subtest 'the error table\'s codes and statuses are the document\'s' => sub {
    my $c = slurp("$top/src/ngx_http_bulletdrop_error.c");
    my %names = (BAD_REQUEST => 400, UNAUTHORIZED => 401, FORBIDDEN => 403,
                 NOT_FOUND => 404, NOT_ALLOWED => 405, CONFLICT => 409,
                 REQUEST_ENTITY_TOO_LARGE => 413,
                 REQUEST_URI_TOO_LARGE => 414,
                 UNSUPPORTED_MEDIA_TYPE => 415,
                 RANGE_NOT_SATISFIABLE => 416, TOO_MANY_REQUESTS => 429,
                 INTERNAL_SERVER_ERROR => 500,
                 SERVICE_UNAVAILABLE => 503);
    my %table;
    while ($c =~ /bd_(?:client|server)\(\s*(NGX_HTTP_(\w+)|(\d+)),\s*
                  "([a-z_]+)"/gx) {
        my $status = defined $3 ? $3 : $names{$2}
            // return fail("a status the test does not know: $1");
        $table{$status}{$4} = 1;
    }
    cmp_ok(scalar(map { keys %$_ } values %table), '>=', 50,
           'the table was read');

    my $schemas = $doc->{components}{schemas};
    is_deeply([ sort @{ $schemas->{ErrorCode}{enum} } ],
              [ sort map { keys %$_ } values %table ],
              'ErrorCode lists every code of the table, and no other');
    for my $status (sort keys %table) {
        my $s = $schemas->{"Error$status"};
        ok($s, "Error$status is a schema") or next;
        is_deeply([ sort @{ $s->{properties}{error}{enum} } ],
                  [ sort keys %{ $table{$status} } ],
                  "Error$status has the codes that answer $status");
    }

    my ($version) = slurp("$top/src/ngx_http_bulletdrop.h")
        =~ /NGX_HTTP_BULLETDROP_VERSION\s+"([^"]+)"/;
    is($doc->{info}{version}, $version, "info.version is the module's");
};

subtest 'the answers\' check refuses what the document does not say' => sub {
    my $file = "$dir/answers.jsonl";
    my $json = JSON::PP->new->canonical;
    my @bad = (
        [ { method => 'GET', path => '/api/health', status => 200,
            type => 'application/json', json => { status => 'ok' } },
          qr{GET /api/health -> 200: .*required property 'db'} ],
        [ { method => 'GET', path => '/api/users/me', status => 418,
            type => 'application/json', json => {} },
          qr{-> 418: status 418 is not documented} ],
        [ { method => 'GET', path => '/api/uploads/abc', status => 404,
            type => 'application/json',
            json => { error => 'not_found', detail => 'x', extra => 1 } },
          qr{must NOT have additional properties} ],
        [ { method => 'POST', path => '/api/auth/login', status => 401,
            type => 'application/json',
            json => { error => 'not_found', detail => 'x' } },
          qr{must be equal to one of the allowed values} ],
        [ { method => 'PUT', path => '/api/health', status => 405,
            type => 'application/json', allow => 'GET',
            json => { error => 'method_not_allowed', detail => 'x' } },
          qr{405 with Allow "GET", the document says GET, HEAD} ],
        [ { method => 'GET', path => '/api/nope', status => 200,
            type => 'application/json', json => {} },
          qr{undocumented path answered 200} ],
        [ { method => 'GET', path => '/api/users/me/flameshot',
            status => 200, type => 'text/plain', bytes => 3 },
          qr{content type text/plain is not documented} ],
    );
    for my $case (@bad) {
        my ($answer, $want) = @$case;
        spew($file, $json->encode($answer) . "\n");
        my ($status, $out) = run_cmd(
            [ 'node', "$www/test/openapi-answers.mjs", $file ], check => 0);
        ok($status >> 8 == 1 && $out =~ $want,
           "refused: $answer->{method} $answer->{path} $answer->{status}")
            or diag $out;
    }

    spew($file, $json->encode({ method => 'GET', path => '/api/health',
                                status => 200, type => 'application/json',
                                json => { status => 'ok', db => 'ok' } })
                . "\n");
    my ($status, $out) = run_cmd(
        [ 'node', "$www/test/openapi-answers.mjs", $file ], check => 0);
    is($status, 0, 'and takes an answer it describes') or diag $out;
};

# ---- the stack `make run` starts ----------------------------------------

my $stack = BulletDrop::Stack->new(dir => $dir, port => free_port(),
                                   log => sub { note $_[0] });
$stack->up;
my $http = BulletDrop::HTTP->new(port => $stack->port);

# what this file receives from /api/ and /d/ is checked like any test's
local $BulletDrop::HTTP::RECORD = "$dir/api-answers.jsonl";

subtest 'every documented route is one the running module knows' => sub {
    for my $op (sort keys %documented) {
        my ($method, $shape) = split / /, $op, 2;
        (my $path = $shape) =~ s/\{\}/x/g;
        my $res = $http->request($method, $path,
                                 $method eq 'GET' ? () : (body => ''));
        my $router = $res->{status} == 405
            || ($res->{status} == 404 && ($res->{json}{detail} // '')
                eq 'there is no API route at this path');
        ok(!$router, "$op: $res->{status}, not the router's 404 or 405")
            or diag $res->{body};
    }
};

subtest 'GET /api/openapi.json is the document, served by nginx' => sub {
    my $res = $http->get('/api/openapi.json');
    is($res->{status}, 200, 'it answers 200');
    like($res->{headers}{'content-type'}, qr{\Aapplication/json\b},
         'application/json');
    is($res->{headers}{'x-content-type-options'}, 'nosniff', 'nosniff');
    is_deeply($res->{json}, $doc, 'the built document');
    is($res->{json}{openapi}, '3.1.0', 'OpenAPI 3.1');

    $res = $http->request('HEAD', '/api/openapi.json');
    is($res->{status}, 200, 'HEAD too');
};

subtest '/docs and its assets, with the docs\' CSP' => sub {
    for my $path ('/docs', '/docs/') {
        my $res = $http->get($path);
        is($res->{status}, 200, "$path: 200");
        like($res->{headers}{'content-type'}, qr{\Atext/html\b},
             "$path: text/html");
        like($res->{body}, qr{<div id="swagger-ui">}, "$path: the page");
        my $csp = $res->{headers}{'content-security-policy'} // '';
        like($csp, qr{script-src 'self';}, "$path: scripts only its own");
        unlike($csp, qr{script-src[^;]*unsafe}, "$path: no unsafe script");
        is($res->{headers}{'x-content-type-options'}, 'nosniff',
           "$path: nosniff");
        is($res->{headers}{'x-frame-options'}, 'DENY', "$path: no framing");
        unlike($res->{body}, qr{<script>|https?://}i,
               "$path: no inline script, nothing from elsewhere");
    }

    my %assets = ('/docs/swagger-ui-bundle.js' => qr{\A(?:application|text)/javascript\b},
                  '/docs/init.js' => qr{\A(?:application|text)/javascript\b},
                  '/docs/swagger-ui.css' => qr{\Atext/css\b});
    for my $path (sort keys %assets) {
        my $res = $http->get($path);
        is($res->{status}, 200, "$path: 200");
        like($res->{headers}{'content-type'}, $assets{$path},
             "$path: $res->{headers}{'content-type'}");
        cmp_ok(length $res->{body}, '>', 100, "$path: not empty");
    }

    is($http->get('/docs/nope.js')->{headers}{'content-type'} =~ /html/
       ? 'page' : 'other', 'page', 'an unknown name under /docs/ is the page');
};

subtest '/docs renders the API in chromium' => sub {
    my $shots = $ENV{BULLETDROP_SHOTS} // "$top/build/screenshots";
    make_path($shots, "$dir/work");
    my $ops = 0;
    for my $item (values %{ $doc->{paths} }) {
        $ops += grep { $item->{$_} } @methods;
    }
    local @ENV{qw(BD_URL BD_SHOTS BD_WORK BD_CHROMIUM BD_OPERATIONS)} =
        ($stack->url, $shots, "$dir/work", $chromium, $ops);
    my ($status, $out, $err) = run_cmd([ 'node', "$www/test/docs.mjs" ],
                                       check => 0);
    note $out;
    is($status, 0, 'docs.mjs: every step passed') or diag "$out$err";
    ok(-s "$shots/docs-1280.png", "a screenshot in $shots/docs-1280.png");
};

my $prefix = $stack->nginx->prefix;
$stack->down;
nginx_clean($prefix, 'nginx: no worker died, no alert in its log');
BulletDrop::Test::check_answers($BulletDrop::HTTP::RECORD);

done_testing;
