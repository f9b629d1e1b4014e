#!/usr/bin/perl
# Password hashing with scrypt (src/bd_password.c), tested in C.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('password', [ 'src/bd_password.c', 'src/bd_text.c' ],
         libs => [ '-lcrypto' ]);
