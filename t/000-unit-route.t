#!/usr/bin/perl
# The API's method and path routing (src/bd_route.c), tested in C.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('route', 'src/bd_route.c');
