//! The one SQL lexer of the crate: enough to classify statements, check live SQL, find FILE
//! placeholders and name the table a query reads; never a parser, never used to rewrite
//! SQL. String literals (`'…'`, `''` escaped), quoted identifiers (`"…"` and `` `…` ``,
//! doubled quote escaped), `--` and nested `/* */` comments are skipped correctly.
//! Unquoted identifiers are case-insensitive (folded to lowercase by the server), quoted
//! ones exact.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    /// An unquoted word (identifier or keyword), as written.
    Word(&'a str),
    /// A `"quoted"` or `` `quoted` `` identifier, unescaped.
    Quoted(String),
    /// `'...'` with `''` unescaped.
    Str(String),
    Num(&'a str),
    /// `$1`, `$2`, ...
    Param(&'a str),
    Semi,
    Punct(char),
}

impl Tok<'_> {
    pub(crate) fn is_word(&self, word: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The identifier this token names: unquoted words folded to lowercase, quoted ones
    /// exact.
    pub(crate) fn ident(&self) -> Option<String> {
        match self {
            Tok::Word(w) => Some(w.to_ascii_lowercase()),
            Tok::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }
}

/// What ran off the end of the SQL (the tokens before it are still returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unterminated {
    Comment,
    Quote,
}

/// Tokens, the byte range of each in the SQL, and whether a quote or comment was left open.
pub(crate) struct Lexed<'a> {
    pub toks: Vec<Tok<'a>>,
    pub spans: Vec<Range<usize>>,
    pub unterminated: Option<Unterminated>,
}

/// Reads a quoted run starting at `chars[*i]` (the opening quote); `None` if unterminated.
fn read_quoted(chars: &[(usize, char)], i: &mut usize, quote: char) -> Option<String> {
    let mut out = String::new();
    *i += 1;
    while *i < chars.len() {
        let c = chars[*i].1;
        if c == quote {
            if chars.get(*i + 1).map(|x| x.1) == Some(quote) {
                out.push(quote);
                *i += 2;
                continue;
            }
            *i += 1;
            return Some(out);
        }
        out.push(c);
        *i += 1;
    }
    None
}

pub(crate) fn lex_spans(sql: &str) -> Lexed<'_> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let end_of = |j: usize| chars.get(j).map_or(sql.len(), |x| x.0);
    let mut out = Lexed {
        toks: Vec::new(),
        spans: Vec::new(),
        unterminated: None,
    };
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let next = chars.get(i + 1).map(|x| x.1);
        let tok = if c.is_whitespace() {
            i += 1;
            None
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i].1 != '\n' {
                i += 1;
            }
            None
        } else if c == '/' && next == Some('*') {
            i += 2;
            let mut depth = 1;
            while i < chars.len() && depth > 0 {
                let n = chars.get(i + 1).map(|x| x.1);
                if chars[i].1 == '*' && n == Some('/') {
                    depth -= 1;
                    i += 2;
                } else if chars[i].1 == '/' && n == Some('*') {
                    depth += 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            if depth > 0 {
                out.unterminated = Some(Unterminated::Comment);
            }
            None
        } else if c == '\'' || c == '"' || c == '`' {
            match read_quoted(&chars, &mut i, c) {
                Some(text) if c == '\'' => Some(Tok::Str(text)),
                Some(text) => Some(Tok::Quoted(text)),
                None => {
                    out.unterminated = Some(Unterminated::Quote);
                    None
                }
            }
        } else if c == ';' {
            i += 1;
            Some(Tok::Semi)
        } else if c.is_alphabetic() || c == '_' {
            // `$` may continue an identifier (PostgreSQL); `$1` alone is a parameter.
            while i < chars.len()
                && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '$')
            {
                i += 1;
            }
            Some(Tok::Word(&sql[pos..end_of(i)]))
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '.') {
                i += 1;
            }
            Some(Tok::Num(&sql[pos..end_of(i)]))
        } else if c == '$' && next.is_some_and(|n| n.is_ascii_digit()) {
            i += 1;
            while i < chars.len() && chars[i].1.is_ascii_digit() {
                i += 1;
            }
            Some(Tok::Param(&sql[pos..end_of(i)]))
        } else {
            i += 1;
            Some(Tok::Punct(c))
        };
        if let Some(tok) = tok {
            out.toks.push(tok);
            out.spans.push(pos..end_of(i));
        }
    }
    out
}

pub(crate) fn lex(sql: &str) -> Vec<Tok<'_>> {
    lex_spans(sql).toks
}

/// Statements split on top-level `;` (empty statements dropped).
pub(crate) fn statements<'a>(toks: &'a [Tok<'a>]) -> Vec<&'a [Tok<'a>]> {
    toks.split(|t| *t == Tok::Semi)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Strips `EXECUTE AS USER <user> ( ... )` and returns the inner tokens.
pub(crate) fn unwrap_execute_as<'a>(stmt: &'a [Tok<'a>]) -> &'a [Tok<'a>] {
    if stmt.len() >= 5
        && stmt[0].is_word("EXECUTE")
        && stmt[1].is_word("AS")
        && stmt[2].is_word("USER")
        && stmt[4] == Tok::Punct('(')
    {
        let inner = &stmt[5..];
        return match inner.last() {
            Some(Tok::Punct(')')) => &inner[..inner.len() - 1],
            _ => inner,
        };
    }
    stmt
}

/// The one table a single-statement `SELECT … FROM [namespace.]table …` reads (no joins,
/// no comma lists, no subquery in FROM; inside `EXECUTE AS USER`): `(namespace if written,
/// table)`, unquoted names folded to lowercase as the server does. `None` when unsure.
/// HTTP rows and live rows both use it to give FILE cells their download path.
pub(crate) fn select_table(sql: &str) -> Option<(Option<String>, String)> {
    let toks = lex(sql);
    let stmts = statements(&toks);
    let [stmt] = stmts.as_slice() else {
        return None;
    };
    let stmt = unwrap_execute_as(stmt);
    if !stmt.first()?.is_word("SELECT") {
        return None;
    }
    let mut depth = 0i32;
    let mut from_at = None;
    for (i, t) in stmt.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            _ if depth == 0 && t.is_word("FROM") => {
                if from_at.is_some() {
                    return None;
                }
                from_at = Some(i);
            }
            _ if depth == 0 && (t.is_word("JOIN") || t.is_word("UNION")) => return None,
            _ => {}
        }
    }
    let rest = &stmt[from_at? + 1..];
    let first = rest.first()?.ident()?;
    let (namespace, table, after) = match (rest.get(1), rest.get(2)) {
        (Some(Tok::Punct('.')), Some(t)) => (Some(first), t.ident()?, &rest[3..]),
        _ => (None, first, &rest[1..]),
    };
    if matches!(after.first(), Some(Tok::Punct('.'))) {
        return None;
    }
    // A comma at depth 0 after FROM means several tables.
    let mut depth = 0i32;
    for t in after {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => return None,
            _ => {}
        }
    }
    Some((namespace, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_spans() {
        let sql = "SELECT `a b`, \"c\"\"d\" /* x /* nested */ y */ FROM t WHERE s = 'it''s' AND v$1 = $2;";
        let lexed = lex_spans(sql);
        assert_eq!(lexed.unterminated, None);
        assert_eq!(lexed.toks.len(), lexed.spans.len());
        assert_eq!(lexed.toks[1], Tok::Quoted("a b".into()));
        assert_eq!(lexed.toks[3], Tok::Quoted("c\"d".into()));
        assert!(lexed.toks[4].is_word("from"));
        assert!(lexed.toks.contains(&Tok::Str("it's".into())));
        assert!(lexed.toks.contains(&Tok::Word("v$1")));
        assert!(lexed.toks.contains(&Tok::Param("$2")));
        assert_eq!(lexed.toks.last(), Some(&Tok::Semi));
        let at = lexed.toks.iter().position(|t| t.is_word("WHERE")).unwrap();
        assert_eq!(&sql[lexed.spans[at].clone()], "WHERE");
    }

    #[test]
    fn unterminated_runs_are_reported() {
        assert_eq!(
            lex_spans("SELECT 'x").unterminated,
            Some(Unterminated::Quote)
        );
        assert_eq!(
            lex_spans("SELECT \"x").unterminated,
            Some(Unterminated::Quote)
        );
        assert_eq!(
            lex_spans("SELECT /* a /* b */").unterminated,
            Some(Unterminated::Comment)
        );
    }

    #[test]
    fn the_table_a_select_reads() {
        let t = |ns: Option<&str>, table: &str| Some((ns.map(str::to_string), table.to_string()));
        assert_eq!(
            select_table("SELECT * FROM App.Orders o"),
            t(Some("app"), "orders")
        );
        assert_eq!(
            select_table("select * from \"My Ns\".\"T\""),
            t(Some("My Ns"), "T")
        );
        assert_eq!(select_table("SELECT * FROM inbox"), t(None, "inbox"));
        assert_eq!(select_table("SELECT * FROM a.b.c"), None);
        assert_eq!(select_table("SELECT * FROM a, b"), None);
        assert_eq!(select_table("SELECT * FROM a JOIN b ON true"), None);
        assert_eq!(select_table("SELECT 1"), None);
    }
}
