#!/usr/bin/env bash
# Builds, without pulling anything, the three base images that Dockerfile and
# docker-compose.yml name: debian:bookworm-slim (a minimal Debian root made with
# debootstrap from this machine's Debian mirror, loaded with `docker import`), postgres:15
# (PostgreSQL 15 from Debian's packages, with an entry point that does what the official
# image's does for the variables the compose file uses) and rust:1-bookworm (this machine's
# Rust toolchain). An image that already exists is kept; FORCE=1 rebuilds all three.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${BASE_IMAGES_DIR:-/var/tmp/switchyard-base-images}"

have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

# The mirror this machine installs from (deb822 sources or a sources.list line).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null \
        | grep -v security | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_debian() {
  have debian:bookworm-slim && return
  local root="$work/root"
  rm -rf "$root" && mkdir -p "$work"
  echo "base-images: debootstrap bookworm from $(debian_mirror)"
  debootstrap --variant=minbase bookworm "$root" "$(debian_mirror)" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log"; exit 1; }
  # Trim it the way the slim image is trimmed: no docs, man pages, locales or apt caches.
  rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/cache/apt/* \
         "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$root"
}

build_postgres() {
  have postgres:15 && return
  echo "base-images: postgres:15 (Debian's postgresql-15)"
  docker build -q -t postgres:15 "$here/postgres" >/dev/null
}

# The toolchain rustc runs from, without its documentation, under /usr/local/rust, and the
# extra CA certificates this machine trusts (a TLS-inspecting egress proxy's, say), so that
# cargo inside the build reaches crates.io as it does here.
build_rust() {
  have rust:1-bookworm && return
  local sysroot
  sysroot="$(rustc --print sysroot)"
  echo "base-images: rust:1-bookworm ($(rustc --version))"
  local cas="$work/extra-ca"
  rm -rf "$cas" && mkdir -p "$cas"
  cp /usr/local/share/ca-certificates/*.crt "$cas/" 2>/dev/null || true
  tar -c -C "$here/rust" Dockerfile -C "$work" extra-ca \
      -C "$sysroot" --exclude=share/doc --exclude=share/man \
      --transform 's,^\(bin\|lib\|libexec\|etc\|share\),toolchain/\1,' \
      bin lib libexec etc share \
    | docker build -q -t rust:1-bookworm - >/dev/null
}

build_debian
build_postgres
build_rust
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -E '^(debian:bookworm-slim|postgres:15|rust:1-bookworm) '
