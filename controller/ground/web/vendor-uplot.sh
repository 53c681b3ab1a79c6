#!/usr/bin/env bash
# Refreshes static/uplot/ from npm: uPlot, pinned by version and by the
# integrity hash npm publishes for it (npm view uplot@VERSION dist.integrity).
# The dist files are committed; node_modules never is. To move to another
# version, change both lines below and run this script.
set -euo pipefail
version=1.6.32
integrity=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tgz="$tmp/uplot-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
	echo "vendor-uplot: uplot@$version has integrity $got, want $integrity" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp"
mkdir -p static/uplot
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" static/uplot/
cat >static/uplot/VERSION <<END
uPlot $version (MIT, https://github.com/leeoniya/uPlot), from npm:
  npm pack uplot@$version   integrity $integrity
Files: dist/uPlot.iife.min.js, dist/uPlot.min.css and LICENSE from the package.
Refresh with controller/ground/web/vendor-uplot.sh.
END
echo "vendor-uplot: static/uplot now holds uplot@$version"
