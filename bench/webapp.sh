#!/bin/bash
# BulletDrop web app benchmark: the gallery's first load with 100 files,
# in Debian's chromium, against the stack `make run` starts.  About a
# minute.  See bench/README.md.
#
#   bench/webapp.sh               # 7 cold loads
#   BD_RUNS=20 bench/webapp.sh
#
# Talks to 127.0.0.1 only, and leaves nothing running or on disk.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cd "$top"
make -s www >/dev/null
exec perl "$top/bench/webapp.pl" "$@"
