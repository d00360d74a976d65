#!/usr/bin/env bash
# Install Debian's headless-capable chromium for tests/test_bertviz_offline.py (idempotent).
# CI runs this, then the tests with FMTEACH_REQUIRE_CHROMIUM=1 so that a missing browser fails
# instead of skipping. Run as root (or with sudo available) on a Debian/Ubuntu image.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

start=$(date +%s)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
echo "chromium installed in $(( $(date +%s) - start )) s: $(/usr/bin/chromium --version)"
