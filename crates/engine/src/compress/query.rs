//! One way to read a query, for every content kind.
//!
//! A query is read into **words** (lower-cased alphanumeric runs, CJK characters one by one, in
//! query order, each once, stopwords of [`text::is_stopword`] and the caller's domain words left
//! out; when nothing is left, every word) and **phrases**, which must match as written (lower
//! case): text between double quotes or backticks, and identifier-shaped words of at least four
//! characters that hold a digit or one of `- _ . /` (`key75`, `blk_-1608`, `user.id`).
//! Prose ranking stems the words and weighs them by idf ([`super::rank::query_terms`]); JSON and
//! logs match the words and phrases against keys, values and lines.

use std::collections::HashSet;

use super::text::{for_each_word, is_stopword};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryWords {
    pub phrases: Vec<String>,
    pub words: Vec<String>,
    /// The words as written, `_` kept inside them (`parse_args`, `fooBar`), with the same
    /// stopwords left out: for code, which splits identifiers into their parts itself.
    pub identifiers: Vec<String>,
}

impl QueryWords {
    /// Reads `query`; `domain` lists words that say nothing in this kind of content (`log`).
    pub fn read(query: &str, domain: &[&str]) -> Self {
        let mut phrases: Vec<String> = Vec::new();
        for quote in ['"', '`', '“', '”'] {
            let parts: Vec<&str> = query.split(quote).collect();
            for (k, p) in parts.iter().enumerate() {
                if k % 2 == 1 && k + 1 < parts.len() && !p.trim().is_empty() {
                    phrases.push(p.trim().to_lowercase());
                }
            }
        }
        for w in query.split_whitespace() {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            let identifier =
                w.chars().count() >= 4 && w.chars().any(|c| c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '/'));
            if identifier {
                phrases.push(w.to_lowercase());
            }
        }
        let mut seen = HashSet::new();
        phrases.retain(|p| seen.insert(p.clone()));

        // Membership through sets: a long query (the last message of a conversation stands for
        // one) costs linear time.
        let mut all: Vec<String> = Vec::new();
        let mut seen_words = HashSet::new();
        for_each_word(query, |a, b| {
            let w = query[a..b].to_lowercase();
            if seen_words.insert(w.clone()) {
                all.push(w);
            }
        });
        let words: Vec<String> =
            all.iter().filter(|w| !is_stopword(w) && !domain.contains(&w.as_str())).cloned().collect();
        let words = if words.is_empty() && phrases.is_empty() {
            all.retain(|w| !domain.contains(&w.as_str()));
            all
        } else {
            words
        };
        let mut identifiers: Vec<String> = Vec::new();
        let mut seen_identifiers = HashSet::new();
        for w in query.split(|c: char| !c.is_alphanumeric() && c != '_') {
            let lower = w.to_lowercase();
            if !w.is_empty() && !is_stopword(&lower) && !domain.contains(&lower.as_str()) && seen_identifiers.insert(w)
            {
                identifiers.push(w.to_string());
            }
        }
        QueryWords { phrases, words, identifiers }
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty() && self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_stopwords_and_keep_query_order() {
        let q = QueryWords::read("What is the status of Order 75 and the order total?", &[]);
        assert_eq!(q.words, ["status", "order", "75", "total"]);
        assert!(q.phrases.is_empty());
    }

    #[test]
    fn quoted_text_and_identifiers_are_phrases() {
        let q = QueryWords::read("why did \"Connection refused\" follow blk_-1608 in the log", &["log"]);
        assert_eq!(q.phrases, ["connection refused", "blk_-1608"]);
        assert!(!q.words.contains(&"log".to_string()));
        assert!(q.words.contains(&"refused".to_string()));
        let q = QueryWords::read("how does parse_args call fooBar", &["call"]);
        assert_eq!(q.identifiers, ["parse_args", "fooBar"]);
    }

    #[test]
    fn apostrophes_are_not_quotes_and_a_stopword_only_query_keeps_its_words() {
        let q = QueryWords::read("what's the user's id", &[]);
        assert!(q.phrases.is_empty());
        assert!(q.words.contains(&"user".to_string()));
        let q = QueryWords::read("who was it", &[]);
        assert_eq!(q.words, ["who", "was", "it"]);
    }
}
