#!/usr/bin/env python3
"""Page/API timing against a release binary on a generated history store.

Starts `BINARY run --config …` on 127.0.0.1 with DATA_DIR (made by
`cargo bench --bench history_gen -- --out DATA_DIR --targets N …`) and a
config of the same N TCP targets `t0…` pointing at a loopback listener this
script holds open (every probe is a local handshake; nothing leaves the
host), waits for /healthz, then times, N runs each, one after the other:

  * GET /  (a daemon without a journal yet: its range fits the run, 1 h)
  * GET /?range=24h, /?range=7d, /?range=30d
  * GET /api/v1/history?target=t0&since=365d&step=3600  (one target, a year, 1 h steps)
  * with --charts: GET /chart/t0.svg?range=24h, 7d, 30d (what the page's images cost)

and prints medians (and min/max) of the wall time and the bytes, as one
JSON line per request and a Markdown table.

    python3 benches/page_timing.py --binary target/release/linkwatch \
        --data-dir /tmp/store50 --targets 50 --runs 9 [--history-table]

`--history-table` adds `[history] minutes_days = 30` (the generated store
has 30 days of minutes); the previous release rejects the table, so leave
it out for main's binary.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

PORT = 19797


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def listener():
    """A loopback TCP listener that accepts and closes (bounded by the run)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)

    def serve():
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return s


def config(data_dir, targets, port, history_table, interval):
    lines = [
        "[daemon]",
        f'listen = "127.0.0.1:{PORT}"',
        f'data_dir = "{data_dir}"',
        "",
    ]
    if history_table:
        lines += ["[history]", "minutes_days = 30", "hours_days = 400", ""]
    lines += ["[defaults]", f'interval = "{interval}"', 'timeout = "2s"', ""]
    lines += ["[[group]]", 'name = "lan"', ""]
    for i in range(targets):
        lines += [
            "[[target]]",
            f'name = "t{i}"',
            'group = "lan"',
            'kind = "tcp"',
            'host = "127.0.0.1"',
            f"port = {port}",
            "",
        ]
    return "\n".join(lines)


def get(url, timeout=120):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        status = r.status
    return time.perf_counter() - t, len(body), status


def wait_http(url, proc, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}")
        try:
            get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--targets", type=int, required=True)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--history-table", action="store_true")
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--label", default="")
    ap.add_argument("--charts", action="store_true",
                    help="also time /chart/t0.svg for 24h, 7d and 30d (not in releases before the light page)")
    args = ap.parse_args()

    lst = listener()
    port = lst.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="page-timing-")
    cfg = os.path.join(tmp, "config.toml")
    with open(cfg, "w") as f:
        f.write(config(os.path.abspath(args.data_dir), args.targets, port,
                       args.history_table, args.interval))
    logf = open(os.path.join(tmp, "daemon.log"), "w")
    proc = subprocess.Popen([args.binary, "run", "--config", cfg],
                            stdout=logf, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{PORT}"
    results = []
    try:
        wait_http(base + "/healthz", proc, 60)
        time.sleep(2)  # a round of probes in
        paths = [
            "/",
            "/?range=24h",
            "/?range=7d",
            "/?range=30d",
            "/api/v1/history?target=t0&since=365d&step=3600",
        ]
        if args.charts:
            # The light page's images (issue 23): one target's chart per range.
            paths += [f"/chart/t0.svg?range={r}" for r in ("24h", "7d", "30d")]
        for path in paths:
            get(base + path)  # warm: the files in the page cache
            times, sizes = [], []
            for _ in range(args.runs):
                dt, n, status = get(base + path)
                assert status == 200, (path, status)
                times.append(dt)
                sizes.append(n)
            r = {
                "label": args.label,
                "targets": args.targets,
                "path": path,
                "median_ms": round(statistics.median(times) * 1000, 1),
                "min_ms": round(min(times) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1),
                "bytes": int(statistics.median(sizes)),
                "runs": args.runs,
            }
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        lst.close()
        logf.close()
    print()
    print("| targets | request | median ms | min–max ms | bytes |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['targets']} | `{r['path']}` | {r['median_ms']} | "
              f"{r['min_ms']}–{r['max_ms']} | {r['bytes']:,} |")


if __name__ == "__main__":
    main()
