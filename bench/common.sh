# Sourced by the bench/*.sh wrappers: sets $top (the project's top
# directory), installs wrk if it is missing, checks for the other tools and
# runs make (unless BENCH_NO_BUILD is set).

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
