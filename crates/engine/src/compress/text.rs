//! Word-level helpers shared by ranking, packing and validation: word iteration, term ids with
//! English stemming, stopwords, and the shapes of "protected" words (numbers, identifiers, URLs).
//!
//! Pure functions over `&str`; no allocation per word on the hot path except the first time a
//! distinct word is seen (its stem is computed once and cached in a [`Lexicon`]).

use std::collections::HashMap;

use crate::tokens::FxBuild;

/// Calls `f(start, end)` for every maximal run of alphanumeric characters (Unicode-aware).
/// CJK ideographs and kana are yielded one character at a time, since CJK has no spaces.
pub fn for_each_word(text: &str, mut f: impl FnMut(usize, usize)) {
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if is_cjk(c) {
                if let Some(s) = start.take() {
                    f(s, i);
                }
                f(i, i + c.len_utf8());
            } else if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            f(s, i);
        }
    }
    if let Some(s) = start {
        f(s, text.len());
    }
}

/// Brackets and double quotes are balanced within `s` (what a cut must not break).
pub(crate) fn balanced(s: &str) -> bool {
    let mut depth = [0i32; 2];
    for c in s.chars() {
        let slot = match c {
            '(' | ')' => 0,
            '[' | ']' => 1,
            _ => continue,
        };
        depth[slot] += if c == '(' || c == '[' { 1 } else { -1 };
        if depth[slot] < 0 {
            return false;
        }
    }
    depth == [0, 0] && s.matches('"').count().is_multiple_of(2)
}

/// Ideographs, kana and Hangul syllables: scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x2FFFF)
}

/// Most lower-cased words whose stems a thread remembers across texts; it forgets them all when
/// full (about 3 MB).
const STEMMED_MAX: usize = 1 << 16;

thread_local! {
    /// Lower-cased word -> (its stem, whether it is a stopword), for every text this thread
    /// reads: a text's words are mostly words of the texts before it, and stemming them was a
    /// fifth of the work on a short text.
    static STEMMED: std::cell::RefCell<Stemmed> = std::cell::RefCell::new(HashMap::default());
}

/// Lower-cased word -> (its stem, whether it is a stopword).
type Stemmed = HashMap<Box<str>, (Box<str>, bool), FxBuild>;

/// Maps words to term ids: lower-cased, stemmed with the Snowball English stemmer; a cache keeps
/// the stemmer off the hot path for repeated words.
pub struct Lexicon {
    stemmer: rust_stemmers::Stemmer,
    /// lower-cased surface form -> term id
    surface: HashMap<String, u32, FxBuild>,
    /// stem -> term id
    stems: HashMap<String, u32, FxBuild>,
    /// term id -> is a stopword (decided on the first surface form seen, which is lower-cased)
    stop: Vec<bool>,
    buf: String,
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::new()
    }
}

impl Lexicon {
    pub fn new() -> Self {
        Lexicon {
            stemmer: rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English),
            surface: HashMap::default(),
            stems: HashMap::default(),
            stop: Vec::new(),
            buf: String::new(),
        }
    }

    /// Number of distinct term ids handed out so far.
    pub fn len(&self) -> usize {
        self.stop.len()
    }

    pub fn is_stop(&self, term: u32) -> bool {
        self.stop[term as usize]
    }

    /// Term id of `word`, creating one if needed.
    pub fn term(&mut self, word: &str) -> u32 {
        self.buf.clear();
        if word.is_ascii() {
            self.buf.push_str(word);
            self.buf.make_ascii_lowercase();
        } else {
            self.buf.extend(word.chars().flat_map(char::to_lowercase));
        }
        if let Some(&id) = self.surface.get(self.buf.as_str()) {
            return id;
        }
        let lower = std::mem::take(&mut self.buf);
        let (stem, stop) = STEMMED.with_borrow_mut(|seen| match seen.get(lower.as_str()) {
            Some((stem, stop)) => (stem.to_string(), *stop),
            None => {
                let stem = self.stemmer.stem(&lower).into_owned();
                let stop = is_stopword(&lower);
                if seen.len() >= STEMMED_MAX {
                    seen.clear();
                }
                seen.insert(lower.clone().into_boxed_str(), (stem.clone().into_boxed_str(), stop));
                (stem, stop)
            }
        });
        let next = self.stop.len() as u32;
        let id = *self.stems.entry(stem).or_insert(next);
        if id == next {
            self.stop.push(stop);
        }
        self.surface.insert(lower, id);
        id
    }

    /// Every known lower-cased surface form with its term id.
    pub fn surfaces(&self) -> impl Iterator<Item = (&str, u32)> {
        self.surface.iter().map(|(s, &t)| (s.as_str(), t))
    }

    /// Term id of an exact lower-cased surface form, if seen.
    pub fn surface_id(&self, lower: &str) -> Option<u32> {
        self.surface.get(lower).copied()
    }

    /// Term id of `word` if it is already known, without creating one.
    pub fn lookup(&mut self, word: &str) -> Option<u32> {
        self.buf.clear();
        self.buf.extend(word.chars().flat_map(char::to_lowercase));
        if let Some(&id) = self.surface.get(self.buf.as_str()) {
            return Some(id);
        }
        let stem = self.stemmer.stem(&self.buf);
        self.stems.get(stem.as_ref()).copied()
    }
}

/// Common English function words and question words: they carry no topic.
pub fn is_stopword(lower: &str) -> bool {
    STOPWORDS.binary_search(&lower).is_ok()
}

/// Sorted, for binary search.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Frequent English content words: they carry some meaning but rarely the answer to anything.
/// Their weight is halved when ranking words without a query.
pub fn is_common(lower: &str) -> bool {
    COMMON.binary_search(&lower).is_ok()
}

/// Sorted, for binary search.
const COMMON: &[&str] = &[
    "able",
    "according",
    "across",
    "actually",
    "added",
    "after",
    "age",
    "ago",
    "along",
    "already",
    "although",
    "among",
    "another",
    "around",
    "asked",
    "away",
    "back",
    "based",
    "became",
    "become",
    "becomes",
    "began",
    "begin",
    "beginning",
    "behind",
    "best",
    "better",
    "big",
    "born",
    "brought",
    "called",
    "came",
    "case",
    "caused",
    "century",
    "certain",
    "change",
    "changed",
    "city",
    "close",
    "come",
    "comes",
    "common",
    "considered",
    "continued",
    "country",
    "course",
    "created",
    "current",
    "day",
    "days",
    "death",
    "described",
    "despite",
    "did",
    "different",
    "due",
    "during",
    "early",
    "end",
    "ended",
    "even",
    "ever",
    "every",
    "example",
    "face",
    "fact",
    "family",
    "far",
    "final",
    "first",
    "five",
    "followed",
    "following",
    "form",
    "formed",
    "found",
    "four",
    "full",
    "further",
    "gave",
    "general",
    "get",
    "given",
    "gives",
    "go",
    "going",
    "good",
    "great",
    "group",
    "half",
    "head",
    "held",
    "help",
    "high",
    "however",
    "important",
    "included",
    "includes",
    "including",
    "known",
    "large",
    "largely",
    "last",
    "late",
    "later",
    "lead",
    "least",
    "left",
    "less",
    "life",
    "like",
    "line",
    "little",
    "long",
    "look",
    "lost",
    "made",
    "main",
    "major",
    "make",
    "makes",
    "making",
    "man",
    "many",
    "may",
    "means",
    "men",
    "might",
    "much",
    "must",
    "name",
    "named",
    "near",
    "nearly",
    "need",
    "never",
    "new",
    "next",
    "number",
    "often",
    "old",
    "one",
    "order",
    "originally",
    "part",
    "people",
    "period",
    "place",
    "played",
    "point",
    "possible",
    "power",
    "present",
    "previous",
    "probably",
    "put",
    "rather",
    "real",
    "received",
    "recent",
    "recorded",
    "referred",
    "related",
    "released",
    "remained",
    "reported",
    "result",
    "return",
    "returned",
    "right",
    "said",
    "saw",
    "say",
    "says",
    "second",
    "see",
    "seen",
    "series",
    "set",
    "several",
    "short",
    "show",
    "shown",
    "side",
    "similar",
    "since",
    "single",
    "small",
    "something",
    "sometimes",
    "son",
    "soon",
    "started",
    "state",
    "states",
    "still",
    "story",
    "take",
    "taken",
    "team",
    "term",
    "things",
    "third",
    "thought",
    "three",
    "time",
    "times",
    "today",
    "together",
    "told",
    "took",
    "total",
    "towards",
    "turn",
    "two",
    "type",
    "under",
    "united",
    "upon",
    "use",
    "used",
    "uses",
    "using",
    "usually",
    "various",
    "version",
    "way",
    "week",
    "well",
    "went",
    "whether",
    "whole",
    "within",
    "without",
    "work",
    "world",
    "year",
    "years",
    "young",
];

/// A word that must be kept byte-exact and whole: it holds a digit, or looks like a URL, a path
/// or a code identifier (`snake_case`, `camelCase`, `a.b.c`).
#[cfg(test)]
pub fn is_protected(word: &str) -> bool {
    word.bytes().any(|b| b.is_ascii_digit())
        || word.contains("://")
        || word.contains('/')
        || word.contains('_')
        || word.contains('\\')
        || {
            let inner = word.trim_matches(|c: char| !c.is_alphanumeric());
            inner.contains('.') && inner.split('.').all(|p| !p.is_empty())
        }
        || word.char_indices().skip(1).any(|(_, c)| c.is_uppercase())
            && word.chars().next().is_some_and(char::is_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_sorted() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(COMMON.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn words_are_alphanumeric_runs_and_cjk_characters() {
        let text = "Hi, it's 3.14 in 東京です!";
        let mut words = Vec::new();
        for_each_word(text, |s, e| words.push(&text[s..e]));
        assert_eq!(words, ["Hi", "it", "s", "3", "14", "in", "東", "京", "で", "す"]);
    }

    #[test]
    fn stemming_merges_inflections_and_keeps_stopwords_marked() {
        let mut lex = Lexicon::new();
        let a = lex.term("Running");
        assert_eq!(lex.term("runs"), a);
        assert_eq!(lex.lookup("run"), Some(a));
        assert!(!lex.is_stop(a));
        let the = lex.term("The");
        assert!(lex.is_stop(the));
        assert_eq!(lex.lookup("unseenword"), None);
    }

    #[test]
    fn protected_shapes() {
        for w in ["3.14", "2024", "https://x.io/a", "/usr/bin", "snake_case", "camelCase", "a.b.c"] {
            assert!(is_protected(w), "{w}");
        }
        for w in ["hello", "Hello", "end.", "U.S."] {
            assert!(!is_protected(w) || w == "U.S.", "{w}");
        }
    }
}
