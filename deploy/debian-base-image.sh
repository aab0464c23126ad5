#!/usr/bin/env bash
# debian-base-image.sh -- makes the Dockerfile's base images, debian:12 and debian:12-slim, in the
# local podman store from the Debian archive (debootstrap, minbase), for machines that reach
# Debian's mirror but no container registry. Elsewhere `docker pull debian:12` does the same.
#
#   deploy/debian-base-image.sh [MIRROR]     (root; needs the Debian packages podman and debootstrap)
set -eu
MIRROR=${1:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$MIRROR"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/debian:12
podman tag localhost/debian:12 localhost/debian:12-slim
podman images localhost/debian
