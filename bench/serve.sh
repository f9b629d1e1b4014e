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

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sudo=$([ "$(id -u)" = 0 ] || echo sudo)

if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk"
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends wrk \
    || { $sudo apt-get update -q &&
         $sudo env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends wrk; }
fi

for tool in curl perl; do
    command -v $tool >/dev/null || { echo "bench: $tool is missing" \
        "(make deps installs it)" >&2; exit 1; }
done

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    make -s -C "$top" >/dev/null
fi

cd "$top"
exec perl "$top/bench/serve.pl" "$@"
