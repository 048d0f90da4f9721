#!/usr/bin/env bash
# Debian packages the tests use. Installed only when missing and only when we
# may (root); without them the affected tests fail with a message naming them.
set -euo pipefail
needed=()
command -v ip >/dev/null 2>&1 || needed+=(iproute2)
if [ ${#needed[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "note: missing Debian packages (${needed[*]}); install them as root" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${needed[@]}" >/dev/null
