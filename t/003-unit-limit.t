#!/usr/bin/perl
# The login failure limiter's table (src/bd_limit.c), tested in C.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('limit', 'src/bd_limit.c');
