//! Issue 21 end to end with the real daemon: one configuration with every
//! interference check on, run by `linkwatch run` in `home` of the fake
//! internet ([`FakeNet`]: home ── router ── isp ── inet), plus:
//!
//! - in `isp`: dnsmasq, the ISP's resolver (10.231.200.53), answering
//!   `site.test` from a hosts file the test rewrites (SIGHUP) to forge it;
//! - in `inet`: a DoH server answering the truth, the site's HTTPS server
//!   (10.231.100.80) and a forger's (10.231.100.66), certificates from the
//!   `interference_dns` test PKI;
//! - `home` resolves `site.test` for the https target from its own hosts
//!   file (`/etc/netns/<home>/hosts`).
//!
//! Scenarios: interference (a forged answer and an SNI reset on the ISP hop)
//! becomes outages of cause `interference`; a real outage (the far link down)
//! never does; clean probing for `LWT_CLEAN_SECS` (default 90) shows no sign,
//! and the traffic the checks add is measured with iptables counters on
//! home's link (printed as `COST` lines, see BENCHMARKS.md; `LWT_COST_SECS`,
//! default 12, is the length of each run without the checks).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use linkwatch::metrics as m;
use linkwatch::probe::http::ISSUERS_FILE;
use serde_json::Value;

use crate::harness::daemon::{BIN, sample, sum};
use crate::harness::fakenet::{self, FakeNet, Hop, Params, Watcher};
use crate::harness::netns::Netns;
use crate::interference_dns::{DOH, FORGED_SITE, INNER_DOH, Pki, TRUE_SITE, command_exists};
use crate::interference_tls::{INNER_SERVE, NetnsHosts};

/// The ISP's resolver (dnsmasq) on `isp`'s `lo`.
const ISP_DNS: &str = "10.231.200.53";
/// The name every check looks at.
const NAME: &str = "site.test";
/// A name the site's server also answers (its certificate lists it).
const CONTROL: &str = "ok.test";
/// The groups of the checked targets (both need `internet`).
const NAMES_GROUP: &str = "names";
const WEB_GROUP: &str = "web";

/// Probe timing: slower than fakenet's FAST, so TLS and DoH on a busy
/// machine do not time out (the clean scenario must see no outage at all).
const PARAMS: Params = Params {
    interval: Duration::from_millis(1000),
    timeout: Duration::from_millis(800),
    fail_after: 3,
    recover_after: 2,
};

/// Which checks the configuration has on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Checks {
    /// Every check: compare_with + tie-break, expect_issuer, sni_control,
    /// blockpage rules (per target and in `[interference]`).
    On,
    /// The same targets, no check keys.
    Off,
    /// No check keys and no DoH target either (the resolver compared with).
    OffNoDoh,
}

/// The fake internet plus the interference cast.
struct World {
    net: FakeNet,
    pki: Pki,
    _hosts: NetnsHosts,
    /// The hosts file dnsmasq answers from.
    isp_hosts: PathBuf,
    dnsmasq: u32,
    _dir: tempfile::TempDir,
}

/// Waits (10 s) until `ss -H <args> src <addr>` in `ns` lists a socket.
fn wait_socket(ns: &Netns, proto: &str, addr: &str) {
    for _ in 0..200 {
        if !ns
            .exec(&["ss", "-H", proto, &format!("src {addr}")])
            .trim()
            .is_empty()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} in {}", ns.name());
}

impl World {
    /// Everything up, or `None` (with a message) when the test cannot run.
    fn new(serve_secs: u64) -> Option<World> {
        if !fakenet::can_run()
            || !crate::harness::daemon::require(
                command_exists("dnsmasq"),
                "`dnsmasq` is not installed",
            )
        {
            return None;
        }
        let net = FakeNet::new();
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        net.isp
            .ip(&["addr", "add", &format!("{ISP_DNS}/32"), "dev", "lo"]);
        for a in [TRUE_SITE, FORGED_SITE] {
            net.inet
                .ip(&["addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        // DOH is one of fakenet's DNS addresses (UDP 53); the DoH server
        // takes its TCP 443.
        let pki_dir = pki.path().to_str().unwrap().to_string();
        let secs = serve_secs.to_string();
        net.inet.spawn_inner(INNER_DOH, &[("LWT_PKI", &pki_dir)]);
        for (addr, cert) in [(TRUE_SITE, "site"), (FORGED_SITE, "forged")] {
            let files = format!(
                "{addr}:443={},{}",
                pki.path().join(format!("{cert}.pem")).display(),
                pki.path().join(format!("{cert}.key")).display()
            );
            net.inet.spawn_inner(
                INNER_SERVE,
                &[("LWT_TLS_LISTEN", &files), ("LWT_SERVE_SECS", &secs)],
            );
        }
        for a in [DOH, TRUE_SITE, FORGED_SITE] {
            wait_socket(&net.inet, "-ltn", &format!("{a}:443"));
        }

        let isp_hosts = dir.path().join("isp-hosts");
        std::fs::write(&isp_hosts, format!("{TRUE_SITE} {NAME}\n")).unwrap();
        let dnsmasq = net.isp.spawn(&[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            &format!("--addn-hosts={}", isp_hosts.display()),
            "--pid-file=",
            "--bind-interfaces",
            &format!("--listen-address={ISP_DNS}"),
            "--log-facility=-",
            "--user=root",
        ]);
        wait_socket(&net.isp, "-lun", &format!("{ISP_DNS}:53"));
        let hosts = NetnsHosts::new(&net.home, &format!("{TRUE_SITE} {NAME}\n"));
        Some(World {
            net,
            pki,
            _hosts: hosts,
            isp_hosts,
            dnsmasq,
            _dir: dir,
        })
    }

    /// fakenet's configuration plus the checked targets.
    fn config(&self, data: &Path, checks: Checks) -> String {
        let ca = self.pki.ca_file();
        let on = checks == Checks::On;
        let mut s = fakenet::config_toml(&PARAMS, data);
        if on {
            s += "\n[interference]\nblockpage = [{ status = 451, body_regex = \"Blocked by order\" }]\n\
                  bogon_exempt = [\"10.231.0.0/16\"]\n";
        }
        s += &format!(
            "\n[[group]]\nname = \"{NAMES_GROUP}\"\nneeds = \"internet\"\n\
             \n[[group]]\nname = \"{WEB_GROUP}\"\nneeds = \"internet\"\n"
        );
        if checks != Checks::OffNoDoh {
            s += &format!(
                "\n[[target]]\nname = \"doh-site\"\ngroup = \"internet\"\nkind = \"dns\"\n\
                 transport = \"https\"\nserver = \"https://{DOH}/dns-query\"\nca_file = \"{ca}\"\n\
                 query = \"{NAME}\"\n"
            );
        }
        s += &format!(
            "\n[[target]]\nname = \"isp-site\"\ngroup = \"{NAMES_GROUP}\"\nkind = \"dns\"\n\
             server = \"{ISP_DNS}\"\nquery = \"{NAME}\"\n"
        );
        if on {
            s += &format!("compare_with = \"doh-site\"\ntie_break_ca_file = \"{ca}\"\n");
        }
        s += &format!(
            "\n[[target]]\nname = \"site\"\ngroup = \"{WEB_GROUP}\"\nkind = \"http\"\n\
             url = \"https://{NAME}/\"\nca_file = \"{ca}\"\n"
        );
        if on {
            s += &format!(
                "expect_issuer = \"dnscheck test CA\"\nsni_control = \"{CONTROL}\"\n\
                 blockpage = [{{ status = 403, body_regex = \"(?i)restricted by order\" }}]\n"
            );
        }
        s
    }

    /// The daemon in `home` with `checks`, every group up.
    fn watch(&self, checks: Checks) -> Watcher {
        let mut w = Watcher::prepare(&self.net.home, PARAMS, |_, data| self.config(data, checks));
        w.start();
        w.wait_all_up(Duration::from_secs(20));
        w
    }

    /// The ISP's resolver answers `site.test` with `addr` from now on.
    fn isp_answers(&self, addr: &str) {
        std::fs::write(&self.isp_hosts, format!("{addr} {NAME}\n")).unwrap();
        let ok = Command::new("kill")
            .args(["-HUP", &self.dnsmasq.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SIGHUP to dnsmasq {}", self.dnsmasq);
    }

    /// `-A`/`-D` the ISP hop's reset of ClientHellos naming `site.test`.
    fn sni_reset(&self, op: &str) {
        self.net.isp.exec(&[
            "iptables",
            op,
            "FORWARD",
            "-d",
            TRUE_SITE,
            "-p",
            "tcp",
            "--dport",
            "443",
            "-m",
            "string",
            "--string",
            NAME,
            "--algo",
            "bm",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ]);
    }
}

/// The journal's lines, parsed.
fn journal(w: &Watcher) -> Vec<Value> {
    std::fs::read_to_string(w.data.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["event"] == event).collect()
}

/// `linkwatch outages --json` over the data directory, unparsed.
fn outages_json(w: &Watcher) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["outages", "--json", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "linkwatch outages: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `linkwatch report` (markdown) since `since`.
fn report(w: &Watcher, since: Timestamp) -> String {
    let out = Command::new(BIN)
        .args(["report", "--format", "markdown", "--since"])
        .arg(since.to_string())
        .arg("--data-dir")
        .arg(&w.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "linkwatch report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sum of `linkwatch_interference_total` over every series.
fn interference_total(metrics: &str) -> f64 {
    sum(metrics, m::INTERFERENCE_TOTAL, &[])
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Asserts an outage record (API, CLI or journal) of `group` is cause
/// interference with `check` and `target` in its summary.
fn assert_interference(o: &Value, group: &str, check: &str, target: &str) {
    assert_eq!(o["group"], group, "{o:#}");
    assert_eq!(o["cause"], "interference", "{o:#}");
    let s = &o["interference"];
    assert!(strings(&s["checks"]).contains(&check), "{o:#}");
    assert!(strings(&s["targets"]).contains(&target), "{o:#}");
    assert!(strings(&s["names"]).contains(&NAME), "{o:#}");
    let (f, of) = (
        s["failures"].as_u64().unwrap(),
        s["of_failures"].as_u64().unwrap(),
    );
    assert!(f > 0 && 2 * f > of, "most failures are interference: {o:#}");
}

#[test]
fn interference_on_the_isp_hop_is_an_outage_of_cause_interference() {
    let Some(world) = World::new(300) else {
        return;
    };
    let since = Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap();
    let mut w = world.watch(Checks::On);
    // The site's usual issuer is learned; the resolvers agree.
    std::thread::sleep(Duration::from_secs(2));
    let m0 = w.api_text("/metrics");
    assert_eq!(interference_total(&m0), 0.0, "before anything: {m0}");

    // Count the checks' extra connections on home's side: the tie-breaks
    // (to the forged address) and the SNI controls (marked from their
    // ClientHello on), and every connection to the site.
    let home = &world.net.home;
    let ipt = |args: &[&str]| {
        home.exec(&[&["iptables"][..], args].concat());
    };
    ipt(&[
        "-A",
        "OUTPUT",
        "-d",
        FORGED_SITE,
        "-p",
        "tcp",
        "--dport",
        "443",
    ]);
    ipt(&[
        "-A",
        "INPUT",
        "-s",
        FORGED_SITE,
        "-p",
        "tcp",
        "--sport",
        "443",
    ]);
    ipt(&[
        "-A",
        "OUTPUT",
        "-d",
        TRUE_SITE,
        "-p",
        "tcp",
        "--dport",
        "443",
        "-m",
        "string",
        "--string",
        CONTROL,
        "--algo",
        "bm",
        "-j",
        "CONNMARK",
        "--set-mark",
        "0x15",
    ]);
    ipt(&["-A", "OUTPUT", "-m", "connmark", "--mark", "0x15"]);
    ipt(&["-A", "INPUT", "-m", "connmark", "--mark", "0x15"]);
    ipt(&[
        "-A", "OUTPUT", "-d", TRUE_SITE, "-p", "tcp", "--dport", "443",
    ]);
    ipt(&[
        "-A", "INPUT", "-s", TRUE_SITE, "-p", "tcp", "--sport", "443",
    ]);

    // The ISP's resolver forges the name; its path resets hellos naming it.
    home.exec(&["iptables", "-Z"]);
    world.isp_answers(FORGED_SITE);
    world.sni_reset("-A");
    let open = w.wait(
        "open outages of names and web",
        Duration::from_secs(20),
        |w| {
            let all = w.api("/api/v1/outages");
            let open: Vec<Value> = all
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["end"].is_null() && o["interference"].is_object())
                .cloned()
                .collect();
            [NAMES_GROUP, WEB_GROUP]
                .iter()
                .all(|g| open.iter().any(|o| o["group"] == *g))
                .then_some(open)
        },
    );
    for o in &open {
        match o["group"].as_str().unwrap() {
            NAMES_GROUP => assert_interference(o, NAMES_GROUP, "dns_inconsistent", "isp-site"),
            WEB_GROUP => assert_interference(o, WEB_GROUP, "sni_blocked", "site"),
            g => panic!("an outage of {g}: {o:#}"),
        }
    }
    let metrics = w.wait("interference counters", Duration::from_secs(10), |w| {
        let m = w.api_text("/metrics");
        let dns = sample(
            &m,
            m::INTERFERENCE_TOTAL,
            &[("target", "isp-site"), ("check", "dns_inconsistent")],
        );
        let sni = sample(
            &m,
            m::INTERFERENCE_TOTAL,
            &[("target", "site"), ("check", "sni_blocked")],
        );
        (dns >= Some(3.0) && sni >= Some(3.0)).then_some(m)
    });
    for (target, extra) in [("isp-site", "tls_tie_break"), ("site", "sni_control")] {
        let n = sample(
            &metrics,
            m::INTERFERENCE_EXTRA_TOTAL,
            &[("target", target), ("check", extra)],
        )
        .unwrap_or(0.0);
        assert!(n >= 3.0, "{target} {extra}: {n}\n{metrics}");
    }
    // A few more failed probes, then the bytes per extra connection.
    std::thread::sleep(Duration::from_secs(3));
    let counters = home.exec(&["iptables", "-L", "-v", "-n", "-x"]);
    let m1 = w.api_text("/metrics");
    let extra = |target: &str, check: &str| {
        sample(
            &m1,
            m::INTERFERENCE_EXTRA_TOTAL,
            &[("target", target), ("check", check)],
        )
        .unwrap_or(0.0)
    };
    let (tie_breaks, controls) = (
        extra("isp-site", "tls_tie_break"),
        extra("site", "sni_control"),
    );
    let tie = rule_bytes(&counters, FORGED_SITE, None);
    let control = rule_bytes(&counters, "connmark match", None);
    let site = rule_bytes(&counters, TRUE_SITE, Some("STRING"));
    eprintln!(
        "EXTRA tie-break: {tie_breaks} in {tie} B = {:.0} B each; sni_control: {controls} in {control} B \
         from the ClientHello on = {:.0} B each (+ the TCP handshake, 3 segments); a failed probe of \
         the site with its control: {:.0} B",
        tie / tie_breaks,
        control / controls,
        site / controls,
    );
    assert!(tie > 0.0 && control > 0.0, "{counters}");

    let signs = w.api("/api/v1/interference");
    let seen: Vec<(&str, &str)> = signs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["target"].as_str().unwrap(), l["check"].as_str().unwrap()))
        .collect();
    assert!(
        seen.contains(&("isp-site", "dns_inconsistent")),
        "{signs:#}"
    );
    assert!(seen.contains(&("site", "sni_blocked")), "{signs:#}");

    // The path is clean again: both outages end.
    world.isp_answers(TRUE_SITE);
    world.sni_reset("-D");
    let all = w.wait_all_closed(Duration::from_secs(20));
    assert!(
        all.iter()
            .all(|o| o.group == NAMES_GROUP || o.group == WEB_GROUP),
        "only the checked groups went down: {all:#?}"
    );
    w.stop();

    // `outages --json` and the journal say the same, over the whole period.
    let cli = outages_json(&w);
    assert_eq!(cli.len(), 2, "{cli:#?}");
    for o in &cli {
        assert!(!o["end"].is_null(), "{o:#}");
        match o["group"].as_str().unwrap() {
            NAMES_GROUP => assert_interference(o, NAMES_GROUP, "dns_inconsistent", "isp-site"),
            _ => assert_interference(o, WEB_GROUP, "sni_blocked", "site"),
        }
    }
    // The listing names the checks in the cause column.
    let out = Command::new(BIN)
        .args(["outages", "--data-dir"])
        .arg(&w.data)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    for cause in [
        "interference (dns_inconsistent",
        "interference (sni_blocked",
    ] {
        assert!(table.contains(cause), "no {cause} in:\n{table}");
    }
    let lines = journal(&w);
    for event in ["outage_start", "outage_end"] {
        let got = events(&lines, event);
        assert_eq!(got.len(), 2, "{event}: {got:#?}");
        for o in got {
            let (check, target) = if o["group"] == NAMES_GROUP {
                ("dns_inconsistent", "isp-site")
            } else {
                ("sni_blocked", "site")
            };
            assert_interference(o, o["group"].as_str().unwrap(), check, target);
        }
    }
    let seen = events(&lines, "interference");
    let mut pairs: Vec<(&str, &str)> = seen
        .iter()
        .map(|l| (l["target"].as_str().unwrap(), l["check"].as_str().unwrap()))
        .collect();
    pairs.sort();
    // The first probe of each (target, check) only: the next is an hour on.
    assert_eq!(
        pairs,
        [("isp-site", "dns_inconsistent"), ("site", "sni_blocked")],
        "{seen:#?}"
    );
    for l in &seen {
        assert_eq!(l["name"], NAME, "{l:#}");
        if l["check"] == "dns_inconsistent" {
            let raw = strings(&l["raw"]);
            assert_eq!(raw[0], format!("isp-site: A {FORGED_SITE}"), "{l:#}");
            assert_eq!(raw[1], format!("doh-site: A {TRUE_SITE}"), "{l:#}");
            assert!(
                raw[2].starts_with(&format!("tls {FORGED_SITE}:443 as {NAME}")),
                "{l:#}"
            );
        } else {
            let detail = l["detail"].as_str().unwrap();
            assert!(detail.contains("reset_after_hello"), "{l:#}");
            assert!(detail.contains(CONTROL), "{l:#}");
        }
    }
    let text = report(&w, since);
    let section = text
        .split_once("## Signs of interference")
        .unwrap_or_else(|| panic!("no section in the report:\n{text}"))
        .1;
    for word in ["dns_inconsistent", "sni_blocked", NAME, FORGED_SITE] {
        assert!(section.contains(word), "{word} not in:\n{section}");
    }
    w.verify();
}

#[test]
fn a_real_outage_with_every_check_on_is_never_interference() {
    let Some(world) = World::new(300) else {
        return;
    };
    let mut w = world.watch(Checks::On);
    std::thread::sleep(Duration::from_secs(2));
    let broken = world.net.break_link(Hop::Far);
    let started = Instant::now();
    w.wait_open(&["internet", "dns", WEB_GROUP], Duration::from_secs(15));
    // Down for about 20 s, like a real cut.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(started.elapsed()));
    let repaired = world.net.repair(Hop::Far);
    let all = w.wait_all_closed(Duration::from_secs(30));
    let metrics = w.api_text("/metrics");
    let extras = sum(&metrics, m::INTERFERENCE_EXTRA_TOTAL, &[]);
    w.stop();
    eprintln!(
        "REAL OUTAGE: far link down {:.1} s; extra connections of the checks: {extras}",
        repaired.duration_since(broken).as_secs_f64()
    );

    let groups: Vec<&str> = all.iter().map(|o| o.group.as_str()).collect();
    for g in ["internet", "dns", WEB_GROUP] {
        assert!(groups.contains(&g), "no {g} outage: {all:#?}");
    }
    for o in &all {
        assert_eq!(o.cause, "internet", "{o:#?}");
    }
    assert_eq!(interference_total(&metrics), 0.0, "{metrics}");
    let cli = outages_json(&w);
    assert_eq!(cli.len(), all.len(), "{cli:#?}");
    for o in &cli {
        assert_eq!(o["cause"], "internet", "{o:#}");
        assert!(o["interference"].is_null(), "{o:#}");
    }
    let lines = journal(&w);
    assert!(events(&lines, "interference").is_empty(), "{lines:#?}");
    for o in events(&lines, "outage_start")
        .into_iter()
        .chain(events(&lines, "outage_end"))
    {
        assert_ne!(o["cause"], "interference", "{o:#}");
        assert!(o["interference"].is_null(), "{o:#}");
    }
    w.verify();
}

/// Bytes (both directions) of the rules whose line holds `needle` (and not
/// `except`) in `iptables -L -v -n -x` output.
fn rule_bytes(counters: &str, needle: &str, except: Option<&str>) -> f64 {
    let mut total = 0.0;
    let mut found = false;
    for l in counters.lines() {
        if l.contains(needle) && except.is_none_or(|e| !l.contains(e)) && !l.contains("CONNMARK") {
            found = true;
            total += l.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap();
        }
    }
    assert!(found, "no rule with {needle}:\n{counters}");
    total
}

/// IP bytes through home's link (both directions) per second while `w`
/// probes steadily for `secs`, from iptables counters in `home`.
fn steady_bytes_per_sec(world: &World, w: &Watcher, secs: f64) -> (f64, f64) {
    let home = &world.net.home;
    let dev = world.net.lan.b_if.clone();
    home.exec(&["iptables", "-Z", "INPUT"]);
    home.exec(&["iptables", "-Z", "OUTPUT"]);
    let t0 = Instant::now();
    // Sleep in slices so a daemon that died is noticed (the API fails).
    let total = Duration::from_secs_f64(secs);
    while let Some(left) = total.checked_sub(t0.elapsed()) {
        std::thread::sleep(left.min(Duration::from_secs(5)));
        let _ = w.group_states();
    }
    let counters = home.exec(&["iptables", "-L", "-v", "-n", "-x"]);
    let elapsed = t0.elapsed().as_secs_f64();
    let bytes = |chain: &str| -> f64 {
        let mut in_chain = false;
        for l in counters.lines() {
            if l.starts_with("Chain ") {
                in_chain = l.starts_with(&format!("Chain {chain} "));
                continue;
            }
            if in_chain && l.contains(&dev) {
                return l.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
        panic!("no counter for {dev} in {chain}:\n{counters}")
    };
    (bytes("OUTPUT") / elapsed, bytes("INPUT") / elapsed)
}

#[test]
fn clean_probing_with_every_check_on_shows_no_interference() {
    let clean_secs: u64 = std::env::var("LWT_CLEAN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let Some(world) = World::new(clean_secs + 600) else {
        return;
    };
    let dev = world.net.lan.b_if.clone();
    world
        .net
        .home
        .exec(&["iptables", "-A", "OUTPUT", "-o", &dev]);
    world
        .net
        .home
        .exec(&["iptables", "-A", "INPUT", "-i", &dev]);

    let mut w = world.watch(Checks::On);
    // Past the first probes (issuers learned, resolvers compared).
    std::thread::sleep(Duration::from_secs(3));
    let started = Timestamp::now();
    let (out_on, in_on) = steady_bytes_per_sec(&world, &w, clean_secs as f64);
    let metrics = w.api_text("/metrics");
    let outages = w.api_outages();
    w.stop();
    let probes = |target: &str| {
        sample(
            &metrics,
            "linkwatch_probes_total",
            &[("target", target), ("result", "success")],
        )
        .unwrap_or(0.0)
    };
    eprintln!(
        "CLEAN {clean_secs} s from {started}: outages {}, interference_total {}, extra_total {}, \
         successful probes isp-site {} doh-site {} site {}",
        outages.len(),
        interference_total(&metrics),
        sum(&metrics, m::INTERFERENCE_EXTRA_TOTAL, &[]),
        probes("isp-site"),
        probes("doh-site"),
        probes("site"),
    );
    assert!(outages.is_empty(), "{outages:#?}");
    assert_eq!(interference_total(&metrics), 0.0, "{metrics}");
    // It probed all along: about one probe a second of each checked target.
    for t in ["isp-site", "doh-site", "site"] {
        assert!(
            probes(t) >= clean_secs as f64 * 0.8,
            "{t}: {} probes in {clean_secs} s",
            probes(t)
        );
    }
    // The checks were at work: the site's usual issuer was learned.
    let issuers = std::fs::read_to_string(w.data.join(ISSUERS_FILE)).unwrap();
    assert!(issuers.contains("CN=dnscheck test CA"), "{issuers}");
    let lines = journal(&w);
    assert!(events(&lines, "interference").is_empty(), "{lines:#?}");
    assert!(events(&lines, "outage_start").is_empty(), "{lines:#?}");
    assert!(events(&lines, "degraded_start").is_empty(), "{lines:#?}");

    // Cost: the same network without the checks, and without the DoH target.
    let cost_secs: f64 = std::env::var("LWT_COST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12.0);
    let mut rates = vec![("checks on", out_on, in_on)];
    for (label, checks) in [
        ("checks off", Checks::Off),
        ("checks off, no DoH", Checks::OffNoDoh),
    ] {
        let mut w = world.watch(checks);
        std::thread::sleep(Duration::from_secs(2));
        let (o, i) = steady_bytes_per_sec(&world, &w, cost_secs);
        w.stop();
        rates.push((label, o, i));
    }
    let base = rates[1].1 + rates[1].2;
    for (label, o, i) in &rates {
        eprintln!(
            "COST {label:<20} out {:>9.0} B/h  in {:>9.0} B/h  total {:>9.0} B/h  ratio to checks off {:.3} (interval {} ms, every target)",
            o * 3600.0,
            i * 3600.0,
            (o + i) * 3600.0,
            (o + i) / base,
            PARAMS.interval.as_millis(),
        );
    }
}
