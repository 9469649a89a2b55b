#!/usr/bin/env bash
# The arrows between the rooms under src/ (docs/architecture.md): a room may
# include only the rooms listed for it. An arrow that is not here (the store
# reaching for the engine, the hub for the store, anything for cli/) fails
# `make check`, so the layering is kept by CI, not by memory.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [core]=""
  [crypto]=""
  [blobs]="core"
  [fetch]="blobs crypto core"
  [store]="crypto core"
  [jobs]="store fetch blobs crypto core"
  [events]="core"
  [server]="jobs store events fetch blobs crypto core"
  [cli]="server jobs store events fetch blobs crypto core"
)

status=0
for dir in src/*/; do
  room=$(basename "$dir")
  if [[ -z ${allowed[$room]+set} ]]; then
    echo "layers: src/$room/ is a room docs/architecture.md and this script do not know" >&2
    status=1
    continue
  fi
  while IFS=: read -r file line target; do
    used=${target%%/*}
    [[ $used == "$room" ]] && continue
    if [[ " ${allowed[$room]} " != *" $used "* ]]; then
      echo "layers: $file:$line: $room/ may not include $target" >&2
      status=1
    fi
  done < <(grep -rnoE '#include "[a-z_]+/[^"]+"' "$dir" | sed -E 's/#include "([^"]+)"/\1/')
done
[[ $status == 0 ]] && echo "layers: every include follows the arrows"
exit $status
