#!/bin/sh
# Installs the Prometheus tools the tests use when they are missing: promtool and prometheus
# (Debian package `prometheus`), alertmanager and amtool (`prometheus-alertmanager`), and
# headless Chromium for the status page's browser test (`chromium-headless-shell`).
# Needs root or sudo and apt-get; otherwise the tests that need them skip with a message.
set -eu
packages=""
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || packages="prometheus"
command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 \
    || packages="$packages prometheus-alertmanager"
[ -x /usr/bin/chromium-headless-shell ] || packages="$packages chromium-headless-shell"
[ -n "$packages" ] || exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-tools: missing $packages and not root; those tests will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: no apt-get; tests needing $packages will be skipped" >&2
    exit 0
fi
echo "install-tools: installing Debian packages:$packages" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $packages >/dev/null
