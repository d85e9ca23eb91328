#!/usr/bin/env bash
# Make sure the base images the Compose stack builds on exist on this Docker engine.
#
# Uses the official images (python:3.11-slim, postgres:15) when they are present
# or can be pulled. When no registry can be reached, builds local stand-ins from
# Debian's packages instead (debootstrap, then `docker import`) and uses those.
# Idempotent: an image that exists is never rebuilt. Writes the names to use to
# .stamps/images.env, which the Makefile includes and exports, and to .env, which
# Compose reads by itself.
#
# Usage: scripts/base-images.sh        (SIDECAR_NO_PULL=1 skips the pull attempts)
set -euo pipefail
shopt -s inherit_errexit  # make failures inside $(choose ...) stop the script too

cd "$(dirname "$0")/.."
PYTHON_OFFICIAL=${PYTHON_OFFICIAL:-python:3.11-slim}
POSTGRES_OFFICIAL=${POSTGRES_OFFICIAL:-postgres:15}
PYTHON_LOCAL=sidecar-local/python:3.11-bookworm
POSTGRES_LOCAL=sidecar-local/postgres:15-bookworm
SUITE=bookworm  # Debian 12: python3 is 3.11 and postgresql is 15, as in the official tags
OUT=.stamps/images.env

say() { echo "base-images: $*" >&2; }

have() { docker image inspect "$1" > /dev/null 2>&1; }

# The Debian mirror apt is configured with (debootstrap needs one).
mirror() {
	local uri
	uri=$(grep -hsE '^\s*URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
	[ -n "$uri" ] || uri=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list | awk '{print $2}' | head -n1)
	echo "${uri:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
	command -v debootstrap > /dev/null && return
	[ "$(id -u)" = 0 ] || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
	say "installing debootstrap"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null
}

# build_image TAG PACKAGES SETUP_FUNCTION DOCKER_CHANGES...
build_image() {
	local tag=$1 packages=$2 setup=$3; shift 3
	ensure_debootstrap
	local root
	root=$(mktemp -d /var/tmp/sidecar-rootfs.XXXXXX)
	say "building $tag from Debian $SUITE ($(mirror)); this takes a minute or two"
	debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$(mirror)" > "$root.log" 2>&1 \
		|| { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
	rm -f "$root.log"
	"$setup" "$root"
	# Trim what a container never reads: docs, man pages, locales, apt's caches.
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
		"$root"/usr/share/locale/* "$root"/var/log/* "$root"/tmp/*
	local changes=()
	for change in "$@"; do changes+=(--change "$change"); done
	tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$tag" > /dev/null
	rm -rf "$root"
	say "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

setup_python() { :; }

setup_postgres() {
	local root=$1
	# Debian's package made a cluster and config of its own; the entrypoint makes one in PGDATA.
	rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main
	install -m 0755 images/postgres/docker-entrypoint.sh "$root"/usr/local/bin/docker-entrypoint.sh
	install -d -m 0700 "$root"/var/lib/postgresql/data
	chroot "$root" chown -R postgres:postgres /var/lib/postgresql
}

# choose OFFICIAL LOCAL PACKAGES SETUP CHANGES... -> prints the image to use
choose() {
	local official=$1 local_tag=$2; shift 2
	# Present images first, so a machine without a registry does not retry the pull each time.
	if have "$official"; then echo "$official"; return; fi
	if have "$local_tag"; then echo "$local_tag"; return; fi
	if [ -z "${SIDECAR_NO_PULL:-}" ] && timeout 60 docker pull -q "$official" > /dev/null 2>&1; then
		echo "$official"; return
	fi
	say "$official cannot be pulled; making a local stand-in"
	build_image "$local_tag" "$@"
	echo "$local_tag"
}

python_image=$(choose "$PYTHON_OFFICIAL" "$PYTHON_LOCAL" python3,python3-venv,ca-certificates setup_python \
	'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'ENV LANG=C.UTF-8' 'CMD ["python3"]')
postgres_image=$(choose "$POSTGRES_OFFICIAL" "$POSTGRES_LOCAL" postgresql,util-linux setup_postgres \
	'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	'ENV PGDATA=/var/lib/postgresql/data' 'ENV LANG=C.UTF-8' 'EXPOSE 5432' \
	'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]')

mkdir -p "$(dirname "$OUT")"
new=$(printf 'PYTHON_IMAGE=%s\nPOSTGRES_IMAGE=%s\n' "$python_image" "$postgres_image")
# Rewritten only on change, so make rebuilds the sidecar image only when its base changed.
[ -f "$OUT" ] && [ "$(cat "$OUT")" = "$new" ] || echo "$new" > "$OUT"
say "PYTHON_IMAGE=$python_image POSTGRES_IMAGE=$postgres_image"

# Compose reads .env beside the compose file, so a plain `docker compose up` uses the same images.
# Only a .env this script wrote is replaced; a user's own is left as it is.
ENV_FILE=${SIDECAR_ENV_FILE:-.env}  # another path for the tests
MARK="# Written by scripts/base-images.sh (make images): the base images of this Docker engine."
if [ ! -e "$ENV_FILE" ] || [ "$(head -n1 "$ENV_FILE")" = "$MARK" ]; then
	printf '%s\n%s\n' "$MARK" "$new" > "$ENV_FILE"
else
	say "$ENV_FILE was not written by this script, so it is left alone; for a plain 'docker compose up'," \
		"add to it: $(echo "$new" | tr '\n' ' ')"
fi
