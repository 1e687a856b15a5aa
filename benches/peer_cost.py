#!/usr/bin/env python3
"""Peer exchange cost (issue 20): requests and bytes each way between two
linkwatch sites, measured on the wire.

Two network namespaces this script creates and deletes, joined by one veth
(nothing else: no route to the root namespace):

    home 10.231.90.1  ──────  abroad 10.231.90.2 (linkwatch on :9898)
                              lo: 10.231.91.1, 10.231.91.2 (the "international" hosts)

Both sites probe the two hosts (ICMP, 1 s) under the same target names; the
home's `[[peer]]` has the peer's url, the peer lists the home without one.
iptables rules in `home` count every byte (IP packets, headers included) to
and from the peer's port, and every connection opened (SYN).

  1. idle: `witness_every` (default 10 s, to get many exchanges in a short
     window) for `--window` seconds: bytes and connections per witness
     exchange; scaled to witness_every = 10 min (6 per hour);
  2. outages: `--outages` home-only outages (the hosts dropped in home's
     OUTPUT for `--outage-secs`, the peer sees them up), `--gap` seconds apart:
     what each outage adds (edge witnesses, the corroboration's observations
     request and its answer) over the timer's share, from the peer's
     `linkwatch_peer_requests_total` and the counters;
  3. one observations request for the last hour of both targets, made with
     the token by curl: the answer's size per target-minute (a long outage's
     corroboration).

Run as root from the repository root after `cargo build --release`:

    sudo python3 benches/peer_cost.py                 # ~5 minutes
    sudo python3 benches/peer_cost.py --window 60 --outages 2   # quicker
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HOME_IP, PEER_IP = "10.231.90.1", "10.231.90.2"
HOSTS = ["10.231.91.1", "10.231.91.2"]
PORT = 9898


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


def ns_run(ns, *cmd, check=True):
    return run("ip", "netns", "exec", ns, *cmd, check=check)


def token_file(path, token):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)


def config(path, data, site, listen, witness_every, peer):
    lines = [
        "[daemon]", f'listen = "{listen}"', f'data_dir = "{data}"', f'site = "{site}"',
        f'witness_every = "{witness_every}"', "max_traces_per_minute = 0", "",
        "[defaults]", 'interval = "1s"', 'timeout = "500ms"', "fail_after = 3", "recover_after = 2",
        "", "[[group]]", 'name = "international"',
    ]
    for i, h in enumerate(HOSTS):
        lines += ["", "[[target]]", f'name = "intl-{i}"', 'group = "international"',
                  'kind = "icmp"', f'host = "{h}"']
    lines += ["", "[[peer]]"] + peer
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(ns, url, name):
    """{frozenset(labels): value} of one metric family."""
    text = ns_run(ns, "curl", "-sf", "--max-time", "10", url)
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            out[frozenset(LABEL.findall(m.group(2) or ""))] = float(m.group(3))
    return out


def delta(a, b):
    return {k: v - a.get(k, 0.0) for k, v in b.items() if v - a.get(k, 0.0) > 0}


def fmt_labels(k):
    return ",".join(f"{n}={v}" for n, v in sorted(k))


COUNTERS = [
    # (name, iptables chain and match)
    ("up", ["OUTPUT", "-d", PEER_IP, "-p", "tcp", "--dport", str(PORT)]),
    ("down", ["INPUT", "-s", PEER_IP, "-p", "tcp", "--sport", str(PORT)]),
    ("syn", ["OUTPUT", "-d", PEER_IP, "-p", "tcp", "--dport", str(PORT), "--syn"]),
]


def counters(ns):
    """{name: (packets, bytes)} of the counting rules."""
    out = {}
    for chain in ("OUTPUT", "INPUT"):
        text = ns_run(ns, "iptables", "-w", "-L", chain, "-v", "-x", "-n")
        rules = [r for r in text.splitlines()[2:] if r.strip()]
        names = [n for n, spec in COUNTERS if spec[0] == chain]
        for n, r in zip(names, rules):
            f = r.split()
            out[n] = (int(f[0]), int(f[1]))
    return out


def sub(a, b):
    return {k: (b[k][0] - a[k][0], b[k][1] - a[k][1]) for k in b}


def requests(ns, url):
    return metric(ns, url, "linkwatch_peer_requests_total")


def total(d, **want):
    return sum(v for k, v in d.items() if all((n, w) in k for n, w in want.items()))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default="target/release/linkwatch")
    p.add_argument("--witness-every", default="10s")
    p.add_argument("--window", type=float, default=120, help="idle window, seconds")
    p.add_argument("--outages", type=int, default=3)
    p.add_argument("--outage-secs", type=float, default=10)
    p.add_argument("--gap", type=float, default=25, help="seconds between outages")
    p.add_argument("--per-day", type=int, default=5, help="outages in the 'day' figure")
    p.add_argument("--json", help="also write the figures as JSON here")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("peer_cost.py needs root (it creates network namespaces)")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"missing {binary} (cargo build --release)")
    pid = os.getpid()
    home, peer = f"lwpeer-{pid}-home", f"lwpeer-{pid}-abroad"
    work = tempfile.mkdtemp(prefix="lwpeer-")
    procs = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        for ns in (home, peer):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", home, "link", "add", "pc0", "type", "veth", "peer", "name", "pc1",
            "netns", peer)
        run("ip", "-n", home, "addr", "add", f"{HOME_IP}/24", "dev", "pc0")
        run("ip", "-n", peer, "addr", "add", f"{PEER_IP}/24", "dev", "pc1")
        for ns, dev in ((home, "pc0"), (peer, "pc1")):
            run("ip", "-n", ns, "link", "set", dev, "up")
        for h in HOSTS:
            run("ip", "-n", peer, "addr", "add", f"{h}/32", "dev", "lo")
        run("ip", "-n", home, "route", "add", "10.231.91.0/24", "via", PEER_IP)
        for _, spec in COUNTERS:
            ns_run(home, "iptables", "-w", "-A", *spec)

        token = f"bench-{pid}-{time.time_ns()}"
        w = lambda n: os.path.join(work, n)
        token_file(w("home.token"), token)
        token_file(w("abroad.token"), token)
        config(w("home.toml"), w("home-data"), "home", "127.0.0.1:9898", args.witness_every,
               ['name = "abroad"', f'url = "http://{PEER_IP}:{PORT}"',
                f'token_file = "{w("abroad.token")}"'])
        config(w("abroad.toml"), w("abroad-data"), "abroad", f"0.0.0.0:{PORT}",
               args.witness_every, ['name = "home"', f'token_file = "{w("home.token")}"'])
        for ns, name in ((peer, "abroad"), (home, "home")):
            logf = open(w(f"{name}.log"), "w")
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, binary, "run", "--config", w(f"{name}.toml")],
                stdout=logf, stderr=subprocess.STDOUT))
            time.sleep(1.5)
        peer_metrics = f"http://127.0.0.1:{PORT}/metrics"
        home_metrics = "http://127.0.0.1:9898/metrics"
        for ns in (peer, home):
            for _ in range(100):
                if subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "2",
                                   f"http://127.0.0.1:{PORT}/healthz"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.2)
            else:
                sys.exit(f"linkwatch in {ns} did not come up; logs in {work}")
        time.sleep(15)  # first witness and a few probes

        # 1. idle
        log(f"idle: witness_every {args.witness_every}, {args.window:.0f} s")
        r0, c0, t0 = requests(peer, peer_metrics), counters(home), time.monotonic()
        time.sleep(args.window)
        r1, c1, t1 = requests(peer, peer_metrics), counters(home), time.monotonic()
        dr, dc, idle_s = delta(r0, r1), sub(c0, c1), t1 - t0
        witnesses = total(dr, endpoint="witness") or total(dr)
        idle = {
            "seconds": idle_s, "requests": {fmt_labels(k): v for k, v in dr.items()},
            "witness_requests": witnesses, "connections": dc["syn"][0],
            "bytes_up": dc["up"][1], "bytes_down": dc["down"][1],
            "packets_up": dc["up"][0], "packets_down": dc["down"][0],
        }
        log(json.dumps(idle))

        # 2. outages at home only
        log(f"outages: {args.outages} × {args.outage_secs:.0f} s, {args.gap:.0f} s apart")
        r0, c0, t0 = requests(peer, peer_metrics), counters(home), time.monotonic()
        h0 = metric(home, home_metrics, "linkwatch_peer_calls_total")
        drop = ["OUTPUT", "-d", ",".join(HOSTS), "-j", "DROP"]
        for _ in range(args.outages):
            ns_run(home, "iptables", "-w", "-I", *drop)
            time.sleep(args.outage_secs)
            ns_run(home, "iptables", "-w", "-D", *drop)
            time.sleep(args.gap)
        r1, c1, t1 = requests(peer, peer_metrics), counters(home), time.monotonic()
        h1 = metric(home, home_metrics, "linkwatch_peer_calls_total")
        dr, dc, out_s = delta(r0, r1), sub(c0, c1), t1 - t0
        per_s = lambda x: x / idle_s
        timer_share = {
            "bytes_up": per_s(idle["bytes_up"]) * out_s,
            "bytes_down": per_s(idle["bytes_down"]) * out_s,
            "witness_requests": per_s(witnesses) * out_s,
        }
        outages = {
            "seconds": out_s, "requests": {fmt_labels(k): v for k, v in dr.items()},
            "calls": {fmt_labels(k): v for k, v in delta(h0, h1).items()},
            "connections": dc["syn"][0], "bytes_up": dc["up"][1], "bytes_down": dc["down"][1],
            "per_outage": {
                "witness_requests": (total(dr, endpoint="witness")
                                     - timer_share["witness_requests"]) / args.outages,
                "observation_requests": total(dr, endpoint="observations") / args.outages,
                "bytes_up": (dc["up"][1] - timer_share["bytes_up"]) / args.outages,
                "bytes_down": (dc["down"][1] - timer_share["bytes_down"]) / args.outages,
            },
        }
        log(json.dumps(outages))

        # 3. a long corroboration's answer: the last hour of both targets
        now = time.time()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        body = ns_run(home, "curl", "-sf", "--max-time", "10", "-H",
                      f"Authorization: Bearer {token}",
                      f"http://{PEER_IP}:{PORT}/api/v1/peer/observations"
                      f"?targets=intl-0,intl-1&since={since}&until={until}")
        obs = json.loads(body)
        minutes = sum(len(t.get("minutes", [])) for t in obs.get("targets", []))
        answer = {"bytes": len(body), "target_minutes": minutes,
                  "bytes_per_target_minute": len(body) / minutes if minutes else None}
        log(json.dumps(answer))
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
                try:
                    pr.wait(10)
                except subprocess.TimeoutExpired:
                    pr.kill()
        for ns in (home, peer):
            for p_ in run("ip", "netns", "pids", ns, check=False).split():
                try:
                    os.kill(int(p_), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", ns, check=False)

    # Per exchange, per hour at witness_every = 10 min, per day with N outages.
    n = max(witnesses, 1)
    ex_up, ex_down = idle["bytes_up"] / n, idle["bytes_down"] / n
    conn_per_ex = idle["connections"] / n
    po = outages["per_outage"]
    day_up = 144 * ex_up + args.per_day * po["bytes_up"]
    day_down = 144 * ex_down + args.per_day * po["bytes_down"]
    day_req = 144 + args.per_day * (po["witness_requests"] + po["observation_requests"])
    print(f"""
| figure | requests | bytes home → peer | bytes peer → home |
|---|---|---|---|
| one witness exchange (idle, {witnesses:.0f} in {idle_s:.0f} s; {conn_per_ex:.2f} connections each) | 1 | {ex_up:.0f} | {ex_down:.0f} |
| per hour, witness_every = 10 min | 6 | {6 * ex_up:.0f} | {6 * ex_down:.0f} |
| what one outage adds ({args.outage_secs:.0f} s; edge witnesses + corroboration) | {po['witness_requests'] + po['observation_requests']:.1f} ({po['witness_requests']:.1f} witness, {po['observation_requests']:.1f} observations) | {po['bytes_up']:.0f} | {po['bytes_down']:.0f} |
| a day, witness_every = 10 min, {args.per_day} outages | {day_req:.0f} | {day_up:.0f} ({day_up / 24:.0f}/h) | {day_down:.0f} ({day_down / 24:.0f}/h) |
| observations answer, last hour of 2 targets | 1 | - | {answer['bytes']} body ({answer['target_minutes']} target-minutes, {answer['bytes_per_target_minute'] or 0:.0f} B each) |
""")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"idle": idle, "outages": outages, "answer": answer, "args": vars(args)},
                      f, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
