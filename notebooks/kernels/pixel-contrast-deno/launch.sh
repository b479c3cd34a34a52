#!/bin/sh
# Starts Deno's Jupyter kernel for this project (the kernelspec's argv runs this with the connection file).
#
# - Working directory: the project root (three folders up from this kernelspec), so notebooks use the same
#   relative paths as the CLI tasks (configs/..., data/..., output/...) and import lib/ as "./lib/...".
# - Deno: the pinned 2.9.6. First $PC_DENO (`deno task lab` and the notebook tests set it to the Deno
#   running them), else a `deno` on PATH that is 2.9.6, else the binary `npx -y deno@2.9.6` caches
#   (its path is remembered in .cache/deno-exe). The kernel is exec'd directly, so Jupyter's interrupt
#   and shutdown signals reach Deno itself.
set -eu
conn="$1"
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "$here/../../.." && pwd)
want="2.9.6"

is_pinned() { [ -x "$1" ] && "$1" --version 2>/dev/null | head -n 1 | grep -q "^deno $want "; }

deno=""
if [ -n "${PC_DENO:-}" ] && is_pinned "$PC_DENO"; then
  deno="$PC_DENO"
elif command -v deno >/dev/null 2>&1 && is_pinned "$(command -v deno)"; then
  deno=$(command -v deno)
elif [ -f "$root/.cache/deno-exe" ] && is_pinned "$(cat "$root/.cache/deno-exe")"; then
  deno=$(cat "$root/.cache/deno-exe")
elif command -v npx >/dev/null 2>&1; then
  deno=$(npx -y "deno@$want" eval --quiet "console.log(Deno.execPath())" 2>/dev/null | tail -n 1 || true)
  if is_pinned "$deno"; then
    mkdir -p "$root/.cache" && printf '%s\n' "$deno" > "$root/.cache/deno-exe"
  else
    deno=""
  fi
fi
if [ -z "$deno" ]; then
  echo "pixel-contrast kernel: cannot find Deno $want (set PC_DENO, or install Node.js so that 'npx -y deno@$want' works)" >&2
  exit 1
fi
cd "$root"
export NO_COLOR=1
exec "$deno" jupyter --kernel --conn "$conn"
