//! Network-namespace fixture: uniquely named namespaces that clean up after
//! themselves, veth links between them, and a way to run code inside one.
//!
//! Running code in a namespace: a multi-threaded test process cannot safely
//! `setns` itself (and the crate forbids `unsafe`), so library code runs in a
//! child: [`Netns::run_inner`] re-executes the current test binary through
//! `ip netns exec` (optionally under `setpriv` as another user) with
//! `--exact <name> --ignored`, selecting an `#[ignore]`d "inner" test that
//! reads its instructions from `LWT_*` environment variables and prints result
//! lines. No extra binary is needed and the inner half is always built with
//! the test that uses it.
//!
//! Network rule: a namespace made here has only `lo` until [`link`] joins it
//! to another test namespace, so nothing in it can reach the root namespace
//! or the outside. Fault only those links, never a root-namespace interface.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Returns true when namespace tests can run (root and a working `ip netns`).
/// Otherwise prints why and returns false, or panics when `CI=true`.
pub fn require_root() -> bool {
    let reason = if !is_root() {
        Some("not running as root".to_string())
    } else {
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run `ip`: {e}")),
        }
    };
    match reason {
        None => true,
        Some(r) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("network-namespace test cannot run with CI=true: {r}")
        }
        Some(r) => {
            eprintln!("SKIPPED: network-namespace test needs root and `ip netns`: {r}");
            false
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Runs a command, panicking with its output when it fails.
pub fn must(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace `lwt-<pid>-<n>`, deleted (with every process in it) on drop.
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
}

impl Netns {
    /// Creates the namespace with `lo` up.
    pub fn new() -> Self {
        let name = format!(
            "lwt-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        must(Command::new("ip").args(["netns", "add", &name]));
        // Guard first, so a failure below still deletes the namespace.
        let ns = Self {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <ns> <args…>` as a command to adjust and run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` in the namespace; panics on failure, returns stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        must(&mut self.command(args))
    }

    /// `ip -n <ns> <args…>`; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        must(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Starts a long-running process in the namespace; it is killed on drop.
    pub fn spawn(&self, args: &[&str]) -> u32 {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {args:?} in {}: {e}", self.name));
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        pid
    }

    /// Starts the `#[ignore]`d test `inner` of the current test binary in the
    /// namespace as a long-running process (killed on drop).
    pub fn spawn_inner(&self, inner: &str, env: &[(&str, &str)]) -> u32 {
        let exe = std::env::current_exe().expect("current test executable");
        let mut cmd = self.command(&[]);
        cmd.arg(exe)
            .args(["--exact", inner, "--ignored", "--nocapture"])
            .env("LWT_INNER", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {inner} in {}: {e}", self.name));
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        pid
    }

    /// Waits (up to 10 s) until something listens on TCP `port` in the namespace.
    pub fn wait_listening(&self, port: u16) {
        let filter = format!("sport = :{port}");
        for _ in 0..200 {
            if !self.exec(&["ss", "-Hltn", &filter]).trim().is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("nothing listens on port {port} in {} after 10 s", self.name);
    }

    /// Waits (up to 5 s) until `dev` is operationally up with its qdisc attached.
    pub fn wait_up(&self, dev: &str) {
        for _ in 0..100 {
            let state = self.ip(&["-o", "link", "show", "dev", dev]);
            if state.contains("state UP") && !state.contains("qdisc noop") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{dev} in {} is not up after 5 s", self.name);
    }

    /// Re-runs the current test binary's `#[ignore]`d test `inner` inside the
    /// namespace (as `user` via `setpriv` when given, with no capabilities),
    /// with `env` set, and returns its output. See the module docs.
    pub fn run_inner(
        &self,
        user: Option<(&str, &str)>,
        inner: &str,
        env: &[(&str, &str)],
    ) -> Output {
        let exe = std::env::current_exe().expect("current test executable");
        let exe = exe.to_str().expect("test executable path is UTF-8");
        let mut args: Vec<&str> = Vec::new();
        let reuid;
        let regid;
        if let Some((u, g)) = user {
            reuid = format!("--reuid={u}");
            regid = format!("--regid={g}");
            args.extend([
                "setpriv",
                &reuid,
                &regid,
                "--clear-groups",
                "--inh-caps=-all",
            ]);
            args.extend(["--bounding-set=-all"]);
        }
        args.extend([
            exe,
            "--exact",
            inner,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
        let mut cmd = self.command(&args);
        cmd.env("LWT_INNER", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("failed to run inner test {inner} in {}: {e}", self.name));
        if !out.status.success() {
            panic!(
                "inner test {inner} failed in {} ({}):\n{}\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|e| e.into_inner()));
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything else still running in the namespace (grandchildren, daemons).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "warning: failed to delete network namespace {}: {status:?}",
                self.name
            );
        }
    }
}

/// The two ends of a veth link between test namespaces.
#[derive(Debug, Clone)]
pub struct Link {
    /// Interface name in `a` and in `b`.
    pub a_if: String,
    pub b_if: String,
    pub a_v4: Ipv4Addr,
    pub b_v4: Ipv4Addr,
    pub a_v6: Ipv6Addr,
    pub b_v6: Ipv6Addr,
}

/// Joins `a` and `b` with a veth pair on subnet `10.231.<subnet>.0/24` and
/// `fd00:231:<subnet>::/64` (`a` gets `.1`/`::1`, `b` gets `.2`/`::2`). IPv6
/// addresses skip DAD and survive the link going down.
pub fn link(a: &Netns, b: &Netns, subnet: u8) -> Link {
    let l = Link {
        a_if: format!("v{subnet}a"),
        b_if: format!("v{subnet}b"),
        a_v4: Ipv4Addr::new(10, 231, subnet, 1),
        b_v4: Ipv4Addr::new(10, 231, subnet, 2),
        a_v6: Ipv6Addr::new(0xfd00, 0x231, subnet.into(), 0, 0, 0, 0, 1),
        b_v6: Ipv6Addr::new(0xfd00, 0x231, subnet.into(), 0, 0, 0, 0, 2),
    };
    a.ip(&[
        "link",
        "add",
        &l.a_if,
        "type",
        "veth",
        "peer",
        "name",
        &l.b_if,
        "netns",
        b.name(),
    ]);
    for (ns, dev, v4, v6) in [(a, &l.a_if, l.a_v4, l.a_v6), (b, &l.b_if, l.b_v4, l.b_v6)] {
        ns.sysctl(&format!("net.ipv6.conf.{dev}.keep_addr_on_down"), "1");
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev]);
        ns.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{v6}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    // The kernel turns the carrier on and attaches the qdisc asynchronously
    // (linkwatch, up to 1 s); packets sent before are dropped, which costs a
    // first IPv6 neighbour solicitation a full 1 s retransmit.
    for (ns, dev) in [(a, &l.a_if), (b, &l.b_if)] {
        ns.wait_up(dev);
    }
    l
}
