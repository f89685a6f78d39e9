//! Names the commit the binary is built from, for `mfactl --version` (see build/version.rs):
//! `MFACTL_BUILT_FROM` is `commit 0123456789ab`, `commit 0123456789ab, modified`, or says the
//! commit is unknown. Never fails the build: a source tarball or a container build without
//! `.git` (or without git) builds as well, naming the commit only if MFACTL_BUILD_COMMIT does.

#[path = "build/version.rs"]
mod version;

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    println!("cargo::rerun-if-env-changed={}", version::COMMIT_ENV);
    let given = std::env::var(version::COMMIT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let commit = match given {
        Some(value) => match version::hexadecimal(&value) {
            Some(id) => Some(version::Commit {
                id,
                modified: false,
            }),
            None => {
                println!(
                    "cargo::warning={} is not a commit id (7 to 40 hexadecimal digits); ignored",
                    version::COMMIT_ENV
                );
                version::commit(&dir)
            }
        },
        None => version::commit(&dir),
    };
    for file in version::watched(&dir) {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    println!(
        "cargo::rustc-env=MFACTL_BUILT_FROM={}",
        version::describe(commit.as_ref())
    );
}
