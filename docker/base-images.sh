#!/bin/sh
# Build, from Debian's packages alone, the base images that docker/Dockerfile and
# docker/compose.yaml name, for sites where those images cannot be pulled (no registry, or
# none allowed). Run as root on a Debian or Ubuntu host with Docker (from the repository root):
#
#   docker/base-images.sh            # build whichever of the images is missing
#   docker/base-images.sh --force    # rebuild them all
#   docker/base-images.sh --list     # print the names it builds, and stop
#   docker/base-images.sh --mirror   # print the Debian mirror it would use, and stop
#
# 1. debootstrap --variant=minbase makes a Debian root filesystem from the Debian mirror this
#    host's apt already uses (or DEBIAN_MIRROR), and `docker import` turns it into the image
#    fairpath-debian:<suite>.
# 2. On top of it, docker/base/python.Dockerfile and docker/base/postgres.Dockerfile build
#    stand-ins under the exact names the Dockerfile (ARG PYTHON_IMAGE) and the compose file
#    (services.postgres.image) use. `docker build` and `docker compose up` then find them
#    locally and never try to pull.
#
# Their apt sources point at the same mirror, so the build stage's `apt-get install gcc` works
# there too. Images already present are kept: the script is cheap to run every time.
set -eu

cd "$(dirname "$0")"
SUITE=bookworm
BASE=fairpath-debian:$SUITE
# The names come from the files that use them, so they cannot drift apart.
PYTHON_IMAGE=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
POSTGRES_IMAGE=$(sed -n 's/^ *image: *\(postgres:[^ ]*\).*/\1/p' compose.yaml)
[ -n "$PYTHON_IMAGE" ] && [ -n "$POSTGRES_IMAGE" ] || { echo "base-images.sh: cannot read the image names" >&2; exit 2; }

force=false
mirror_only=false
case "${1:-}" in
    --list) printf '%s\n' "$BASE" "$PYTHON_IMAGE" "$POSTGRES_IMAGE"; exit 0 ;;
    --mirror) mirror_only=true ;;
    --force) force=true ;;
    "") ;;
    *) echo "usage: $0 [--force | --list | --mirror]" >&2; exit 2 ;;
esac

missing() {
    $force || ! docker image inspect "$1" > /dev/null 2>&1
}

# The Debian mirror this host's apt uses: a site's own mirror where there is one.
mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    if [ -z "$uri" ]; then
        uri=$(sed -n "s/^deb  *\(\[[^]]*\]  *\)\{0,1\}\([a-z]*:[^ ]*\)  *$SUITE .*/\2/p" /etc/apt/sources.list 2>/dev/null | head -n 1)
    fi
    if [ -z "$uri" ]; then
        echo "base-images.sh: no Debian mirror found in this host's apt sources; set DEBIAN_MIRROR" >&2
        return 1
    fi
    echo "$uri"
}

if $mirror_only; then
    mirror
    exit
fi

if missing "$BASE"; then
    command -v debootstrap > /dev/null || { echo "base-images.sh: install debootstrap first" >&2; exit 2; }
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    source=$(mirror)
    echo "debootstrap --variant=minbase $SUITE from $source"
    if ! debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$source" > "$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    fi
    # Nothing of this host in the image: docker provides hostname and DNS to each container.
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    : > "$work/rootfs/etc/resolv.conf"
    : > "$work/rootfs/etc/hostname"
    tar --numeric-owner -C "$work/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$BASE"
    rm -rf "$work"
    trap - EXIT
fi

# The two stand-ins side by side: each spends most of its time fetching and unpacking packages.
builds=""
if missing "$PYTHON_IMAGE"; then
    docker build --quiet --build-arg "BASE=$BASE" -t "$PYTHON_IMAGE" -f base/python.Dockerfile base &
    builds="$builds $!"
fi
if missing "$POSTGRES_IMAGE"; then
    docker build --quiet --build-arg "BASE=$BASE" -t "$POSTGRES_IMAGE" -f base/postgres.Dockerfile base &
    builds="$builds $!"
fi
failed=0
for build in $builds; do
    wait "$build" || failed=1
done
[ "$failed" = 0 ] || { echo "base-images.sh: a build failed" >&2; exit 1; }
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$BASE"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$PYTHON_IMAGE"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$POSTGRES_IMAGE"
