#!/bin/sh
# Installs promtool (Debian package `prometheus`) when it is missing. Needs root or sudo.
set -eu
command -v promtool >/dev/null 2>&1 && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-tools: promtool missing and not root; promtool checks will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: no apt-get; promtool checks will be skipped" >&2
    exit 0
fi
echo "install-tools: installing Debian package prometheus (for promtool)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
