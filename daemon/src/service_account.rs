//! The account the packaged unit runs topicd as (user `topicd`), and whether it may read a
//! file. `--check-config` is usually run as root, who reads everything, so a file the service
//! needs but cannot read (a cluster secret made `0600 root:root`) would pass the check and
//! fail only when the service starts; this lets the check say so beforehand.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The user (and primary group) of `topicd.service`.
pub const SERVICE_USER: &str = "topicd";

/// A user: its ids and every group it is in (primary and supplementary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Every group it is in, the primary one included.
    pub groups: Vec<u32>,
}

impl Account {
    /// The account named `name` in the user database, if there is one.
    pub fn lookup(name: &str) -> Option<Account> {
        let c_name = CString::new(name).ok()?;
        // SAFETY: passwd is plain data; getpwnam_r fills it and points its strings into
        // `buf`, which outlives every use below; `found` is null when there is no such user.
        let (uid, gid) = unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 16 * 1024];
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            );
            if rc != 0 || found.is_null() {
                return None;
            }
            (pwd.pw_uid, pwd.pw_gid)
        };
        Some(Account {
            name: name.to_string(),
            uid,
            gid,
            groups: group_list(&c_name, gid),
        })
    }

    /// Whether this account may read a file of this owner, group and mode (permission
    /// bits only: ACLs and the directories on the way are not considered).
    pub fn may_read(&self, owner: u32, group: u32, mode: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        if self.uid == owner {
            return mode & 0o400 != 0;
        }
        if self.groups.contains(&group) {
            return mode & 0o040 != 0;
        }
        mode & 0o004 != 0
    }

    /// Why this account may not read `path`, or `None` when it may (or `path` cannot be
    /// looked at: the caller reports that).
    pub fn cannot_read(&self, path: &Path) -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        if self.may_read(meta.uid(), meta.gid(), meta.mode()) {
            return None;
        }
        Some(format!(
            "the user {} cannot read {} (owner {}:{}, mode {:04o})",
            self.name,
            path.display(),
            user_name(meta.uid()),
            group_name(meta.gid()),
            meta.mode() & 0o7777
        ))
    }
}

/// Every group of the user `name` whose primary group is `gid` (at least `gid`).
fn group_list(name: &CStr, gid: libc::gid_t) -> Vec<u32> {
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: `groups` has room for `n` ids; getgrouplist writes at most that many and
        // sets `n` to how many there are.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups;
        }
        if n <= asked || n > 65_536 {
            return vec![gid];
        }
    }
}

/// A user's name, or its number.
fn user_name(uid: u32) -> String {
    // SAFETY: as in `Account::lookup`, with getpwuid_r.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() {
            return CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        }
    }
    uid.to_string()
}

/// A group's name, or its number.
fn group_name(gid: u32) -> String {
    // SAFETY: group is plain data; getgrgid_r points its strings into `buf`, used before
    // `buf` is dropped; `found` is null when there is no such group.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() {
            return CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned();
        }
    }
    gid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            name: "topicd".into(),
            uid: 990,
            gid: 990,
            groups: vec![990, 44],
        }
    }

    #[test]
    fn owner_then_group_then_others_decide() {
        let a = account();
        assert!(a.may_read(990, 0, 0o400));
        assert!(
            !a.may_read(990, 990, 0o040),
            "the owner's bits decide for the owner"
        );
        assert!(a.may_read(0, 990, 0o640));
        assert!(a.may_read(0, 44, 0o640), "a supplementary group counts");
        assert!(!a.may_read(0, 0, 0o640));
        assert!(!a.may_read(0, 990, 0o600));
        assert!(a.may_read(0, 0, 0o644));
    }

    #[test]
    fn root_is_found_and_reads_everything() {
        let root = Account::lookup("root").expect("every system has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert!(root.may_read(1, 1, 0));
        assert_eq!(Account::lookup("no-such-user-topicd-test"), None);
        assert_eq!(Account::lookup("bad\0name"), None);
    }

    #[test]
    fn a_file_is_named_with_its_owner_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let stranger = Account {
            name: "stranger".into(),
            uid: meta.uid() + 1,
            gid: meta.gid() + 1,
            groups: vec![meta.gid() + 1],
        };
        let why = stranger.cannot_read(&path).expect("0600 of someone else");
        assert!(
            why.starts_with("the user stranger cannot read") && why.ends_with("mode 0600)"),
            "{why}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(stranger.cannot_read(&path), None);
        assert_eq!(stranger.cannot_read(&dir.path().join("missing")), None);
    }
}
