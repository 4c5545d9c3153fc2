//! Template mining for log lines, in the manner of Drain (He et al., ICWS 2017), without
//! knowing the log's format.
//!
//! A line is split into tokens on white space and `|`, `,`, `;`. In a token, every run of
//! letters and digits that holds a digit (timestamps, counters, ids, addresses, durations) or
//! is a month or weekday name (dates written in words) is masked; a token with no run of
//! three letters left (when something was masked) is a *parameter*, any other is a constant
//! compared by its masked form (`sshd[24200]:` and `sshd[3]:` are the same constant). Lines go to groups keyed by their class (the
//! caller's severity, so an error line never shares a template with an ordinary one), their
//! token count and their first two constants that had nothing masked (usually a level, a component or a host,
//! and the message's first word). Within a group a line joins the most similar template —
//! similarity being the share of positions, besides the two key tokens and the positions
//! where both are variable, that hold the same constant, later positions weighing more (a
//! header comes before its message) — when that share is at least [`SIMILARITY`] (or what
//! the caller asks for the class); the positions where they differ become variable. Otherwise it starts a new
//! template. Only the [`MAX_CANDIDATES`] latest templates of a group are compared, so the cost
//! is linear in the input whatever it holds. Last, templates keyed alike but for their
//! second key word, that agree on at least [`FAMILY_SIMILARITY`] of their other positions,
//! are merged when at least [`FAMILY_MIN`] of them do: a word that takes that many values
//! where a message would start is a parameter (`Compiling <crate> v…`, `User <name> is over
//! quota`), while a few messages that start differently stay apart.
//!
//! Each line also gets a *variant*: its template and the words it has at the template's
//! variable positions where few distinct words occur (at most [`MAX_VARIANT_WORDS`], and at
//! most the square root of the template's lines). Lines of one template that differ in such
//! a word (`closed` / `reset`) have different variants, which the caller uses for a second
//! example when the budget allows; a position with many words (user names) is a parameter.
//! Its *shape* (template and every token, parameters masked) is finer still: a third
//! example, before the remaining repeats.
//!
//! What it does not do: it knows no log format, strips no header, and never looks past the
//! first [`MAX_TOKENS`] tokens of a line.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Least similarity for a line to join a template, unless the caller asks for more.
pub(crate) const SIMILARITY: f64 = 0.5;
/// Templates of a group a line is compared with (the latest ones).
const MAX_CANDIDATES: usize = 48;
/// Tokens of a line that grouping looks at.
const MAX_TOKENS: usize = 48;

const CALENDAR: &[&str] = &[
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
    "Oct", "Nov", "Dec",
];

/// The templates of a log's lines.
pub(crate) struct Mined {
    /// Per line, its template id (dense, in order of first appearance).
    pub template: Vec<usize>,
    /// Per line, its variant id (dense, in order of first appearance).
    pub variant: Vec<usize>,
    /// Per line, its exact shape: its template and all its tokens, parameters masked
    /// (dense ids, in order of first appearance). Finer than its variant.
    pub shape: Vec<usize>,
    pub shapes: usize,
    pub templates: usize,
    pub variants: usize,
}

/// Characters besides white space that separate tokens.
const SEPARATORS: &[char] = &['|', ',', ';'];

/// A token as templates see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// A parameter: no letters left once numbers are masked, or only short runs of them
    /// (`10.0.0.1`, `[Sun`, `0x1f`, `2005]`, `R24-M1-NB-C:J15-U11`).
    Param,
    /// A constant, by a hash of its masked form, so `sshd[24200]:` and `sshd[3]:` are the
    /// same constant; `exact` when nothing in it was masked.
    Const { id: u64, exact: bool },
}

/// Classifies a token; see [`Token`]. Runs of letters and digits that hold a digit, and
/// month and weekday names, are masked.
pub(crate) fn token(token: &str) -> Token {
    let b = token.as_bytes();
    let mut h = Fx::default();
    let mut longest_kept = 0usize;
    let mut masked = false;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let start = i;
            let mut digit = false;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                digit |= b[i].is_ascii_digit();
                i += 1;
            }
            let run = &token[start..i];
            let calendar = run.len() == 3 && b[start].is_ascii_uppercase() && CALENDAR.contains(&run);
            if digit || calendar {
                masked = true;
                h.write_u64(0x2a);
            } else {
                longest_kept = longest_kept.max(run.len());
                hash_str(&mut h, run);
            }
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            // Non-ASCII letters are constant text too.
            if token[start..i].chars().any(char::is_alphabetic) {
                longest_kept = longest_kept.max(3);
            }
            // A minus sign belongs to the number after it (`blk_-69…` is like `blk_38…`).
            let mut end = i;
            if end > start && b[end - 1] == b'-' && b.get(end).is_some_and(u8::is_ascii_digit) {
                end -= 1;
            }
            hash_str(&mut h, &token[start..end]);
        }
    }
    let constant = if masked { longest_kept >= 3 } else { longest_kept > 0 || !b.is_empty() };
    if constant { Token::Const { id: h.finish(), exact: !masked } } else { Token::Param }
}

/// A small fast hasher (FxHash) for the variant keys.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

fn hash_str(h: &mut Fx, s: &str) {
    let b = s.as_bytes();
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h.write_u64(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
    }
    for &x in chunks.remainder() {
        h.write_u64(u64::from(x));
    }
    h.write_u64(0xff);
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Mines the templates of `lines`; `class[i]` keeps lines of different classes apart, and a
/// line of class `c` joins a template when their similarity is at least `similarity[c]`
/// ([`SIMILARITY`] for a class past its end).
pub(crate) fn mine(lines: &[&str], class: &[u8], similarity: &[f64]) -> Mined {
    let mut groups: FxMap<(u8, usize, u64, u64), Vec<usize>> = FxMap::default();
    // Templates that differ only in their second key word (`Compiling serde v1.0.0`,
    // `Compiling tokio v1.1.0`): class, length, first key word and the two keys' positions.
    let mut families: FxMap<(u8, usize, u64, usize, usize), Vec<usize>> = FxMap::default();
    let mut templates: Vec<Vec<Option<u64>>> = Vec::new();
    let mut template = Vec::with_capacity(lines.len());
    // Every line's tokens, one after another: line i's are `all[starts[i]..starts[i + 1]]`.
    let mut all: Vec<Option<u64>> = Vec::new();
    let mut starts = vec![0usize];
    let mut tokens: Vec<Option<u64>> = Vec::with_capacity(MAX_TOKENS);
    let mut exact: Vec<bool> = Vec::with_capacity(MAX_TOKENS);
    for (i, line) in lines.iter().enumerate() {
        tokens.clear();
        exact.clear();
        for tok in line.split(|c: char| c.is_whitespace() || SEPARATORS.contains(&c)).filter(|t| !t.is_empty()) {
            let (id, is_exact) = match token(tok) {
                Token::Param => (None, false),
                Token::Const { id, exact } => (Some(id), exact),
            };
            if tokens.len() < MAX_TOKENS {
                tokens.push(id);
                exact.push(is_exact);
            }
        }
        all.extend_from_slice(&tokens);
        starts.push(all.len());

        // The group: class, length, first two exact constants (and where they are).
        let mut key_at = [usize::MAX; 2];
        let mut key = [0u64; 2];
        let mut found = 0;
        for (p, t) in tokens.iter().enumerate() {
            if let (Some(t), true) = (t, exact[p]) {
                key[found] = *t;
                key_at[found] = p;
                found += 1;
                if found == 2 {
                    break;
                }
            }
        }
        let members = groups.entry((class[i], tokens.len(), key[0], key[1])).or_default();
        let family_key = (class[i], tokens.len(), key[0], key_at[0], key_at[1]);
        let least = similarity.get(usize::from(class[i])).copied().unwrap_or(SIMILARITY);
        let mut best: Option<(f64, usize)> = None;
        for &c in members.iter().rev().take(MAX_CANDIDATES) {
            let t = &templates[c];
            // Later positions weigh more: a line's header (level, component, host) comes
            // before its message, and agreeing on the header says little.
            let (mut same, mut compared) = (0usize, 0usize);
            for (p, (a, b)) in t.iter().zip(&tokens).enumerate() {
                if p == key_at[0] || p == key_at[1] || (a.is_none() && b.is_none()) {
                    continue;
                }
                compared += p + 1;
                if a.is_some() && a == b {
                    same += p + 1;
                }
            }
            let sim = if compared == 0 { 1.0 } else { same as f64 / compared as f64 };
            if sim >= least && best.is_none_or(|(s, _)| sim > s) {
                best = Some((sim, c));
            }
        }
        let id = match best {
            Some((_, c)) => {
                for (a, b) in templates[c].iter_mut().zip(&tokens) {
                    if *a != *b {
                        *a = None;
                    }
                }
                c
            }
            None => {
                templates.push(tokens.clone());
                members.push(templates.len() - 1);
                if key_at[1] != usize::MAX {
                    families.entry(family_key).or_default().push(templates.len() - 1);
                }
                templates.len() - 1
            }
        };
        template.push(id);
    }
    let template = merge_families(&mut templates, families, template);
    // Template ids are created in line order, so they are dense and in order of first
    // appearance.
    let line_tokens = |i: usize| &all[starts[i]..starts[i + 1]];
    let (variant, variants) = variants(&templates, &template, &line_tokens);
    let mut ids: FxMap<u64, usize> = FxMap::default();
    let mut shape = Vec::with_capacity(template.len());
    for (i, &t) in template.iter().enumerate() {
        let mut h = Fx::default();
        h.write_u64(t as u64);
        for tok in line_tokens(i) {
            h.write_u64(tok.unwrap_or(1));
        }
        let next = ids.len();
        shape.push(*ids.entry(h.finish()).or_insert(next));
    }
    Mined { templates: templates.len(), variants, shapes: ids.len(), template, variant, shape }
}

/// Templates at least that differ only in their second key word for that word to be read
/// as a parameter (a crate, a file, a user name) rather than the message's first word.
const FAMILY_MIN: usize = 6;

/// Share of the other positions two templates of a family must agree on to be merged.
const FAMILY_SIMILARITY: f64 = 0.8;

/// Merges, in each family of templates keyed alike but for their second key word, the
/// templates that agree elsewhere, when at least [`FAMILY_MIN`] of them do: that word then
/// takes so many values that it is a parameter (`Compiling <*> <*>`), while two messages that
/// start differently (`Accepted password …`, `Failed password …`) stay apart. Returns the
/// lines' templates, renumbered densely in order of first appearance.
fn merge_families(
    templates: &mut Vec<Vec<Option<u64>>>,
    families: FxMap<(u8, usize, u64, usize, usize), Vec<usize>>,
    template: Vec<usize>,
) -> Vec<usize> {
    let mut into: Vec<usize> = (0..templates.len()).collect();
    let mut any = false;
    for ((_, _, _, at0, at1), members) in families {
        if members.len() < FAMILY_MIN {
            continue;
        }
        // Clusters of members that agree off the key positions, each led by its first; a
        // member is compared with the latest [`MAX_CANDIDATES`] clusters only, as a line with
        // templates, so that a family of many unlike templates stays linear.
        let mut clusters: Vec<Vec<usize>> = Vec::new();
        for &t in &members {
            let agrees = |lead: usize| {
                let (mut same, mut compared) = (0usize, 0usize);
                for (p, (a, b)) in templates[lead].iter().zip(&templates[t]).enumerate() {
                    if p == at0 || p == at1 || (a.is_none() && b.is_none()) {
                        continue;
                    }
                    compared += 1;
                    same += usize::from(a.is_some() && a == b);
                }
                compared == 0 || same as f64 >= FAMILY_SIMILARITY * compared as f64
            };
            match clusters.iter_mut().rev().take(MAX_CANDIDATES).find(|c| agrees(c[0])) {
                Some(c) => c.push(t),
                None => clusters.push(vec![t]),
            }
        }
        for c in clusters.into_iter().filter(|c| c.len() >= FAMILY_MIN) {
            let lead = c[0];
            for &t in &c[1..] {
                into[t] = lead;
                let other = std::mem::take(&mut templates[t]);
                for (a, b) in templates[lead].iter_mut().zip(&other) {
                    if *a != *b {
                        *a = None;
                    }
                }
            }
            templates[lead][at1] = None;
            any = true;
        }
    }
    if !any {
        return template;
    }
    // Dense ids again, in order of first appearance.
    let mut dense = vec![usize::MAX; templates.len()];
    let mut kept: Vec<Vec<Option<u64>>> = Vec::new();
    let template = template
        .into_iter()
        .map(|t| {
            let lead = into[t];
            if dense[lead] == usize::MAX {
                dense[lead] = kept.len();
                kept.push(std::mem::take(&mut templates[lead]));
            }
            dense[lead]
        })
        .collect();
    *templates = kept;
    template
}

/// Most distinct words at a template's variable position for them to tell variants apart.
const MAX_VARIANT_WORDS: usize = 4;

/// Each line's variant: its template and the words it has at the template's variable
/// positions that hold few distinct words (`closed` / `reset`), not at those that hold many
/// (user names). Returns the variant of each line and how many there are.
fn variants<'t>(
    templates: &[Vec<Option<u64>>],
    template: &[usize],
    line_tokens: &dyn Fn(usize) -> &'t [Option<u64>],
) -> (Vec<usize>, usize) {
    // Per template, its lines and, per variable position, the distinct words seen (up to
    // one more than the most that count).
    let mut size = vec![0usize; templates.len()];
    for &t in template {
        size[t] += 1;
    }
    let mut words: Vec<Vec<Vec<u64>>> = templates.iter().map(|t| vec![Vec::new(); t.len()]).collect();
    for (i, &t) in template.iter().enumerate() {
        for (p, tok) in line_tokens(i).iter().enumerate() {
            if templates[t][p].is_none()
                && let Some(id) = tok
            {
                let seen = &mut words[t][p];
                if seen.len() <= MAX_VARIANT_WORDS && !seen.contains(id) {
                    seen.push(*id);
                }
            }
        }
    }
    let telling: Vec<Vec<bool>> = words
        .iter()
        .enumerate()
        .map(|(t, ws)| {
            let most = MAX_VARIANT_WORDS.min(((size[t] as f64).sqrt().ceil() as usize).max(2));
            ws.iter().map(|w| w.len() >= 2 && w.len() <= most).collect()
        })
        .collect();
    let mut ids: FxMap<u64, usize> = FxMap::default();
    let mut variant = Vec::with_capacity(template.len());
    for (i, &t) in template.iter().enumerate() {
        let mut h = Fx::default();
        h.write_u64(t as u64);
        for (p, tok) in line_tokens(i).iter().enumerate() {
            if telling[t][p] {
                h.write_u64(p as u64);
                h.write_u64(tok.unwrap_or(1));
            }
        }
        let next = ids.len();
        variant.push(*ids.entry(h.finish()).or_insert(next));
    }
    let n = ids.len();
    (variant, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_differ_in_parameters_share_a_template() {
        let lines = [
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating",
            "081109 203807 222 INFO dfs.DataNode$PacketResponder: PacketResponder 0 for block blk_-6952295868487656571 terminating",
            "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864",
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
            "Dec 10 07:02:47 LabSZ sshd[24203]: Invalid user test9 from 52.80.34.196",
            "Dec 10 07:08:28 LabSZ sshd[24208]: Invalid user admin from 5.188.10.180",
        ];
        let m = mine(&lines, &[0; 6], &[]);
        assert_eq!(m.template, vec![0, 0, 1, 2, 2, 2]);
        assert_eq!(m.templates, 3);
        // `webmaster` and `admin` are the 2 words of 3 lines (at most the square root, 2,
        // tell variants apart): 2 variants, and a third for the parameter `test9`.
        assert_eq!(m.variant, vec![0, 0, 1, 2, 3, 4]);
        assert_eq!(m.shape, vec![0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_key_word_with_many_values_is_a_parameter_and_two_messages_stay_apart() {
        let crates = ["serde", "tokio", "hyper", "axum", "rand", "regex", "clap", "anyhow"];
        let mut lines: Vec<String> = crates.iter().map(|c| format!("   Compiling {c} v1.0.3")).collect();
        // Seven messages of one length after one level word, which differ in their first
        // word and in the rest: seven templates, however many lines each has.
        let messages = [
            "Accepted password",
            "Failed password",
            "Closed session",
            "Opened session",
            "Invalid key",
            "Expired token",
            "Locked account",
        ];
        for user in ["root", "admin", "guest"] {
            for m in messages {
                lines.push(format!("INFO {m} for {user} from 10.0.0.1"));
            }
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let m = mine(&refs, &vec![0; refs.len()], &[]);
        assert!(m.template[..8].iter().all(|&t| t == 0), "{:?}", m.template);
        let first: Vec<usize> = m.template[8..15].to_vec();
        assert_eq!(first, (1..8).collect::<Vec<_>>(), "{:?}", m.template);
        for run in m.template[8..].chunks(7) {
            assert_eq!(run, first, "{:?}", m.template);
        }
        // Fewer than a family's worth: each crate is still its own template.
        let m = mine(&refs[..3], &[0; 3], &[]);
        assert_eq!(m.template, vec![0, 1, 2]);
    }

    #[test]
    fn classes_never_share_a_template() {
        let lines = ["job 1 done", "job 2 done"];
        let m = mine(&lines, &[0, 1], &[]);
        assert_ne!(m.template[0], m.template[1]);
    }

    #[test]
    fn numbers_and_dates_in_words_are_parameters() {
        for t in ["[Sun", "Dec", "2005]", "10.0.0.1", "0x1f", "04:47:44", "R24-M1-NB-C:J15-U11"] {
            assert_eq!(token(t), Token::Param, "{t}");
        }
        assert!(matches!(token("[notice]"), Token::Const { exact: true, .. }));
        assert!(matches!(token("Monday"), Token::Const { exact: true, .. }));
        assert!(matches!(token("sshd[3]:"), Token::Const { exact: false, .. }));
        assert_eq!(token("sshd[24200]:"), token("sshd[3]:"));
        assert_ne!(token("icbi....0"), token("dcbf....0"));
        assert_eq!(token("core.728"), token("core.1414"));
        assert_eq!(token("blk_-69"), token("blk_38"));
    }
}
