#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12: installs the real Puppet packages the end-to-end
# tests drive (only those missing, so a second run is fast), then `npm ci` and `npm test`.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian package -> a file it installs, or a command on PATH. What is present decides, not dpkg:
# npm, for one, may come from another package (NodeSource's nodejs ships it and conflicts with
# Debian's npm).
declare -A needs=(
  [puppet-agent]=/usr/bin/puppet
  [puppetserver]=/usr/bin/puppetserver
  [openssl]=/usr/bin/openssl
  [bind9-dnsutils]=/usr/bin/dig
  [npm]=npm
  [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
)

missing=()
for pkg in "${!needs[@]}"; do
  want=${needs[$pkg]}
  if [[ $want == /* ]]; then
    [[ -e $want ]] || missing+=("$pkg")
  else
    command -v "$want" >/dev/null || missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $EUID -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "missing ${missing[*]}, and neither root nor password-less sudo to install them" >&2
    exit 1
  fi
  echo "installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The packaged puppetserver scripts expect their run directory (the tests use private ones, but a
# manual `puppetserver foreground` on this machine should work as well).
if [[ -x /usr/bin/puppetserver && ! -d /run/puppetserver && $EUID -eq 0 ]]; then
  install -d -m 0755 /run/puppetserver
  if getent passwd puppet >/dev/null; then chown puppet:puppet /run/puppetserver; fi
fi

# npm ci wipes and reinstalls node_modules; skip it when the lock file is the one last installed.
stamp=node_modules/.ringmaster-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" || ! -x node_modules/.bin/node ]]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" >"$stamp"
fi

# npm ci installs Node 24 as a package; put it first so every script runs on it.
export PATH="$PWD/node_modules/.bin:$PATH"
exec npm test
