//! CPU time and memory of a process (the service under test, or the load generator itself), from
//! `/proc/<pid>/stat` and `/proc/<pid>/status`.

use anyhow::Context;
use procfs::{Current, WithCurrentSystemInfo};
use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcSample {
    /// User plus system CPU time since the process started, in seconds.
    pub cpu_secs: f64,
    /// Resident set size now, in bytes.
    pub rss_bytes: u64,
    /// Highest resident set size so far (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

/// Reads a process; `None` for this process.
pub fn sample(pid: Option<u32>) -> anyhow::Result<ProcSample> {
    let process = match pid {
        Some(pid) => procfs::process::Process::new(pid as i32),
        None => procfs::process::Process::myself(),
    }
    .with_context(|| format!("opening /proc for pid {pid:?}"))?;
    let stat = process.stat().context("reading /proc/<pid>/stat")?;
    let status = process.status().context("reading /proc/<pid>/status")?;
    let ticks_per_sec = procfs::ticks_per_second() as f64;
    Ok(ProcSample {
        cpu_secs: (stat.utime + stat.stime) as f64 / ticks_per_sec,
        rss_bytes: stat.rss_bytes().get(),
        peak_rss_bytes: status.vmhwm.unwrap_or(0) * 1024,
    })
}

/// The 1-minute load average, to note how busy the shared machine was.
pub fn load_average_1m() -> Option<f32> {
    procfs::LoadAverage::current().ok().map(|load| load.one)
}

/// Kernel memory held by TCP socket buffers, machine-wide (both ends of every loopback connection,
/// so the load generator's too): what a server's RSS does not show when a client stops reading.
/// From the `mem` field (in pages) of the `TCP:` line of `/proc/net/sockstat`, which the procfs
/// crate does not parse.
pub fn tcp_buffer_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    Some(sockstat_tcp_pages(&text)? * procfs::page_size())
}

fn sockstat_tcp_pages(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|word| *word == "mem")?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_tcp_memory_is_read_from_the_tcp_line() {
        let sockstat = "sockets: used 20417\n\
                        TCP: inuse 20011 orphan 0 tw 3 alloc 20013 mem 8731\n\
                        UDP: inuse 0 mem 2\n";
        assert_eq!(sockstat_tcp_pages(sockstat), Some(8731));
        assert_eq!(sockstat_tcp_pages("UDP: inuse 0 mem 2\n"), None);
        assert!(
            tcp_buffer_bytes().is_some(),
            "this machine has /proc/net/sockstat"
        );
    }

    #[test]
    fn reads_this_process() {
        let before = sample(None).expect("own /proc entry");
        // Burn a little CPU and touch memory so both readings have something to show.
        let data: Vec<u64> = (0..2_000_000u64).map(|x| x.wrapping_mul(x)).collect();
        let after = sample(None).expect("own /proc entry");
        assert!(data.iter().sum::<u64>() > 0);
        assert!(after.cpu_secs >= before.cpu_secs);
        assert!(after.rss_bytes > 1_000_000, "{after:?}");
        assert!(after.peak_rss_bytes >= after.rss_bytes, "{after:?}");
    }

    #[test]
    fn unknown_pid_is_an_error() {
        // Above the kernel's pid_max limit (4,194,304), so no process can have it.
        assert!(sample(Some(4_194_305)).is_err());
    }
}
