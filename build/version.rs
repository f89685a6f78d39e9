//! What `mfactl --version` says about the source it was built from: the git commit, read when
//! building. build.rs runs it; the library's unit tests check it on a repository and on a folder
//! that is none (a source tarball, a container build without `.git`). Nothing else uses it, and
//! it must stay free of the crate's own modules: build.rs compiles it alone.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files and folders the binary is built from: a difference from the commit in any of them
/// makes the build "modified"; a change to any of them re-runs build.rs.
pub const BUILT_FROM: &[&str] = &[
    "src",
    "crates",
    "build",
    "build.rs",
    "Cargo.toml",
    "Cargo.lock",
];

/// Set when building without git (`docker build --build-arg MFACTL_BUILD_COMMIT=...`, a tarball
/// with its commit noted): the commit to name, 7 to 40 hexadecimal digits.
pub const COMMIT_ENV: &str = "MFACTL_BUILD_COMMIT";

/// A commit, as `--version` names it.
#[derive(Debug, PartialEq, Eq)]
pub struct Commit {
    /// The first 12 hexadecimal digits of the commit id.
    pub id: String,
    /// Whether the files the binary is built from differ from the commit.
    pub modified: bool,
}

/// `git ARGS` in `dir`, its trimmed stdout when it succeeds. Variables a git hook may have set
/// would point git at another repository: they are dropped.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The commit the source in `dir` (the folder holding Cargo.toml) is at; `None` without git,
/// outside a repository, or in a repository that does not track this source (a tarball unpacked
/// inside another project's checkout must not take that project's commit).
pub fn commit(dir: &Path) -> Option<Commit> {
    git(dir, &["ls-files", "--error-unmatch", "--", "Cargo.toml"])?;
    let id = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
    let id = hexadecimal(&id)?;
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(BUILT_FROM);
    let modified = !git(dir, &status)?.is_empty();
    Some(Commit { id, modified })
}

/// `value` as a commit id (its first 12 digits), if it is 7 to 40 hexadecimal digits.
pub fn hexadecimal(value: &str) -> Option<String> {
    let value = value.trim();
    let valid = (7..=40).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit());
    valid.then(|| value[..value.len().min(12)].to_ascii_lowercase())
}

/// What `--version` says after the package version: `commit 0123456789ab`, with `, modified`
/// when the source differed from it, or that the commit is unknown.
pub fn describe(commit: Option<&Commit>) -> String {
    match commit {
        Some(Commit {
            id,
            modified: false,
        }) => format!("commit {id}"),
        Some(Commit { id, modified: true }) => format!("commit {id}, modified"),
        None => format!("commit unknown: built without git; set {COMMIT_ENV} to name it"),
    }
}

/// The files whose change means another commit (or checkout) to describe: HEAD, the branch it
/// names, packed refs. Worktrees keep HEAD apart from the shared refs, so both folders are asked
/// of git. Only files that exist are named: Cargo re-runs a build script on every build for a
/// watched file that is missing.
pub fn watched(dir: &Path) -> Vec<PathBuf> {
    let absolute = |path: String| {
        let path = PathBuf::from(path);
        if path.is_absolute() {
            path
        } else {
            dir.join(path)
        }
    };
    let mut files = Vec::new();
    if let Some(git_dir) = git(dir, &["rev-parse", "--git-dir"]).map(absolute) {
        files.push(git_dir.join("HEAD"));
    }
    if let Some(common) = git(dir, &["rev-parse", "--git-common-dir"]).map(absolute) {
        if let Some(branch) = git(dir, &["symbolic-ref", "--quiet", "HEAD"]) {
            files.push(common.join(branch));
        }
        files.push(common.join("packed-refs"));
    }
    files.extend(BUILT_FROM.iter().map(|name| dir.join(name)));
    files.retain(|file| file.exists());
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `git ARGS` in `dir`, which must succeed (with an identity, whatever the machine's).
    fn run_git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .env_remove("GIT_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_folder_outside_any_repository_has_no_commit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(commit(dir.path()), None);
        assert!(describe(None).starts_with("commit unknown"));
        assert!(
            watched(dir.path())
                .iter()
                .all(|f| !f.starts_with(dir.path().join(".git")))
        );
    }

    #[test]
    fn a_repository_names_its_commit_and_whether_the_source_differs() {
        if git(Path::new("."), &["--version"]).is_none() {
            return; // no git on this machine: nothing to name
        }
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        std::fs::create_dir(repo.join("src")).unwrap();
        std::fs::write(repo.join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(repo.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(repo.join("NOTES"), "not built from\n").unwrap();
        // A source folder the repository does not track is not described by its commit.
        run_git(repo, &["init", "-q"]);
        run_git(repo, &["add", "NOTES"]);
        run_git(repo, &["commit", "-q", "-m", "notes"]);
        assert_eq!(commit(repo), None);
        run_git(repo, &["add", "."]);
        run_git(repo, &["commit", "-q", "-m", "source"]);
        let head = git(repo, &["rev-parse", "HEAD"]).unwrap();
        let clean = commit(repo).unwrap();
        assert_eq!(
            clean,
            Commit {
                id: head[..12].to_owned(),
                modified: false
            }
        );
        assert_eq!(describe(Some(&clean)), format!("commit {}", &head[..12]));
        // Changing a file the binary is not built from is not a modification; the source is.
        std::fs::write(repo.join("NOTES"), "changed\n").unwrap();
        assert!(!commit(repo).unwrap().modified);
        std::fs::write(repo.join("src/main.rs"), "fn main() { }\n").unwrap();
        let modified = commit(repo).unwrap();
        assert!(modified.modified);
        assert!(describe(Some(&modified)).ends_with(", modified"));
        let watched = watched(repo);
        assert!(watched.contains(&repo.join(".git/HEAD")), "{watched:?}");
        assert!(
            watched
                .iter()
                .any(|f| f.ends_with("refs/heads/master") || f.ends_with("refs/heads/main")),
            "{watched:?}"
        );
        assert!(watched.iter().all(|f| f.exists()));
    }

    #[test]
    fn a_commit_given_in_the_environment_must_be_hexadecimal() {
        assert_eq!(
            hexadecimal("0123456789abcdef0123"),
            Some("0123456789ab".into())
        );
        assert_eq!(hexadecimal(" ABCDEF1 "), Some("abcdef1".into()));
        for bad in [
            "",
            "abc",
            "0123456789abcdef0123456789abcdef012345678",
            "main",
            "1234567\n$(x)",
        ] {
            assert_eq!(hexadecimal(bad), None, "{bad:?}");
        }
    }
}
