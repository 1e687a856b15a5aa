#!/bin/sh
# The 10 000-target ICMP benchmark (benches/icmp_scale.py) with no peer and
# with two `[[peer]]` tables (issue 20), alternated in one session: none,
# two, none, two, ... (ROUNDS pairs, default 2). Each run prints its table;
# the last lines are the per-pair ratios of CPU µs/probe and RSS.
#
# The two peers: "vps" has a url (this daemon itself, 127.0.0.1:19898, so
# the witness exchanges it makes are real ones; the namespace has only `lo`)
# and "office" has none (a site that only calls us). witness_every stays at
# its default (10 min).
#
#   sudo sh benches/peer_icmp_ab.sh            # after cargo build --release
#   ROUNDS=3 WINDOW=20 WARMUP=8 sudo -E sh benches/peer_icmp_ab.sh
set -eu
ROUNDS=${ROUNDS:-2}
WINDOW=${WINDOW:-20}
WARMUP=${WARMUP:-8}
BIN=${BIN:-target/release/linkwatch}
work=$(mktemp -d /tmp/lwpeerab-XXXXXX)
trap 'rm -rf "$work"' EXIT
umask 077
printf 'bench-vps-%s\n' "$$" >"$work/vps.token"
printf 'bench-office-%s\n' "$$" >"$work/office.token"
cat >"$work/peers.toml" <<EOF
[[peer]]
name = "vps"
url = "http://127.0.0.1:19898"
token_file = "$work/vps.token"

[[peer]]
name = "office"
token_file = "$work/office.token"
EOF
chmod 0644 "$work/peers.toml"
run() { # $1: label, $2...: extra args
    label=$1
    shift
    python3 benches/icmp_scale.py --sizes 10000 --window "$WINDOW" --warmup "$WARMUP" \
        --tools linkwatch --rtt-samples 0 --binary "$BIN" --json "$work/$label.json" "$@" \
        >"$work/$label.md"
    python3 - "$work/$label.json" "$label" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{sys.argv[2]}: {r['us_per_probe']:.2f} us/probe, {r['rss_mib']:.1f} MiB, "
      f"{r['rate']:.0f} probes/s, lost {r['loss_pct']:.2f} %", flush=True)
EOF
}
i=1
while [ "$i" -le "$ROUNDS" ]; do
    run "none-$i"
    run "peers-$i" --lw-extra "$work/peers.toml"
    i=$((i + 1))
done
python3 - "$work" "$ROUNDS" <<'EOF'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
get = lambda l: json.load(open(f"{work}/{l}.json"))["results"][0]
for i in range(1, rounds + 1):
    a, b = get(f"none-{i}"), get(f"peers-{i}")
    print(f"pair {i}: CPU ratio {b['us_per_probe'] / a['us_per_probe']:.3f}, "
          f"RSS ratio {b['rss_mib'] / a['rss_mib']:.3f} "
          f"(none {a['us_per_probe']:.2f} us {a['rss_mib']:.1f} MiB; "
          f"two peers {b['us_per_probe']:.2f} us {b['rss_mib']:.1f} MiB)")
EOF
