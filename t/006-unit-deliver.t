#!/usr/bin/perl
# Rules for serving stored files (src/bd_deliver.c), tested in C: public
# paths, the id's limited mark, types, Content-Disposition, expiry and
# view limits, HTML escaping.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('deliver', 'src/bd_deliver.c', 'src/bd_text.c');
