#!/usr/bin/perl
# Text rules for untrusted input (src/bd_text.c), tested in C.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('text', 'src/bd_text.c');
