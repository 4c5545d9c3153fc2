//! Terminal layout shared by the admin commands: banners, aligned labels, thousands
//! separators, the 40-character usage bar, and tables (comfy-table).

use std::fmt::Write as _;

const RULE_WIDTH: usize = 60;
const LABEL_WIDTH: usize = 18;
pub const BAR_WIDTH: usize = 40;

/// Text output under construction.
#[derive(Default)]
pub struct Page(String);

impl Page {
    pub fn banner(&mut self, title: &str) -> &mut Self {
        let rule = "=".repeat(RULE_WIDTH);
        let _ = writeln!(self.0, "{rule}\n  {title}\n{rule}");
        self
    }

    pub fn section(&mut self, title: &str) -> &mut Self {
        let _ = writeln!(self.0, "\n  {title}\n  {}", "-".repeat(title.chars().count()));
        self
    }

    pub fn field(&mut self, label: &str, value: impl std::fmt::Display) -> &mut Self {
        let label = format!("{label}:");
        let _ = writeln!(self.0, "  {label:<LABEL_WIDTH$} {value}");
        self
    }

    pub fn line(&mut self, text: impl std::fmt::Display) -> &mut Self {
        let _ = writeln!(self.0, "{text}");
        self
    }

    pub fn table(&mut self, table: &comfy_table::Table) -> &mut Self {
        let _ = writeln!(self.0, "{table}");
        self
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `[██████░░░…] 15.0%`: 40 cells, filled in proportion, clamped to the bar.
pub fn usage_bar(used: u64, limit: Option<u64>) -> String {
    let Some(limit) = limit else {
        return format!("[{}] unlimited", "░".repeat(BAR_WIDTH));
    };
    let percent = if limit == 0 { 100.0 } else { used as f64 * 100.0 / limit as f64 };
    let filled = ((percent / 100.0) * BAR_WIDTH as f64).round().clamp(0.0, BAR_WIDTH as f64) as usize;
    format!("[{}{}] {percent:.1}%", "█".repeat(filled), "░".repeat(BAR_WIDTH - filled))
}

pub fn new_table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED).set_header(header.iter().copied());
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000_000), "100,000,000");
    }

    #[test]
    fn usage_bar_is_forty_cells_wide() {
        for (used, limit, filled) in [(0, 100, 0), (25, 100, 10), (100, 100, 40), (500, 100, 40)] {
            let bar = usage_bar(used, Some(limit));
            let inside: String = bar.chars().skip(1).take(BAR_WIDTH).collect();
            assert_eq!(inside.chars().filter(|&c| c == '█').count(), filled, "{bar}");
            assert_eq!(inside.chars().count(), BAR_WIDTH);
        }
        assert!(usage_bar(25, Some(100)).ends_with("] 25.0%"));
        assert!(usage_bar(5, None).ends_with("unlimited"));
    }
}
