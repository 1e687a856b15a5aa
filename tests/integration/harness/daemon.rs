//! Runs the real `linkwatch` binary for end-to-end tests.
//!
//! [`Daemon`] writes a config into a temp dir, starts the binary with
//! `listen = 127.0.0.1:0`, reads the bound address from its startup log line,
//! and kills it on drop, printing its log when the test failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `linkwatch run --config <dir>/config.toml` with the given config
    /// text; `{data_dir}` in the text is replaced by a temp directory.
    pub fn start(config: &str) -> Daemon {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let text = config.replace("{data_dir}", data.to_str().unwrap());
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Self::attach(child, dir)
    }

    /// Takes over a spawned daemon whose stderr is piped and waits for its address.
    pub fn attach(mut child: Child, dir: tempfile::TempDir) -> Daemon {
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listen_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let log3 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut l = log3.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "linkwatch did not report a listen address (status {status:?}); log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Daemon {
            child: Some(child),
            addr,
            log,
            dir,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sends SIGTERM and waits up to `within`; returns the exit status and the time taken.
    pub fn terminate(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let child = self.child.as_mut().unwrap();
        let pid = child.id().to_string();
        let start = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let took = start.elapsed();
                self.child = None;
                return (status, took);
            }
            if start.elapsed() > within {
                let _ = child.kill();
                panic!(
                    "linkwatch did not exit within {within:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls `f` until it returns `Some` or `timeout` passes.
    pub fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&Daemon) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if start.elapsed() > timeout {
                panic!("condition not met within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- linkwatch log ----\n{}", self.log());
        }
    }
}

/// Extracts `addr=IP:PORT` from the daemon's "listening" log line.
pub fn listen_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let rest = &line[line.find("addr=")? + 5..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

/// A minimal HTTP/1.0 GET (no client crate needed); returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Sample lines of `name` whose labels contain all of `labels`, as values.
fn samples<'a>(
    metrics: &'a str,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = f64> + 'a {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(move |l| {
            l.starts_with(name)
                && l[name.len()..].starts_with(['{', ' '])
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of the first sample whose name and labels contain all of `parts`.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(metrics, name, labels).next()
}

/// Sum of all samples of `name` whose labels contain all of `labels`.
pub fn sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(metrics, name, labels).fold(0.0, |a, b| a + b)
}

/// Whether we are root (needed for namespaces and some ICMP modes).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Skips (returns false) with a message, or panics when `CI=true`.
pub fn require(cond: bool, what: &str) -> bool {
    if cond {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("required under CI=true but unavailable: {what}");
    }
    eprintln!("SKIPPED: {what} (set CI=true to make this a failure)");
    false
}

/// Runs `promtool check metrics` on an exposition; returns (exit code, output).
pub fn promtool_check_metrics(exposition: &str) -> Option<(i32, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
