package BulletDrop::S3;

# The S3 client is bin/bulletdrop-s3, the command BulletDrop's tools and
# operators use; the tests and the other Perl tools load that file as this
# library, so there is one implementation of the signing.  It defines:
#
#   BulletDrop::S3->new(endpoint => ..., region => ..., bucket => ...,
#       access_key => ..., secret => ..., style => 'path' | 'virtual')
#   $s3->request($method, $key, query => {}, headers => {},
#       content => $bytes | file => $path, unsigned_payload => 1)
#   $s3->put / get / head / delete / list / make_bucket, $s3->error($res)
#   BulletDrop::S3::read_credentials($path)     (access key, secret)
#   BulletDrop::S3::sign(...)                   AWS Signature V4 alone
#   BulletDrop::S3::main(@ARGV)                 the command itself

use strict;
use warnings;

use BulletDrop::Util qw(top_dir);

require(top_dir() . '/bin/bulletdrop-s3');

1;
