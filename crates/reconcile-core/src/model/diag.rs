//! Diagnostics: a problem in the desired state, its file:line:col and what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnostic {
    pub pos: Option<Pos>,
    pub message: String,
    /// One sentence saying what to do.
    pub help: String,
}

impl Diagnostic {
    pub fn at(pos: Pos, message: impl Into<String>, help: impl Into<String>) -> Self {
        Diagnostic {
            pos: Some(pos),
            message: message.into(),
            help: help.into(),
        }
    }
    pub fn nowhere(message: impl Into<String>, help: impl Into<String>) -> Self {
        Diagnostic {
            pos: None,
            message: message.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(p) => write!(f, "error: {p}: {}", self.message)?,
            None => write!(f, "error: {}", self.message)?,
        }
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Maps byte offsets of one file to 1-based line and column (in characters).
pub struct LineIndex {
    file: PathBuf,
    text: String,
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(file: &Path, text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            file: file.to_path_buf(),
            text: text.to_string(),
            starts,
        }
    }
    /// The file this index reads.
    pub fn file(&self) -> &Path {
        &self.file
    }
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        Pos {
            file: self.file.clone(),
            line,
            col,
        }
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            // `cidr` for `cidr_block`: a prefix is as good a hint as a typo.
            let prefix = word.len() >= 3 && c.starts_with(word);
            (if prefix { 1 } else { edit_distance(word, c) }, c)
        })
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_to_line_col() {
        let idx = LineIndex::new(Path::new("a.toml"), "ab\ncdé\nx");
        assert_eq!((idx.pos(0).line, idx.pos(0).col), (1, 1));
        assert_eq!((idx.pos(4).line, idx.pos(4).col), (2, 2));
        assert_eq!((idx.pos(8).line, idx.pos(8).col), (3, 1));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("cidr", ["cidr_block", "vpc_id"]),
            Some("cidr_block")
        );
        assert_eq!(suggest("banana", ["cidr_block", "vpc_id"]), None);
        assert_eq!(
            suggest("cidr_blok", ["cidr_block", "vpc_id"]),
            Some("cidr_block")
        );
    }
}
