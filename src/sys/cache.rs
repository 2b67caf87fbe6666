//! Cache hints: the one thing the report encoder needs from below the language.

/// Asks the CPU to start loading the cache line that holds `p`, so that a read of it a little
/// later does not wait on memory. Only a hint: it reads nothing the program can observe,
/// never faults whatever `p` is, and does nothing on targets other than x86_64.
#[inline(always)]
pub fn prefetch_read<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` belongs to SSE, which every x86_64 CPU has (it is in the target's
    // baseline features). It performs no architectural memory access, so no address, valid or
    // not, can make it fault or race.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    // The SAFETY argument above: a hint never faults, even on addresses that a read would.
    #[test]
    fn prefetch_never_faults() {
        prefetch_read(std::ptr::null::<u8>());
        prefetch_read(std::ptr::dangling::<u64>());
        prefetch_read(usize::MAX as *const u8);
        let data = [1u8; 64];
        prefetch_read(&data);
        assert_eq!(data[63], 1);
    }
}
