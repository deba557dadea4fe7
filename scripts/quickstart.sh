#!/usr/bin/env bash
# ringmaster on a fresh Debian 12, in one command: installs what is missing (Debian's puppetserver
# and puppet-agent, npm, then Node 24 and the dependencies with `npm ci`), creates a CA, starts a
# local Puppet Server as ringmaster's compiler and runs ringmaster in front of it, in the foreground.
# All state lives in one directory:
#
#   RINGMASTER_HOME           state directory (default ./var/quickstart)
#   RINGMASTER_PORT           port agents connect to (default 8140)
#   RINGMASTER_COMPILER_PORT  port of the local compiler, on 127.0.0.1 only (default 8141)
#
# A second run reuses the CA, the compiler's configuration and a compiler that is still running.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD

source scripts/lib/setup.sh
install_missing puppet-agent=/usr/bin/puppet puppetserver=/usr/share/puppetserver/puppetserver.jar npm=npm \
  ca-certificates=/etc/ssl/certs/ca-certificates.crt \
  libjemalloc2="/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2"
npm_install

home=${RINGMASTER_HOME:-$repo/var/quickstart}
port=${RINGMASTER_PORT:-8140}
cport=${RINGMASTER_COMPILER_PORT:-8141}
mkdir -p "$home"
home=$(cd "$home" && pwd)
config=$home/ringmaster.yaml
rm_cmd() { "$repo/bin/ringmaster" "$@"; }

# ringmaster's certificate answers to the host's names, `puppet`, and `localhost` for an agent on
# this machine.
host=$(hostname | tr '[:upper:]' '[:lower:]')
names=$(printf '%s\n' "$host" "${host%%.*}" puppet localhost | awk '!seen[$0]++' | sed 's/^/    - /')

# Written on every run from the variables above; for a configuration of your own, copy it and run
# `bin/ringmaster serve --config FILE` (docs/configuration.md).
cat >"$config" <<EOF
# Written by scripts/quickstart.sh on every run: edits are overwritten.
stateDir: .
server:
  dnsAltNames:
$names
listeners:
  - name: agents
    address: 0.0.0.0
    port: $port
ca:
  autosign:
    all: false
pools:
  compilers:
    members:
      - name: local
        url: http://127.0.0.1:$cport
EOF

if [[ ! -e $home/ca/ca_crt.pem ]]; then
  rm_cmd ca setup --config "$config"
fi

# The local compiler: a CA-less Puppet Server on 127.0.0.1, its certificate from ringmaster's CA.
compiler=$home/compiler
cname=local
if [[ ! -f $compiler/local/conf.d/webserver.conf ]] || ! grep -q "port: $cport\$" "$compiler/local/conf.d/webserver.conf"; then
  # A new port, or a first run: (re)issue the compiler's certificate and configuration.
  if [[ -d $compiler/local ]]; then
    node scripts/local-compiler.ts stop --tree "$compiler/tree"
    rm_cmd ca clean "$cname" --config "$config" >/dev/null 2>&1 || true
    rm -rf "$compiler/local" "$compiler/tree"
  fi
  mkdir -p "$compiler"
  rm_cmd compiler config "$cname" --config "$config" --out "$compiler/local" \
    --listen "127.0.0.1:$cport" --install-dir "$compiler/local" --ssldir "$compiler/local/ssl" \
    --confdir "$compiler/tree/confdir" >/dev/null
fi
code=$home/code
if [[ ! -e $code/environments/production ]]; then
  mkdir -p "$code/environments/production/manifests" "$code/environments/production/modules"
  cat >"$code/environments/production/manifests/site.pp" <<'EOF'
# The production environment's main manifest, compiled by the local compiler behind ringmaster.
node default {
  notify { "Hello from ringmaster's local compiler: ${trusted['certname']} was compiled through ringmaster": }
}
EOF
fi
node scripts/local-compiler.ts start --config-dir "$compiler/local" --tree "$compiler/tree" --code "$code" --heap 768m

server=$host
[[ $port == 8140 ]] && portline="" || portline=", serverport = $port"
cat <<EOF

ringmaster quickstart: all state is in $home (CA in ca/, compiler in compiler/, Puppet code in
code/). Point an agent at it with \`server = $server$portline\` in the [main] section of its puppet.conf
(any name in ringmaster's certificate works: $(echo $names | sed 's/- //g; s/ /, /g')) and run \`puppet agent --test\`;
sign its request with \`bin/ringmaster ca list --config $config\` and
\`bin/ringmaster ca sign NAME --config $config\`. Ctrl-C stops ringmaster; the local compiler keeps
running (a next quickstart run reuses it): stop it with \`kill \$(cat $compiler/puppetserver.pid)\`.

EOF
exec "$repo/bin/ringmaster" serve --config "$config"
