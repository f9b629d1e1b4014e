#!/usr/bin/perl
# The web app against the production site's rate limit on uploads: nginx's
# limit_req zone of nginx-conf/bulletdrop.conf (2 r/s, burst 5, keyed on
# POST /api/uploads), its 429 answered by bulletdrop_error_page.  Debian's
# chromium drops ten files at once (www/test/ratelimit.mjs): the app waits
# as Retry-After says and sends the refused ones again, and every file
# arrives.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

use BulletDrop::Test qw(browser_scenario);
use BulletDrop::Util qw(top_dir slurp);

my $top = top_dir();
my $chromium = '/usr/bin/chromium';
for my $need ("$top/www/dist/index.html",
              "$top/www/node_modules/playwright-core", $chromium) {
    plan skip_all => "$need is missing (make deps www)" unless -e $need;
}

# the zone's key as the site has it
my ($map) = slurp("$top/nginx-conf/bulletdrop.conf")
    =~ /^(map "\$request_method:\$uri" \$bulletdrop_upload_client \{.*?^\})/ms
    or BAIL_OUT('no upload map in nginx-conf/bulletdrop.conf');

my $http = <<"EOF";
    include /etc/nginx/mime.types;
$map
    limit_req_zone \$bulletdrop_upload_client zone=bulletdrop_uploads:1m
                   rate=2r/s;
    limit_req_status 429;
    limit_req_log_level warn;
EOF

my $server = <<"EOF";
        error_page 429 /_bulletdrop/error;

        location = /_bulletdrop/error {
            internal;
            bulletdrop_error_page retry_after=1s;
        }

        location /api/ {
            limit_req zone=bulletdrop_uploads burst=5 nodelay;
            bulletdrop_api;
        }

        location /static/ {
            root \@PREFIX\@/html;
        }

        root $top/www/dist;
        include $top/nginx-conf/webapp.conf;
EOF

my $t = BulletDrop::Test->new;
$t->start_nginx(registration => 'open', workers => 2, http => $http,
                server => $server);

browser_scenario('ratelimit.mjs', expect => 3, env => {
    BD_URL => 'http://127.0.0.1:' . $t->port, BD_CHROMIUM => $chromium,
    BD_SHOTS => $ENV{BULLETDROP_SHOTS} // "$top/build/screenshots",
    BD_WORK => $t->dir . '/work' });

like(slurp($t->nginx->error_log), qr/limiting requests/,
     'nginx\'s limit_req refused some');

done_testing;
