#!/usr/bin/env python3
"""ICMP scaling benchmark: linkwatch next to fping and smokeping_prober.

For each target count N it runs, one after the other and on the same N
loopback addresses (127.x.y.z inside a network namespace this script creates,
with only `lo`, so no packet leaves it):

  * linkwatch (`target/release/linkwatch run --config …`, 1 s interval, 900 ms timeout)
  * fping (`-C` count mode, 1 s period, sends spread evenly over the second)
  * prometheus-smokeping-prober (1 s interval)

and measures over a window after warm-up: CPU per probe (utime+stime from
/proc/<pid>/stat), RSS (VmRSS), /metrics scrape time and size, probes achieved
vs scheduled, schedule lateness p50/p99 (linkwatch only), and the loopback RTT
each tool reports (p50/p99). An idle baseline (ping(8) and linkwatch with 10
targets) comes first. It prints a Markdown table and the ratios
linkwatch/fping and linkwatch/smokeping_prober.

Run as root from the repository root after `cargo build --release`:

    sudo python3 benches/icmp_scale.py                      # 1k/5k/10k, 60 s windows
    sudo python3 benches/icmp_scale.py --sizes 1000 --window 10 --warmup 5   # quick

Needs the Debian packages `fping` and `prometheus-smokeping-prober` (only for
this benchmark; the test suite does not use them).
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

LW_PORT = 19898
SP_PORT = 19374
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- helpers


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def addresses(n):
    """N distinct loopback addresses, 127.<a>.<b>.<c> with c in 1..250."""
    out = []
    for i in range(n):
        block = i // 250
        out.append(f"127.{1 + block // 250}.{block % 250}.{1 + i % 250}")
    return out


def cpu_seconds(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def http_get(url, timeout=30):
    """(seconds to the full body, body bytes)."""
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.monotonic() - t0, body


def wait_http(url, proc, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            http_get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {limit} s")


def stop(proc, sig=signal.SIGTERM, grace=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text, names):
    """{name: [(labels dict, value)]} for the metric names asked for."""
    out = {n: [] for n in names}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = SAMPLE.match(line)
        if not m or m.group(1) not in out:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        out[m.group(1)].append((labels, float(m.group(3))))
    return out


def hist(samples):
    """Cumulative buckets {le: count} summed over all series."""
    acc = {}
    for labels, v in samples:
        le = float(labels["le"])
        acc[le] = acc.get(le, 0.0) + v
    return acc


def hist_delta(a, b):
    return {le: b.get(le, 0.0) - a.get(le, 0.0) for le in b}


def hist_quantile(q, buckets):
    """Prometheus histogram_quantile over cumulative buckets."""
    les = sorted(buckets)
    if not les or buckets[les[-1]] <= 0:
        return float("nan")
    total = buckets[les[-1]]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        c = buckets[le]
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return les[-1]


def quantile(q, values):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# ---------------------------------------------------------------- tools


def idle_ping(count):
    """RTTs in seconds reported by ping(8) to 127.0.0.1, 10 ms apart."""
    out = subprocess.run(
        ["ping", "-n", "-c", str(count), "-i", "0.01", "127.0.0.1"],
        capture_output=True, text=True, timeout=count * 0.05 + 30,
    ).stdout
    return [float(x) / 1e3 for x in re.findall(r"time=([\d.]+) ms", out)]


def lw_config(path, data_dir, addrs, interval="1s", timeout="900ms", extra=None):
    lines = [
        "[daemon]",
        f'listen = "127.0.0.1:{LW_PORT}"',
        f'data_dir = "{data_dir}"',
        "",
        "[defaults]",
        f'interval = "{interval}"',
        f'timeout = "{timeout}"',
        "",
        "[[group]]",
        'name = "bench"',
    ]
    for i, a in enumerate(addrs):
        lines += ["", "[[target]]", f'name = "t{i}"', 'group = "bench"',
                  'kind = "icmp"', f'host = "{a}"']
    text = "\n".join(lines) + "\n"
    if extra:
        # e.g. a [defaults.degraded] table, to measure the degradation windows.
        with open(extra) as e:
            text += "\n" + e.read()
    with open(path, "w") as f:
        f.write(text)


def lw_rtts(base):
    """Last successful RTT of every target, from /api/v1/status."""
    _, body = http_get(base + "/api/v1/status", timeout=60)
    out = []
    for t in json.loads(body)["targets"]:
        last = t.get("last") or {}
        if last.get("result") == "success" and "duration_seconds" in last:
            out.append(last["duration_seconds"])
    return out


def lw_env(args):
    env = dict(os.environ)
    for kv in args.lw_env:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


LW_NAMES = [
    "linkwatch_probes_total",
    "linkwatch_probes_skipped_total",
    "linkwatch_schedule_lateness_seconds_bucket",
]


def run_linkwatch(args, work, addrs, rtt_samples):
    n = len(addrs)
    cfg = os.path.join(work, f"linkwatch-{n}.toml")
    data = os.path.join(work, f"data-{n}")
    os.makedirs(data, exist_ok=True)
    lw_config(cfg, data, addrs, extra=args.lw_extra)
    logf = open(os.path.join(work, f"linkwatch-{n}.log"), "w")
    proc = subprocess.Popen([args.binary, "run", "--config", cfg], env=lw_env(args),
                            stdout=logf, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{LW_PORT}"
    try:
        wait_http(base + "/healthz", proc, 30)
        time.sleep(args.warmup)
        ta = time.monotonic()
        a = parse_metrics(http_get(base + "/metrics")[1].decode(), LW_NAMES)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.window)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss = rss_mib(proc.pid)
        tb = time.monotonic()
        b = parse_metrics(http_get(base + "/metrics")[1].decode(), LW_NAMES)
        rate = (sum(v for _, v in b["linkwatch_probes_total"])
                - sum(v for _, v in a["linkwatch_probes_total"])) / (tb - ta)
        ok = (sum(v for l, v in b["linkwatch_probes_total"] if l.get("result") == "success")
              - sum(v for l, v in a["linkwatch_probes_total"] if l.get("result") == "success"))
        skipped = (sum(v for _, v in b["linkwatch_probes_skipped_total"])
                   - sum(v for _, v in a["linkwatch_probes_skipped_total"]))
        late = hist_delta(hist(a["linkwatch_schedule_lateness_seconds_bucket"]),
                          hist(b["linkwatch_schedule_lateness_seconds_bucket"]))
        scrapes = [http_get(base + "/metrics") for _ in range(3)]
        rtts = []
        for _ in range(rtt_samples):
            rtts += lw_rtts(base)
            time.sleep(1)
        warns = 0
    finally:
        stop(proc)
        logf.close()
    with open(os.path.join(work, f"linkwatch-{n}.log")) as f:
        warns = sum(1 for line in f if " WARN " in line)
    cpu = c1 - c0
    return {
        "tool": "linkwatch", "n": n,
        "cpu_pct": 100 * cpu / (t1 - t0),
        "us_per_probe": 1e6 * cpu / (rate * (t1 - t0)) if rate else float("nan"),
        "rss_mib": rss,
        "scrape_ms": 1e3 * statistics.median(s[0] for s in scrapes),
        "scrape_kib": len(scrapes[-1][1]) / 1024,
        "rate": rate,
        "loss_pct": 100 * (1 - ok / (rate * (tb - ta))) if rate else float("nan"),
        "skipped": skipped,
        "warns": warns,
        "late_p50_ms": 1e3 * hist_quantile(0.5, late),
        "late_p99_ms": 1e3 * hist_quantile(0.99, late),
        "rtt_p50_us": 1e6 * quantile(0.5, rtts),
        "rtt_p99_us": 1e6 * quantile(0.99, rtts),
    }


FPING_SPLIT = re.compile(r"^\S+\s+: xmt/rcv/%loss = (\d+)/(\d+)/")


def run_fping(args, work, addrs):
    n = len(addrs)
    tfile = os.path.join(work, f"targets-{n}.txt")
    with open(tfile, "w") as f:
        f.write("\n".join(addrs) + "\n")
    # Spread the N sends of each second evenly (fping's -i is the gap between
    # any two sends); -C keeps every RTT for the quantiles.
    gap_ms = max(0.001, 900.0 / n)
    count = int(args.warmup + args.window + 30)
    out = open(os.path.join(work, f"fping-{n}.out"), "w")
    err = open(os.path.join(work, f"fping-{n}.err"), "w")
    proc = subprocess.Popen(
        ["fping", "-C", str(count), "-q", "-p", "1000", "-t", "900",
         "-i", f"{gap_ms:.3f}", "-f", tfile], stdout=out, stderr=err)
    try:
        time.sleep(args.warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"fping exited with {proc.returncode}")
        # SIGQUIT prints and resets fping's per-target split counters.
        proc.send_signal(signal.SIGQUIT)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.window)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss = rss_mib(proc.pid)
        proc.send_signal(signal.SIGQUIT)
        time.sleep(1)
    finally:
        stop(proc, signal.SIGINT, grace=30)
        out.close()
        err.close()
    # stderr: two split blocks (at window start and end; the second covers
    # the window), then after SIGINT the -C rows "addr : rtt rtt - rtt …" in
    # ms, one column per probe.
    with open(os.path.join(work, f"fping-{n}.err")) as f:
        blocks = re.split(r"^\[\d\d:\d\d:\d\d\]$", f.read(), flags=re.M)
    sent = recv = 0
    rtts = []
    lo, hi = int(args.warmup), int(args.warmup + args.window)
    for i, block in enumerate(blocks):
        for line in block.splitlines():
            m = FPING_SPLIT.match(line)
            if m:
                if i == 2:
                    sent += int(m.group(1))
                    recv += int(m.group(2))
            elif " : " in line:
                for c in line.split(" : ", 1)[1].split()[lo:hi]:
                    if c != "-":
                        rtts.append(float(c) / 1e3)
    cpu = c1 - c0
    rate = sent / (t1 - t0)
    return {
        "tool": "fping", "n": n,
        "cpu_pct": 100 * cpu / (t1 - t0),
        "us_per_probe": 1e6 * cpu / sent if sent else float("nan"),
        "rss_mib": rss,
        "rate": rate,
        "loss_pct": 100 * (1 - recv / sent) if sent else float("nan"),
        "rtt_p50_us": 1e6 * quantile(0.5, rtts),
        "rtt_p99_us": 1e6 * quantile(0.99, rtts),
    }


SP_NAMES = ["smokeping_requests_total", "smokeping_response_duration_seconds_bucket"]


def run_smokeping(args, work, addrs):
    n = len(addrs)
    cmd = ["prometheus-smokeping-prober", f"--web.listen-address=127.0.0.1:{SP_PORT}",
           "--ping.interval=1s"]
    # Its default is raw sockets, which collapse at 1000 targets (STACK-NOTES.md).
    cmd.append("--privileged" if args.mode == "raw" else "--no-privileged")
    logf = open(os.path.join(work, f"smokeping-{n}.log"), "w")
    proc = subprocess.Popen(cmd + addrs, stdout=logf, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{SP_PORT}"
    try:
        wait_http(base + "/metrics", proc, 60)
        time.sleep(args.warmup)
        ta = time.monotonic()
        a = parse_metrics(http_get(base + "/metrics", 120)[1].decode(), SP_NAMES)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.window)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss = rss_mib(proc.pid)
        tb = time.monotonic()
        b = parse_metrics(http_get(base + "/metrics", 120)[1].decode(), SP_NAMES)
        scrapes = [http_get(base + "/metrics", 120) for _ in range(3)]
    finally:
        stop(proc)
        logf.close()
    sent = (sum(v for _, v in b["smokeping_requests_total"])
            - sum(v for _, v in a["smokeping_requests_total"]))
    d = hist_delta(hist(a["smokeping_response_duration_seconds_bucket"]),
                   hist(b["smokeping_response_duration_seconds_bucket"]))
    recv = d.get(float("inf"), 0.0)
    rate = sent / (tb - ta)
    cpu = c1 - c0
    return {
        "tool": "smokeping_prober", "n": n,
        "cpu_pct": 100 * cpu / (t1 - t0),
        "us_per_probe": 1e6 * cpu / (rate * (t1 - t0)) if rate else float("nan"),
        "rss_mib": rss,
        "scrape_ms": 1e3 * statistics.median(s[0] for s in scrapes),
        "scrape_kib": len(scrapes[-1][1]) / 1024,
        "rate": rate,
        "loss_pct": 100 * (1 - recv / sent) if sent else float("nan"),
        "rtt_p50_us": 1e6 * hist_quantile(0.5, d),
        "rtt_p99_us": 1e6 * hist_quantile(0.99, d),
    }


# ---------------------------------------------------------------- report


def fmt(v, spec):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, spec)


def table(results, idle):
    rows = [
        "| targets | tool | CPU % of a core | CPU µs/probe | RSS MiB | /metrics ms | /metrics KiB "
        "| probes/s achieved / scheduled | lost % | lateness p50 / p99 ms | RTT p50 / p99 µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['n']} | {r['tool']} | {fmt(r['cpu_pct'], '.1f')} | {fmt(r['us_per_probe'], '.1f')} "
            f"| {fmt(r['rss_mib'], '.1f')} | {fmt(r.get('scrape_ms'), '.1f')} | {fmt(r.get('scrape_kib'), '.0f')} "
            f"| {fmt(r['rate'], '.0f')} / {r['n']} | {fmt(r['loss_pct'], '.2f')} "
            f"| {fmt(r.get('late_p50_ms'), '.3f')} / {fmt(r.get('late_p99_ms'), '.3f')} "
            f"| {fmt(r['rtt_p50_us'], '.0f')} / {fmt(r['rtt_p99_us'], '.0f')} |")
    out = ["\n".join(rows), ""]
    out.append("Ratios (linkwatch / other; below 1 means linkwatch uses less):\n")
    out.append("| targets | vs | CPU µs/probe | RSS | /metrics time | RTT p50 |")
    out.append("|---|---|---|---|---|---|")
    by = {(r["n"], r["tool"]): r for r in results}
    for n in sorted({r["n"] for r in results}):
        lw = by.get((n, "linkwatch"))
        if not lw:
            continue
        for other in ("fping", "smokeping_prober"):
            o = by.get((n, other))
            if not o:
                continue

            def ratio(k):
                a, b = lw.get(k), o.get(k)
                if a is None or b is None or b != b or a != a or b == 0:
                    return "-"
                return f"{a / b:.2f}"

            out.append(f"| {n} | {other} | {ratio('us_per_probe')} | {ratio('rss_mib')} "
                       f"| {ratio('scrape_ms')} | {ratio('rtt_p50_us')} |")
    if idle:
        out.append("")
        out.append(
            f"Idle loopback RTT (127.0.0.1): ping(8) p50 {fmt(idle.get('ping_p50_us'), '.0f')} µs "
            f"/ p99 {fmt(idle.get('ping_p99_us'), '.0f')} µs ({idle.get('ping_n', 0)} pings); "
            f"linkwatch with 10 targets p50 {fmt(idle.get('lw_p50_us'), '.0f')} µs "
            f"/ p99 {fmt(idle.get('lw_p99_us'), '.0f')} µs ({idle.get('lw_n', 0)} probes).")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def inner(args):
    work = args.workdir
    results, idle = [], {}
    if "idle" in args.tools:
        log("idle baseline: ping(8)")
        p = idle_ping(300)
        idle.update(ping_p50_us=1e6 * quantile(0.5, p), ping_p99_us=1e6 * quantile(0.99, p),
                    ping_n=len(p))
        if "linkwatch" in args.tools:
            log("idle baseline: linkwatch, 10 targets")
            cfg = os.path.join(work, "idle.toml")
            data = os.path.join(work, "data-idle")
            os.makedirs(data, exist_ok=True)
            lw_config(cfg, data, ["127.0.0.1"] + addresses(9))
            logf = open(os.path.join(work, "idle.log"), "w")
            proc = subprocess.Popen([args.binary, "run", "--config", cfg], env=lw_env(args),
                                    stdout=logf, stderr=subprocess.STDOUT)
            rtts = []
            try:
                wait_http(f"http://127.0.0.1:{LW_PORT}/healthz", proc, 30)
                time.sleep(2)
                for _ in range(30):
                    rtts += lw_rtts(f"http://127.0.0.1:{LW_PORT}")
                    time.sleep(1)
            finally:
                stop(proc)
                logf.close()
            idle.update(lw_p50_us=1e6 * quantile(0.5, rtts), lw_p99_us=1e6 * quantile(0.99, rtts),
                        lw_n=len(rtts))
    for n in args.sizes:
        addrs = addresses(n)
        for tool in ("linkwatch", "fping", "smokeping_prober"):
            if tool not in args.tools:
                continue
            log(f"{tool}: {n} targets, warm-up {args.warmup} s, window {args.window} s")
            try:
                if tool == "linkwatch":
                    r = run_linkwatch(args, work, addrs, args.rtt_samples)
                elif tool == "fping":
                    r = run_fping(args, work, addrs)
                else:
                    r = run_smokeping(args, work, addrs)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                log(f"{tool} at {n} failed: {e}")
                continue
            log(json.dumps(r))
            results.append(r)
            time.sleep(2)
    print(table(results, idle))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "idle": idle, "args": vars(args)}, f, indent=1)


def outer(args, argv):
    if os.geteuid() != 0:
        sys.exit("icmp_scale.py needs root (it creates a network namespace)")
    for exe in [args.binary] + (["fping"] if "fping" in args.tools else []) + (
            ["prometheus-smokeping-prober"] if "smokeping_prober" in args.tools else []):
        if not shutil.which(exe) and not os.access(exe, os.X_OK):
            sys.exit(f"missing {exe} (apt-get install -y fping prometheus-smokeping-prober; "
                     f"cargo build --release)")
    ns = f"lwbench-{os.getpid()}"
    work = tempfile.mkdtemp(prefix="lwbench-")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    child = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        # dgram: every gid may open unprivileged ICMP sockets (linkwatch's and
        # smokeping_prober's normal mode); raw: none may, root falls back to raw.
        rng = "0 2147483647" if args.mode == "dgram" else "1 0"
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                        f"net.ipv4.ping_group_range={rng}"], check=True)
        binary = os.path.abspath(args.binary) if os.path.exists(args.binary) else args.binary
        cmd = ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
               "--inner", "--workdir", work, "--binary", binary] + argv
        child = subprocess.Popen(cmd)
        child.wait()
        log(f"logs and configs in {work}" if args.keep else "done")
        return child.returncode
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        # Whatever still runs in the namespace was started by this script.
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,5000,10000",
                   type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--window", type=float, default=60, help="measurement window, seconds")
    p.add_argument("--warmup", type=float, default=15, help="warm-up before the window, seconds")
    p.add_argument("--tools", default="idle,linkwatch,fping,smokeping_prober",
                   type=lambda s: s.split(","))
    p.add_argument("--mode", choices=["dgram", "raw"], default="dgram",
                   help="ICMP socket mode for linkwatch and smokeping_prober (fping is raw as root)")
    p.add_argument("--binary", default="target/release/linkwatch")
    p.add_argument("--rtt-samples", type=int, default=3,
                   help="snapshots of every target's last RTT taken after the window")
    p.add_argument("--lw-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for linkwatch, e.g. TOKIO_WORKER_THREADS=1")
    p.add_argument("--lw-extra", metavar="FILE",
                   help="TOML appended to linkwatch's config (e.g. a [defaults.degraded] table)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep configs and logs")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    if args.inner:
        inner(args)
        return 0
    # The inner run gets the same options (minus what outer sets itself).
    passthrough = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--binary":
            skip = True
            continue
        if a.startswith("--binary="):
            continue
        passthrough.append(a)
    return outer(args, passthrough)


if __name__ == "__main__":
    sys.exit(main())
