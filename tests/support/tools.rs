//! External programs the real-peer tests drive. Included with `#[path]` by the test binaries
//! that need them. A missing program fails the test with the Debian package to install: a
//! real-peer test that quietly skips would prove nothing.

use std::path::{Path, PathBuf};

/// The path of `program`, or a failed test naming the Debian package that provides it.
pub fn require(program: &str, debian_package: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(program);
    assert!(
        path.is_file(),
        "{} is missing: these tests talk to a real {program}; install it with \
         `apt-get install {debian_package}` (CI installs it in .ci/run)",
        path.display()
    );
    path
}
