#!/usr/bin/env bash
# Size of the browser SDK: raw source, minified (the committed dist build), and minified + gzip -9
# (what a browser downloads; budget 5 KB = 5120 bytes). Also brotli when the tool is installed, and
# Google's web-vitals bundle for scale when js-sdk/node_modules is present.
set -euo pipefail
cd "$(dirname "$0")/../js-sdk"

src=src/rum-sdk.js
min=dist/rum-sdk.min.js
raw=$(wc -c <"$src")
minified=$(wc -c <"$min")
gz=$(gzip -9 <"$min" | wc -c) # as served: no file name in the header
printf '%-34s %8s\n' "file" "bytes"
printf '%-34s %8d\n' "raw source ($src)" "$raw"
printf '%-34s %8d\n' "minified ($min)" "$minified"
printf '%-34s %8d  (%.2f KiB, budget 5 KiB)\n' "minified + gzip -9" "$gz" "$(awk -v b="$gz" 'BEGIN { print b / 1024 }')"
if command -v brotli >/dev/null; then
    printf '%-34s %8d\n' "minified + brotli" "$(brotli -c "$min" | wc -c)"
fi
wv=node_modules/web-vitals/dist/web-vitals.iife.js
if [ -f "$wv" ]; then
    printf '%-34s %8d  (web-vitals %s, vitals only, for scale)\n' "web-vitals.iife.js + gzip -9" "$(gzip -9c "$wv" | wc -c)" \
        "$(node -p "require('./node_modules/web-vitals/package.json').version")"
fi
if [ "$gz" -gt 5120 ]; then
    echo "over the 5 KiB budget" >&2
    exit 1
fi
