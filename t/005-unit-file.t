#!/usr/bin/perl
# Rules for uploaded files (src/bd_file.c), tested in C: extensions,
# categories, magic bytes, display names.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('file', 'src/bd_file.c');
