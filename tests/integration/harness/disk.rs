//! Hostile disks for the daemon (root: mounts): a small tmpfs that fills
//! up, a loop-mounted ext4 that `fsfreeze` freezes, and a loopback TCP
//! service the test closes and reopens to make outages.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether `cmd` is on the PATH.
pub fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs a command that must succeed.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A mount the test made; unmounted on drop, also on failure.
pub struct Mount {
    pub dir: PathBuf,
}

/// A frozen filesystem, thawed on drop. Hold it in a variable declared after
/// the daemon: a daemon blocked in `fsync` cannot be reaped until the thaw,
/// so the thaw must come first when a failing test unwinds.
pub struct Frozen {
    dir: PathBuf,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.dir).status();
    }
}

impl Mount {
    pub fn tmpfs(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ext4_loop(image: &Path, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let f = std::fs::File::create(image).unwrap();
        f.set_len(16 << 20).unwrap();
        run(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap()]);
        run(&[
            "mount",
            "-o",
            "loop",
            image.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn freeze(&self) -> Frozen {
        run(&["fsfreeze", "-f", self.dir.to_str().unwrap()]);
        Frozen {
            dir: self.dir.clone(),
        }
    }

    /// Fills the filesystem with `<dir>/filler` until a write is refused.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
        path
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let dir = self.dir.to_str().unwrap().to_string();
        for _ in 0..50 {
            match Command::new("umount").arg(&dir).status() {
                Ok(s) if s.success() => return,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = Command::new("umount").args(["-l", &dir]).status();
    }
}

/// A loopback TCP service the test closes and reopens on one port.
pub struct Service {
    pub port: u16,
    stop: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Service {
    pub fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self { port, stop: None };
        s.open();
        s
    }

    /// Accepts connections again.
    pub fn open(&mut self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = l.accept();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        self.stop = Some((stop, t));
    }

    /// Closes the port: connections are refused.
    pub fn close(&mut self) {
        if let Some((stop, t)) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
            t.join().unwrap();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.close();
    }
}
