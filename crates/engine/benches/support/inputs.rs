//! Deterministic benchmark inputs, shared by `benches/engine.rs` and `examples/speed.rs`
//! (included with `#[path]`).

#![allow(dead_code)]

/// A small deterministic generator (LCG).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn draw(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.draw() % v.len()]
    }
}

pub const WORDS: &[&str] = &[
    "the",
    "song",
    "was",
    "released",
    "by",
    "band",
    "in",
    "1971",
    "album",
    "first",
    "single",
    "written",
    "Barry",
    "Robin",
    "Gibb",
    "chart",
    "reached",
    "number",
    "one",
    "weeks",
    "United",
    "States",
    "film",
    "directed",
    "Steven",
    "Spielberg",
    "based",
    "life",
    "of",
    "river",
    "mountain",
    "capital",
    "city",
    "population",
    "3.2",
    "million",
    "war",
    "treaty",
    "signed",
    "president",
    "elected",
    "season",
    "episode",
    "character",
    "played",
    "actor",
    "protein",
    "cell",
    "membrane",
    "energy",
    "and",
    "a",
    "with",
    "for",
    "its",
    "which",
];

fn sentence(rng: &mut Rng, out: &mut String) {
    let len = 12 + rng.draw() % 14;
    for w in 0..len {
        let word = rng.pick(WORDS);
        if w == 0 {
            let mut c = word.chars();
            out.extend(c.next().unwrap().to_uppercase());
            out.push_str(c.as_str());
        } else {
            out.push(' ');
            out.push_str(word);
        }
    }
    out.push('.');
}

/// A multi-passage text in the shape of the nq-multidoc items (20 passages ≈ 2,500 tokens).
pub fn passages(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for p in 0..n {
        if p > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&format!("Title: Passage {p} {}\n", rng.pick(WORDS)));
        for s in 0..5 {
            sentence(&mut rng, &mut out);
            if s < 4 {
                out.push(' ');
            }
        }
    }
    out
}

/// A pretty-printed JSON array of API-style records (`n` = 350 ≈ 100,000 tokens).
pub fn json_records(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let cities = ["Lisbon", "Osaka", "Nairobi", "Quito", "Tallinn", "Perth"];
    let mut recs = Vec::with_capacity(n);
    for i in 0..n {
        let mut about = String::new();
        sentence(&mut rng, &mut about);
        let tags: Vec<String> =
            (0..1 + rng.draw() % 4).map(|_| format!("\"{}\"", rng.pick(WORDS).to_lowercase())).collect();
        let orders: Vec<String> = (0..2 + rng.draw() % 5)
            .map(|k| {
                format!(
                    "      {{\n        \"order_id\": \"ord-{i:05}-{k}\",\n        \"amount\": {}.{:02},\n        \"currency\": \"EUR\",\n        \"status\": \"{}\"\n      }}",
                    rng.draw() % 900,
                    rng.draw() % 100,
                    ["paid", "refunded", "pending"][rng.draw() % 3]
                )
            })
            .collect();
        recs.push(format!(
            "  {{\n    \"id\": {i},\n    \"uuid\": \"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}\",\n    \"name\": \"{} {}\",\n    \"email\": \"user{i}@example.com\",\n    \"active\": {},\n    \"address\": {{\n      \"city\": \"{}\",\n      \"zip\": \"{:05}\"\n    }},\n    \"tags\": [{}],\n    \"about\": \"{about}\",\n    \"orders\": [\n{}\n    ]\n  }}",
            rng.draw(),
            rng.draw() % 0xffff,
            rng.draw() % 0xfff,
            rng.draw() % 0xfff,
            rng.draw() as u64 * 7919,
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.draw().is_multiple_of(2),
            cities[rng.draw() % cities.len()],
            rng.draw() % 100_000,
            tags.join(", "),
            orders.join(",\n")
        ));
    }
    format!("[\n{}\n]\n", recs.join(",\n"))
}

/// A service log with repeated templates, warnings, errors and stack traces
/// (`n` = 2,300 lines ≈ 100,000 tokens).
pub fn service_log(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let ts =
            format!("2026-03-14T{:02}:{:02}:{:02}.{:03}Z", (i / 3600) % 24, (i / 60) % 60, i % 60, rng.draw() % 1000);
        let r = rng.draw() % 100;
        let line = if r < 55 {
            format!(
                "{ts} INFO  http: GET /api/v1/users/{}/orders status=200 duration={}ms request_id={:016x}",
                rng.draw() % 5000,
                rng.draw() % 300,
                rng.draw() as u64 * 65537
            )
        } else if r < 75 {
            format!("{ts} DEBUG cache: hit key=session:{:08x} ttl={}s", rng.draw(), rng.draw() % 3600)
        } else if r < 88 {
            format!(
                "{ts} INFO  worker-{}: processed batch {} ({} items) in {}ms",
                rng.draw() % 8,
                i,
                rng.draw() % 500,
                rng.draw() % 2000
            )
        } else if r < 96 {
            format!(
                "{ts} WARN  db: slow query took {}ms: SELECT * FROM orders WHERE user_id = {}",
                500 + rng.draw() % 5000,
                rng.draw() % 5000
            )
        } else if r < 99 {
            format!(
                "{ts} ERROR payment: charge failed for order ord-{:05}: upstream timeout after {}ms\n    at PaymentClient.charge (payment/client.js:{}:17)\n    at async OrderService.checkout (orders/service.js:88:5)\n    at async Router.handle (http/router.js:41:9)",
                rng.draw() % 99_999,
                rng.draw() % 30_000,
                100 + rng.draw() % 50
            )
        } else {
            format!("{ts} {} worker-{}: {}", rng.pick(&["INFO ", "WARN ", "ERROR"]), rng.draw() % 8, {
                let mut s = String::new();
                sentence(&mut rng, &mut s);
                s
            })
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A Rust module with structs, impls and functions of varied length
/// (`n` = 175 items ≈ 100,000 tokens).
pub fn rust_code(n: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::from("use std::collections::HashMap;\nuse std::fmt;\nuse std::io::{self, Read, Write};\n\n");
    for i in 0..n {
        let name = format!("{}{}", rng.pick(&["Order", "Ledger", "Cache", "Route"]), i);
        out.push_str(&format!(
            "/// Keeps the {} of one {}.\n#[derive(Debug, Clone, Default)]\npub struct {name} {{\n    pub id: u64,\n    pub label: String,\n    entries: HashMap<String, u32>,\n}}\n\n",
            rng.pick(WORDS),
            rng.pick(WORDS)
        ));
        out.push_str(&format!("impl {name} {{\n"));
        for m in 0..2 + rng.draw() % 3 {
            out.push_str(&format!(
                "    /// Updates entry {m} of the {}.\n    pub fn update_{m}(&mut self, key: &str, delta: u32) -> Option<u32> {{\n",
                rng.pick(WORDS)
            ));
            for s in 0..2 + rng.draw() % 8 {
                out.push_str(&match rng.draw() % 4 {
                    0 => format!(
                        "        let v{s} = self.entries.get(key).copied().unwrap_or({});\n",
                        rng.draw() % 100
                    ),
                    1 => format!(
                        "        if delta > {} {{\n            self.entries.insert(key.to_string(), delta * {});\n        }}\n",
                        rng.draw() % 50,
                        rng.draw() % 9 + 1
                    ),
                    2 => format!(
                        "        // {} {} the {}.\n        self.id = self.id.wrapping_add({});\n",
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.draw() % 1000
                    ),
                    _ => format!(
                        "        let total: u32 = self.entries.values().sum::<u32>() + {};\n",
                        rng.draw() % 77
                    ),
                });
            }
            out.push_str("        self.entries.get(key).copied()\n    }\n\n");
        }
        out.push_str("}\n\n");
        out.push_str(&format!(
            "impl fmt::Display for {name} {{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        write!(f, \"{name}({{}}, {{}})\", self.id, self.label)\n    }}\n}}\n\n"
        ));
    }
    out
}
