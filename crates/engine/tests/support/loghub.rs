//! Loghub-style log data for measuring log compression: reading a system's `.log` and
//! `.csv` (one row per line, `EventTemplate` and `Level` columns), the variants issue 9 asks
//! for (each line's leading timestamp rewritten into another format or removed; two systems
//! interleaved), and template coverage computed exactly as `shared/tools/log_eval.py` does it.
//!
//! Shared by `tests/logs_quality.rs` and `examples/logs_eval.rs` (included with `#[path]`).

#![allow(dead_code)]

use std::path::Path;

/// Levels whose templates count as error templates (as in `log_eval.py`).
pub const ERROR_LEVELS: &[&str] = &["ERROR", "FATAL", "SEVERE", "CRITICAL", "E", "F"];

/// Columns that hold a line's date or time.
const TIME_COLUMNS: &[&str] = &["Date", "Time", "Timestamp", "Month", "Day"];

/// One system's log: its lines and, per line, its template and level.
#[derive(Clone)]
pub struct System {
    pub name: String,
    pub lines: Vec<String>,
    pub templates: Vec<String>,
    pub levels: Vec<String>,
    /// Per line, the byte range of its leading timestamp (empty when none was found).
    pub time_span: Vec<(usize, usize)>,
}

impl System {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Parses CSV (RFC 4180: quoted fields, `""` for a quote, newlines inside quotes).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Writes rows as CSV, every field quoted.
pub fn write_csv(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Python's `str.splitlines()`.
pub fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let brk = matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if brk {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
                it.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Loads `<dir>/<name>.log` and `<dir>/<name>.csv`.
pub fn load_system(dir: &Path, name: &str) -> Option<System> {
    let log = std::fs::read(dir.join(format!("{name}.log"))).ok()?;
    let log = String::from_utf8_lossy(&log).into_owned();
    let csv = std::fs::read(dir.join(format!("{name}.csv"))).ok()?;
    let csv = parse_csv(&String::from_utf8_lossy(&csv));
    let header = csv.first()?.clone();
    let col = |n: &str| header.iter().position(|h| h == n);
    let t_col = col("EventTemplate")?;
    let l_col = col("Level");
    let lines: Vec<String> = splitlines(&log).into_iter().map(str::to_string).collect();
    let rows = &csv[1..];
    if rows.len() != lines.len() {
        return None;
    }
    let time_cols: Vec<bool> = header.iter().map(|h| TIME_COLUMNS.contains(&h.as_str())).collect();
    let field_cols: Vec<usize> = (0..header.len())
        .filter(|&c| !matches!(header[c].as_str(), "LineId" | "Content" | "EventId" | "EventTemplate"))
        .collect();
    let mut templates = Vec::new();
    let mut levels = Vec::new();
    let mut time_span = Vec::new();
    for (line, row) in lines.iter().zip(rows) {
        templates.push(row.get(t_col).cloned().unwrap_or_default());
        levels.push(l_col.and_then(|c| row.get(c)).cloned().unwrap_or_default());
        time_span.push(leading_time_span(line, row, &field_cols, &time_cols));
    }
    Some(System { name: name.to_string(), lines, templates, levels, time_span })
}

/// The byte range of the first run of time columns' values at the start of `line`.
fn leading_time_span(line: &str, row: &[String], field_cols: &[usize], time_cols: &[bool]) -> (usize, usize) {
    let mut at = 0usize;
    let mut span: Option<(usize, usize)> = None;
    for &c in field_cols {
        let v = row.get(c).map(String::as_str).unwrap_or("");
        if v.is_empty() {
            continue;
        }
        let Some(pos) = line[at..].find(v).map(|p| p + at) else {
            break;
        };
        if pos > 48 {
            break;
        }
        let end = pos + v.len();
        match (&mut span, time_cols[c]) {
            (None, true) => span = Some((pos, end)),
            (Some(s), true) => s.1 = end,
            (Some(_), false) => break,
            (None, false) => {}
        }
        at = end;
    }
    span.unwrap_or((0, 0))
}

/// A leading-timestamp format for the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `1117838570`
    Epoch,
    /// `050603 154250`
    YymmddHhmmss,
    /// `2005-06-03T15:42:50.675+02:00`
    Iso8601Zone,
    /// The timestamp removed.
    Removed,
}

impl TimeFormat {
    pub const ALL: [TimeFormat; 4] =
        [TimeFormat::Epoch, TimeFormat::YymmddHhmmss, TimeFormat::Iso8601Zone, TimeFormat::Removed];

    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::Epoch => "epoch",
            TimeFormat::YymmddHhmmss => "yymmdd-hhmmss",
            TimeFormat::Iso8601Zone => "iso8601-zone",
            TimeFormat::Removed => "no-timestamp",
        }
    }

    fn render(self, i: usize) -> String {
        // A clock that moves forward by a few seconds a line.
        let t = 1_117_838_570 + (i as i64) * 13 + ((i * 7919) % 11) as i64;
        let (y, mo, d, h, mi, s) = civil(t);
        match self {
            TimeFormat::Epoch => t.to_string(),
            TimeFormat::YymmddHhmmss => {
                format!("{:02}{mo:02}{d:02} {h:02}{mi:02}{s:02}", y % 100)
            }
            TimeFormat::Iso8601Zone => {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}+02:00", (i * 389) % 1000)
            }
            TimeFormat::Removed => String::new(),
        }
    }
}

/// Epoch seconds to (year, month, day, hour, minute, second), UTC.
fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The system with each line's leading timestamp rewritten into `format`.
pub fn rewrite_timestamps(sys: &System, format: TimeFormat) -> System {
    let mut out = sys.clone();
    for (i, line) in sys.lines.iter().enumerate() {
        let (mut a, mut b) = sys.time_span[i];
        if a == b {
            continue;
        }
        let new = format.render(i);
        if new.is_empty() {
            // Drop the brackets around it and one space after it too.
            if a > 0 && line.as_bytes()[a - 1] == b'[' && line.as_bytes().get(b) == Some(&b']') {
                a -= 1;
                b += 1;
            }
            while line.as_bytes().get(b) == Some(&b' ') {
                b += 1;
            }
        }
        out.lines[i] = format!("{}{}{}", &line[..a], new, &line[b..]);
        out.time_span[i] = (a, a + new.len());
    }
    out
}

/// The lines of two systems merged, each keeping its own order, spread evenly.
pub fn interleave(a: &System, b: &System) -> System {
    let (na, nb) = (a.lines.len(), b.lines.len());
    let mut out = System {
        name: format!("{}+{}", a.name, b.name),
        lines: Vec::with_capacity(na + nb),
        templates: Vec::new(),
        levels: Vec::new(),
        time_span: Vec::new(),
    };
    let (mut i, mut j) = (0, 0);
    while i < na || j < nb {
        // Take from `a` while its share so far is behind `b`'s.
        let take_a = j >= nb || (i < na && (i * nb) <= (j * na));
        let (s, k) = if take_a { (a, i) } else { (b, j) };
        out.lines.push(s.lines[k].clone());
        out.templates.push(s.templates[k].clone());
        out.levels.push(s.levels[k].clone());
        out.time_span.push(s.time_span[k]);
        if take_a {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The templates that count (as in `log_eval.py`: at least 4 word characters besides `<*>`)
/// with their literal parts, and which of them are error templates.
pub struct Templates {
    pub parts: Vec<(String, Vec<String>)>,
    pub errors: Vec<bool>,
}

pub fn templates(sys: &System) -> Templates {
    let mut seen = std::collections::BTreeMap::<String, bool>::new();
    for (t, l) in sys.templates.iter().zip(&sys.levels) {
        let word_chars = t.replace("<*>", "").chars().filter(|c| c.is_alphanumeric() || *c == '_').count();
        if word_chars < 4 {
            continue;
        }
        let err = ERROR_LEVELS.contains(&l.trim().to_uppercase().as_str());
        *seen.entry(t.clone()).or_insert(false) |= err;
    }
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    for (t, e) in seen {
        let p: Vec<String> = t.split("<*>").filter(|p| !p.is_empty()).map(str::to_string).collect();
        parts.push((t, p));
        errors.push(e);
    }
    Templates { parts, errors }
}

fn matches(parts: &[String], line: &str) -> bool {
    let mut at = 0;
    for p in parts {
        match line[at..].find(p.as_str()) {
            Some(k) => at += k + p.len(),
            None => return false,
        }
    }
    true
}

/// Template coverage and error-template coverage (None when there are no error templates)
/// of `output`, and the uncovered templates.
pub fn coverage(output: &str, t: &Templates) -> (f64, Option<f64>, Vec<String>) {
    let lines = splitlines(output);
    let covered: Vec<bool> = t.parts.iter().map(|(_, p)| lines.iter().any(|l| matches(p, l))).collect();
    let n = covered.iter().filter(|c| **c).count();
    let n_err = t.errors.iter().filter(|e| **e).count();
    let err_cov = covered.iter().zip(&t.errors).filter(|(c, e)| **c && **e).count();
    let missed = t.parts.iter().zip(&covered).filter(|(_, c)| !**c).map(|((t, _), _)| t.clone()).collect();
    (n as f64 / t.parts.len().max(1) as f64, (n_err > 0).then(|| err_cov as f64 / n_err as f64), missed)
}

/// The rows of a `.csv` that `log_eval.py` can score `sys` against.
pub fn scorer_csv(sys: &System) -> String {
    let mut rows = vec![vec!["Level".to_string(), "EventTemplate".to_string()]];
    for (t, l) in sys.templates.iter().zip(&sys.levels) {
        rows.push(vec![l.clone(), t.clone()]);
    }
    write_csv(&rows)
}

/// The 8 systems of `logs-dev`.
pub const SYSTEMS: &[&str] = &["Android", "Apache", "BGL", "HealthApp", "Linux", "OpenSSH", "Spark", "Zookeeper"];

/// The pairs interleaved for the two-system variant.
pub const PAIRS: &[(&str, &str)] =
    &[("Android", "Zookeeper"), ("Apache", "Linux"), ("BGL", "Spark"), ("HealthApp", "OpenSSH")];

/// A small deterministic generator (LCG).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next() % n.max(1)
    }
}

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy",
    "trent", "victor", "walter", "backup", "deploy", "nagios",
];

/// Fills a message pattern: `{n}` number, `{h}` hex id, `{w}` name, `{ip}` address, `{p}`
/// path, `{b}` block id, `{s}` one to four words. Returns the line text and its template.
fn fill(pattern: &str, rng: &mut Rng) -> (String, String) {
    let mut text = String::new();
    let mut template = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        text.push_str(&rest[..open]);
        template.push_str(&rest[..open]);
        let v = match &rest[open + 1..close] {
            "n" => (rng.below(5000) * (1 + rng.below(40))).to_string(),
            "h" => format!("{:010X}", rng.next() as u64 * 31),
            "w" => NAMES[rng.below(NAMES.len())].to_string(),
            "ip" => format!("10.{}.{}.{}", rng.below(250), rng.below(250), 1 + rng.below(250)),
            "p" => format!("/srv/{}/part-{:05}", NAMES[rng.below(NAMES.len())], rng.below(99_999)),
            "b" => format!("blk_{}{}", if rng.below(2) == 0 { "-" } else { "" }, rng.next() as u64 * 7_777_777),
            "s" => (0..1 + rng.below(4)).map(|_| NAMES[rng.below(NAMES.len())]).collect::<Vec<_>>().join(" "),
            other => other.to_string(),
        };
        text.push_str(&v);
        template.push_str("<*>");
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    template.push_str(rest);
    (text, template)
}

/// One template of a synthetic system: hidden level (what the scorer counts as error),
/// header fields, message pattern, weight.
type Spec = (&'static str, &'static str, &'static str, usize);

/// Synthetic logs in formats that `logs-dev` does not have, with the template of every line
/// known: HDFS-like, HPC-like, RFC 5424 syslog, glog, tab-separated lines with no timestamp,
/// JSON lines and logfmt with epoch seconds. Invented messages, not real Loghub data.
pub fn synthetic_systems(lines: usize) -> Vec<System> {
    let hdfs: &[Spec] = &[
        ("INFO", "dfs.DataNode$PacketResponder", "PacketResponder {n} for block {b} terminating", 30),
        ("INFO", "dfs.DataNode$PacketResponder", "Received block {b} of size {n} from /{ip}", 30),
        (
            "INFO",
            "dfs.FSNamesystem",
            "BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:{n} is added to {b} size {n}",
            30,
        ),
        ("INFO", "dfs.DataNode$DataXceiver", "Receiving block {b} src: /{ip}:{n} dest: /{ip}:{n}", 30),
        ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.allocateBlock: {p}. {b}", 10),
        ("INFO", "dfs.DataNode$DataXceiver", "{ip}:{n} Served block {b} to /{ip}", 10),
        ("WARN", "dfs.DataNode$DataXceiver", "{ip}:{n}:Got exception while serving {b} to /{ip}:", 3),
        ("INFO", "dfs.FSNamesystem", "BLOCK* ask {ip}:{n} to replicate {b} to datanode(s) {ip}:{n}", 3),
        ("INFO", "dfs.FSNamesystem", "BLOCK* ask {ip}:{n} to delete {b}", 3),
        ("INFO", "dfs.FSDataset", "Deleting block {b} file {p}", 5),
        ("ERROR", "dfs.DataNode", "{ip}:{n}: Transmitted block {b} to /{ip} failed", 1),
        (
            "ERROR",
            "dfs.DataNode$DataXceiver",
            "writeBlock {b} received exception java.io.IOException: Connection reset by peer",
            1,
        ),
        ("INFO", "dfs.DataBlockScanner", "Verification succeeded for {b}", 5),
        ("INFO", "dfs.FSDataset", "Reopen already-open Block for append {b}", 1),
        ("WARN", "dfs.FSNamesystem", "PendingReplicationMonitor timed out block {b}", 1),
        ("ERROR", "dfs.DataNode", "DataXceiver: java.io.IOException: Block {b} is valid, and cannot be written to.", 1),
        ("FATAL", "dfs.FSNamesystem", "Shutting down name node: disk {w} is full", 1),
        ("INFO", "dfs.FSNamesystem", "BLOCK* NameSystem.delete: {b} is added to invalidSet of {ip}:{n}", 8),
        ("INFO", "dfs.DataNode", "Starting thread to transfer block {b} to {ip}:{n}", 2),
        ("INFO", "dfs.DataNode", "Changing block file offset of block {b} from {n} to {n} meta file offset to {n}", 0),
        ("WARN", "dfs.DataNode", "Unexpected error trying to delete block {b}. BlockInfo not found in volumeMap.", 0),
        (
            "INFO",
            "dfs.FSNamesystem",
            "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {b} on {ip}:{n} size {n}",
            0,
        ),
        ("ERROR", "dfs.DataNode", "{ip}:{n}:DataXceiver: java.io.EOFException", 0),
        ("INFO", "dfs.DataNode", "Received block {b} src: /{ip}:{n} dest: /{ip}:{n} of size {n}", 0),
        ("INFO", "dfs.FSNamesystem", "Number of transactions: {n} Total time for transactions(ms): {n}", 0),
    ];
    let hpc: &[Spec] = &[
        (
            "",
            "unix.hw state_change.unavailable",
            "Component State Change: Component \"alt{n}\" is in the unavailable state (HWID={n})",
            30,
        ),
        ("", "node status", "running", 40),
        ("", "node status", "not responding", 10),
        ("", "node boot", "boot (command {n})", 20),
        ("", "action start", "Command has completed successfully", 20),
        ("ERROR", "action error", "Command exited with error code {n}", 3),
        ("ERROR", "switch_module link", "Link error on broadcast tree Interconnect-{n}T{n}:{n}", 2),
        (
            "",
            "unix.hw net.niff.up",
            "NIFF: node node-{n} has detected an available network connection on network {ip} via interface alt{n}",
            10,
        ),
        (
            "ERROR",
            "unix.hw net.niff.down",
            "NIFF: node node-{n} has detected a failed network connection on network {ip} via interface alt{n}",
            2,
        ),
        ("", "node temperature", "Temperature ({n}C) exceeds warning threshold", 3),
        ("", "node fan", "Fan speeds ( {s} )", 3),
        ("", "gige.ethernet link", "ambient={n} threshold exceeded", 2),
        ("ERROR", "node psu", "PSU failure ( {s} )", 1),
        ("", "node halt", "halt (command {n})", 1),
        ("ERROR", "node kernel", "Kernel panic on node {w}", 1),
        ("", "clusterfs server", "ClusterFileSystem: There is no server for ServerFileSystem domain storage{n}", 4),
        ("", "node boot", "wait for ready (command {n})", 0),
        ("ERROR", "node boot", "boot command failed (command {n})", 0),
        (
            "",
            "unix.hw state_change.available",
            "Component State Change: Component \"alt{n}\" is in the available state (HWID={n})",
            0,
        ),
        ("", "switch_module link", "Link in reset", 0),
        ("", "node console", "ServerFileSystem: domain {w} is now online", 0),
    ];
    let syslog: &[Spec] = &[
        ("", "sshd", "Accepted publickey for {w} from {ip} port {n} ssh2", 20),
        ("ERROR", "sshd", "Failed password for invalid user {w} from {ip} port {n} ssh2", 10),
        ("", "sshd", "Connection closed by {ip} port {n} [preauth]", 15),
        ("", "sshd", "Connection reset by {ip} port {n} [preauth]", 5),
        ("", "sshd", "Disconnected from user {w} {ip} port {n}", 10),
        ("", "CRON", "({w}) CMD ({p})", 15),
        ("", "systemd", "Started Session {n} of user {w}.", 15),
        ("", "systemd", "Starting {w} backup service...", 5),
        ("ERROR", "systemd", "{w}.service: Main process exited, code=exited, status={n}/FAILURE", 2),
        ("", "kernel", "TCP: request_sock_TCP: Possible SYN flooding on port {n}. Sending cookies.", 2),
        (
            "ERROR",
            "kernel",
            "EXT4-fs error (device sda{n}): ext4_find_entry:{n}: inode #{n}: comm {w}: reading directory lblock 0",
            1,
        ),
        ("", "nginx", "{ip} - - \"GET {p} HTTP/1.1\" 200 {n}", 30),
        ("", "nginx", "{ip} - - \"POST {p} HTTP/1.1\" 502 {n}", 3),
        (
            "",
            "postfix/smtp",
            "{h}: to=<{w}@example.org>, relay={w}.example.org[{ip}]:25, delay={n}, status=sent (250 2.0.0 Ok)",
            10,
        ),
        (
            "",
            "postfix/smtp",
            "{h}: to=<{w}@example.org>, relay=none, delay={n}, status=deferred (connection refused)",
            2,
        ),
        ("", "kernel", "Out of memory: Killed process {n} ({w}) total-vm:{n}kB", 1),
        ("", "sshd", "Received disconnect from {ip} port {n}:11: Bye Bye [preauth]", 0),
        ("", "sudo", "{w} : TTY=pts/{n} ; PWD=/home/{w} ; USER=root ; COMMAND=/usr/bin/apt update", 0),
        ("ERROR", "dhclient", "No working leases in persistent database - sleeping.", 0),
        ("", "systemd", "Reloading.", 0),
        ("", "kernel", "usb 1-{n}: new high-speed USB device number {n} using xhci_hcd", 0),
    ];
    let glog: &[Spec] = &[
        ("I", "server.cc", "Serving request {n} from {ip}", 40),
        ("I", "cache.cc", "Cache hit ratio {n} over {n} lookups", 15),
        ("W", "rpc.cc", "Slow RPC to {ip}: {n} ms", 6),
        ("E", "rpc.cc", "Deadline exceeded for call {w}.Lookup after {n} ms", 2),
        ("I", "shard.cc", "Shard {n} assigned to {w}", 10),
        ("I", "shard.cc", "Shard {n} released by {w}", 10),
        ("E", "storage.cc", "Could not open {p}: Permission denied", 1),
        ("F", "main.cc", "Check failed: ptr != nullptr in {w}", 1),
        ("I", "gc.cc", "Compaction of {p} finished in {n} ms", 8),
        ("W", "quota.cc", "User {w} is over quota by {n} bytes", 3),
        ("I", "server.cc", "Listening on port {n}", 1),
        ("I", "main.cc", "Flags: --threads={n} --cache_mb={n}", 0),
        ("W", "rpc.cc", "Retrying call {w}.Lookup ({n} left)", 0),
        ("E", "shard.cc", "Shard {n} lost its lease", 0),
        ("I", "gc.cc", "Skipped compaction of {p}: nothing to do", 0),
    ];
    let tsv: &[Spec] = &[
        ("", "scheduler", "queued job {n} for {w}", 30),
        ("", "scheduler", "dispatched job {n} to worker {n}", 30),
        ("", "worker", "job {n} done in {n} ms", 30),
        ("ERROR", "worker", "job {n} failed: timeout after {n} ms", 2),
        ("", "worker", "heartbeat", 20),
        ("", "api", "GET {p} -> 200", 20),
        ("", "api", "GET {p} -> 404", 4),
        ("ERROR", "api", "unhandled exception in handler {w}: KeyError", 1),
        ("", "cache", "evicted {n} entries", 5),
        ("", "scheduler", "retrying job {n} (attempt {n})", 3),
        ("", "scheduler", "paused queue {w}", 0),
        ("", "scheduler", "resumed queue {w}", 0),
        ("ERROR", "worker", "out of memory while running job {n}", 0),
        ("", "api", "POST {p} -> 201", 0),
    ];
    // Templates that differ in one word, and lists of any length: hard to tell apart.
    let near: &[Spec] = &[
        ("INFO", "net", "Connection to {ip} closed", 30),
        ("INFO", "net", "Connection to {ip} reset", 5),
        ("INFO", "net", "Connection to {ip} refused", 1),
        ("INFO", "auth", "User {w} logged in", 30),
        ("INFO", "auth", "User {w} logged out", 25),
        ("WARN", "auth", "User {w} locked out", 1),
        ("INFO", "cache", "Cache {w} warmed", 10),
        ("INFO", "cache", "Cache {w} flushed", 0),
        ("INFO", "http", "Request {n} took {n} ms", 40),
        ("WARN", "http", "Request {n} took {n} ms (slow)", 3),
        ("INFO", "boot", "Loaded plugins: {s}", 2),
        ("INFO", "boot", "Enabled features: {s}", 0),
        ("ERROR", "db", "Query {n} failed: deadlock detected", 1),
        ("ERROR", "db", "Query {n} failed: lock timeout", 0),
        ("INFO", "db", "Query {n} finished in {n} ms", 30),
        ("INFO", "db", "Query {n} cancelled by {w}", 0),
    ];
    let mut out = Vec::new();
    let kinds: [(&str, &[Spec]); 8] = [
        ("near-duplicates", near),
        ("HDFS-like", hdfs),
        ("HPC-like", hpc),
        ("RFC5424", syslog),
        ("glog", glog),
        ("tsv-no-time", tsv),
        ("json-lines", glog),
        ("logfmt", tsv),
    ];
    for (k, (name, specs)) in kinds.into_iter().enumerate() {
        let mut rng = Rng::new(1000 + k as u64);
        let total: usize = specs.iter().map(|s| s.3).sum();
        let mut sys = System {
            name: name.to_string(),
            lines: Vec::new(),
            templates: Vec::new(),
            levels: Vec::new(),
            time_span: Vec::new(),
        };
        // Every template appears at least once, at a random place.
        let mut forced: Vec<(usize, usize)> = (0..specs.len()).map(|t| (rng.below(lines), t)).collect();
        forced.sort();
        let mut t_sec = 1_226_263_000usize;
        for i in 0..lines {
            t_sec += rng.below(3);
            let t = match forced.binary_search_by(|f| f.0.cmp(&i)) {
                Ok(p) => forced[p].1,
                Err(_) => {
                    let mut r = rng.below(total);
                    specs
                        .iter()
                        .position(|s| {
                            if r < s.3 {
                                true
                            } else {
                                r -= s.3;
                                false
                            }
                        })
                        .unwrap_or(0)
                }
            };
            let (level, fields, pattern, _) = specs[t];
            let (msg, template) = fill(pattern, &mut rng);
            let (y, mo, d, h, mi, s) = civil(t_sec as i64);
            let line = match name {
                "HDFS-like" => format!(
                    "{:02}{mo:02}{d:02} {h:02}{mi:02}{s:02} {} {level} {fields}: {msg}",
                    y % 100,
                    rng.below(30_000)
                ),
                "HPC-like" => {
                    format!("{} node-{} {fields} {t_sec} 1 {msg}", 100_000 + i * 3 + rng.below(3), rng.below(400))
                }
                "RFC5424" => format!(
                    "<{}>1 {y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z host{}.example.net {fields} {} - - {msg}",
                    if level == "ERROR" { 11 } else { 14 },
                    rng.below(1000),
                    rng.below(9),
                    rng.below(60_000)
                ),
                "glog" => format!(
                    "{level}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}.{:06} {:>6} {fields}:{}] {msg}",
                    rng.below(1_000_000),
                    rng.below(60_000),
                    10 + rng.below(900)
                ),
                "json-lines" => format!(
                    "{{\"ts\": \"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z\", \"level\": \"{}\", \"logger\": \"{fields}\", \"msg\": \"{msg}\"}}",
                    rng.below(1000),
                    match level {
                        "E" => "error",
                        "F" => "fatal",
                        "W" => "warning",
                        _ => "info",
                    }
                ),
                "near-duplicates" => format!(
                    "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{:03} [{}] {level} {fields} - {msg}",
                    rng.below(1000),
                    ["main", "worker-1", "worker-2", "io"][rng.below(4)]
                ),
                "logfmt" => format!(
                    "at={} lvl={} src={fields} pid={} msg=\"{msg}\"",
                    t_sec,
                    if level.is_empty() { "info" } else { "error" },
                    rng.below(60_000)
                ),
                _ => format!("{fields}\t{}\t{msg}", rng.below(60_000)),
            };
            sys.lines.push(line);
            sys.templates.push(template);
            sys.levels.push(level.to_string());
            sys.time_span.push((0, 0));
        }
        out.push(sys);
    }
    out
}
