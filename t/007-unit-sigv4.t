#!/usr/bin/perl
# AWS Signature Version 4 for object storage, and the values read from its
# XML answers (src/bd_sigv4.c), tested in C: AWS's published examples, a
# request of our own signed with the openssl command, URI encoding, bounds.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";

use BulletDrop::Unit qw(run_unit);

run_unit('sigv4', [ 'src/bd_sigv4.c' ], libs => [ '-lcrypto' ]);
