#!/bin/bash
# BulletDrop serving benchmark: wrk GETs of a 300 KB and a 5 MB file from a
# throwaway BulletDrop stack, permanent, expiring and with a view limit,
# each against the same nginx serving the same file from a plain alias.
# See bench/README.md.
#
#   bench/serve.sh                        # the whole run, about 4.5 minutes
#   BENCH_DURATION=20 bench/serve.sh      # settings: see bench/serve.pl
#
# Needs root or sudo for apt-get when wrk is missing.  Talks to 127.0.0.1
# only, and leaves nothing running or on disk.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$top"
exec perl "$top/bench/serve.pl" "$@"
