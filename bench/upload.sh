#!/bin/bash
# BulletDrop upload benchmark: wrk against a throwaway BulletDrop stack and,
# in the same run, against nginx's own DAV PUT of the same bytes; then
# worker RSS during 32 parallel 50 MB uploads.  See bench/README.md.
#
#   bench/upload.sh                       # the whole run, about 2 minutes
#   BENCH_DURATION=30 bench/upload.sh     # settings: see bench/upload.pl
#
# Needs root or sudo for apt-get when wrk is missing.  Talks to 127.0.0.1
# only, and leaves nothing running or on disk.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$top"
exec perl "$top/bench/upload.pl" "$@"
