//! Owner-only files and folders on Windows, where a Unix mode means nothing. Each is created
//! with a security descriptor whose DACL is protected (it inherits nothing from the folder, so
//! a shared folder's "Users: read" does not reach it) and holds one entry: full control for the
//! user the process runs as, taken from the process token (not the file's owner, which for an
//! elevated administrator is the Administrators group). Administrators can still take
//! ownership, as root can read a 0600 file.
//!
//! New files get the descriptor as they are created (`CreateFileW`'s security attributes), so
//! there is no moment at which another user could open them. An existing file is narrowed
//! through the handle just opened (`SetSecurityInfo`), as `chmod 600` narrows one on Unix.
//! Folders get the same entry marked inheritable, so files made inside without a descriptor of
//! their own inherit it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::windows::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ALREADY_EXISTS, ERROR_SUCCESS, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
    LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    SE_FILE_OBJECT, SetSecurityInfo,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetTokenInformation,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
    TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{
    CREATE_NEW, CreateDirectoryW, CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_GENERIC_WRITE, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_WRITE_DATA,
    OPEN_ALWAYS, READ_CONTROL, WRITE_DAC,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// How [`open_owner_only`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    /// Create it or open it for appending (a journal).
    Append,
    /// Create it or open it emptied (a plan, a report, the token cache's temporary file).
    Truncate,
    /// Create it; fail if it exists.
    CreateNew,
}

/// Opens `path` for writing as `how` says, owner-only (see the module's comment). A symbolic
/// link (any reparse point) is opened itself, not followed, and refused, as is anything but a
/// regular file: nothing is written through a planted link and no other file is narrowed.
pub fn open_owner_only(path: &Path, how: Open) -> io::Result<File> {
    let descriptor = OwnerOnly::new(Kind::File)?;
    let attributes = descriptor.attributes();
    let name = wide(long_path(path)?.as_os_str());
    // What std's OpenOptions asks for, plus the right to narrow an existing file's DACL.
    // Appending leaves out FILE_WRITE_DATA so that every write lands at the end.
    let access = match how {
        Open::Append => FILE_GENERIC_WRITE & !FILE_WRITE_DATA,
        Open::Truncate | Open::CreateNew => FILE_GENERIC_WRITE,
    } | WRITE_DAC
        | READ_CONTROL;
    let disposition = match how {
        Open::Append | Open::Truncate => OPEN_ALWAYS,
        Open::CreateNew => CREATE_NEW,
    };
    // SAFETY: `name` is a NUL-terminated UTF-16 string and `attributes` points at a live
    // descriptor (both outlive the call); no template file.
    let handle = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            disposition,
            FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT,
            null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: read straight after the call, on the same thread.
    let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    // SAFETY: a valid handle just opened and owned by nothing else; the File closes it.
    let file = unsafe { File::from_raw_handle(handle) };
    let metadata = file.metadata()?;
    if metadata.file_type().is_symlink() {
        return Err(super::symlink_refused());
    }
    if !metadata.is_file() {
        return Err(super::not_regular(&metadata));
    }
    if existed {
        descriptor.apply_to(file.as_raw_handle())?;
        if how == Open::Truncate {
            file.set_len(0)?;
        }
    }
    Ok(file)
}

/// Creates the folder `dir` (its parent exists), owner-only with an inheritable entry; a folder
/// that is already there (another run made it meanwhile) is left as it is.
pub fn create_owner_only_dir(dir: &Path) -> io::Result<()> {
    let descriptor = OwnerOnly::new(Kind::Folder)?;
    let attributes = descriptor.attributes();
    let name = wide(long_path(dir)?.as_os_str());
    // SAFETY: as in `open_owner_only`.
    if unsafe { CreateDirectoryW(name.as_ptr(), &attributes) } != 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() {
        Ok(())
    } else {
        Err(error)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    File,
    Folder,
}

/// A self-relative security descriptor allowing the current user alone; freed when dropped.
struct OwnerOnly {
    descriptor: PSECURITY_DESCRIPTOR,
}

impl OwnerOnly {
    /// `D:P(A;;FA;;;SID)`: a protected DACL with one entry, full access for the current user
    /// (for a folder `OICI`: inherited by the files and folders made in it).
    fn new(kind: Kind) -> io::Result<OwnerOnly> {
        let inherit = match kind {
            Kind::File => "",
            Kind::Folder => "OICI",
        };
        let sddl = format!("D:P(A;{inherit};FA;;;{})", current_user_sid()?);
        let sddl = wide(OsStr::new(&sddl));
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `sddl` is NUL-terminated; on success `descriptor` receives a LocalAlloc'd
        // descriptor, freed in Drop.
        let converted = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        if converted == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnerOnly { descriptor })
    }

    /// Security attributes carrying the descriptor (handles not inherited by child processes).
    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor,
            bInheritHandle: 0,
        }
    }

    /// Replaces the DACL of the object behind `handle` (opened with WRITE_DAC) with this one,
    /// protected from inheritance.
    fn apply_to(&self, handle: HANDLE) -> io::Result<()> {
        let mut present = 0;
        let mut defaulted = 0;
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: `descriptor` is valid for `self`'s life; the DACL pointer points into it.
        let found = unsafe {
            GetSecurityDescriptorDacl(self.descriptor, &mut present, &mut dacl, &mut defaulted)
        };
        if found == 0 || present == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `handle` is open with WRITE_DAC; `dacl` lives in `self.descriptor`.
        let status = unsafe {
            SetSecurityInfo(
                handle,
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                dacl,
                null(),
            )
        };
        if status == ERROR_SUCCESS {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(status as i32))
        }
    }
}

impl Drop for OwnerOnly {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { LocalFree(self.descriptor) };
    }
}

/// The SID of the user this process runs as (`S-1-5-21-...`), from its token.
pub(super) fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing; `token` receives a
    // handle closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let user = token_user(token);
    // SAFETY: opened above, closed once.
    unsafe { CloseHandle(token) };
    let user = user?;
    // SAFETY: `user` holds a TOKEN_USER at its start (8-byte aligned), whose SID points
    // inside the same buffer.
    let sid: PSID = unsafe { (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    sid_string(sid)
}

/// The token's TOKEN_USER structure, in an 8-byte aligned buffer.
fn token_user(token: HANDLE) -> io::Result<Vec<u64>> {
    let mut needed = 0u32;
    // SAFETY: a size query: no buffer, `needed` receives the size.
    unsafe { GetTokenInformation(token, TokenUser, null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: `buffer` holds at least `needed` bytes.
    let read = unsafe {
        GetTokenInformation(
            token,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    if read == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// A SID in its string form.
pub(super) fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sid` is a valid SID; `text` receives a LocalAlloc'd NUL-terminated string.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: NUL-terminated, as the function documents; freed right after copying.
    let string = unsafe {
        let length = (0..).take_while(|&i| *text.add(i) != 0).count();
        let copied = OsString::from_wide(std::slice::from_raw_parts(text, length));
        LocalFree(text.cast());
        copied
    };
    Ok(string.to_string_lossy().into_owned())
}

/// `path` made absolute, with the `\\?\` prefix once it is too long for the classic limit of
/// 260 characters (what std does for its own calls).
fn long_path(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let text = absolute.as_os_str();
    if text.len() < 248 || text.to_string_lossy().starts_with(r"\\?\") {
        return Ok(absolute);
    }
    let mut prefixed = OsString::new();
    match absolute.to_string_lossy().strip_prefix(r"\\") {
        Some(unc) => {
            prefixed.push(r"\\?\UNC\");
            prefixed.push(unc);
        }
        None => {
            prefixed.push(r"\\?\");
            prefixed.push(text);
        }
    }
    Ok(PathBuf::from(prefixed))
}

/// `text` as a NUL-terminated UTF-16 string.
fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(std::iter::once(0)).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use windows_sys::Win32::Security::Authorization::GetNamedSecurityInfoW;
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, CONTAINER_INHERIT_ACE, GetAce, GetSecurityDescriptorControl,
        OBJECT_INHERIT_ACE, SE_DACL_PROTECTED,
    };
    use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;

    use super::*;

    /// `ACCESS_ALLOWED_ACE_TYPE` (winnt.h), kept here rather than pulling in another feature.
    const ACCESS_ALLOWED: u8 = 0;

    /// An entry of a DACL: type, flags, access mask, SID.
    type Entry = (u8, u8, u32, String);

    /// What the DACL of `path` holds: whether it is protected, and its entries.
    fn dacl_of(path: &Path) -> (bool, Vec<Entry>) {
        let name = wide(path.as_os_str());
        let mut dacl: *mut ACL = null_mut();
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: out-pointers to locals; the descriptor is freed below.
        let status = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                &mut dacl,
                null_mut(),
                &mut descriptor,
            )
        };
        assert_eq!(status, ERROR_SUCCESS);
        let mut control = 0u16;
        let mut revision = 0u32;
        // SAFETY: `descriptor` was just returned; `dacl` points into it, and each entry's SID
        // into the entry.
        let entries = unsafe {
            assert_ne!(
                GetSecurityDescriptorControl(descriptor, &mut control, &mut revision),
                0
            );
            let entries = (0..u32::from((*dacl).AceCount))
                .map(|index| {
                    let mut ace = null_mut();
                    assert_ne!(GetAce(dacl, index, &mut ace), 0);
                    let ace = &*(ace as *const ACCESS_ALLOWED_ACE);
                    let sid = (&raw const ace.SidStart).cast_mut().cast();
                    (
                        ace.Header.AceType,
                        ace.Header.AceFlags,
                        ace.Mask,
                        sid_string(sid).unwrap(),
                    )
                })
                .collect();
            LocalFree(descriptor);
            entries
        };
        (control & SE_DACL_PROTECTED != 0, entries)
    }

    /// Run on Windows only: Wine (8.0) keeps no DACL, it maps one to a Unix mode and shows
    /// SYSTEM and the owner for it, so this cannot pass there.
    #[test]
    fn files_and_folders_allow_the_current_user_alone() {
        let me = current_user_sid().unwrap();
        assert!(me.starts_with("S-1-"), "{me}");
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("mfactl");
        create_owner_only_dir(&folder).unwrap();
        create_owner_only_dir(&folder).unwrap();
        let inherit = (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE) as u8;
        assert_eq!(
            dacl_of(&folder),
            (
                true,
                vec![(ACCESS_ALLOWED, inherit, FILE_ALL_ACCESS, me.clone())]
            )
        );
        let only_me = (true, vec![(ACCESS_ALLOWED, 0, FILE_ALL_ACCESS, me.clone())]);

        let journal = folder.join("journal.jsonl");
        open_owner_only(&journal, Open::CreateNew)
            .unwrap()
            .write_all(b"1\n")
            .unwrap();
        assert_eq!(dacl_of(&journal), only_me);
        let again = open_owner_only(&journal, Open::CreateNew).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        open_owner_only(&journal, Open::Append)
            .unwrap()
            .write_all(b"2\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "1\n2\n");

        // A link is refused, and what it points at left as it was.
        let link = dir.path().join("link.json");
        if std::os::windows::fs::symlink_file(&journal, &link).is_ok() {
            let error = open_owner_only(&link, Open::Truncate).unwrap_err();
            assert!(error.to_string().contains("symbolic link"), "{error}");
            assert_eq!(std::fs::read_to_string(&journal).unwrap(), "1\n2\n");
        }

        // A file someone else made, with the folder's inherited entries, is narrowed.
        let shared = dir.path().join("plan.json");
        std::fs::write(&shared, "old and longer").unwrap();
        let (protected, _) = dacl_of(&shared);
        assert!(!protected, "a plain file inherits from its folder");
        open_owner_only(&shared, Open::Truncate)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "new");
        assert_eq!(dacl_of(&shared), only_me);
    }

    #[test]
    fn long_paths_get_the_verbatim_prefix() {
        let short = long_path(Path::new(r"C:\work\plan.json")).unwrap();
        assert_eq!(short, Path::new(r"C:\work\plan.json"));
        let deep = format!(r"C:\{}\plan.json", "a".repeat(300));
        let long = long_path(Path::new(&deep)).unwrap();
        assert_eq!(long, PathBuf::from(format!(r"\\?\{deep}")));
        let unc = format!(r"\\server\share\{}", "b".repeat(300));
        assert_eq!(
            long_path(Path::new(&unc)).unwrap(),
            PathBuf::from(format!(r"\\?\UNC\server\share\{}", "b".repeat(300)))
        );
    }
}
