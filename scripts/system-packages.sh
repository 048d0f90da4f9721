#!/usr/bin/env bash
# Debian tools the tests and benchmarks use (ip, iptables, dig, dnsperf), installed
# only when missing and only when we may (root). kubectl: when none is on PATH,
# Debian's kubernetes-client (1.20) is unpacked into .venv (dpkg -x) so it never
# replaces a kubectl the machine has.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv

needed=()
command -v ip >/dev/null 2>&1 || needed+=(iproute2)
command -v iptables >/dev/null 2>&1 || needed+=(iptables)
command -v dig >/dev/null 2>&1 || needed+=(dnsutils)      # dig, for the DNS tests
command -v dnsperf >/dev/null 2>&1 || needed+=(dnsperf)   # benchmarks/dns_bench.py
command -v curl >/dev/null 2>&1 || needed+=(curl)          # HTTP checks inside test namespaces
command -v nsenter >/dev/null 2>&1 || needed+=(util-linux)  # nsenter, setpriv

if [ "$(id -u)" -ne 0 ]; then
    if [ ${#needed[@]} -gt 0 ] || ! command -v kubectl >/dev/null 2>&1; then
        echo "note: missing tools (${needed[*]:-} kubectl?); run scripts/system-packages.sh as root" >&2
    fi
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
    if [ $updated -eq 0 ]; then apt-get update -qq; updated=1; fi
}
if [ ${#needed[@]} -gt 0 ]; then
    apt_update
    apt-get install -y -qq "${needed[@]}" >/dev/null
fi

if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$VENV/bin/kubectl" ]; then
    apt_update
    workdir=$(mktemp -d)
    (cd "$workdir" && apt-get download -qq kubernetes-client)
    dpkg -x "$workdir"/kubernetes-client_*.deb "$VENV/kubernetes-client"
    ln -sf "$PWD/$VENV/kubernetes-client/usr/bin/kubectl" "$VENV/bin/kubectl"
    rm -rf "$workdir"
    echo "kubectl from Debian's kubernetes-client unpacked into $VENV/bin/kubectl"
fi
