//! Lexical helpers: statement splitting and keyword matching for KalamDB-specific statements
//! that `sqlparser` does not know (CREATE NAMESPACE, CREATE USER, topics, EXECUTE AS USER...).

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Splits a batch at top-level `;`, honouring quotes and comments. Empty pieces are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                cur.push(c);
                let mut closed = false;
                while let Some(d) = chars.next() {
                    cur.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            cur.push(c);
                            chars.next();
                        } else {
                            closed = true;
                            break;
                        }
                    }
                }
                if !closed {
                    return Err("Unterminated quoted string".into());
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        cur.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                cur.push(' ');
            }
            ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    Ok(out)
}

/// Finds the byte range of the parenthesised group starting at the first `(` at or after `from`.
/// Returns (open index, close index).
pub fn paren_group(s: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let open = from + s[from..].find('(')?;
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                if i + 1 < bytes.len() && bytes[i + 1] == q {
                    i += 1;
                } else {
                    quote = None;
                }
            }
        } else if b == b'\'' || b == b'"' {
            quote = Some(b);
        } else if b == b'(' {
            depth += 1;
        } else if b == b')' {
            depth -= 1;
            if depth == 0 {
                return Some((open, i));
            }
        }
        i += 1;
    }
    None
}

/// A cursor over significant tokens.
pub struct Toks {
    t: Vec<Token>,
    i: usize,
}

impl Toks {
    pub fn new(sql: &str) -> Result<Toks, String> {
        let t = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
            .collect();
        Ok(Toks { t, i: 0 })
    }

    pub fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }

    pub fn peek_kw(&self, k: &str) -> bool {
        matches!(self.t.get(self.i), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k))
    }

    pub fn peek_kw_at(&self, off: usize, k: &str) -> bool {
        matches!(self.t.get(self.i + off), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k))
    }

    pub fn kw(&mut self, k: &str) -> bool {
        if self.peek_kw(k) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub fn kws(&mut self, ks: &[&str]) -> bool {
        if ks.iter().enumerate().all(|(o, k)| self.peek_kw_at(o, k)) {
            self.i += ks.len();
            true
        } else {
            false
        }
    }

    pub fn tok(&mut self, t: &Token) -> bool {
        if self.t.get(self.i) == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// An identifier or a quoted string.
    pub fn name(&mut self) -> Option<String> {
        let v = match self.t.get(self.i)? {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
            _ => return None,
        };
        self.i += 1;
        Some(v)
    }

    /// `a.b.c` as parts.
    pub fn dotted(&mut self) -> Option<Vec<String>> {
        let mut parts = vec![self.name()?];
        while self.tok(&Token::Period) {
            parts.push(self.name()?);
        }
        Some(parts)
    }

    pub fn number(&mut self) -> Option<i64> {
        let neg = self.tok(&Token::Minus);
        let v = match self.t.get(self.i)? {
            Token::Number(n, _) => n.parse::<i64>().ok()?,
            _ => return None,
        };
        self.i += 1;
        Some(if neg { -v } else { v })
    }

    pub fn done(&self) -> bool {
        self.i >= self.t.len()
    }

    /// Whether the statement contains `FILE (` outside string literals.
    pub fn has_file_placeholder(sql: &str) -> bool {
        let Ok(t) = Toks::new(sql) else {
            return false;
        };
        t.t.windows(2).any(|w| {
            matches!(&w[0], Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case("FILE"))
                && w[1] == Token::LParen
        })
    }
}

/// `CURRENT_USER()` is a keyword to sqlparser (no parentheses allowed), so it becomes the
/// registered SQLite function `KDB_CURRENT_USER()` (DataFusion's name for it).
pub fn normalize_functions(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while let Some(p) = lower[i..].find("current_user()") {
        let at = i + p;
        let prev = lower[..at].chars().last();
        out.push_str(&sql[i..at]);
        if prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(&sql[at..at + 14]);
        } else {
            out.push_str("KDB_CURRENT_USER()");
        }
        i = at + 14;
    }
    out.push_str(&sql[i..]);
    out
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_quotes() {
        let v = split_statements("SELECT ';' AS a; -- c;\nSELECT 2;; ").unwrap();
        assert_eq!(v, vec!["SELECT ';' AS a", "SELECT 2"]);
        assert!(split_statements("SELECT 'x").is_err());
    }

    #[test]
    fn finds_file_placeholders() {
        assert!(Toks::has_file_placeholder(
            "INSERT INTO a.b (f) VALUES (FILE(\"doc\"))"
        ));
        assert!(!Toks::has_file_placeholder("SELECT 'FILE(x)'"));
    }
}
