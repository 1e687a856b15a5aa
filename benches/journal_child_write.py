#!/usr/bin/env python3
"""Cost of a journal line written through a child process (issue 19 item 4).

The daemon appends each journal line through a short-lived child
(`/proc/self/exe __journal-io append …`, see src/journal/child.rs) so
that a frozen filesystem holds the child, never the daemon. This measures one
line's write + fdatasync done in-process against the same line done by the
child, on the filesystem of DIR, and prints both and their ratio.

Run after `cargo build --release`:

    python3 benches/journal_child_write.py target/release/linkwatch /var/tmp/x 300

(the numbers include Python's own process spawning, which the daemon's
`std::process::Command` roughly matches).
"""
import os
import subprocess
import sys
import time


def main():
    exe, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(d, exist_ok=True)
    line = (
        '{"seq":1,"prev":"' + "a" * 64 + '","ts":"2026-12-06T17:00:00.000Z",'
        '"event":"outage_start","id":"x","group":"internet","cause":"internet",'
        '"start":"2026-12-06T17:00:00.000Z","targets":["service"]}\n'
    )
    path = os.path.join(d, "bench-journal.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(fd, line.encode())
            os.fdatasync(fd)
        inproc = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for _ in range(n):
            size = os.fstat(fd).st_size
            r = subprocess.run(
                [exe, "__journal-io", "append", str(size), line],
                stdin=fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={},
            )
            assert r.stderr == b"ok\n", r.stderr
        child = (time.perf_counter() - t) / n
    finally:
        os.close(fd)
        os.unlink(path)
    print(
        f"in-process write+fdatasync: {inproc * 1e3:.3f} ms/line; "
        f"through a child: {child * 1e3:.3f} ms/line; ratio {child / inproc:.1f}x; lines={n}"
    )


if __name__ == "__main__":
    main()
