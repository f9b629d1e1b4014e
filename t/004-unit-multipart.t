#!/usr/bin/perl
# The streaming multipart/form-data parser (src/bd_multipart.c), tested in
# C: every body whole, a byte at a time and in random chunkings.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('multipart', 'src/bd_multipart.c', 'src/bd_text.c');
