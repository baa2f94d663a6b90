#!/usr/bin/env bash
# Build a stand-in for python:3.11-slim where no registry is reachable: a minimal Debian made by
# debootstrap from this machine's own apt mirror, with python3, venv and pip on PATH and the
# host's CA bundle (pip inside image builds needs it), imported into the running engine.
#
#   docker/base-image.sh [TAG]      (default imdb-sentiment/base:bookworm; needs root, debootstrap)
set -euo pipefail

tag="${1:-imdb-sentiment/base:bookworm}"
suite="$(. /etc/os-release && echo "${VERSION_CODENAME}")"

# The first Debian mirror this machine's apt uses (deb822 .sources or one-line .list format).
mirror="$(
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {print $2}' || true
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | sed -nE 's/^deb (\[[^]]*\] )?([^ ]+).*/\2/p' || true
    } | grep -v -- '-security' | head -n 1 || true
)"
[ -n "${mirror}" ] || { echo "base-image: no apt mirror found in /etc/apt" >&2; exit 1; }

rootfs="$(mktemp -d)"
trap 'rm -rf "${rootfs}"' EXIT
echo "base-image: debootstrap ${suite} from ${mirror}"
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    "${suite}" "${rootfs}" "${mirror}" > "${rootfs}.log" 2>&1 \
    || { tail -n 20 "${rootfs}.log" >&2; exit 1; }
rm -f "${rootfs}.log"
cp /etc/ssl/certs/ca-certificates.crt "${rootfs}/etc/ssl/certs/ca-certificates.crt"
rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
tar -C "${rootfs}" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "${tag}" > /dev/null
echo "base-image: ${tag} ($(docker image inspect -f '{{.Size}}' "${tag}" | numfmt --to=iec))"
