//! Questions that need two passages: the passages a question names by title, and the passage
//! whose title a relevant passage names (the bridge to the second hop), survive a tight budget.

use omnimemory_engine::compress::{Budget, CompressRequest, Granularity, compress};
use omnimemory_engine::tokens::Encoding;

fn run(text: &str, query: &str, tokens: usize) -> String {
    let c = compress(
        &CompressRequest {
            context: text,
            query: Some(query),
            budget: Budget::Tokens(tokens),
            granularity: Granularity::Sentence,
        },
        Encoding::Cl100k,
    );
    assert!(c.compressed_tokens <= tokens, "{} > {tokens}", c.compressed_tokens);
    c.text
}

/// Eight distractor passages about other films and directors, each with a title and two
/// sentences, so the answer has to be found by following the question's links.
fn distractors() -> Vec<String> {
    let films = [
        ("Night Harbour", "Anna Berg", "1952"),
        ("The Copper Road", "Louis Martin", "1947"),
        ("Summer of Glass", "Karl Weiss", "1961"),
        ("A Quiet Engine", "Rosa Lind", "1958"),
        ("The Last Ferry", "Tomas Varga", "1949"),
        ("River of Salt", "Helen Moss", "1955"),
        ("The Paper Crown", "Ivo Petrov", "1963"),
        ("Winter Orchard", "Marta Kovac", "1950"),
    ];
    films
        .iter()
        .map(|(t, d, y)| {
            format!(
                "Title: {t}\n{t} is a {y} drama film directed by {d}. Its director died young, and the \
                 film opened to mixed reviews from critics of the day."
            )
        })
        .collect()
}

#[test]
fn the_second_hop_named_by_the_first_passage_is_kept() {
    let mut passages = distractors();
    passages.insert(
        2,
        "Title: The Corpse Vanishes\nThe Corpse Vanishes is a 1942 horror film directed by Wallace Fox. \
         It stars Bela Lugosi as a mad scientist who preserves his wife's youth."
            .to_string(),
    );
    passages.insert(
        7,
        "Title: Wallace Fox\nWallace Fox was an American filmmaker of westerns and serials. \
         He passed away on 30 June 1958 in Hollywood."
            .to_string(),
    );
    let context = passages.join("\n\n");
    let out = run(&context, "When did the director of film The Corpse Vanishes die?", 60);
    assert!(out.contains("directed by Wallace Fox"), "{out}");
    assert!(out.contains("He passed away on 30 June 1958"), "{out}");
}

#[test]
fn both_passages_a_comparison_names_are_kept() {
    let mut passages = distractors();
    passages.insert(
        1,
        "Title: Duty Is Duty\nDuty Is Duty is a 1931 German comedy film directed by Carl Boese. \
         It was produced in Berlin."
            .to_string(),
    );
    passages.insert(3, "Title: Do Your Duty\nThis is a lost film. Do Your Duty is a 1928 silent film.".to_string());
    passages.insert(
        6,
        "Title: Frontier Woman\nFrontier Woman is a 1956 American Western film directed by Ron Ormond. \
         It was Ron Howard's film debut."
            .to_string(),
    );
    let context = passages.join("\n\n");
    let out = run(&context, "Which film came out first, Duty Is Duty or Frontier Woman?", 60);
    assert!(out.contains("Duty Is Duty is a 1931"), "{out}");
    assert!(out.contains("Frontier Woman is a 1956"), "{out}");
}
