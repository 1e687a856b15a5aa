#!/usr/bin/env python3
"""Status page weight and time against a release binary (issue 23, "page").

Writes a history store of N targets x D days of minutes in the store's text
format (format 2, one `m` row per target and minute, 60 probes a minute with
RTTs over five buckets: the ~90 KB per target per day of
`benches/history_store.rs`), starts `BINARY run` on it with N TCP targets
probing a listener on 127.0.0.1, and times `GET /` (and, for a binary with
chart images, every `/chart/NAME.svg` the page links) with curl: medians of
REPS runs after one warm-up.

    benches/page_weight.py BINARY --targets 50 --days 30 [--reps 11] [--store DIR]
        [--chart-ranges 24h,30d]

Loopback only; the daemon is stopped at the end. The store is kept under
--store (default /tmp/page-weight-<targets>x<days>) and reused when present.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HIST = "4:12,5:20,6:16,7:8,8:4"  # 60 successes over five buckets


def write_store(root, targets, days):
    hist = os.path.join(root, "history")
    if os.path.isdir(hist) and os.listdir(hist):
        return
    os.makedirs(hist, exist_ok=True)
    now = int(time.time()) // 60 * 60
    start = now - days * 86400 + 3600
    run_ms = (start // 86400 * 86400) * 1000
    names = [f"tcp-{i:04d}" for i in range(targets)]
    minute = start // 60
    end = (now - 120) // 60
    day = None
    f = None
    while minute < end:
        d = minute * 60 // 86400
        if d != day:
            if f:
                f.close()
            day = d
            date = time.strftime("%Y-%m-%d", time.gmtime(d * 86400))
            f = open(os.path.join(hist, f"{date}.{run_ms}.lwh"), "w")
        lines = []
        for i, n in enumerate(names):
            fail = 1 if (minute + i) % 97 == 0 else 0
            s = 60 - fail
            lines.append(f"m\t{minute}\t{n}\t60\t{fail}\t{s * 4100}\t{1100 + i % 50}\t{9000 + i % 700}\t{HIST}\n")
        f.write("".join(lines))
        minute += 1
    if f:
        f.close()


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1024)

    def accept():
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return s


def curl(url):
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}", url],
        capture_output=True, text=True, check=True, timeout=120).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def body(url):
    return subprocess.run(["curl", "-s", url], capture_output=True, text=True,
                          check=True, timeout=120).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--store")
    ap.add_argument("--port", type=int, default=19899)
    ap.add_argument("--chart-ranges", default="24h,30d",
                    help="ranges whose charts are fetched too (comma separated; '' for none)")
    a = ap.parse_args()
    store = a.store or f"/tmp/page-weight-{a.targets}x{a.days}"
    t0 = time.time()
    write_store(store, a.targets, a.days)
    size = sum(os.path.getsize(os.path.join(store, "history", f))
               for f in os.listdir(os.path.join(store, "history")))
    print(f"store {store}: {size / 1e6:.0f} MB ({time.time() - t0:.0f} s)", flush=True)
    lst = listener()
    port = lst.getsockname()[1]
    work = tempfile.mkdtemp(prefix="page-weight-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    os.symlink(os.path.join(store, "history"), os.path.join(data, "history"))
    cfg = [f'[daemon]\nlisten = "127.0.0.1:{a.port}"\ndata_dir = "{data}"\n',
           '[defaults]\ninterval = "60s"\ntimeout = "2s"\n']
    groups = max(1, a.targets // 10)
    for g in range(groups):
        cfg.append(f'[[group]]\nname = "site-{g}"\n')
    for i in range(a.targets):
        cfg.append(f'[[target]]\nname = "tcp-{i:04d}"\ngroup = "site-{i % groups}"\n'
                   f'kind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n')
    path = os.path.join(work, "config.toml")
    open(path, "w").write("\n".join(cfg))
    log = open(os.path.join(work, "daemon.log"), "w")
    d = subprocess.Popen([a.binary, "run", "--config", path], stdout=log, stderr=log,
                         env={**os.environ, "RUST_LOG": "warn"})
    base = f"http://127.0.0.1:{a.port}"
    try:
        for _ in range(100):
            try:
                if curl(base + "/healthz")[0] == 200:
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.2)
        time.sleep(2)
        for path in ["/?range=24h", "/?range=30d"]:
            curl(base + path)
            runs = [curl(base + path) for _ in range(a.reps)]
            assert all(r[0] == 200 for r in runs), runs
            t = statistics.median(r[1] for r in runs)
            n = statistics.median(r[2] for r in runs)
            print(f"GET {path}: {n / 1e3:.1f} KB, median {t * 1e3:.1f} ms "
                  f"(min {min(r[1] for r in runs) * 1e3:.1f}, max {max(r[1] for r in runs) * 1e3:.1f})",
                  flush=True)
            charts = re.findall(r'<img class="chart" src="([^"]+)"', body(base + path))
            if charts and path.split("=")[-1] in a.chart_ranges.split(","):
                # What a browser fetches on top, when every chart is shown
                # (one after the other here; a browser fetches ~6 at once).
                totals, sizes = [], []
                for _ in range(max(1, a.reps // 4)):
                    rs = [curl(base + c.replace("&amp;", "&")) for c in charts]
                    assert all(r[0] == 200 for r in rs), rs[:3]
                    totals.append(sum(r[1] for r in rs))
                    sizes.append(sum(r[2] for r in rs))
                one = [curl(base + charts[0].replace("&amp;", "&"))[1] for _ in range(a.reps)]
                print(f"  + {len(charts)} charts: {statistics.median(sizes) / 1e3:.1f} KB, "
                      f"all in sequence median {statistics.median(totals) * 1e3:.0f} ms, "
                      f"one chart median {statistics.median(one) * 1e3:.1f} ms", flush=True)
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.kill()
        lst.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
