//! A small fake internet for outage tests: four network namespaces in a chain,
//! servers the test runs itself, and the real `linkwatch` binary in `home`.
//!
//! ```text
//!  home ─────────── router ─────────── isp ─────────── inet
//!  .1.2   v1b  v1a  .1.1 .2.2  v2b v2a  .2.1 .3.2 v3b v3a .3.1
//! ```
//!
//! Each link is `10.231.<n>.0/24` made by [`link`]; the upstream end (`v<n>a`)
//! is the far side that faults take down. `isp` also holds 10.231.200.1 and
//! `inet` holds the internet and DNS addresses (10.231.100.x) on `lo`. The
//! namespaces have no link to the root namespace, and only routes to these
//! test subnets (no default route), so nothing a probe sends can leave them.
//! Namespaces of different tests are independent, so every test reuses the
//! same addresses.
//!
//! Servers (TCP, HTTP, DNS) are the `#[ignore]`d test [`INNER`] of the test
//! binary, re-executed inside `inet` with `LWT_SERVE` naming what to serve
//! (see [`serve_main`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::daemon::{BIN, Daemon};
use crate::harness::netns::{Link, Netns, link};

/// Name of the inner test that runs the servers.
pub const INNER: &str = "harness::fakenet::inner_serve";

/// The server half, run inside `inet` by [`Server`].
#[test]
#[ignore = "inner half: started inside a namespace by the outage scenarios"]
fn inner_serve() {
    if crate::harness::configs::is_inner() {
        serve_main();
    }
}

/// The router's address on the LAN (the `lan` group's target).
pub const ROUTER: &str = "10.231.1.1";
/// The ISP's addresses: both ends of its links and one on its `lo`.
pub const ISP: [&str; 3] = ["10.231.2.1", "10.231.3.2", "10.231.200.1"];
/// Internet hosts answering ICMP.
pub const INET_ICMP: [&str; 2] = ["10.231.100.1", "10.231.100.2"];
/// Internet TCP server (accepts and closes).
pub const INET_TCP: &str = "10.231.100.3:443";
/// Internet HTTP server (`204` to every request).
pub const INET_HTTP: &str = "10.231.100.4:80";
/// DNS servers (each its own process), answering every `A` query.
pub const DNS: [&str; 3] = ["10.231.100.53", "10.231.100.54", "10.231.100.55"];
/// The groups, upstream first.
pub const GROUPS: [&str; 4] = ["lan", "isp", "internet", "dns"];

/// True when the scenarios can run: root, `ip netns`, `curl` and `iptables`.
/// Otherwise prints why and returns false (panics when `CI=true`).
pub fn can_run() -> bool {
    crate::harness::netns::require_root()
        && ["curl", "iptables"].iter().all(|tool| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            crate::harness::daemon::require(found, &format!("`{tool}` is not installed"))
        })
}

/// Probe timing of every target.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub interval: Duration,
    pub timeout: Duration,
    pub fail_after: u32,
    pub recover_after: u32,
}

impl Params {
    /// 300 ms interval, 200 ms timeout, fail_after 3, recover_after 2.
    pub const FAST: Params = Params {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(200),
        fail_after: 3,
        recover_after: 2,
    };

    /// What the issue allows between an injected change and the recorded one.
    pub fn tolerance(&self) -> Duration {
        self.interval + self.timeout
    }
}

/// The configuration linkwatch runs with in `home`.
pub fn config_toml(p: &Params, data_dir: &Path) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut s = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
data_dir = "{data}"

[defaults]
interval = "{interval}"
timeout = "{timeout}"
fail_after = {fail_after}
recover_after = {recover_after}

[[group]]
name = "lan"
[[group]]
name = "isp"
needs = "lan"
[[group]]
name = "internet"
needs = "isp"
[[group]]
name = "dns"
needs = "internet"

[[target]]
name = "router"
group = "lan"
kind = "icmp"
host = "{ROUTER}"
"#,
        data = data_dir.display(),
        interval = ms(p.interval),
        timeout = ms(p.timeout),
        fail_after = p.fail_after,
        recover_after = p.recover_after,
    );
    for (i, a) in ISP.iter().enumerate() {
        s += &format!(
            "\n[[target]]\nname = \"isp-{i}\"\ngroup = \"isp\"\nkind = \"icmp\"\nhost = \"{a}\"\n"
        );
    }
    for (i, a) in INET_ICMP.iter().enumerate() {
        s += &format!(
            "\n[[target]]\nname = \"inet-icmp-{i}\"\ngroup = \"internet\"\nkind = \"icmp\"\nhost = \"{a}\"\n"
        );
    }
    let (tcp_host, tcp_port) = INET_TCP.split_once(':').unwrap();
    s += &format!(
        "\n[[target]]\nname = \"inet-tcp\"\ngroup = \"internet\"\nkind = \"tcp\"\nhost = \"{tcp_host}\"\nport = {tcp_port}\n"
    );
    s += &format!(
        "\n[[target]]\nname = \"inet-http\"\ngroup = \"internet\"\nkind = \"http\"\nurl = \"http://{INET_HTTP}/generate_204\"\nexpect_status = [204]\n"
    );
    for (i, a) in DNS.iter().enumerate() {
        s += &format!(
            "\n[[target]]\nname = \"dns-{i}\"\ngroup = \"dns\"\nkind = \"dns\"\nserver = \"{a}\"\nquery = \"example.test\"\nrecord = \"A\"\n"
        );
    }
    s
}

/// Runs `f` and returns the midpoint of the wall-clock instants around it:
/// the moment the change it makes is taken to happen.
pub fn timed(f: impl FnOnce()) -> Timestamp {
    let before = Timestamp::now();
    f();
    let after = Timestamp::now();
    let half = after.duration_since(before) / 2;
    before.checked_add(half).unwrap()
}

/// Milliseconds from `b` to `a` (negative when `a` is earlier).
pub fn ms_between(a: Timestamp, b: Timestamp) -> f64 {
    a.duration_since(b).as_secs_f64() * 1e3
}

/// A server process inside a namespace (the inner test), killed on drop.
pub struct Server {
    child: Option<Child>,
    pub what: String,
}

impl Server {
    /// Starts the inner test serving `what` (`LWT_SERVE`) in `ns`; returns once
    /// every socket is bound, with the wall-clock instant it said so.
    pub fn start(ns: &Netns, what: &str) -> (Server, Timestamp) {
        let exe = std::env::current_exe().unwrap();
        let mut child = ns
            .command(&[
                exe.to_str().unwrap(),
                "--exact",
                INNER,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LWT_INNER", "1")
            .env("LWT_SERVE", what)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start server {what} in {}: {e}", ns.name()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("LWT ready")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(Timestamp::now());
                }
            }
        });
        let server = Server {
            child: Some(child),
            what: what.to_string(),
        };
        let ready = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("server {what} did not get ready within 10 s"));
        (server, ready)
    }

    /// `kill -9` and reap; returns the instant it was gone (its sockets closed).
    pub fn kill(&mut self) -> Timestamp {
        let mut child = self.child.take().expect("server already killed");
        child.kill().unwrap();
        child.wait().unwrap();
        Timestamp::now()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The four namespaces, their links and the servers in `inet`.
///
/// Field order is drop order: servers go first, then the namespaces (each
/// killing whatever still runs in it, the daemon included).
pub struct FakeNet {
    pub web: Server,
    pub dns: Vec<Server>,
    pub home: Netns,
    pub router: Netns,
    pub isp: Netns,
    pub inet: Netns,
    /// home ↔ router (`v1a` in router is the far side).
    pub lan: Link,
    /// router ↔ isp (`v2a` in isp is the far side).
    pub uplink: Link,
    /// isp ↔ inet (`v3a` in inet is the far side).
    pub far: Link,
}

impl FakeNet {
    /// Builds the chain, routes and servers.
    pub fn new() -> FakeNet {
        let home = Netns::new();
        let router = Netns::new();
        let isp = Netns::new();
        let inet = Netns::new();
        let lan = link(&router, &home, 1);
        let uplink = link(&isp, &router, 2);
        let far = link(&inet, &isp, 3);
        isp.ip(&["addr", "add", &format!("{}/32", ISP[2]), "dev", "lo"]);
        let inet_addrs = INET_ICMP
            .iter()
            .copied()
            .chain([INET_TCP, INET_HTTP].map(|a| a.split_once(':').unwrap().0))
            .chain(DNS);
        for a in inet_addrs {
            inet.ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        for ns in [&router, &isp] {
            ns.sysctl("net.ipv4.ip_forward", "1");
        }
        let (web, _) = Server::start(&inet, &format!("tcp={INET_TCP},http={INET_HTTP}"));
        let dns = DNS
            .iter()
            .map(|a| Server::start(&inet, &format!("dns={a}:53")).0)
            .collect();
        let net = FakeNet {
            web,
            dns,
            home,
            router,
            isp,
            inet,
            lan,
            uplink,
            far,
        };
        net.routes();
        net
    }

    /// Every static route: (namespace, destination, gateway). No default
    /// routes: a namespace only knows the test subnets.
    fn route_table(&self) -> Vec<(&Netns, &'static str, Ipv4Addr)> {
        let mut t = vec![(&self.home, "10.231.0.0/16", self.lan.a_v4)];
        for dst in ["10.231.3.0/24", "10.231.100.0/24", "10.231.200.0/24"] {
            t.push((&self.router, dst, self.uplink.a_v4));
        }
        t.push((&self.isp, "10.231.1.0/24", self.uplink.b_v4));
        t.push((&self.isp, "10.231.100.0/24", self.far.a_v4));
        t.push((&self.inet, "10.231.1.0/24", self.far.b_v4));
        t.push((&self.inet, "10.231.2.0/24", self.far.b_v4));
        t
    }

    /// Permanent neighbour entries for both ends of every link:
    /// (namespace, device, peer address, peer MAC). With them, ARP plays no
    /// part in the measurement: without, a repaired path waits for the next
    /// ARP retransmission (up to 1 s), and probes sent during the fault sit in
    /// the ARP queue and are delivered at the repair, both of which moved the
    /// recorded end by up to a second against the instant of the repair.
    fn neighbour_table(&self) -> Vec<(&Netns, &str, Ipv4Addr, String)> {
        let mut t = Vec::new();
        for (a, b, l) in [
            (&self.router, &self.home, &self.lan),
            (&self.isp, &self.router, &self.uplink),
            (&self.inet, &self.isp, &self.far),
        ] {
            t.push((a, l.a_if.as_str(), l.b_v4, mac(b, &l.b_if)));
            t.push((b, l.b_if.as_str(), l.a_v4, mac(a, &l.a_if)));
        }
        t
    }

    /// `ip` commands that (re)install the static routes and neighbours in `ns`
    /// (every namespace when `None`).
    fn static_config(&self, only: Option<&Netns>) -> Vec<(&Netns, Vec<String>)> {
        let wanted = |ns: &Netns| only.is_none_or(|o| o.name() == ns.name());
        let mut cmds = Vec::new();
        for (ns, dst, via) in self.route_table() {
            if wanted(ns) {
                let args = ["route", "replace", dst, "via", &via.to_string()];
                cmds.push((ns, args.map(String::from).to_vec()));
            }
        }
        for (ns, dev, peer, mac) in self.neighbour_table() {
            if wanted(ns) {
                let args = [
                    "neigh",
                    "replace",
                    &peer.to_string(),
                    "lladdr",
                    &mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ];
                cmds.push((ns, args.map(String::from).to_vec()));
            }
        }
        cmds
    }

    fn routes(&self) {
        for (ns, args) in self.static_config(None) {
            ns.ip(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    /// The far-side device of a link and its namespace.
    fn far_side(&self, which: Hop) -> (&Netns, &str) {
        match which {
            Hop::Lan => (&self.router, &self.lan.a_if),
            Hop::Uplink => (&self.isp, &self.uplink.a_if),
            Hop::Far => (&self.inet, &self.far.a_if),
        }
    }

    /// Takes the far side of a link down; returns the instant it happened.
    pub fn break_link(&self, which: Hop) -> Timestamp {
        let (ns, dev) = self.far_side(which);
        timed(|| {
            ns.ip(&["link", "set", dev, "down"]);
        })
    }

    /// Sets the far side of a link up again and puts back the routes and
    /// neighbours the kernel deleted with it (setting a device down deletes
    /// those through it); returns the instant of the last of those steps, when
    /// the path was whole again.
    pub fn repair(&self, which: Hop) -> Timestamp {
        let (ns, dev) = self.far_side(which);
        let mut steps: Vec<Vec<String>> =
            vec![["link", "set", dev, "up"].map(String::from).to_vec()];
        steps.extend(self.static_config(Some(ns)).into_iter().map(|(_, a)| a));
        let last = steps.pop().unwrap();
        for step in &steps {
            ns.ip(&step.iter().map(String::as_str).collect::<Vec<_>>());
        }
        timed(|| {
            ns.ip(&last.iter().map(String::as_str).collect::<Vec<_>>());
        })
    }

    /// tbf at `mbit` on the far link (its far side, in `inet`) with a queue of
    /// at most 64 ms, so probes are delayed, not lost; returns the instant.
    pub fn throttle_far(&self, mbit: u32) -> Timestamp {
        let dev = self.far.a_if.clone();
        let limit = (mbit * 1_000_000 / 8 * 64 / 1000).to_string();
        let rate = format!("{mbit}mbit");
        timed(|| {
            self.inet.exec(&[
                "tc", "qdisc", "add", "dev", &dev, "root", "tbf", "rate", &rate, "burst", "5000",
                "limit", &limit,
            ]);
        })
    }

    /// Removes [`Self::throttle_far`]'s tbf; returns the instant.
    pub fn unthrottle_far(&self) -> Timestamp {
        let dev = self.far.a_if.clone();
        timed(|| {
            self.inet.exec(&["tc", "qdisc", "del", "dev", &dev, "root"]);
        })
    }

    /// Starts linkwatch in `home` and waits until every group is up.
    pub fn watch(&self, params: Params) -> Watcher {
        self.watch_with(params, |c| c)
    }

    /// [`Self::watch`] with the configuration text passed through `edit` first.
    pub fn watch_with(&self, params: Params, edit: impl FnOnce(String) -> String) -> Watcher {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, edit(config_toml(&params, &data))).unwrap();
        let mut w = Watcher {
            home: self.home.name().to_string(),
            params,
            config,
            data,
            daemon: None,
            earlier_logs: Mutex::new(String::new()),
            _dir: dir,
        };
        w.start();
        w.wait_all_up(Duration::from_secs(15));
        w
    }

    /// Kills every DNS server; returns the instant the last one was gone.
    pub fn stop_dns(&mut self) -> Timestamp {
        let mut last = Timestamp::now();
        for s in &mut self.dns {
            last = s.kill();
        }
        last
    }

    /// Starts the DNS servers again; returns the instant the first one was ready.
    pub fn start_dns(&mut self) -> Timestamp {
        let mut first = None;
        self.dns = DNS
            .iter()
            .map(|a| {
                let (s, ready) = Server::start(&self.inet, &format!("dns={a}:53"));
                first.get_or_insert(ready);
                s
            })
            .collect();
        first.unwrap()
    }
}

/// The MAC address of `dev` in `ns`.
fn mac(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let rest = &out[out
        .find("link/ether ")
        .unwrap_or_else(|| panic!("no MAC in {out}"))
        + 11..];
    rest.split_whitespace().next().unwrap().to_string()
}

/// A link of the chain, named by what it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// home ↔ router; faulted in router.
    Lan,
    /// router ↔ isp; faulted in isp.
    Uplink,
    /// isp ↔ inet; faulted in inet.
    Far,
}

/// One outage as the API and `linkwatch outages --json` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    pub id: String,
    pub group: String,
    pub cause: String,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub gaps: Vec<(Timestamp, Timestamp)>,
    pub start_observed: Option<bool>,
    pub end_observed: Option<bool>,
    pub duration_clock: String,
    pub duration_seconds: f64,
}

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {v}: {e}"))
}

/// Parses the outage array of the API or the CLI.
pub fn parse_outages(v: &Value) -> Vec<Outage> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|o| Outage {
            id: o["id"].as_str().unwrap().to_string(),
            group: o["group"].as_str().unwrap().to_string(),
            cause: o["cause"].as_str().unwrap().to_string(),
            start: ts(&o["start"]),
            end: (!o["end"].is_null()).then(|| ts(&o["end"])),
            gaps: o["gaps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (ts(&g["from"]), ts(&g["to"])))
                .collect(),
            start_observed: o["start_observed"].as_bool(),
            end_observed: o["end_observed"].as_bool(),
            duration_clock: o["duration_clock"].as_str().unwrap_or("").to_string(),
            duration_seconds: o["duration_seconds"].as_f64().unwrap(),
        })
        .collect()
}

/// linkwatch running in `home` with its own config and data directory; it can
/// be killed and started again over the same data directory.
pub struct Watcher {
    /// Name of the `home` namespace (a name, not a borrow, so the test can
    /// change the [`FakeNet`] while the daemon runs).
    home: String,
    pub params: Params,
    pub config: PathBuf,
    pub data: PathBuf,
    pub daemon: Option<Daemon>,
    earlier_logs: Mutex<String>,
    _dir: tempfile::TempDir,
}

impl Watcher {
    /// A watcher for a linkwatch in any test namespace `ns` (not started):
    /// `make(dir, data)` writes whatever files the configuration needs into
    /// the watcher's own temporary `dir` (token files, certificates) and
    /// returns the configuration text, whose `data_dir` should be `data`.
    pub fn prepare(ns: &Netns, params: Params, make: impl FnOnce(&Path, &Path) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, make(dir.path(), &data)).unwrap();
        Watcher {
            home: ns.name().to_string(),
            params,
            config,
            data,
            daemon: None,
            earlier_logs: Mutex::new(String::new()),
            _dir: dir,
        }
    }

    /// The watcher's temporary directory (config, data, token files).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// `ip netns exec <home> <args…>`.
    fn in_home(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.home]).args(args);
        c
    }

    /// Starts the daemon in `home` (there must be none running).
    pub fn start(&mut self) {
        assert!(self.daemon.is_none(), "a daemon is already running");
        let child = self
            .in_home(&[BIN, "run", "--config", self.config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The data directory is ours; Daemon gets a throwaway one.
        self.daemon = Some(Daemon::attach(child, tempfile::tempdir().unwrap()));
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("no daemon running")
    }

    /// `kill -9` the daemon; returns the instant it was gone.
    pub fn kill9(&mut self) -> Timestamp {
        let mut d = self.daemon.take().expect("no daemon running");
        let mut child = d.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = Timestamp::now();
        let mut logs = self.earlier_logs.lock().unwrap();
        logs.push_str(&d.log());
        logs.push_str("---- (killed with SIGKILL) ----\n");
        gone
    }

    /// Stops the daemon with SIGTERM (it must exit 0 within 5 s).
    pub fn stop(&mut self) {
        let mut d = self.daemon.take().expect("no daemon running");
        let (status, _) = d.terminate(Duration::from_secs(5));
        assert!(
            status.success(),
            "linkwatch exited with {status}:\n{}",
            d.log()
        );
        let mut logs = self.earlier_logs.lock().unwrap();
        logs.push_str(&d.log());
        logs.push_str("---- (stopped with SIGTERM) ----\n");
    }

    /// GET `path` from the daemon with curl inside `home`, as JSON.
    pub fn api(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.daemon().addr);
        let out = self
            .in_home(&["curl", "-sS", "--fail", "--max-time", "5", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{url} is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// GET `path` as text.
    pub fn api_text(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.daemon().addr);
        let out = self
            .in_home(&["curl", "-sS", "--fail", "--max-time", "5", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {url} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `GET /api/v1/outages`.
    pub fn api_outages(&self) -> Vec<Outage> {
        parse_outages(&self.api("/api/v1/outages"))
    }

    /// Group name → state (`up`, `down`, `unknown`) from `/api/v1/status`.
    pub fn group_states(&self) -> BTreeMap<String, String> {
        let v = self.api("/api/v1/status");
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap().to_string(),
                    g["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout`.
    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if start.elapsed() > timeout {
                panic!(
                    "not within {timeout:?}: {what}\ngroups: {:?}\noutages: {:#?}",
                    self.group_states(),
                    self.api_outages()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every group is up.
    pub fn wait_all_up(&self, timeout: Duration) {
        self.wait("every group up", timeout, |w| {
            w.group_states().values().all(|s| s == "up").then_some(())
        });
    }

    /// Waits until each of `groups` has an open outage; returns them.
    pub fn wait_open(&self, groups: &[&str], timeout: Duration) -> Vec<Outage> {
        self.wait(&format!("open outages for {groups:?}"), timeout, |w| {
            let open: Vec<Outage> = w
                .api_outages()
                .into_iter()
                .filter(|o| o.end.is_none())
                .collect();
            groups
                .iter()
                .all(|g| open.iter().any(|o| o.group == *g))
                .then_some(open)
        })
    }

    /// Waits until no outage is open and every group is up.
    pub fn wait_all_closed(&self, timeout: Duration) -> Vec<Outage> {
        self.wait("every outage closed and every group up", timeout, |w| {
            let all = w.api_outages();
            (all.iter().all(|o| o.end.is_some()) && w.group_states().values().all(|s| s == "up"))
                .then_some(all)
        })
    }

    /// `linkwatch outages --json --data-dir …` (no daemon involved).
    pub fn cli_outages(&self) -> Vec<Outage> {
        let out = Command::new(BIN)
            .args(["outages", "--json", "--data-dir"])
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "linkwatch outages failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "linkwatch outages warned: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_outages(&serde_json::from_slice(&out.stdout).unwrap())
    }

    /// `linkwatch outages --verify`: must exit 0 and say the chain is intact.
    pub fn verify(&self) -> String {
        let out = Command::new(BIN)
            .args(["outages", "--verify", "--data-dir"])
            .arg(&self.data)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.starts_with("journal ok"),
            "verify failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Count of journal lines per `event`.
    pub fn journal_events(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(self.data.join("journal.jsonl")).unwrap();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {line}"));
            *counts
                .entry(v["event"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        counts
    }

    /// The running daemon's log.
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(|d| d.log()).unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.earlier_logs.lock().unwrap_or_else(|e| e.into_inner());
            if !logs.is_empty() {
                eprintln!("---- earlier linkwatch runs ----\n{logs}");
            }
        }
    }
}

/// How far a recorded outage is from the injected fault.
#[derive(Debug, Clone)]
pub struct Timing {
    pub scenario: &'static str,
    pub group: String,
    /// Recorded start minus the instant the fault was injected.
    pub start_ms: f64,
    /// Recorded end minus the instant the fault was removed.
    pub end_ms: f64,
}

/// Checks one outage against the fault: its group, cause, and that start and
/// end lie within `interval + timeout` of the injection and removal.
pub fn check_outage(
    scenario: &'static str,
    o: &Outage,
    cause: &str,
    injected: Timestamp,
    removed: Timestamp,
    p: &Params,
) -> Timing {
    assert_eq!(o.cause, cause, "{scenario}: cause of {o:#?}");
    let end = o
        .end
        .unwrap_or_else(|| panic!("{scenario}: still open: {o:#?}"));
    let t = Timing {
        scenario,
        group: o.group.clone(),
        start_ms: ms_between(o.start, injected),
        end_ms: ms_between(end, removed),
    };
    let tol = p.tolerance().as_secs_f64() * 1e3;
    assert!(
        t.start_ms.abs() <= tol,
        "{scenario}: {} outage starts {:.0} ms from the fault (allowed ±{tol:.0} ms): {o:#?}",
        o.group,
        t.start_ms
    );
    assert!(
        t.end_ms.abs() <= tol,
        "{scenario}: {} outage ends {:.0} ms from the repair (allowed ±{tol:.0} ms): {o:#?}",
        o.group,
        t.end_ms
    );
    assert_eq!(o.end_observed, Some(true), "{scenario}: {o:#?}");
    t
}

static TIMINGS: Mutex<Vec<Timing>> = Mutex::new(Vec::new());

fn median_worst(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[n - 1])
}

/// Prints a scenario's timings and the running summary over every scenario so
/// far in this process (the last summary printed covers them all).
pub fn report(timings: Vec<Timing>) {
    let mut err = std::io::stderr().lock();
    for t in &timings {
        let _ = writeln!(
            err,
            "TIMING {:<10} {:<9} start {:+7.1} ms  end {:+7.1} ms",
            t.scenario, t.group, t.start_ms, t.end_ms
        );
    }
    let mut all = TIMINGS.lock().unwrap_or_else(|e| e.into_inner());
    all.extend(timings);
    if all.is_empty() {
        return;
    }
    let mut scenarios: Vec<&str> = all.iter().map(|t| t.scenario).collect();
    scenarios.dedup();
    let (sm, sw) = median_worst(all.iter().map(|t| t.start_ms).collect());
    let (em, ew) = median_worst(all.iter().map(|t| t.end_ms).collect());
    let _ = writeln!(
        err,
        "TIMING SUMMARY over {} outages of {:?}: start error median {sm:+.1} ms, worst {sw:+.1} ms; \
         end error median {em:+.1} ms, worst {ew:+.1} ms (median and worst by absolute value)",
        all.len(),
        scenarios
    );
}

/// The inner half: serves `LWT_SERVE` (`tcp=ADDR`, `http=ADDR`, `dns=ADDR`,
/// comma separated) until killed. TCP accepts and closes; HTTP answers `204`;
/// DNS answers every query with `A 192.0.2.1` over UDP.
pub fn serve_main() {
    let spec = std::env::var("LWT_SERVE").expect("LWT_SERVE");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for item in spec.split(',') {
            let (kind, addr) = item.split_once('=').expect("KIND=ADDR");
            let addr: SocketAddr = addr.parse().expect("socket address");
            match kind {
                "tcp" => {
                    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
                    tasks.spawn(async move {
                        loop {
                            if l.accept().await.is_err() {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    });
                }
                "http" => {
                    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
                    tasks.spawn(async move {
                        loop {
                            match l.accept().await {
                                Ok((s, _)) => {
                                    tokio::spawn(http_204(s));
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        }
                    });
                }
                "dns" => {
                    let s = tokio::net::UdpSocket::bind(addr).await.unwrap();
                    tasks.spawn(async move {
                        let mut buf = [0u8; 1500];
                        loop {
                            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                                continue;
                            };
                            if let Some(reply) = dns_reply(&buf[..n]) {
                                let _ = s.send_to(&reply, peer).await;
                            }
                        }
                    });
                }
                other => panic!("unknown server kind {other}"),
            }
        }
        println!("LWT ready");
        std::io::stdout().flush().unwrap();
        let _ = tasks.join_next().await;
    });
}

async fn http_204(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let read_head = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    };
    if let Ok(true) = tokio::time::timeout(Duration::from_secs(5), read_head).await {
        let _ = s
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        let _ = s.shutdown().await;
    }
}

fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    reply.add_answer(Record::from_rdata(
        question.name().clone(),
        60,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
    ));
    reply.to_vec().ok()
}
