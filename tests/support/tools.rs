//! External programs the real-peer tests drive. Included with `#[path]` by the test binaries
//! that need them. A missing program fails the test with the Debian package to install: a
//! real-peer test that quietly skips would prove nothing.

use std::path::{Path, PathBuf};

/// The path of `program` (in /usr/bin, or /usr/sbin for daemons such as kamailio), or a
/// failed test naming the Debian package that provides it.
pub fn require(program: &str, debian_package: &str) -> PathBuf {
    let found = ["/usr/bin", "/usr/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{program} is missing from /usr/bin and /usr/sbin: these tests talk to a real \
             {program}; install it with `apt-get install {debian_package}` (CI installs it \
             in .ci/run)"
        )
    })
}
