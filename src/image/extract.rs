//! Safe extraction of a (possibly compressed) tar stream into a directory that nothing else
//! writes to while it runs.
//!
//! Nothing is ever written outside the destination: every path is resolved one component at a
//! time with `O_NOFOLLOW`, from a file descriptor of the destination, so an entry that would
//! go through a symbolic link, climb out with `..`, start with `/`, or hard-link to something
//! outside is refused (the whole extraction fails) instead of being followed. Symbolic links
//! themselves are created as they are: they are only ever resolved inside a container.
//! Ownership, modes, times and xattrs are kept; device nodes are created only by root. In a
//! layer, whiteouts become what overlayfs expects: `.wh.NAME` a 0/0 character device `NAME`,
//! `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.

use super::compress;
use super::digest::{Digest, HashingReader};
use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens,
    makedev, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// What the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image layer or a root filesystem: owners, devices and whiteouts apply.
    Layer,
    /// An archive of files (docker save, OCI archives): only files, directories and links,
    /// owned by whoever extracts them.
    Files,
}

/// What an extraction produced.
#[derive(Debug)]
pub struct Unpacked {
    /// The digest of the uncompressed tar stream: a layer's DiffID.
    pub diff_id: Digest,
    /// The bytes of file contents written.
    pub size: u64,
}

/// Extracts `input` (plain, gzip or zstd tar) into the existing, empty directory `dest`.
/// On failure `dest` holds a partial tree that the caller must throw away.
pub fn unpack(input: impl Read, dest: &Path, kind: Kind) -> Result<Unpacked> {
    let plain = compress::decompress(input)?;
    let mut hashing = HashingReader::new(plain);
    let mut extractor = Extractor::new(dest, kind)?;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().context("reading the archive")?;
        for entry in entries {
            let mut entry = entry.context("reading the archive")?;
            extractor.entry(&mut entry)?;
        }
    }
    // tar ends with zero blocks; a stream that stops at an entry boundary was cut short.
    if hashing.count() > 0 && hashing.trailing_zeros() < 512 {
        bail!("reading the archive: unexpected end of the archive (truncated?)");
    }
    let (diff_id, _) = hashing.finish().context("reading the archive")?;
    extractor.finish()?;
    Ok(Unpacked {
        diff_id,
        size: extractor.size,
    })
}

struct Extractor {
    root: OwnedFd,
    kind: Kind,
    is_root: bool,
    size: u64,
    /// Directory times are set last: writing into a directory changes them.
    dir_times: Vec<(PathBuf, TimeSpec)>,
}

impl Extractor {
    fn new(dest: &Path, kind: Kind) -> Result<Extractor> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dest,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", dest.display()))?;
        Ok(Extractor {
            root,
            kind,
            is_root: nix::unistd::geteuid().is_root(),
            size: 0,
            dir_times: Vec::new(),
        })
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry
            .path()
            .context("reading an entry's name")?
            .into_owned();
        let what = || format!("extracting {:?}", raw.display().to_string());
        let Some(path) = archive_path(&raw).with_context(what)? else {
            return Ok(()); // "." or "./": the destination itself
        };
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        self.write(entry, &path, kind).with_context(what)
    }

    fn write<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &Path,
        kind: EntryType,
    ) -> Result<()> {
        let (parent, name) = self.open_parent(path, true)?;
        let name = name.as_os_str();
        if self.kind == Kind::Layer
            && let Some(hidden) = name.as_bytes().strip_prefix(b".wh.")
        {
            return self.whiteout(&parent, OsStr::from_bytes(hidden));
        }
        let xattrs = self.xattrs(entry)?;
        let header = entry.header();
        let mode = numeric(&header.as_old().mode, header.mode().map(u64::from))
            .context("reading the mode")? as u32
            & 0o7777;
        let mode = Mode::from_bits_truncate(mode);
        let old = header.as_old();
        let owner = (
            Uid::from_raw(id(numeric(&old.uid, header.uid())).context("reading the owner")?),
            Gid::from_raw(id(numeric(&old.gid, header.gid())).context("reading the group")?),
        );
        let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as libc::time_t, 0);

        match kind {
            EntryType::Directory => {
                match stat_at(&parent, name)? {
                    Some(st) if is_type(&st, SFlag::S_IFDIR) => {}
                    Some(_) => {
                        remove_at(&parent, name)?;
                        mkdirat(&parent, name, Mode::from_bits_truncate(0o700))?;
                    }
                    None => mkdirat(&parent, name, Mode::from_bits_truncate(0o700))?,
                }
                let dir = openat(
                    &parent,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                self.own(&dir, owner)?;
                fchmod(&dir, mode)?;
                set_xattrs(&parent, name, &xattrs)?;
                self.dir_times.push((path.to_path_buf(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                replace_at(&parent, name)?;
                let fd = openat(
                    &parent,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let mut file = File::from(fd);
                let expected = entry.size();
                let written = io::copy(entry, &mut file).context("writing the file")?;
                if kind != EntryType::GNUSparse && written != expected {
                    bail!("unexpected end of the archive (truncated?)");
                }
                self.size += written;
                self.own(&file, owner)?;
                fchmod(&file, mode)?;
                set_xattrs(&parent, name, &xattrs)?;
                futimens(&file, &mtime, &mtime)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .context("reading the link target")?
                    .context("a symbolic link without a target")?;
                replace_at(&parent, name)?;
                symlinkat(target.as_ref(), &parent, name)?;
                let owner = (self.kind == Kind::Layer && self.is_root).then_some(owner);
                set_metadata_at(&parent, name, owner, None, &xattrs, &mtime)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .context("reading the link target")?
                    .context("a hard link without a target")?;
                let shown = format!("hard link to {:?}", target.display().to_string());
                let Some(target) = archive_path(&target).context(shown)? else {
                    bail!("a hard link to the archive's root");
                };
                let (target_parent, target_name) = self
                    .open_parent(&target, false)
                    .with_context(|| format!("hard link to {:?}", target.display().to_string()))?;
                replace_at(&parent, name)?;
                linkat(
                    &target_parent,
                    target_name.as_os_str(),
                    &parent,
                    name,
                    AtFlags::empty(),
                )
                .with_context(|| format!("hard link to {:?}", target.display().to_string()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if self.kind == Kind::Files {
                    log::warn!("skipping the device node {}", path.display());
                    return Ok(());
                }
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if sflag != SFlag::S_IFIFO && !self.is_root {
                    log::warn!(
                        "skipping the device node {}: only root can create it",
                        path.display()
                    );
                    return Ok(());
                }
                let header = entry.header();
                let dev = if sflag == SFlag::S_IFIFO {
                    0
                } else {
                    makedev(
                        header.device_major()?.unwrap_or(0).into(),
                        header.device_minor()?.unwrap_or(0).into(),
                    )
                };
                replace_at(&parent, name)?;
                mknodat(&parent, name, sflag, mode, dev)?;
                let owner = self.is_root.then_some(owner);
                set_metadata_at(&parent, name, owner, Some(mode), &xattrs, &mtime)?;
            }
            other => log::warn!(
                "skipping {}: unsupported entry type {other:?}",
                path.display()
            ),
        }
        Ok(())
    }

    /// A whiteout in a layer: `.wh..wh..opq` marks its directory opaque, `.wh.NAME` hides NAME.
    fn whiteout(&self, parent: &OwnedFd, hidden: &OsStr) -> Result<()> {
        if !self.is_root {
            bail!("whiteouts can only be stored by root");
        }
        if hidden == OsStr::new(".wh..opq") {
            return set_xattr(parent, OsStr::new("."), "trusted.overlay.opaque", b"y")
                .context("marking the directory opaque");
        }
        if hidden.as_bytes().starts_with(b".wh.") || hidden.is_empty() {
            return Ok(()); // aufs metadata (.wh..wh.plnk...): nothing to do
        }
        if hidden.as_bytes().contains(&b'/') || hidden == "." || hidden == ".." {
            bail!("invalid whiteout");
        }
        replace_at(parent, hidden)?;
        mknodat(parent, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .context("creating the whiteout")?;
        Ok(())
    }

    /// The PAX `SCHILY.xattr.*` records of an entry (overlayfs' own are never taken from input).
    fn xattrs<R: Read>(&self, entry: &mut tar::Entry<R>) -> Result<Vec<(String, Vec<u8>)>> {
        let mut xattrs = Vec::new();
        if self.kind != Kind::Layer {
            return Ok(xattrs);
        }
        if let Some(extensions) = entry.pax_extensions().context("reading PAX headers")? {
            for extension in extensions {
                let extension = extension.context("reading PAX headers")?;
                let Ok(key) = extension.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if name.starts_with("trusted.overlay.") {
                        continue;
                    }
                    xattrs.push((name.to_string(), extension.value_bytes().to_vec()));
                }
            }
        }
        Ok(xattrs)
    }

    fn own(&self, fd: &impl std::os::fd::AsFd, (uid, gid): (Uid, Gid)) -> Result<()> {
        if self.kind == Kind::Layer && self.is_root {
            fchown(fd, Some(uid), Some(gid)).context("setting the owner")?;
        }
        Ok(())
    }

    /// Opens the directory holding `path`, one component at a time without following symbolic
    /// links, creating missing directories when `create` is set.
    fn open_parent(&self, path: &Path, create: bool) -> Result<(OwnedFd, OsString)> {
        let mut components: Vec<&OsStr> = path.iter().collect();
        let name = components.pop().context("an empty path")?.to_os_string();
        let mut dir = openat(&self.root, ".", dir_flags(), Mode::empty())?;
        let mut walked = PathBuf::new();
        for component in components {
            walked.push(component);
            let next = match openat(&dir, component, dir_flags(), Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    mkdirat(&dir, component, Mode::from_bits_truncate(0o755))?;
                    openat(&dir, component, dir_flags(), Mode::empty())?
                }
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    let why = match stat_at(&dir, component)? {
                        Some(st) if is_type(&st, SFlag::S_IFLNK) => "is a symbolic link",
                        _ => "is not a directory",
                    };
                    bail!(
                        "refusing to go through {:?}: it {why}",
                        walked.display().to_string()
                    );
                }
                Err(errno) => {
                    return Err(errno).with_context(|| format!("opening {}", walked.display()));
                }
                Ok(fd) => fd,
            };
            dir = next;
        }
        Ok((dir, name))
    }

    /// Sets directory times, now that nothing more is written into them. A directory that a
    /// later entry replaced (by a symbolic link, say) is skipped, never followed.
    fn finish(&mut self) -> Result<()> {
        for (path, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let result = self.open_parent(&path, false).and_then(|(parent, name)| {
                match stat_at(&parent, &name)? {
                    Some(st) if is_type(&st, SFlag::S_IFDIR) => utimensat(
                        &parent,
                        name.as_os_str(),
                        &mtime,
                        &mtime,
                        UtimensatFlags::NoFollowSymlink,
                    )
                    .map_err(Into::into),
                    _ => Ok(()),
                }
            });
            if let Err(err) = result {
                log::warn!("not setting the times of {}: {err:#}", path.display());
            }
        }
        Ok(())
    }
}

/// A numeric header field; an empty one (as some writers leave uid and gid) is 0, as in Go's
/// archive/tar, which wrote most image layers.
fn numeric(raw: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if raw.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(0);
    }
    parsed
}

/// A uid or gid from a header: one that does not fit Linux's 32 bits (4294967296 would
/// become 0, root) or is its "no id" value (4294967295, -1) is refused, as GNU tar does.
fn id(parsed: io::Result<u64>) -> io::Result<u32> {
    let id = parsed?;
    u32::try_from(id)
        .ok()
        .filter(|&id| id != u32::MAX)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("id {id} is out of range"),
            )
        })
}

fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// A tar entry's name as a relative path inside the archive: `./a/b` and `a/b/` are `a/b`;
/// absolute names and `..` are refused. `None` for the archive's root itself.
pub fn archive_path(raw: &Path) -> Result<Option<PathBuf>> {
    let mut path = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => bail!("refusing a path with \"..\""),
            Component::RootDir | Component::Prefix(_) => bail!("refusing an absolute path"),
        }
    }
    Ok((!path.as_os_str().is_empty()).then_some(path))
}

fn stat_at(dir: &OwnedFd, name: &OsStr) -> Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

fn is_type(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

/// Makes room for a new entry: a later entry of the same name replaces an earlier one.
fn replace_at(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    if stat_at(dir, name)?.is_some() {
        remove_at(dir, name)?;
    }
    Ok(())
}

fn remove_at(dir: &OwnedFd, name: &OsStr) -> Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if is_type(&st, SFlag::S_IFDIR) {
        // std's remove_dir_all never follows symbolic links below the directory it is given,
        // and the name was just seen to be a directory, not a link.
        std::fs::remove_dir_all(fd_path(dir, name)).context("replacing a directory")?;
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).context("replacing a file")?;
    }
    Ok(())
}

/// `/proc/self/fd/N/NAME`: NAME inside an open directory, for calls that have no `*at` form.
fn fd_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Gives `name` in `dir` (never following it, were it a symlink) its owner when `owner` is
/// set, its mode when `mode` is, then its extended attributes and modification time.
fn set_metadata_at(
    dir: &OwnedFd,
    name: &OsStr,
    owner: Option<(Uid, Gid)>,
    mode: Option<Mode>,
    xattrs: &[(String, Vec<u8>)],
    mtime: &TimeSpec,
) -> Result<()> {
    if let Some((uid, gid)) = owner {
        fchownat(
            dir,
            name,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    if let Some(mode) = mode {
        fchmodat(dir, name, mode, FchmodatFlags::NoFollowSymlink).or_else(ignore_enotsup)?;
    }
    set_xattrs(dir, name, xattrs)?;
    utimensat(dir, name, mtime, mtime, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}

fn set_xattrs(dir: &OwnedFd, name: &OsStr, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
    for (key, value) in xattrs {
        set_xattr(dir, name, key, value).or_else(|err| {
            // A filesystem without that namespace (security.selinux on a host without it).
            log::warn!(
                "skipping the xattr {key} of {}: {err:#}",
                name.to_string_lossy()
            );
            Ok::<(), anyhow::Error>(())
        })?;
    }
    Ok(())
}

/// Sets an xattr on NAME in `dir`, without following NAME if it is a symbolic link.
fn set_xattr(dir: &OwnedFd, name: &OsStr, key: &str, value: &[u8]) -> Result<()> {
    let path = CString::new(fd_path(dir, name).into_os_string().into_vec())
        .context("a name with a NUL byte")?;
    let key = CString::new(key).context("an xattr name with a NUL byte")?;
    // SAFETY: both strings are NUL-terminated and live across the call; `value` is a valid
    // buffer of `value.len()` bytes that the kernel only reads.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).with_context(|| format!("setting the xattr {}", key.to_string_lossy()))?;
    Ok(())
}

fn ignore_enotsup(errno: Errno) -> nix::Result<()> {
    match errno {
        Errno::ENOTSUP => Ok(()),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_replaced_by_a_symlink_is_not_followed_for_its_times() {
        let dest = std::env::temp_dir().join(format!("mc-extract-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder.append_data(&mut dir, "d", &b""[..]).unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(EntryType::Symlink);
        link.set_size(0);
        builder.append_link(&mut link, "d", "/").unwrap();
        let archive = builder.into_inner().unwrap();
        unpack(&archive[..], &dest, Kind::Files).unwrap();
        assert_eq!(std::fs::read_link(dest.join("d")).unwrap(), Path::new("/"));
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn an_owner_beyond_32_bits_is_refused_not_wrapped_to_root() {
        let dest = std::env::temp_dir().join(format!("mc-extract-ids-{}", std::process::id()));
        for (uid, ok) in [(1000, true), (4_294_967_295, false), (4_294_967_296, false)] {
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::create_dir_all(&dest).unwrap();
            let mut builder = tar::Builder::new(Vec::new());
            let mut file = tar::Header::new_gnu();
            file.set_entry_type(EntryType::Regular);
            file.set_mode(0o4755);
            file.set_uid(uid);
            file.set_size(1);
            builder.append_data(&mut file, "f", &b"x"[..]).unwrap();
            let archive = builder.into_inner().unwrap();
            let result = unpack(&archive[..], &dest, Kind::Files);
            assert_eq!(result.is_ok(), ok, "uid {uid}: {:?}", result.err());
            if !ok {
                let message = format!("{:#}", result.err().unwrap());
                assert!(message.contains("out of range"), "{message}");
                assert!(!dest.join("f").exists());
            }
        }
        std::fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn archive_paths_are_normalized_or_refused() {
        let p = |s: &str| archive_path(Path::new(s)).map(|p| p.map(|p| p.display().to_string()));
        assert_eq!(p("./a/b/").unwrap().as_deref(), Some("a/b"));
        assert_eq!(p("./").unwrap(), None);
        assert!(p("a/../../b").is_err());
        assert!(p("/etc/passwd").is_err());
    }
}
