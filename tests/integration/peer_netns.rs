//! Two linkwatch sites that corroborate each other (issue 20), end to end in
//! the fake internet (see `fakenet`): a home daemon behind the fake ISP and a
//! peer daemon abroad, on the international side of the border, probing the
//! same international hosts under the same target names.
//!
//! ```text
//!  home ── router ── isp ══ border (v3) ══ inet ── abroad
//!                                         (hosts)  10.231.4.2:9898
//! ```
//!
//! `abroad` is a namespace of its own joined to `inet` (`10.231.4.0/24`);
//! `inet` forwards between it and the ISP side, so the home reaches its peer
//! over the same border link its international targets lie behind. Nothing
//! reaches the root namespace. The home's `[[peer]]` has the peer's url; the
//! peer lists the home without one. Both sides read the same token from a
//! 0600 file of their own.
//!
//! Scenarios: the border down for 60 s (corroborated `up` from abroad: the
//! fault lies between this site and the border); the international web
//! server stopped (both sites see it down: cause `destination`); the home
//! journal rewritten with its chain recomputed (`outages --verify --peer`
//! names the first witnessed seq that no longer matches; over https with a
//! private CA); a bad token (401, counted); the peer unreachable past the end
//! of the outage (the corroboration arrives within 60 s of the repair); and
//! `LinkwatchSiteSilent` firing in a real Prometheus abroad when the home
//! daemon stops. Figures are printed as `PEER` lines (`--nocapture`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use crate::harness::daemon::{BIN, require, sum};
use crate::harness::fakenet::{
    FakeNet, Hop, INET_HTTP, INET_ICMP, INET_TCP, ISP, Params, ROUTER, Server, Watcher, ms_between,
};
use crate::harness::netns::{Link, Netns, link, must};

/// The peer's address (its end of the link to `inet`) and port.
const ABROAD_V4: &str = "10.231.4.2";
const PORT: u16 = 9898;
/// Subnet number of the inet ↔ abroad link (`10.231.4.0/24`).
const ABROAD_SUBNET: u8 = 4;
/// The home's subnet (what the far-side route removal cuts off).
const HOME_NET: &str = "10.231.1.0/24";
/// Names each site knows the other by.
const HOME: &str = "home";
const ABROAD: &str = "abroad";
/// How long to wait for a daemon to notice a fault or a repair.
const NOTICE: Duration = Duration::from_secs(8);
/// The first verdict sentence's end (the peer's name comes before it).
const FAULT_AT_BORDER: &str = "the fault lies between this site and the border";
/// The second verdict sentence's end.
const DESTINATION_DOWN: &str = "the destination was down, not your connection";

/// 300 ms probes, as the outage tests (200 per target-minute: well under
/// the 600 a peer's observations may claim).
const PARAMS: Params = Params::FAST;

/// How a scenario's two sites are set up.
#[derive(Clone, Copy)]
struct Opts {
    /// The web targets (TCP and HTTP on the web server) in a group `web` of
    /// their own (needs `international`) instead of in `international`.
    web_group: bool,
    /// The peer serves TLS (a private CA; the home's `[[peer]]` has `ca_file`).
    tls: bool,
    /// `[daemon] witness_every` of both sites.
    witness_every: &'static str,
}

const PLAIN: Opts = Opts {
    web_group: false,
    tls: false,
    witness_every: "10s",
};

/// The international targets, the same names at both sites.
fn intl_targets(web_group: bool) -> String {
    let web = if web_group { "web" } else { "international" };
    let mut s = String::from("\n[[group]]\nname = \"international\"\n");
    for (i, a) in INET_ICMP.iter().enumerate() {
        s += &format!(
            "\n[[target]]\nname = \"intl-icmp-{i}\"\ngroup = \"international\"\nkind = \"icmp\"\nhost = \"{a}\"\n"
        );
    }
    if web_group {
        s += "\n[[group]]\nname = \"web\"\n";
    }
    let (tcp_host, tcp_port) = INET_TCP.split_once(':').unwrap();
    s += &format!(
        "\n[[target]]\nname = \"intl-tcp\"\ngroup = \"{web}\"\nkind = \"tcp\"\nhost = \"{tcp_host}\"\nport = {tcp_port}\n"
    );
    s += &format!(
        "\n[[target]]\nname = \"intl-http\"\ngroup = \"{web}\"\nkind = \"http\"\nurl = \"http://{INET_HTTP}/generate_204\"\nexpect_status = [204]\n"
    );
    s
}

/// `[daemon]` and `[defaults]` of either site.
fn head_toml(data: &Path, listen: &str, site: &str, witness_every: &str, tls: &str) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        "[daemon]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\nsite = \"{site}\"\n\
         witness_every = \"{witness_every}\"\nmax_traces_per_minute = 0\n{tls}\n\
         [defaults]\ninterval = \"{}\"\ntimeout = \"{}\"\nfail_after = {}\nrecover_after = {}\n",
        data.display(),
        ms(PARAMS.interval),
        ms(PARAMS.timeout),
        PARAMS.fail_after,
        PARAMS.recover_after,
    )
}

/// Writes `token` to `dir/name` with mode 0600.
fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The home: lan, isp and the international groups (upstream first, the
/// international ones needing `isp`), and the peer abroad.
fn home_toml(dir: &Path, data: &Path, o: Opts, token: &str, ca: Option<&Path>) -> String {
    let mut s = head_toml(data, "127.0.0.1:9898", HOME, o.witness_every, "");
    s += &format!(
        "\n[[group]]\nname = \"lan\"\n[[group]]\nname = \"isp\"\nneeds = \"lan\"\n\
         \n[[target]]\nname = \"router\"\ngroup = \"lan\"\nkind = \"icmp\"\nhost = \"{ROUTER}\"\n"
    );
    for (i, a) in ISP.iter().enumerate() {
        s += &format!(
            "\n[[target]]\nname = \"isp-{i}\"\ngroup = \"isp\"\nkind = \"icmp\"\nhost = \"{a}\"\n"
        );
    }
    let intl = intl_targets(o.web_group)
        .replace(
            "name = \"international\"\n",
            "name = \"international\"\nneeds = \"isp\"\n",
        )
        .replace(
            "name = \"web\"\n",
            "name = \"web\"\nneeds = \"international\"\n",
        );
    s += &intl;
    let scheme = if o.tls { "https" } else { "http" };
    let token_file = token_file(dir, "peer-abroad.token", token);
    s += &format!(
        "\n[[peer]]\nname = \"{ABROAD}\"\nurl = \"{scheme}://{ABROAD_V4}:{PORT}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    if let Some(ca) = ca {
        s += &format!("ca_file = \"{}\"\n", ca.display());
    }
    s
}

/// The peer abroad: the international groups only, and the home (no url).
fn abroad_toml(dir: &Path, data: &Path, o: Opts, token: &str, tls: Option<&Pki>) -> String {
    let tls = tls.map_or(String::new(), |p| {
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            p.cert.display(),
            p.key.display()
        )
    });
    let mut s = head_toml(
        data,
        &format!("0.0.0.0:{PORT}"),
        ABROAD,
        o.witness_every,
        &tls,
    );
    s += &intl_targets(o.web_group);
    let token_file = token_file(dir, "peer-home.token", token);
    s += &format!(
        "\n[[peer]]\nname = \"{HOME}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    s
}

/// A private CA and a leaf for the peer's address, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "linkwatch peer test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca_params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf =
            CertificateParams::new(vec![ABROAD_V4.to_string(), "127.0.0.1".into()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "linkwatch peer abroad");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2039, 1, 1);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let (ca, cert, key) = (p("ca.pem"), p("peer.pem"), p("peer.key"));
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(&cert, leaf_cert.pem() + &ca_cert.pem()).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Pki {
            _dir: dir,
            ca,
            cert,
            key,
        }
    }
}

/// The fake internet with the peer's namespace on its international side.
struct PeerNet {
    net: FakeNet,
    abroad: Netns,
    /// inet ↔ abroad.
    #[allow(dead_code)]
    border: Link,
}

impl PeerNet {
    fn new() -> PeerNet {
        let net = FakeNet::new();
        let abroad = Netns::new();
        let border = link(&net.inet, &abroad, ABROAD_SUBNET);
        // inet forwards between the peer and the ISP side; the ISP and the
        // router learn the way to the peer (home's 10.231.0.0/16 covers it).
        net.inet.sysctl("net.ipv4.ip_forward", "1");
        abroad.ip(&[
            "route",
            "add",
            "10.231.0.0/16",
            "via",
            &border.a_v4.to_string(),
        ]);
        let abroad_net = format!("10.231.{ABROAD_SUBNET}.0/24");
        net.isp.ip(&[
            "route",
            "add",
            &abroad_net,
            "via",
            &net.far.a_v4.to_string(),
        ]);
        net.router.ip(&[
            "route",
            "add",
            &abroad_net,
            "via",
            &net.uplink.a_v4.to_string(),
        ]);
        PeerNet {
            net,
            abroad,
            border,
        }
    }

    /// Cuts the peer's way back to the home on the far side (in `abroad`),
    /// leaving its way to the international hosts; returns the instant.
    fn cut_peer_from_home(&self) -> Timestamp {
        crate::harness::fakenet::timed(|| {
            self.abroad.ip(&["route", "add", "unreachable", HOME_NET]);
        })
    }

    /// Undoes [`Self::cut_peer_from_home`]; returns the instant.
    fn reconnect_peer(&self) -> Timestamp {
        crate::harness::fakenet::timed(|| {
            self.abroad.ip(&["route", "del", "unreachable", HOME_NET]);
        })
    }
}

/// Both sites running. Field order is drop order: the daemons go before
/// the namespaces they run in.
struct Sites {
    home: Watcher,
    abroad: Watcher,
    /// When the peer abroad started probing (its first minute is partial).
    abroad_up: Timestamp,
    token: String,
    pki: Option<Pki>,
    pn: PeerNet,
}

impl Sites {
    /// Builds the network, starts the peer abroad, then the home, and waits
    /// until both see every group up. `None` when the test cannot run here.
    fn start(o: Opts) -> Option<Sites> {
        if !crate::harness::fakenet::can_run() {
            return None;
        }
        let pn = PeerNet::new();
        let pki = o.tls.then(Pki::new);
        // A token per test run, never a constant in a log.
        let token = format!(
            "lwt-peer-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        );
        let mut abroad = Watcher::prepare(&pn.abroad, PARAMS, |dir, data| {
            abroad_toml(dir, data, o, &token, pki.as_ref())
        });
        let mut home = Watcher::prepare(&pn.net.home, PARAMS, |dir, data| {
            home_toml(dir, data, o, &token, pki.as_ref().map(|p| p.ca.as_path()))
        });
        let abroad_up = Timestamp::now();
        abroad.start();
        pn.abroad.wait_listening(PORT);
        home.start();
        let s = Sites {
            home,
            abroad,
            abroad_up,
            token,
            pki,
            pn,
        };
        s.home.wait_all_up(Duration::from_secs(15));
        s.wait_abroad_up(Duration::from_secs(15));
        Some(s)
    }

    fn scheme(&self) -> &'static str {
        if self.pki.is_some() { "https" } else { "http" }
    }

    /// curl in `ns` to the peer's `path` (`extra` arguments first): the
    /// status and the body. The peer is `127.0.0.1` from `abroad` itself.
    fn curl_peer(&self, ns: &Netns, path: &str, extra: &[&str]) -> (u16, String) {
        let host = if ns.name() == self.pn.abroad.name() {
            "127.0.0.1"
        } else {
            ABROAD_V4
        };
        let url = format!("{}://{host}:{PORT}{path}", self.scheme());
        let mut args: Vec<&str> = vec![
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ];
        let ca;
        if let Some(p) = &self.pki {
            ca = p.ca.display().to_string();
            args.extend(["--cacert", &ca]);
        }
        args.extend(extra);
        args.push(&url);
        let out = must(&mut ns.command(&args));
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (
            code.trim()
                .parse()
                .unwrap_or_else(|_| panic!("curl {url}: {out}")),
            body.to_string(),
        )
    }

    /// The peer's own API (from inside `abroad`), as JSON.
    fn abroad_api(&self, path: &str) -> Value {
        let (code, body) = self.curl_peer(&self.pn.abroad, path, &[]);
        assert_eq!(code, 200, "abroad {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("abroad {path} ({e}): {body}"))
    }

    fn abroad_metrics(&self) -> String {
        let (code, body) = self.curl_peer(&self.pn.abroad, "/metrics", &[]);
        assert_eq!(code, 200, "abroad /metrics: {body}");
        body
    }

    fn wait_abroad_up(&self, timeout: Duration) {
        wait_for(
            "every group up abroad",
            timeout,
            || self.logs(),
            || {
                let v = self.abroad_api("/api/v1/status");
                v["groups"].as_array().is_some_and(|gs| {
                    !gs.is_empty() && gs.iter().all(|g| g["state"].as_str() == Some("up"))
                })
            },
        );
    }

    /// Both daemons' logs, for failure messages.
    fn logs(&self) -> String {
        format!(
            "---- home log ----\n{}\n---- abroad log ----\n{}",
            tail(&self.home.log(), 60),
            tail(&self.abroad.log(), 60)
        )
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `cond` every 250 ms for up to `limit`, then fails with `context`.
fn wait_for(
    what: &str,
    limit: Duration,
    context: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) {
    let t = Instant::now();
    loop {
        if cond() {
            return;
        }
        if t.elapsed() > limit {
            panic!("not within {limit:?}: {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every complete line of a journal, parsed (a line being written at the
/// moment of reading is left out).
fn journal(data: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(data.join("journal.jsonl")).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            serde_json::from_str(l.trim_end())
                .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The journal's lines of one `event`.
fn events(data: &Path, event: &str) -> Vec<Value> {
    journal(data)
        .into_iter()
        .filter(|l| l["event"] == event)
        .collect()
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

/// The home's head a `witness` (abroad) or `witnessed` (home) line names:
/// its seq (not the line's own `seq`, the envelope's).
fn head_seq(v: &Value) -> u64 {
    v["head_seq"]
        .as_u64()
        .or_else(|| v["head"]["seq"].as_u64())
        .unwrap_or_else(|| panic!("no head seq in {v}"))
}

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

/// The `corroboration` events of the home journal for outage `id`.
fn corroborations(w: &Watcher, id: &str) -> Vec<Value> {
    events(&w.data, "corroboration")
        .into_iter()
        .filter(|c| c["period"] == id)
        .collect()
}

/// The outage records of the home API, raw.
fn api_outages(w: &Watcher) -> Vec<Value> {
    w.api("/api/v1/outages")
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("/api/v1/outages is not an array"))
}

/// `linkwatch outages --json` over the home's data directory, raw.
fn cli_outages(w: &Watcher) -> Vec<Value> {
    let out = must(
        Command::new(BIN)
            .args(["outages", "--json", "--data-dir"])
            .arg(&w.data),
    );
    serde_json::from_str::<Value>(&out)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_else(|| panic!("outages --json is not an array: {out}"))
}

/// Checks a corroboration (journal event) from the peer abroad of the
/// outage `id`: every target of `targets` with `verdict`, the overall
/// `overall` and a summary ending in `sentence`.
fn check_corroboration(
    c: &Value,
    id: &str,
    abroad_up: Timestamp,
    targets: &[&str],
    verdict: &str,
    overall: &str,
    sentence: &str,
) {
    assert_eq!(c["peer"], ABROAD, "{c:#}");
    assert_eq!(c["period"], id, "{c:#}");
    assert_eq!(c["kind"], "outage", "{c:#}");
    assert_eq!(c["verdict"], overall, "{c:#}");
    let summary = c["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(ABROAD) && summary.contains(sentence),
        "summary {summary:?} should name {ABROAD} and say {sentence:?}: {c:#}"
    );
    let ts = c["targets"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<&str> = ts.iter().filter_map(|t| t["target"].as_str()).collect();
    names.sort_unstable();
    let mut want = targets.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "corroborated targets: {c:#}");
    // The peer answers whole minutes, from the start's minute to the end's,
    // probing each target at least once a second: at least one probe per
    // second it was up in them (its first minute is partial when it started
    // within it), less a few for its first probes' start-up.
    let minute = |t: Timestamp| t.as_second().div_euclid(60) * 60;
    let window_end = minute(crate::peer_netns::ts(&c["end"])) + 60;
    let window_start = minute(crate::peer_netns::ts(&c["start"])).max(abroad_up.as_second());
    let up_secs = u64::try_from(window_end - window_start).unwrap_or(0);
    for t in &ts {
        assert_eq!(t["verdict"], verdict, "{t}: {c:#}");
        let probes = t["probes"].as_u64().unwrap_or(0);
        assert!(
            probes + 3 >= up_secs.min(60) && probes > 0,
            "the peer's probes of {t} are too few for {up_secs} s up in the minutes asked: {c:#}"
        );
        let failures = t["failures"].as_u64().unwrap_or(u64::MAX);
        assert!(failures <= probes, "{t}");
    }
}

/// The outage's record as the API or `outages --json` shows it carries the
/// corroboration: per target the peer's verdict `verdict`, and the verdict
/// in words somewhere in the record.
fn check_record(what: &str, o: &Value, targets: &[&str], verdict: &str, sentence: &str) {
    let list = o["corroboration"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no corroboration in {o:#}"));
    for t in targets {
        let c = list
            .iter()
            .find(|c| c["target"] == *t && c["peer"] == ABROAD)
            .unwrap_or_else(|| panic!("{what}: no corroboration of {t} by {ABROAD}: {o:#}"));
        assert_eq!(c["verdict"], verdict, "{what}: {t}: {o:#}");
        for k in ["probes", "failures", "loss_ratio"] {
            assert!(c.get(k).is_some(), "{what}: {t} has no {k}: {o:#}");
        }
    }
    assert!(
        o.to_string().contains(sentence),
        "{what}: the verdict in words ({sentence:?}) is not in the record: {o:#}"
    );
}

/// Waits until the home journal holds a corroboration of outage `id`.
fn wait_corroboration(s: &Sites, id: &str, limit: Duration) -> Value {
    wait_for(
        &format!("a corroboration of {id} in the home journal"),
        limit,
        || s.logs(),
        || !corroborations(&s.home, id).is_empty(),
    );
    corroborations(&s.home, id).remove(0)
}

/// The one closed outage of `group` in the home API.
fn closed_outage(w: &Watcher, group: &str) -> Value {
    let of: Vec<Value> = api_outages(w)
        .into_iter()
        .filter(|o| o["group"] == group)
        .collect();
    assert_eq!(of.len(), 1, "one {group} outage expected: {of:#?}");
    assert!(!of[0]["end"].is_null(), "still open: {:#}", of[0]);
    of[0].clone()
}

fn id_of(o: &Value) -> String {
    o["id"].as_str().unwrap().to_string()
}

/// Scenario 1: the border down for 60 s. The home records exactly one
/// outage, of `international`; the peer abroad saw every one of those
/// targets answer throughout, and says so: the fault lies between this site
/// and the border.
#[test]
fn border_down_60s_is_corroborated_up_from_abroad() {
    let Some(s) = Sites::start(PLAIN) else {
        return;
    };
    let cut = s.pn.net.break_link(Hop::Far);
    s.home.wait_open(&["international"], NOTICE);
    let held = Duration::try_from(Timestamp::now().duration_since(cut)).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(60).saturating_sub(held));
    let repaired = s.pn.net.repair(Hop::Far);
    eprintln!("PEER border down {:.1} s", ms_between(repaired, cut) / 1e3);
    s.home.wait_all_closed(NOTICE);
    let all = api_outages(&s.home);
    assert_eq!(all.len(), 1, "exactly one outage at home: {all:#?}");
    let o = closed_outage(&s.home, "international");
    assert_eq!(o["cause"], "international", "{o:#}");
    let id = id_of(&o);
    let c = wait_corroboration(&s, &id, Duration::from_secs(60));
    let targets = ["intl-icmp-0", "intl-icmp-1", "intl-tcp", "intl-http"];
    check_corroboration(
        &c,
        &id,
        s.abroad_up,
        &targets,
        "up",
        "reachable_elsewhere",
        FAULT_AT_BORDER,
    );
    for t in c["targets"].as_array().unwrap() {
        assert_eq!(t["failures"], 0, "the peer saw {t} fail: {c:#}");
    }
    eprintln!(
        "PEER corroboration {:.1} s after the repair: {}",
        ms_between(ts(&c["ts"]), repaired) / 1e3,
        c["summary"]
    );
    // The record, as every reader shows it; the past lines unchanged.
    check_record(
        "API",
        &closed_outage(&s.home, "international"),
        &targets,
        "up",
        FAULT_AT_BORDER,
    );
    let cli = cli_outages(&s.home);
    assert_eq!(cli.len(), 1, "{cli:#?}");
    check_record("outages --json", &cli[0], &targets, "up", FAULT_AT_BORDER);
    assert_eq!(
        closed_outage(&s.home, "international")["cause"],
        "international"
    );
    s.home.verify();
    // The peer had nothing to record: no outage abroad.
    let theirs = s.abroad_api("/api/v1/outages");
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs:#}");
}

/// Scenario 2: the international web server stopped (the host still
/// answers pings). Both sites see the `web` group down; the peer's
/// corroboration says the destination was down, and the home's record's
/// cause becomes `destination`.
///
/// The fault spans two whole clock minutes: the peer's observations are per
/// minute, and a minute half up would read `partial`.
#[test]
fn web_server_stopped_is_down_at_both_sites_cause_destination() {
    let Some(mut s) = Sites::start(Opts {
        web_group: true,
        ..PLAIN
    }) else {
        return;
    };
    // Two seconds into a minute, stop the web server; restart it two
    // seconds before the end of the next.
    let now = Timestamp::now().as_second();
    let start = (now.div_euclid(60) + 1) * 60 + 2;
    std::thread::sleep(Duration::from_secs((start - now) as u64));
    let stopped = s.pn.net.web.kill();
    s.home.wait_open(&["web"], NOTICE);
    let end = start + 116;
    let left = end - Timestamp::now().as_second();
    std::thread::sleep(Duration::from_secs(left.max(0) as u64));
    let (web, restarted) =
        Server::start(&s.pn.net.inet, &format!("tcp={INET_TCP},http={INET_HTTP}"));
    s.pn.net.web = web;
    eprintln!(
        "PEER web server stopped {:.1} s",
        ms_between(restarted, stopped) / 1e3
    );
    s.home.wait_all_closed(NOTICE);
    let all = api_outages(&s.home);
    assert_eq!(all.len(), 1, "only the web outage at home: {all:#?}");
    // The peer saw it down too: an outage of its own web group.
    let theirs: Vec<Value> = s
        .abroad_api("/api/v1/outages")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        theirs.len() == 1 && theirs[0]["group"] == "web",
        "one web outage abroad: {theirs:#?}"
    );
    let id = id_of(&closed_outage(&s.home, "web"));
    let c = wait_corroboration(&s, &id, Duration::from_secs(60));
    let targets = ["intl-tcp", "intl-http"];
    check_corroboration(
        &c,
        &id,
        s.abroad_up,
        &targets,
        "down",
        "destination_down",
        DESTINATION_DOWN,
    );
    let o = closed_outage(&s.home, "web");
    assert_eq!(o["cause"], "destination", "{o:#}");
    assert_eq!(o["local_cause"], "web", "what the home judged alone: {o:#}");
    check_record("API", &o, &targets, "down", DESTINATION_DOWN);
    let cli = cli_outages(&s.home);
    assert_eq!(cli.len(), 1, "{cli:#?}");
    assert_eq!(cli[0]["cause"], "destination", "{:#}", cli[0]);
    check_record(
        "outages --json",
        &cli[0],
        &targets,
        "down",
        DESTINATION_DOWN,
    );
    // The journal's own outage lines keep the cause they were written with.
    let ends = events(&s.home.data, "outage_end");
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0]["cause"], "web", "{:#}", ends[0]);
    s.home.verify();
}

/// Recomputes the hash chain of `data`'s journal after replacing `from` by
/// `to` in line `seq`: every later line's `prev`, and every copy of an old
/// hash in a later line or the heartbeat file (the heads that daemon_start,
/// heartbeats and `witnessed` carry), as a forger with the file and the
/// code would. Returns the map old → new hash.
fn rewrite_journal(data: &Path, seq_no: u64, from: &str, to: &str) -> Vec<(String, String)> {
    use linkwatch::journal::line_hash;
    let path = data.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut map: Vec<(String, String)> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut edited = false;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut new = line.to_string();
        if seq(&v) == seq_no {
            assert!(new.contains(from), "line {seq_no} has no {from:?}: {line}");
            new = new.replacen(from, to, 1);
            edited = true;
        }
        for (old, fresh) in &map {
            new = new.replace(old.as_str(), fresh);
        }
        if new != line {
            map.push((line_hash(line.as_bytes()), line_hash(new.as_bytes())));
        }
        out.push_str(&new);
        out.push('\n');
    }
    assert!(edited, "no line {seq_no} in {}", path.display());
    std::fs::write(&path, out).unwrap();
    let hb = data.join("heartbeat");
    if let Ok(mut t) = std::fs::read_to_string(&hb) {
        for (old, fresh) in &map {
            t = t.replace(old.as_str(), fresh);
        }
        std::fs::write(&hb, t).unwrap();
    }
    map
}

/// `linkwatch outages --verify --peer abroad --config …` inside `home`:
/// (success, stdout + stderr).
fn verify_peer(s: &Sites) -> (bool, String) {
    let out =
        s.pn.net
            .home
            .command(&[
                BIN,
                "outages",
                "--verify",
                "--peer",
                ABROAD,
                "--config",
                s.home.config.to_str().unwrap(),
            ])
            .output()
            .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The numbers that follow a `seq` in `text` (`seq 12`, `seq=12`, `"seq":12`).
fn seqs_named(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("seq") {
        rest = &rest[i + 3..];
        let skipped = rest.trim_start_matches(|c: char| !c.is_ascii_digit() && c != '\n');
        if rest.len() - skipped.len() <= 4 {
            let digits: String = skipped.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                out.push(n);
            }
        }
    }
    out
}

/// Scenario 3 (over https, the peer's certificate from a private CA in
/// `ca_file`): the home's heads are witnessed abroad; `--verify --peer`
/// passes on the intact journal. Then the `isp` outage's start line is
/// edited to blame the household's LAN and the chain recomputed from
/// scratch: plain `--verify` still passes (the chain is consistent), but
/// `--verify --peer abroad` fails and names the first witnessed seq that no
/// longer matches.
#[test]
fn rewritten_journal_fails_verify_peer_naming_the_first_witnessed_seq() {
    let Some(mut s) = Sites::start(Opts { tls: true, ..PLAIN }) else {
        return;
    };
    // A short ISP outage: the peer is unreachable during it (the heads wait
    // in the queue) and the latest head goes out once it ends.
    s.pn.net.break_link(Hop::Uplink);
    s.home.wait_open(&["isp"], NOTICE);
    std::thread::sleep(Duration::from_secs(3));
    s.pn.net.repair(Hop::Uplink);
    s.home.wait_all_closed(NOTICE);
    let start_line = events(&s.home.data, "outage_start")
        .into_iter()
        .find(|l| l["group"] == "isp")
        .expect("an isp outage_start line");
    let end_seq = events(&s.home.data, "outage_end")
        .iter()
        .map(seq)
        .max()
        .expect("outage_end lines");
    // Wait for a witness of a head past the outage, and a receipt at home.
    wait_for(
        "a witnessed head past the outage abroad",
        Duration::from_secs(45),
        || s.logs(),
        || {
            events(&s.abroad.data, "witness")
                .iter()
                .any(|w| w["site"] == HOME && head_seq(w) >= end_seq)
        },
    );
    wait_for(
        "a `witnessed` receipt at home",
        Duration::from_secs(15),
        || s.logs(),
        || {
            events(&s.home.data, "witnessed")
                .iter()
                .any(|w| w["peer"] == ABROAD && head_seq(w) >= end_seq)
        },
    );
    s.home.stop();
    let witnessed: Vec<u64> = events(&s.abroad.data, "witness")
        .iter()
        .filter(|w| w["site"] == HOME && w["peer"] == HOME)
        .map(head_seq)
        .collect();
    eprintln!("PEER heads witnessed abroad: {witnessed:?}");
    let (ok, text) = verify_peer(&s);
    assert!(ok, "--verify --peer fails on the intact journal:\n{text}");

    let edited = seq(&start_line);
    let map = rewrite_journal(
        &s.home.data,
        edited,
        "\"cause\":\"isp\"",
        "\"cause\":\"lan\"",
    );
    assert!(map.len() >= 2, "{map:?}");
    s.home.verify();
    let first_bad = *witnessed
        .iter()
        .filter(|&&w| w >= edited)
        .min()
        .expect("a witnessed head at or past the edited line");
    let (ok, text) = verify_peer(&s);
    eprintln!("PEER verify --peer after the rewrite of line {edited}:\n{text}");
    assert!(
        !ok,
        "--verify --peer passes on a rewritten journal:\n{text}"
    );
    // The first line that says a witnessed head does not match names it.
    let mismatch = text
        .lines()
        .find(|l| l.contains("not match"))
        .unwrap_or_else(|| panic!("no mismatch named:\n{text}"));
    assert_eq!(
        seqs_named(mismatch).first(),
        Some(&first_bad),
        "--verify --peer should name seq {first_bad} first (witnessed: {witnessed:?}):\n{text}"
    );
    let before: Vec<&u64> = witnessed.iter().filter(|&&w| w < edited).collect();
    assert!(
        !before.is_empty(),
        "no witnessed head before the edit to show still matching: {witnessed:?}"
    );
}

/// Scenario 4: calls with a wrong token or none are refused with 401 and
/// counted as `linkwatch_peer_requests_total{peer="",…,result="unauthorized"}`;
/// the right token gets the observations. Neither daemon logs the token.
#[test]
fn bad_token_is_401_and_counted() {
    let Some(s) = Sites::start(PLAIN) else {
        return;
    };
    let unauthorized = |m: &str| {
        sum(
            m,
            "linkwatch_peer_requests_total",
            &[("peer", ""), ("result", "unauthorized")],
        )
    };
    let before = unauthorized(&s.abroad_metrics());
    let home = &s.pn.net.home;
    let now = Timestamp::now().as_second();
    let (since, until) = (
        Timestamp::from_second(now - 300).unwrap(),
        Timestamp::from_second(now + 60).unwrap(),
    );
    let obs = format!(
        "/api/v1/peer/observations?targets=intl-icmp-0,intl-tcp&since={since}&until={until}"
    );
    let obs = obs.as_str();
    let wrong = format!("Authorization: Bearer {}x", s.token);
    let calls: [(&str, Vec<&str>); 4] = [
        ("observations, wrong token", vec!["-H", &wrong]),
        ("observations, no token", vec![]),
        (
            "witness, wrong token",
            vec![
                "-H",
                &wrong,
                "-H",
                "Content-Type: application/json",
                "--data",
                r#"{"site":"home","seq":1,"hash":"00","at":"2026-12-06T00:00:00Z"}"#,
            ],
        ),
        ("witnesses, no token", vec![]),
    ];
    for (i, (what, extra)) in calls.iter().enumerate() {
        let path = match i {
            0 | 1 => obs,
            2 => "/api/v1/peer/witness",
            _ => "/api/v1/peer/witnesses?site=home",
        };
        let (code, body) = s.curl_peer(home, path, extra);
        assert_eq!(code, 401, "{what}: {body}");
    }
    let after = unauthorized(&s.abroad_metrics());
    eprintln!("PEER unauthorized counted: {before} -> {after}");
    assert_eq!(after - before, calls.len() as f64, "{}", s.abroad_metrics());
    // The right token: 200 and the observations of both targets.
    let good = format!("Authorization: Bearer {}", s.token);
    let (code, body) = s.curl_peer(home, obs, &["-H", &good]);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let names: Vec<&str> = v["targets"]
        .as_array()
        .map(|ts| ts.iter().filter_map(|t| t["target"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["intl-icmp-0", "intl-tcp"], "{body}");
    let m = s.abroad_metrics();
    assert!(
        sum(
            &m,
            "linkwatch_peer_requests_total",
            &[("peer", HOME), ("result", "ok")]
        ) >= 1.0,
        "{m}"
    );
    assert_eq!(unauthorized(&m), after, "{m}");
    for (site, log) in [("home", s.home.log()), ("abroad", s.abroad.log())] {
        assert!(!log.contains(&s.token), "the {site} log holds the token");
    }
}

/// Scenario 5: the peer unreachable during the outage and past its end
/// (the peer's way back to the home cut on the far side). The home keeps
/// trying; the corroboration arrives within 60 s of the repair.
#[test]
fn peer_unreachable_during_the_outage_corroborates_within_60s_of_repair() {
    let Some(s) = Sites::start(PLAIN) else {
        return;
    };
    s.pn.net.break_link(Hop::Far);
    s.home.wait_open(&["international"], NOTICE);
    s.pn.cut_peer_from_home();
    std::thread::sleep(Duration::from_secs(10));
    s.pn.net.repair(Hop::Far);
    s.home.wait_all_closed(NOTICE);
    let id = id_of(&closed_outage(&s.home, "international"));
    // The peer stays out of reach for a while after the outage: no
    // corroboration can arrive, and the home counts its failed calls.
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        corroborations(&s.home, &id).is_empty(),
        "a corroboration arrived while the peer was unreachable"
    );
    let m = s.home.api_text("/metrics");
    let failed = ["unreachable", "timeout"]
        .iter()
        .map(|r| {
            sum(
                &m,
                "linkwatch_peer_calls_total",
                &[("peer", ABROAD), ("result", r)],
            )
        })
        .sum::<f64>();
    assert!(failed >= 1.0, "no failed call to the peer counted:\n{m}");
    let repaired = s.pn.reconnect_peer();
    let c = wait_corroboration(&s, &id, Duration::from_secs(75));
    let after = ms_between(ts(&c["ts"]), repaired) / 1e3;
    eprintln!("PEER corroboration {after:.1} s after the peer became reachable again");
    assert!(
        after <= 60.0,
        "the corroboration came {after:.1} s after the repair (allowed 60 s)"
    );
    check_corroboration(
        &c,
        &id,
        s.abroad_up,
        &["intl-icmp-0", "intl-icmp-1", "intl-tcp", "intl-http"],
        "up",
        "reachable_elsewhere",
        FAULT_AT_BORDER,
    );
}

/// The `for:` of alert `name` in a Prometheus rules file, in seconds (0
/// when it has none).
fn alert_for(rules: &str, name: &str) -> u64 {
    let at = rules
        .find(&format!("alert: {name}"))
        .unwrap_or_else(|| panic!("no alert {name} in the rules"));
    let block = &rules[at..];
    let block = &block[..block[1..].find("- alert:").map_or(block.len(), |i| i + 1)];
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("for:"))
        .map_or(0, |d| {
            let d = d.trim();
            let (n, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("for: {d}"));
            match unit {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                _ => panic!("for: {d}"),
            }
        })
}

/// PromQL instant query in `ns` against the Prometheus on 127.0.0.1:9090.
/// Nothing while Prometheus is not ready yet (it answers 503 until its
/// storage is open).
fn prom_query(ns: &Netns, expr: &str) -> Vec<Value> {
    let out = ns
        .command(&[
            "curl",
            "-sfG",
            "--max-time",
            "10",
            "http://127.0.0.1:9090/api/v1/query",
            "--data-urlencode",
            &format!("query={expr}"),
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The peer abroad scrapes its own linkwatch with a real Prometheus and the
/// shipped rules (deploy/prometheus/rules.yml, unchanged). While the home
/// witnesses every 10 s, `LinkwatchSiteSilent` is quiet; once the home
/// daemon stops, the peer marks it down after 3 × witness_every and the
/// alert fires (bounded wait).
#[test]
fn site_silent_fires_in_prometheus_abroad_when_the_home_stops() {
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !require(have("prometheus"), "prometheus (Debian package prometheus)") {
        return;
    }
    let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let hold = alert_for(&rules, "LinkwatchSiteSilent");
    let Some(mut s) = Sites::start(PLAIN) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    std::fs::write(
        d("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: linkwatch\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{PORT}\"]\n        labels:\n          site: {ABROAD}\n",
            rules_path.display()
        ),
    )
    .unwrap();
    let prom_log = d("prometheus.log");
    s.pn.abroad.spawn(&[
        "sh",
        "-c",
        &format!(
            "exec prometheus --config.file={} --storage.tsdb.path={} \
             --web.listen-address=127.0.0.1:9090 >{} 2>&1",
            d("prometheus.yml").display(),
            d("prom-data").display(),
            prom_log.display()
        ),
    ]);
    s.pn.abroad.wait_listening(9090);
    let prom_tail = || tail(&std::fs::read_to_string(&prom_log).unwrap_or_default(), 30);
    let up = format!("linkwatch_peer_up{{peer=\"{HOME}\"}} == 1");
    wait_for(
        "the home up in Prometheus abroad",
        Duration::from_secs(60),
        || format!("{}\n---- prometheus ----\n{}", s.logs(), prom_tail()),
        || prom_query(&s.pn.abroad, &up).len() == 1,
    );
    let alert = "ALERTS{alertname=\"LinkwatchSiteSilent\"}";
    // Quiet while the home witnesses.
    std::thread::sleep(Duration::from_secs(15));
    assert!(
        prom_query(&s.pn.abroad, alert).is_empty(),
        "LinkwatchSiteSilent while the home witnesses: {:?}",
        prom_query(&s.pn.abroad, alert)
    );
    s.home.stop();
    let stopped = Instant::now();
    let firing = "ALERTS{alertname=\"LinkwatchSiteSilent\",alertstate=\"firing\"}";
    // 3 × witness_every until the peer is down, the rule's `for`, scrapes
    // and evaluations.
    let limit = Duration::from_secs(30 + hold + 45);
    wait_for(
        "LinkwatchSiteSilent firing abroad",
        limit,
        || format!("{}\n---- prometheus ----\n{}", s.logs(), prom_tail()),
        || !prom_query(&s.pn.abroad, firing).is_empty(),
    );
    let took = stopped.elapsed();
    let fired = prom_query(&s.pn.abroad, firing);
    eprintln!(
        "PEER LinkwatchSiteSilent fired {:.1} s after the home stopped (rule for: {hold} s): {fired:?}",
        took.as_secs_f64()
    );
    assert_eq!(fired[0]["metric"]["peer"], HOME, "{fired:?}");
}
