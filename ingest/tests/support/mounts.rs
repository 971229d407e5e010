//! Small filesystems a test mounts for itself (we run as root): a tmpfs that fills up, and an ext2 file system
//! on a loop device whose device can be made to fail every write with EIO and then repaired. Unmounted (and the
//! loop device released) when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "{what} needs root (mount); scripts/test.sh runs the suite as root"
    );
}

/// A tmpfs of a fixed size.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_mb: u32) -> Tmpfs {
        require_root("a tmpfs of a fixed size");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m"),
                "tmpfs",
                path.to_str().unwrap(),
            ],
        );
        Tmpfs { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the filesystem holding `dir` with one file until a write fails (no space left); returns the file.
pub fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [256 << 10, 4 << 10, 512] {
        let buf = vec![0x5a_u8; chunk];
        while f.write_all(&buf).and_then(|()| f.sync_data()).is_ok() {}
    }
    path
}

/// Free bytes on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

/// An ext2 file system on a loop device over an image file. [`LoopFs::break_device`] makes the image
/// immutable: every write the loop device passes on then fails, and the file system reports EIO (an fsync
/// fails); [`LoopFs::repair`] makes it writable again. Nothing on it is lost either way.
pub struct LoopFs {
    pub path: PathBuf,
    image: PathBuf,
    device: String,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    pub fn mount(size_mb: u64) -> LoopFs {
        require_root("a loop-mounted file system");
        // The image lives on the disk of the temp dir (chattr needs a file system that has the flag).
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size_mb << 20)
            .unwrap();
        let device = sh("losetup", &["-f", "--show", image.to_str().unwrap()]);
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let fs = LoopFs {
            path,
            image,
            device,
            _dir: dir,
        };
        sh("mkfs.ext2", &["-q", &fs.device]);
        sh(
            "mount",
            &[
                "-o",
                "errors=continue",
                &fs.device,
                fs.path.to_str().unwrap(),
            ],
        );
        fs
    }

    /// From now on every write to the device fails with EIO.
    pub fn break_device(&self) {
        sh("chattr", &["+i", self.image.to_str().unwrap()]);
    }

    /// The device takes writes again.
    pub fn repair(&self) {
        sh("chattr", &["-i", self.image.to_str().unwrap()]);
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.image).status();
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}
