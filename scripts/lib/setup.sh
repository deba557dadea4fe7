# Shared by scripts/test.sh and scripts/quickstart.sh (sourced from the repository root).

# install_missing PACKAGE=FILE_OR_COMMAND ...: installs the Debian packages whose file (an absolute
# path) or command (on PATH) is absent. What is present decides, not dpkg: npm, for one, may come
# from another package (NodeSource's nodejs ships it and conflicts with Debian's npm).
install_missing() {
  local pair pkg want missing=() as_root=()
  for pair in "$@"; do
    pkg=${pair%%=*}
    want=${pair#*=}
    if [[ $want == /* ]]; then
      [[ -e $want ]] || missing+=("$pkg")
    else
      command -v "$want" >/dev/null || missing+=("$pkg")
    fi
  done
  ((${#missing[@]} > 0)) || return 0
  if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      echo "missing ${missing[*]}, and neither root nor password-less sudo to install them: run sudo $0" >&2
      exit 1
    fi
  fi
  echo "installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# npm_install: `npm ci` (Node 24 comes with it as a package), skipped when the lock file is the one
# last installed, since npm ci wipes and reinstalls node_modules; then puts that Node first on PATH.
npm_install() {
  local stamp=node_modules/.ringmaster-lock.sha256 lock_sum
  lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$lock_sum" || ! -x node_modules/.bin/node ]]; then
    npm ci --no-audit --no-fund
    echo "$lock_sum" >"$stamp"
  fi
  export PATH="$PWD/node_modules/.bin:$PATH"
}
