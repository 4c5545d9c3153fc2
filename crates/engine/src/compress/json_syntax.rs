//! An iterative JSON syntax check and minifier, for the engine's JSON safety net.
//!
//! `serde_json` stops at 128 levels of nesting; this scanner has no depth limit and no
//! recursion, so "JSON in gives JSON out" also holds for deeply nested documents. It builds no
//! values: it only checks RFC 8259 syntax and rewrites insignificant white space.

/// The one answer to "is it JSON?": the trimmed text is an object or an array, and valid.
pub fn is_json(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(['{', '[']) && minify(t).is_some()
}

/// The document in compact form (insignificant white space dropped, then one space after each
/// `:` and `,`, as `json::compress_json` renders), or `None` when it is not valid JSON.
pub fn minify(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // Stack of open containers: b'{' or b'['.
    let mut stack: Vec<u8> = Vec::new();
    // What may come next.
    #[derive(PartialEq, Clone, Copy)]
    enum Want {
        Value,
        ValueOrClose, // right after '['
        KeyOrClose,   // right after '{'
        Key,          // after ',' in an object
        Colon,
        CommaOrClose,
        End,
    }
    let mut want = Want::Value;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        match want {
            Want::End => return None,
            Want::Colon => {
                if c != b':' {
                    return None;
                }
                out.push_str(": ");
                i += 1;
                want = Want::Value;
            }
            Want::CommaOrClose => {
                let top = *stack.last()?;
                if c == b',' {
                    out.push_str(", ");
                    want = if top == b'{' { Want::Key } else { Want::Value };
                } else if (c == b'}' && top == b'{') || (c == b']' && top == b'[') {
                    out.push(c as char);
                    stack.pop();
                    want = if stack.is_empty() { Want::End } else { Want::CommaOrClose };
                } else {
                    return None;
                }
                i += 1;
            }
            Want::Key | Want::KeyOrClose => {
                if c == b'}' && want == Want::KeyOrClose {
                    out.push('}');
                    stack.pop();
                    want = if stack.is_empty() { Want::End } else { Want::CommaOrClose };
                    i += 1;
                } else if c == b'"' {
                    let end = string_end(b, i)?;
                    out.push_str(&text[i..end]);
                    i = end;
                    want = Want::Colon;
                } else {
                    return None;
                }
            }
            Want::Value | Want::ValueOrClose => {
                if c == b']' && want == Want::ValueOrClose {
                    out.push(']');
                    stack.pop();
                    want = if stack.is_empty() { Want::End } else { Want::CommaOrClose };
                    i += 1;
                    continue;
                }
                let end = match c {
                    b'{' | b'[' => {
                        stack.push(c);
                        out.push(c as char);
                        want = if c == b'{' { Want::KeyOrClose } else { Want::ValueOrClose };
                        i += 1;
                        continue;
                    }
                    b'"' => string_end(b, i)?,
                    b't' if b[i..].starts_with(b"true") => i + 4,
                    b'f' if b[i..].starts_with(b"false") => i + 5,
                    b'n' if b[i..].starts_with(b"null") => i + 4,
                    b'-' | b'0'..=b'9' => number_end(b, i)?,
                    _ => return None,
                };
                out.push_str(&text[i..end]);
                i = end;
                want = if stack.is_empty() { Want::End } else { Want::CommaOrClose };
            }
        }
    }
    (want == Want::End).then_some(out)
}

/// Index just past the string starting at `b[i] == '"'`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                let e = *b.get(i + 1)?;
                if e == b'u' {
                    if b.len() < i + 6 || !b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                } else if matches!(e, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                    i += 2;
                } else {
                    return None;
                }
            }
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
    None
}

/// Index just past the number starting at `i` (RFC 8259 grammar).
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i > s).then_some(i)
    };
    if b[i] == b'-' {
        i += 1;
    }
    if b.get(i) == Some(&b'0') {
        i += 1;
    } else {
        i = digits(b, i)?;
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::minify;

    #[test]
    fn agrees_with_serde_json_on_small_documents() {
        for doc in [
            "{}",
            "[]",
            "0",
            "-1.5e+3",
            "\"a\\u00e9\\n\"",
            "true",
            "null",
            "{\"a\": [1, 2, {\"b\": null}], \"c\": \"x y\"}",
            " [ 1 , 2 ] ",
        ] {
            let m = minify(doc).unwrap_or_else(|| panic!("{doc}"));
            let a: serde_json::Value = serde_json::from_str(doc).unwrap();
            let b: serde_json::Value = serde_json::from_str(&m).unwrap();
            assert_eq!(a, b);
        }
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "{} {}", "[1 2]", "tru"] {
            assert!(minify(bad).is_none(), "{bad}");
            assert!(serde_json::from_str::<serde_json::Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_depth_limit() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(minify(&deep).as_deref(), Some(deep.as_str()));
    }
}
