package BulletDrop::Migrate;

# The migrations are applied by bin/bulletdrop-migrate, the command the
# Debian package installs; `make run`, `make migrate` and the tests load
# that file as this library, so there is one implementation.  It defines:
#
#   BulletDrop::Migrate::files($dir)      the migrations of a directory
#   BulletDrop::Migrate::apply(conninfo => ..., dir => ..., log => sub)
#                                         what it applied, as "NNN_name"
#   BulletDrop::Migrate::main(@ARGV)      the command itself
#
# and dies with a message that names the migration that failed or was
# refused.

use strict;
use warnings;

use BulletDrop::Util qw(top_dir);

require(top_dir() . '/bin/bulletdrop-migrate');

1;
