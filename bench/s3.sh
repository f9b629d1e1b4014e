#!/bin/bash
# BulletDrop with its files in an S3 bucket (bulletdrop_storage s3), against
# the same store through a plain nginx proxy_pass: upload and serve
# throughput, and worker memory per concurrent 50 MB upload, all against
# one throwaway Ceph RGW on loopback.  Prints figures; no targets.  See
# bench/README.md ("S3 storage benchmark") and the header of bench/s3.pl.
#
#   bench/s3.sh                           # the whole run, about 5 minutes
#   BENCH_SKIP=serve,memory bench/s3.sh   # settings: see bench/s3.pl
#
# Needs Ceph's monitor, OSD and radosgw (make deps), and root or sudo for
# apt-get when wrk is missing.  Talks to 127.0.0.1 only, and leaves nothing
# running or on disk.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$top"
exec perl "$top/bench/s3.pl" "$@"
