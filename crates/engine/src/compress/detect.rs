//! Placeholder owned by the structure helper.

use super::ContentType;

pub fn detect(text: &str) -> ContentType {
    let _ = text;
    ContentType::Prose
}
