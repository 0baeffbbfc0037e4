//! The step vocabulary as a reviewer reads it: every phrase with an example, grouped by domain
//! concept. The phrases live next to their definitions (each step file's `PHRASES`); a test
//! checks that every registered step has exactly one phrase whose example it matches, and every
//! example matches exactly one step, so this listing cannot drift from the definitions.

use std::fmt::Write as _;

/// Given, When or Then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    /// Context.
    Given,
    /// Action.
    When,
    /// Expectation.
    Then,
}

impl Keyword {
    /// As written in Gherkin.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Given => "Given",
            Self::When => "When",
            Self::Then => "Then",
        }
    }
}

/// One phrase of the vocabulary.
#[derive(Clone, Copy, Debug)]
pub struct Phrase {
    /// Its keyword.
    pub keyword: Keyword,
    /// The cucumber expression (`a cluster with {int} node(s)`).
    pub expression: &'static str,
    /// A step text it matches.
    pub example: &'static str,
    /// What it does, in a sentence.
    pub help: &'static str,
    /// Whether it takes a doc string (`"""`) or a table (`|`) below it.
    pub argument: Argument,
}

/// What a step carries below its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argument {
    /// Nothing.
    None,
    /// A doc string.
    DocString,
    /// A data table.
    Table,
}

/// A phrase with its keyword.
pub const fn given(expression: &'static str, example: &'static str, help: &'static str) -> Phrase {
    Phrase {
        keyword: Keyword::Given,
        expression,
        example,
        help,
        argument: Argument::None,
    }
}

/// A When phrase.
pub const fn when(expression: &'static str, example: &'static str, help: &'static str) -> Phrase {
    Phrase {
        keyword: Keyword::When,
        expression,
        example,
        help,
        argument: Argument::None,
    }
}

/// A Then phrase.
pub const fn then(expression: &'static str, example: &'static str, help: &'static str) -> Phrase {
    Phrase {
        keyword: Keyword::Then,
        expression,
        example,
        help,
        argument: Argument::None,
    }
}

impl Phrase {
    /// The same phrase, taking a doc string.
    pub const fn with_doc_string(mut self) -> Self {
        self.argument = Argument::DocString;
        self
    }

    /// The same phrase, taking a table.
    pub const fn with_table(mut self) -> Self {
        self.argument = Argument::Table;
        self
    }
}

/// The vocabulary, by concept (the step file's name) in reading order.
pub fn concepts() -> Vec<(&'static str, &'static [Phrase])> {
    super::steps::concepts()
}

/// Every phrase.
pub fn all() -> Vec<Phrase> {
    concepts()
        .into_iter()
        .flat_map(|(_, p)| p.iter().copied())
        .collect()
}

/// What the parameters of the expressions match.
pub const PARAMETERS: &str = "{int} a number, {word} one word, {string} \"quoted text\",\n\
{duration} 30s / 2m / 60 seconds, {durations} 0s, 10s and 20s,\n\
{phase} Pending|Running|Succeeded|Failed|Unknown, {probe} liveness|readiness|startup,\n\
{component} controller-manager|scheduler,\n\
{object} pod web-* | deployment web | replicaset web-* | service web | endpoints web |\n\
         node node-1 | lease kube-scheduler | the pods of deployment web,\n\
{pods} only the pod forms of {object}. `*` in a name matches any run of characters.\n\
Keywords are for the reader: any of Given/When/Then/And/But runs the step of that text.\n";

/// The vocabulary as text (without definition sites, which `kubespec steps` adds), as the
/// README shows it.
pub fn render() -> String {
    let mut out = String::from(PARAMETERS);
    out.push('\n');
    for (concept, phrases) in concepts() {
        let _ = writeln!(out, "== {concept} ==\n");
        for p in phrases {
            let _ = writeln!(out, "{} {}", p.keyword.as_str(), p.expression);
            let _ = writeln!(out, "    e.g. {} {}", p.keyword.as_str(), p.example);
            match p.argument {
                Argument::DocString => {
                    let _ = writeln!(out, "         followed by a \"\"\" doc string");
                }
                Argument::Table => {
                    let _ = writeln!(out, "         followed by a | table |");
                }
                Argument::None => {}
            }
            let _ = writeln!(out, "    {}", p.help);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    /// The README's vocabulary is this listing, so it cannot drift from the definitions.
    #[test]
    fn the_readme_shows_the_vocabulary() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let begin = "<!-- vocabulary:begin (generated: KUBESPEC_WRITE_README=1 cargo test the_readme_shows_the_vocabulary) -->\n```text\n";
        let end = "```\n<!-- vocabulary:end -->";
        let (Some(b), Some(e)) = (readme.find(begin), readme.find(end)) else {
            panic!("README.md lacks the vocabulary markers");
        };
        let shown = &readme[b + begin.len()..e];
        let want = super::render();
        if shown != want && std::env::var_os("KUBESPEC_WRITE_README").is_some() {
            let updated = format!("{}{want}{}", &readme[..b + begin.len()], &readme[e..]);
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"), updated).unwrap();
            return;
        }
        assert_eq!(shown, want, "the README's vocabulary is stale: run KUBESPEC_WRITE_README=1 cargo test the_readme_shows_the_vocabulary");
    }
}
