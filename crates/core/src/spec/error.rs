//! Errors in a pipeline file, each pointing at file:line:column with the offending snippet.

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A 1-based line and column in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn from_saphyr(loc: serde_saphyr::Location) -> Option<Pos> {
        let (line, column) = (loc.line() as usize, loc.column() as usize);
        (line > 0).then_some(Pos {
            line,
            column: column.max(1),
        })
    }
}

/// One problem found in a pipeline file.
#[derive(Debug, Clone)]
pub struct SpecIssue {
    pub message: String,
    pub pos: Option<Pos>,
    pub help: Option<String>,
}

impl SpecIssue {
    pub fn new(message: impl Into<String>, pos: Option<Pos>) -> Self {
        SpecIssue {
            message: shorten(message.into()),
            pos,
            help: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shorten(help.into()));
        self
    }
}

/// The longest word of a message shown whole: messages quote values from the file, and a
/// 100 KB value must not become a 100 KB message.
const MAX_WORD: usize = 120;

/// `text` with every run of more than `MAX_WORD` non-space characters cut, saying how long it was.
fn shorten(text: String) -> String {
    /// The longest message in all.
    const MAX_MESSAGE: usize = 1000;
    if text.len() <= MAX_WORD {
        return text;
    }
    let mut out = String::with_capacity(text.len().min(4 * MAX_WORD));
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.char_indices().nth(MAX_WORD) {
            Some((cut, _)) => {
                out.push_str(&word[..cut]);
                out.push_str(&format!("… ({} characters)", word.chars().count()));
            }
            None => out.push_str(word),
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX_MESSAGE) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_and_messages_are_cut_and_say_how_long_they_were() {
        let long = format!("unknown kind `{}` here", "k".repeat(5000));
        let short = shorten(long);
        assert!(short.len() < 200, "{short}");
        assert!(
            short.contains("(5002 characters)") && short.ends_with(" here"),
            "{short}"
        );
        let many = "ab ".repeat(2000);
        assert_eq!(shorten(many).chars().count(), 1001);
        assert_eq!(shorten("fine as it is".into()), "fine as it is");
    }

    #[test]
    fn one_problem_in_every_instance_of_a_matrix_is_reported_once() {
        let at = |line| Some(Pos { line, column: 3 });
        let issue = |m: &str, pos| SpecIssue::new(m, pos);
        let issues = vec![
            issue(
                "stage `e@seed=0,method=camu`: unknown parameter `cka`",
                at(5),
            ),
            issue(
                "stage `e@seed=1,method=scrub`: unknown parameter `cka`",
                at(5),
            ),
            issue(
                "stage `e@seed=2,method=ssd`: unknown parameter `cka`",
                at(5),
            ),
            // Another problem, another place, or no place: kept apart.
            issue("stage `e@seed=0,method=camu`: unknown parameter `x`", at(5)),
            issue("stage `f@seed=0`: unknown parameter `cka`", at(9)),
            issue("no stages", None),
            issue("no stages", None),
        ];
        let got: Vec<String> = collapse(issues).into_iter().map(|i| i.message).collect();
        assert_eq!(
            got,
            [
                "stage `e@seed=0,method=camu`: unknown parameter `cka` (and the same in 2 more instances of this stage)",
                "stage `e@seed=0,method=camu`: unknown parameter `x`",
                "stage `f@seed=0`: unknown parameter `cka`",
                "no stages",
                "no stages",
            ]
        );
        assert_eq!(instance_free("a `b@c=1` d `e` f `g"), "a `b` d `e` f `g");
    }
}

/// Every problem found in one pipeline file; nothing runs while any exist.
#[derive(Debug)]
pub struct SpecError {
    pub path: PathBuf,
    source_text: Arc<String>,
    pub issues: Vec<SpecIssue>,
}

impl SpecError {
    pub fn new(path: &Path, source_text: Arc<String>, issues: Vec<SpecIssue>) -> Self {
        SpecError {
            path: path.to_path_buf(),
            source_text,
            issues: collapse(issues),
        }
    }

    /// The lines around `pos` as the snippet shows them, each cut to a window of columns around
    /// the problem, so a 100 KB line shows as one screen line; with the label's span in it.
    fn excerpt(&self, pos: Pos) -> (Excerpt, usize, usize) {
        let first = pos.line.saturating_sub(1 + CONTEXT_LINES);
        let col = pos.column.saturating_sub(1);
        let from = col.saturating_sub(WINDOW / 3);
        let mut text = String::new();
        let mut label = (0, 0);
        for (i, line) in self
            .source_text
            .lines()
            .enumerate()
            .skip(first)
            .take(pos.line - first + CONTEXT_LINES)
        {
            if i > first {
                text.push('\n');
            }
            let chars = line.chars().count();
            if from > 0 && chars > from {
                text.push('…');
            }
            if i + 1 == pos.line {
                let before: usize = line
                    .chars()
                    .skip(from)
                    .take(col - from.min(col))
                    .map(char::len_utf8)
                    .sum();
                let rest: String = line.chars().skip(col).take(WINDOW).collect();
                let end = rest.find(['\n', ',', ']', '}']).unwrap_or(rest.len());
                label = (text.len() + before, rest[..end].trim_end().len().max(1));
            }
            text.extend(line.chars().skip(from).take(WINDOW));
            if chars > from + WINDOW {
                text.push('…');
            }
        }
        let (offset, len) = label;
        let len = len
            .min(text.len().saturating_sub(offset))
            .max(usize::from(offset < text.len()));
        let excerpt = Excerpt {
            name: self.path.display().to_string(),
            text,
            first_line: first,
            column: col,
        };
        (excerpt, offset, len)
    }
}

/// Lines of context the snippet shows above and below the problem.
const CONTEXT_LINES: usize = 1;
/// Characters of each line the snippet shows.
const WINDOW: usize = 120;

/// A few lines of the pipeline file, cut to a window of columns, numbered as in the file.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// 0-based line number of the excerpt's first line in the file.
    first_line: usize,
    /// 0-based column of the problem in the file, which the snippet's header names.
    column: usize,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self.text.as_str().read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            *c.span(),
            c.line() + self.first_line,
            self.column,
            c.line_count(),
        )))
    }
}

/// The message with every stage instance name (`` `base@bindings` ``) cut to its base: the
/// same problem in each instance of a matrix reads the same.
fn instance_free(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find('`') else { break };
        let quoted = &rest[..close];
        out.push_str(quoted.split_once('@').map_or(quoted, |(base, _)| base));
        out.push('`');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// One issue per problem and position: the same problem in N instances of a matrix stage is
/// reported once, with the others counted, instead of N times.
fn collapse(issues: Vec<SpecIssue>) -> Vec<SpecIssue> {
    let mut out: Vec<(SpecIssue, String, usize)> = Vec::new();
    for issue in issues {
        let key = instance_free(&issue.message);
        match out
            .iter_mut()
            .find(|(o, k, _)| o.pos == issue.pos && *k == key && issue.pos.is_some())
        {
            Some(o) => o.2 += 1,
            None => out.push((issue, key, 0)),
        }
    }
    out.into_iter()
        .map(|(mut issue, _, more)| {
            if more > 0 {
                issue.message = format!(
                    "{} (and the same in {more} more instance{} of this stage)",
                    issue.message,
                    if more == 1 { "" } else { "s" }
                );
            }
            issue
        })
        .collect()
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The plain form names file:line:column for each problem, so logs and --json carry it too.
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match issue.pos {
                Some(p) => write!(
                    f,
                    "{}:{}:{}: {}",
                    self.path.display(),
                    p.line,
                    p.column,
                    issue.message
                )?,
                None => write!(f, "{}: {}", self.path.display(), issue.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// One issue as a miette diagnostic with a label on the offending span.
#[derive(Debug)]
struct IssueDiagnostic {
    text: String,
    help: Option<String>,
    label: Option<LabeledSpan>,
    source: Option<Excerpt>,
}

impl fmt::Display for IssueDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl std::error::Error for IssueDiagnostic {}
impl Diagnostic for IssueDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label
            .clone()
            .map(|l| Box::new(std::iter::once(l)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

impl SpecError {
    /// Renders every issue with miette's graphical handler (snippet, label, help).
    pub fn render(&self, color: bool) -> String {
        let handler = if color {
            miette::GraphicalReportHandler::new()
        } else {
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        };
        let mut out = String::new();
        for issue in &self.issues {
            let text = match issue.pos {
                Some(p) => format!(
                    "{}:{}:{}: {}",
                    self.path.display(),
                    p.line,
                    p.column,
                    issue.message
                ),
                None => format!("{}: {}", self.path.display(), issue.message),
            };
            let (label, source) = match issue.pos {
                Some(p) if p.line <= self.source_text.lines().count() => {
                    let (excerpt, off, len) = self.excerpt(p);
                    (
                        Some(LabeledSpan::new(Some("here".into()), off, len)),
                        Some(excerpt),
                    )
                }
                _ => (None, None),
            };
            let diag = IssueDiagnostic {
                text,
                help: issue.help.clone(),
                label,
                source,
            };
            if handler.render_report(&mut out, &diag).is_err() {
                out.push_str(&diag.text);
                out.push('\n');
            }
        }
        out
    }
}
