#!/usr/bin/env bash
# A/B of the train step between two checkouts of this project (e.g. a release and the working tree):
#
#   bash bench/ab.sh OLD_DIR NEW_DIR [ROUNDS] [BACKENDS] [CONFIGS]
#
# `deno task bench train` interleaves contenders step by step inside one process, but two versions of the
# project cannot share a process (one TF.js engine, one set of registered kernels). So this runs each checkout's
# own `bench train` in turn, ROUNDS times (default 6), and prints, per backend and configuration, the median
# over rounds of each side's median step time, and the median of the per-round ratios NEW/OLD, so that slow
# phases of a shared machine hit both sides alike. Each checkout needs its set-up done (`deno task setup`).
set -euo pipefail
old=${1:?usage: bash bench/ab.sh OLD_DIR NEW_DIR [ROUNDS] [BACKENDS] [CONFIGS]}
new=${2:?usage: bash bench/ab.sh OLD_DIR NEW_DIR [ROUNDS] [BACKENDS] [CONFIGS]}
rounds=${3:-6}
backends=${4:-tensorflow}
configs=${5:-w18s2-b1,w18s2-b2}
log=$(mktemp)
for ((r = 1; r <= rounds; r++)); do
  for side in old new; do
    dir=$old
    [ "$side" = new ] && dir=$new
    echo "round $r/$rounds: $side ($dir)" >&2
    # --no-bf16 where the checkout knows it (ours in fp32 only: the comparison is of the fp32 step)
    extra=()
    grep -q '"no-bf16"' "$dir/bench/train.ts" && extra=(--no-bf16)
    (cd "$dir" && NO_COLOR=1 deno run -A bench/main.ts train --configs "$configs" --backends "$backends" \
      --reps 5 --step-budget 200 --no-torch --no-paddle --no-profile "${extra[@]}" 2>/dev/null) |
      awk -v side="$side" -v r="$r" '/^w18|^w48/{cfg=$1; sub(":", "", cfg)} /^  ours\//{print side, r, cfg, $1, $2}' >>"$log"
  done
done
python3 - "$log" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
keys = sorted({(c, b) for _, _, c, b, _ in rows})
print(f"{'config':10} {'contender':18} {'old s':>8} {'new s':>8} {'new/old':>8} (median of per-round ratios)")
for c, b in keys:
    t = {(s, int(r)): float(v) for s, r, cc, bb, v in rows if (cc, bb) == (c, b)}
    old = [v for (s, _), v in t.items() if s == "old"]
    new = [v for (s, _), v in t.items() if s == "new"]
    ratios = [t[("new", r)] / t[("old", r)] for (s, r) in t if s == "old" and ("new", r) in t]
    print(f"{c:10} {b:18} {st.median(old):8.3f} {st.median(new):8.3f} {st.median(ratios):8.3f}")
EOF
rm -f "$log"
