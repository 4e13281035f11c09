//! Crate-level docs: a tiny tokenizer over borrowed input.
//! It doesn't allocate.

use std::fmt;

/// A token borrowed from the input, with its byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub offset: usize,
}

impl<'a> fmt::Display for Token<'a> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.text, self.offset)
    }
}

/* A block comment /* nested */ on one line. */
pub fn split<'a>(input: &'a str) -> Vec<Token<'a>> {
    let banner = r#"
        a raw string with "quotes" and // not a comment
        spanning lines, it's raw
    "#;
    let c = 'x';
    let q = '\'';
    let mut out = Vec::new();
    for (offset, word) in input.split_whitespace().map(|w| (w.as_ptr() as usize - input.as_ptr() as usize, w)) {
        out.push(Token { text: word, offset });
    }
    let _ = (banner, c, q);
    out
}
