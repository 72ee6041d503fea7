//! What the bench reads about processes from /proc: CPU time, resident memory, and the
//! process tree (to find every Chromium process under its driver).

use std::collections::{HashMap, HashSet};

/// CPU time (user + system) of `pid` so far, seconds; `None` when it is gone.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (utime, stime) = parse_stat_times(&stat)?;
    Some((utime + stime) as f64 / ticks_per_sec())
}

/// CPU time of this process so far, seconds.
pub(crate) fn own_cpu_secs() -> f64 {
    cpu_secs(std::process::id()).unwrap_or(0.0)
}

/// Sum of [`cpu_secs`] over `pids` (gone ones count 0).
pub(crate) fn total_cpu_secs(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| cpu_secs(p)).sum()
}

/// Resident set size of `pid`, bytes.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The command name of `pid`.
pub(crate) fn comm(pid: u32) -> Option<String> {
    Some(std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim().to_owned())
}

/// `pid` and every process below it.
pub(crate) fn with_descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{p}/stat")).ok().as_deref().and_then(parse_ppid)
            {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut seen: HashSet<u32> = out.iter().copied().collect();
    let mut i = 0;
    while i < out.len() {
        for &c in children.get(&out[i]).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                out.push(c);
            }
        }
        i += 1;
    }
    out
}

fn ticks_per_sec() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// Fields after the command name (which may hold spaces and parentheses).
fn fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let f = fields_after_comm(stat)?;
    // After the name: state(3) ppid(4) ... utime(14) stime(15), 1-based over the whole line.
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

fn parse_ppid(stat: &str) -> Option<u32> {
    fields_after_comm(stat)?.get(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "1234 (we (ird) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat_times(line), Some((250, 31)));
        assert_eq!(parse_ppid(line), Some(77));
    }

    #[test]
    fn own_process_is_visible() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(with_descendants(std::process::id()).contains(&std::process::id()));
        assert!(own_cpu_secs() >= 0.0);
    }
}
