//! A lower bound on the tokens a `/compress` body will be charged, kept while the body arrives,
//! so that a large request its key cannot pay for is refused before the rest of it is read,
//! parsed or counted.
//!
//! The rule: each space that follows a non-space byte and precedes an ASCII letter starts a
//! piece of both encodings' pre-tokenization (`cl100k_base`, `o200k_base`, and the
//! approximation above them): a word with its leading space; every piece is at least one
//! token. So the number of such windows of three bytes is a lower bound on the tokens of a
//! text in every encoding the service counts with (a test checks it against each), about 3/4
//! of the count on prose.
//!
//! The bound is that count over exactly the strings that are charged: the top-level
//! `context`, and the `content` of each item of the top-level `messages` array. It reads the
//! raw JSON bytes as they come, in pieces of any size (a piece may end inside a string, an
//! escape or a `\u` sequence; all state is kept between pieces), and decodes each escape before
//! applying the rule. Counting over the raw bytes would not be a lower bound: in the body
//! `"a\n word"` the raw bytes `n word` hold a counted window, but the text is
//! newline-space-`word`, which holds none. Decoded, the windows are those of the text itself.
//!
//! What it does not do: validate the JSON (a body the parser refuses may be refused here first,
//! for what it would cost), or count anything before it is certain to be charged: a message's
//! `content` counts once its item has closed, since a repeated `content` in one item replaces
//! the earlier one (the charged text is the last), whereas a repeated top-level `context` is
//! refused by the parser anyway.

/// What the rule needs to know of a byte of the decoded text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    /// ASCII whitespace other than the space.
    Blank,
    Letter,
    /// Anything else, including every byte of a non-ASCII character.
    Other,
}

impl Class {
    /// The class of an ASCII character, or of any part of a non-ASCII one (`code` ≥ 0x80: a
    /// UTF-8 byte of the body or a `\u` code point; either way not whitespace, not a letter).
    fn of(code: u32) -> Class {
        match code {
            0x20 => Class::Space,
            0x09 | 0x0A | 0x0C | 0x0D => Class::Blank,
            0x41..=0x5A | 0x61..=0x7A => Class::Letter,
            _ => Class::Other,
        }
    }
}

/// The rule's three-byte windows over one string, as its bytes arrive. A non-ASCII character
/// may arrive as one `\u` code point rather than its 2 to 4 UTF-8 bytes: the windows are the
/// same, since every one of those bytes is `Other` and a window's middle byte is a space.
#[derive(Debug, Default, Clone, Copy)]
struct Windows {
    before_last: Option<Class>,
    last: Option<Class>,
    count: usize,
}

impl Windows {
    /// Pushes a run of bytes that stand for themselves (no escape among them): the windows
    /// inside the run are counted as the plain byte scan does, in one pass.
    fn push_run(&mut self, run: &[u8]) {
        let class = |b: u8| Class::of(u32::from(b));
        let [first, second, .., before_last, last] = run else {
            for &b in run {
                self.push(class(b));
            }
            return;
        };
        // The windows that end on the run's first two bytes start before it.
        self.push(class(*first));
        self.push(class(*second));
        self.count += run
            .windows(3)
            .filter(|w| w[1] == b' ' && !w[0].is_ascii_whitespace() && w[2].is_ascii_alphabetic())
            .count();
        self.before_last = Some(class(*before_last));
        self.last = Some(class(*last));
    }

    fn push(&mut self, class: Class) {
        if class == Class::Letter
            && self.last == Some(Class::Space)
            && matches!(self.before_last, Some(Class::Letter | Class::Other))
        {
            self.count += 1;
        }
        self.before_last = self.last;
        self.last = Some(class);
    }
}

/// The body's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Context,
    Messages,
    Content,
    Other,
}

/// A key being read: its first bytes, enough to tell the fields apart.
#[derive(Debug, Default, Clone, Copy)]
struct KeyName {
    bytes: [u8; 8],
    len: usize,
    /// Longer than any field looked for, or not ASCII.
    other: bool,
}

impl KeyName {
    fn push(&mut self, code: u32) {
        match u8::try_from(code) {
            Ok(b) if b.is_ascii() && self.len < self.bytes.len() => {
                self.bytes[self.len] = b;
                self.len += 1;
            }
            _ => self.other = true,
        }
    }

    fn field(&self) -> Field {
        match &self.bytes[..self.len] {
            _ if self.other => Field::Other,
            b"context" => Field::Context,
            b"messages" => Field::Messages,
            b"content" => Field::Content,
            _ => Field::Other,
        }
    }
}

/// What the string being read is.
#[derive(Debug, Clone, Copy)]
enum Text {
    Key(KeyName),
    /// The top-level `context`.
    Context(Windows),
    /// A message's `content`.
    Content(Windows),
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After a backslash.
    Started,
    /// In `\uXXXX`, after `digits` hex digits making `value`.
    Unicode {
        digits: u8,
        value: u32,
    },
}

/// The running bound over a `/compress` body; feed it the body's bytes in order.
#[derive(Debug, Clone)]
pub struct TokenFloor {
    /// Open arrays and objects.
    depth: usize,
    /// Whether the container open at depth 1, 2, 3 is an object (deeper ones hold nothing
    /// that is charged, so they are only counted).
    objects: [bool; 3],
    /// The last of `{ [ : , } ]` outside strings: after `{` or `,` in an object comes a key.
    after: u8,
    /// The key whose value is being read at depth 1, and in the message open at depth 3.
    top_key: Field,
    item_key: Field,
    /// The string being read, if inside one, and where its escape stands.
    text: Option<Text>,
    escape: Escape,
    /// Windows of `context` strings that have ended, of the items of `messages` that have
    /// closed, and of the latest `content` of the item open now.
    context: usize,
    messages: usize,
    open_item: usize,
}

impl Default for TokenFloor {
    fn default() -> Self {
        TokenFloor {
            depth: 0,
            objects: [false; 3],
            after: 0,
            top_key: Field::Other,
            item_key: Field::Other,
            text: None,
            escape: Escape::None,
            context: 0,
            messages: 0,
            open_item: 0,
        }
    }
}

impl TokenFloor {
    /// The bound over what was fed so far: the body cannot be charged fewer tokens.
    pub fn at_least(&self) -> usize {
        let open_context = match self.text {
            Some(Text::Context(windows)) => windows.count,
            _ => 0,
        };
        self.context + open_context + self.messages
    }

    /// Reads the next bytes of the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if self.text.is_some() {
                // Outside escapes, a string's bytes up to its next quote or backslash stand for
                // themselves: counted in one pass if the string is charged, skipped if it is
                // neither charged nor a key.
                if self.escape == Escape::None {
                    let rest = &bytes[i..];
                    let run = rest.iter().position(|&b| b == b'"' || b == b'\\').unwrap_or(rest.len());
                    match &mut self.text {
                        Some(Text::Context(windows) | Text::Content(windows)) => windows.push_run(&rest[..run]),
                        Some(Text::Key(name)) => rest[..run].iter().for_each(|&b| name.push(u32::from(b))),
                        _ => {}
                    }
                    i += run;
                    if i == bytes.len() {
                        return;
                    }
                }
                self.string_byte(bytes[i]);
            } else {
                self.structure_byte(bytes[i]);
            }
            i += 1;
        }
    }

    fn structure_byte(&mut self, b: u8) {
        match b {
            b'"' => {
                self.text = Some(self.string_starting());
                self.escape = Escape::None;
            }
            b'{' | b'[' => {
                self.depth += 1;
                if let Some(slot) = self.objects.get_mut(self.depth - 1) {
                    *slot = b == b'{';
                }
                if self.in_item() {
                    self.item_key = Field::Other;
                    self.open_item = 0;
                }
                self.after = b;
            }
            b'}' | b']' => {
                if self.in_item() {
                    self.messages += self.open_item;
                    self.open_item = 0;
                }
                self.depth = self.depth.saturating_sub(1);
                self.after = b;
            }
            b':' | b',' => self.after = b,
            _ => {}
        }
    }

    /// Whether the container open now is an item of the top-level `messages` array.
    fn in_item(&self) -> bool {
        self.depth == 3 && self.objects == [true, false, true] && self.top_key == Field::Messages
    }

    fn string_starting(&self) -> Text {
        let in_object = (1..=3).contains(&self.depth) && self.objects[self.depth - 1];
        if in_object && matches!(self.after, b'{' | b',') {
            return if self.depth == 1 || self.in_item() { Text::Key(KeyName::default()) } else { Text::Other };
        }
        if in_object && self.after == b':' {
            if self.depth == 1 && self.top_key == Field::Context {
                return Text::Context(Windows::default());
            }
            if self.in_item() && self.item_key == Field::Content {
                return Text::Content(Windows::default());
            }
        }
        Text::Other
    }

    fn string_byte(&mut self, b: u8) {
        match self.escape {
            Escape::None => match b {
                b'"' => self.string_ended(),
                b'\\' => self.escape = Escape::Started,
                _ => self.decoded(u32::from(b)),
            },
            Escape::Started => {
                self.escape = Escape::None;
                match b {
                    b'u' => self.escape = Escape::Unicode { digits: 0, value: 0 },
                    b'n' => self.decoded(0x0A),
                    b't' => self.decoded(0x09),
                    b'r' => self.decoded(0x0D),
                    b'f' => self.decoded(0x0C),
                    b'b' => self.decoded(0x08),
                    // `\"`, `\\`, `\/` stand for themselves (and the parser refuses the rest).
                    _ => self.decoded(u32::from(b)),
                }
            }
            Escape::Unicode { digits, value } => {
                let value = value * 16 + char::from(b).to_digit(16).unwrap_or(0);
                if digits == 3 {
                    self.escape = Escape::None;
                    // A surrogate (half of a pair) is `Other`, as the character it makes is.
                    self.decoded(value);
                } else {
                    self.escape = Escape::Unicode { digits: digits + 1, value };
                }
            }
        }
    }

    /// One decoded unit of the string: an ASCII character, or (≥ 0x80) part of another.
    fn decoded(&mut self, code: u32) {
        match &mut self.text {
            Some(Text::Key(name)) => name.push(code),
            Some(Text::Context(windows) | Text::Content(windows)) => windows.push(Class::of(code)),
            _ => {}
        }
    }

    fn string_ended(&mut self) {
        match self.text.take() {
            Some(Text::Key(name)) if self.depth == 1 => self.top_key = name.field(),
            Some(Text::Key(name)) => self.item_key = name.field(),
            Some(Text::Context(windows)) => self.context += windows.count,
            // The item's charged text is its last `content`.
            Some(Text::Content(windows)) => self.open_item = windows.count,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, TokenFloor, Windows};
    use omnimemory_engine::tokens::Encoding;

    /// The rule over a text as it is (what the running bound gives for each charged string).
    fn tokens_at_least(text: &str) -> usize {
        let mut windows = Windows::default();
        for b in text.bytes() {
            windows.push(Class::of(u32::from(b)));
        }
        windows.count
    }

    fn random_texts() -> Vec<String> {
        let alphabet: Vec<char> =
            " aZq  .,!?/\n\t\r\u{c}\u{8}0123456789'\"\\()-_éü\u{301}\u{a0}\u{3000}日本語Ωж😀".chars().collect();
        let mut seed = 11u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut samples = vec![
            "The quick brown fox jumps over the lazy dog. It's 5 o'clock!".to_string(),
            "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n".to_string(),
            "a!\n/b c\u{a0} d e\u{301} f\t g".to_string(),
            "a\n word\t word\\ word\" word".to_string(),
            "word ".repeat(1000),
        ];
        for _ in 0..300 {
            let len = 1 + next(200);
            samples.push((0..len).map(|_| alphabet[next(alphabet.len())]).collect());
        }
        samples
    }

    #[test]
    fn the_byte_scan_never_counts_more_tokens_than_either_encoding() {
        for text in &random_texts() {
            let bound = tokens_at_least(text);
            for encoding in [Encoding::Cl100k, Encoding::O200k, Encoding::Approx] {
                assert!(bound <= encoding.count(text), "{bound} > {encoding:?} count of {text:?}");
            }
        }
        // On prose the bound is close enough to refuse what cannot be paid for.
        let prose = "Nine of ten words here are short and plain, as prose tends to be. ".repeat(100);
        assert!(tokens_at_least(&prose) * 10 >= Encoding::Cl100k.count(&prose) * 7);
    }

    /// Every character written as `\uXXXX` (a surrogate pair above the BMP).
    fn escaped_all(text: &str) -> String {
        let mut out = String::from("\"");
        for unit in text.encode_utf16() {
            out.push_str(&format!("\\u{unit:04X}"));
        }
        out.push('"');
        out
    }

    /// The bound over `body` fed in pieces of `piece` bytes.
    fn floor_of(body: &str, piece: usize) -> usize {
        let mut floor = TokenFloor::default();
        for chunk in body.as_bytes().chunks(piece) {
            floor.feed(chunk);
        }
        floor.at_least()
    }

    #[test]
    fn the_running_bound_is_the_byte_scan_of_the_charged_strings_however_the_body_is_cut() {
        let texts = random_texts();
        for (i, text) in texts.iter().enumerate() {
            let other = &texts[(i + 1) % texts.len()];
            let expected = tokens_at_least(text);
            let plain = serde_json::to_string(text).unwrap();
            let bodies = [
                format!(
                    r#"{{"query": {}, "context": {plain}, "model_id": "gpt-4"}}"#,
                    serde_json::to_string(other).unwrap()
                ),
                format!(r#"{{ "metadata": {{"context": {plain}}}, "context" :{} }}"#, escaped_all(text)),
                format!(r#"{{"junk": [{{"context": {plain}}}], "context": {plain}, "x": {{"a": [1, "b"]}}}}"#),
            ];
            for body in &bodies {
                let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(parsed["context"].as_str(), Some(text.as_str()));
                for piece in [1, 2, 3, 5, 7, 64, body.len()] {
                    assert_eq!(floor_of(body, piece), expected, "{body:?} in pieces of {piece}");
                }
            }
            // Messages: each item's last content counts, other fields and strings do not.
            let body = format!(
                r#"{{"messages": [{{"role": "user", "name": {plain}, "content": {plain}}},
                   {{"content": {plain}, "role": "assistant", "content": {}}}], "query": {plain}}}"#,
                serde_json::to_string(other).unwrap()
            );
            let expected = tokens_at_least(text) + tokens_at_least(other);
            for piece in [1, 3, 64, body.len()] {
                assert_eq!(floor_of(&body, piece), expected, "{body:?} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn raw_escapes_are_decoded_before_the_rule_applies() {
        // The raw bytes `n word` would count; the text is a newline, a space and a word.
        assert_eq!(floor_of(r#"{"context": "a\n word"}"#, 1), 0);
        assert_eq!(floor_of(r#"{"context": "a\u000a word"}"#, 1), 0);
        assert_eq!(floor_of(r#"{"context": "a\u0020word b\u0020\u0077ord"}"#, 1), 3);
        // The bound grows while the context arrives, and an item's content counts when it ends.
        let mut floor = TokenFloor::default();
        floor.feed(br#"{"context": "one two three"#);
        assert_eq!(floor.at_least(), 2);
        let mut floor = TokenFloor::default();
        floor.feed(br#"{"messages": [{"role": "user", "content": "one two three"#);
        assert_eq!(floor.at_least(), 0);
        floor.feed(br#""}, {"#);
        assert_eq!(floor.at_least(), 2);
    }
}
