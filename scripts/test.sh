#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12: installs the real Puppet packages the end-to-end
# tests drive (only those missing, so a second run is fast), then `npm ci` and `npm test`.
set -euo pipefail

cd "$(dirname "$0")/.."

source scripts/lib/setup.sh

install_missing puppet-agent=/usr/bin/puppet puppetserver=/usr/bin/puppetserver openssl=/usr/bin/openssl \
  bind9-dnsutils=/usr/bin/dig npm=npm ca-certificates=/etc/ssl/certs/ca-certificates.crt chromium=/usr/bin/chromium \
  libjemalloc2="/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2"

# The packaged puppetserver scripts expect their run directory (the tests use private ones, but a
# manual `puppetserver foreground` on this machine should work as well).
if [[ -x /usr/bin/puppetserver && ! -d /run/puppetserver && $EUID -eq 0 ]]; then
  install -d -m 0755 /run/puppetserver
  if getent passwd puppet >/dev/null; then chown puppet:puppet /run/puppetserver; fi
fi

npm_install
exec npm test
