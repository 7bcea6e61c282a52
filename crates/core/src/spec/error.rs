//! Errors in a pipeline file, each pointing at file:line:column with the offending snippet.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
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
            message: message.into(),
            pos,
            help: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
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
            issues,
        }
    }

    /// Byte offset of a line:column (column counted in characters).
    fn offset(&self, pos: Pos) -> usize {
        let mut offset = 0;
        for (i, line) in self.source_text.split_inclusive('\n').enumerate() {
            if i + 1 == pos.line {
                let col: usize = line
                    .chars()
                    .take(pos.column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + col;
            }
            offset += line.len();
        }
        self.source_text.len()
    }

    /// Length of the token that starts at `offset`: up to the end of the word or line.
    fn token_len(&self, offset: usize) -> usize {
        let rest = &self.source_text[offset.min(self.source_text.len())..];
        let end = rest.find(['\n', ',', ']', '}']).unwrap_or(rest.len());
        // At least one character where there is one; zero at the end of the text.
        rest[..end].trim_end().len().max(1).min(rest.len())
    }
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
    source: NamedSource<Arc<String>>,
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
        self.label.as_ref().map(|_| &self.source as &dyn SourceCode)
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
            let label = issue.pos.map(|p| {
                let off = self.offset(p);
                LabeledSpan::new(Some("here".into()), off, self.token_len(off))
            });
            let diag = IssueDiagnostic {
                text,
                help: issue.help.clone(),
                label,
                source: NamedSource::new(self.path.display().to_string(), self.source_text.clone()),
            };
            if handler.render_report(&mut out, &diag).is_err() {
                out.push_str(&diag.text);
                out.push('\n');
            }
        }
        out
    }
}
