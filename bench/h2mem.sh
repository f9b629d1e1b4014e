#!/bin/bash
# BulletDrop worker memory per 50 MB upload over HTTP/2 with TLS, against
# HTTP/1.1 with TLS: one worker, N parallel curl uploads, /proc sampled
# every 50 ms.  See the header of bench/h2mem.pl and bench/README.md.
#
#   bench/h2mem.sh                        # the whole run, under 2 minutes
#   BENCH_COUNTS=4 bench/h2mem.sh         # settings: see bench/h2mem.pl
#
# Talks to 127.0.0.1 only, and leaves nothing running or on disk.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$top"
exec perl "$top/bench/h2mem.pl" "$@"
