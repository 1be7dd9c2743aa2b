#!/usr/bin/env bash
# Re-vendor the socket.io JS client the widget loads (committed, so nothing is fetched at run
# time).  Rasa's socket.io server speaks Engine.IO v4, which needs socket.io-client 4.x.
# The source-map comment is dropped: the map is not shipped, and browsers would ask for it.
set -euo pipefail
cd "$(dirname "$0")"
version="${1:-4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "socket.io-client@${version}" >/dev/null && tar xzf ./*.tgz)
grep -v '^//# sourceMappingURL=' "$work/package/dist/socket.io.min.js" > socket.io.min.js
cp "$work/package/LICENSE" socket.io-client.LICENSE
node -p "'socket.io-client ' + require('$work/package/package.json').version" > VERSION
echo "vendored $(cat VERSION)"
