//! Facts about the host for the probe's own report: hostname, kernel release and version
//! (`uname(2)`), and random numbers for the probe id (`getrandom(2)`).
//!
//! Out of scope: formatting them into report nodes.

use std::ffi::CStr;
use std::io;

/// The kernel's node name (`uname -n`), as Go's `os.Hostname` returns it on Linux.
pub fn hostname() -> io::Result<String> {
    let uts = uname()?;
    Ok(field(&uts.nodename))
}

/// The kernel's `(release, version)`, e.g. `("6.1.0-13-amd64", "#1 SMP PREEMPT_DYNAMIC …")`.
pub fn kernel_version() -> io::Result<(String, String)> {
    let uts = uname()?;
    Ok((field(&uts.release), field(&uts.version)))
}

/// A random `u64` from the kernel's CSPRNG, for the probe id.
///
/// `getrandom` without flags blocks only until the entropy pool is first initialised, early in
/// boot; the call retries on `EINTR`. If the syscall is unavailable (pre-3.17 kernels), the time
/// and process id are mixed instead: the probe id only needs to differ between probes.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return fallback_random(),
        }
    }
    u64::from_ne_bytes(bytes)
}

fn fallback_random() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 finaliser over time and pid so nearby starts still differ in every bit.
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn uname() -> io::Result<libc::utsname> {
    // SAFETY: utsname is plain old data (arrays of c_char), for which all-zero is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    super::cvt(unsafe { libc::uname(&mut uts) })?;
    Ok(uts)
}

/// One NUL-terminated utsname field as a string (lossy: the kernel does not promise UTF-8).
fn field(raw: &[libc::c_char]) -> String {
    // Reinterpret c_char (i8 or u8 by platform) as bytes without unsafe.
    let bytes: Vec<u8> = raw.iter().map(|&c| c as u8).collect();
    match CStr::from_bytes_until_nul(&bytes) {
        Ok(s) => s.to_string_lossy().into_owned(),
        // No NUL in the whole field: use all of it.
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_non_empty_and_matches_the_kernel() {
        let name = hostname().unwrap();
        assert!(!name.is_empty());
        let proc_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(name, proc_name.trim_end_matches('\n'));
    }

    #[test]
    fn kernel_version_matches_proc() {
        let (release, version) = kernel_version().unwrap();
        let proc_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let proc_version = std::fs::read_to_string("/proc/sys/kernel/version").unwrap();
        assert_eq!(release, proc_release.trim_end_matches('\n'));
        assert_eq!(version, proc_version.trim_end_matches('\n'));
    }

    #[test]
    fn random_values_differ() {
        // 64 random bits repeat with probability 2^-64 per pair; 3 draws all equal is a bug.
        let a = random_u64();
        let b = random_u64();
        let c = random_u64();
        assert!(!(a == b && b == c));
    }

    #[test]
    fn fields_stop_at_nul_or_use_everything() {
        let raw: Vec<libc::c_char> = b"abc\0def".iter().map(|&b| b as libc::c_char).collect();
        assert_eq!(field(&raw), "abc");
        let raw: Vec<libc::c_char> = b"xyz".iter().map(|&b| b as libc::c_char).collect();
        assert_eq!(field(&raw), "xyz");
    }
}
