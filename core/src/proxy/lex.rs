//! The tokens of `proxy.conf`: words, quoted strings, `{`, `}` and `;`, with `#` comments to
//! the end of the line. Every token knows its line and column (1-based, in characters) so
//! errors can point at it.

use std::fmt;

/// Where a token starts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: anything up to whitespace, `{`, `}`, `;`, `"` or `#`.
    Word(String),
    /// A double-quoted string with `\"` and `\\` escapes.
    Str(String),
    Open,
    Close,
    Semi,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Open => f.write_str("`{`"),
            Tok::Close => f.write_str("`}`"),
            Tok::Semi => f.write_str("`;`"),
        }
    }
}

/// A lexical error: an unterminated string, or a control character outside one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub pos: Pos,
    pub message: String,
}

/// Most tokens one file may hold (a limit on everything: a config is small).
pub const MAX_TOKENS: usize = 100_000;

/// Splits `text` into tokens.
pub fn tokens(text: &str) -> Result<Vec<(Pos, Tok)>, LexError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1u32, 1u32);
    let advance = |c: char, line: &mut u32, col: &mut u32| {
        if c == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    while let Some(&c) = chars.peek() {
        let pos = Pos { line, col };
        if out.len() >= MAX_TOKENS {
            return Err(LexError {
                pos,
                message: format!("more than {MAX_TOKENS} tokens"),
            });
        }
        match c {
            c if c.is_whitespace() => {
                chars.next();
                advance(c, &mut line, &mut col);
            }
            '#' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                    advance(c, &mut line, &mut col);
                }
            }
            '{' | '}' | ';' => {
                chars.next();
                advance(c, &mut line, &mut col);
                out.push((
                    pos,
                    match c {
                        '{' => Tok::Open,
                        '}' => Tok::Close,
                        _ => Tok::Semi,
                    },
                ));
            }
            '"' => {
                chars.next();
                advance(c, &mut line, &mut col);
                let mut s = String::new();
                loop {
                    let Some(c) = chars.next() else {
                        return Err(LexError {
                            pos,
                            message: "unterminated string".into(),
                        });
                    };
                    advance(c, &mut line, &mut col);
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\')) => {
                                advance(e, &mut line, &mut col);
                                s.push(e);
                            }
                            _ => {
                                return Err(LexError {
                                    pos: Pos { line, col },
                                    message: "only \\\" and \\\\ are escapes in a string".into(),
                                })
                            }
                        },
                        '\n' => {
                            return Err(LexError {
                                pos,
                                message: "unterminated string (a string ends on its line)".into(),
                            })
                        }
                        c if c.is_control() => {
                            return Err(LexError {
                                pos: Pos { line, col },
                                message: "control character in a string".into(),
                            })
                        }
                        c => s.push(c),
                    }
                }
                out.push((pos, Tok::Str(s)));
            }
            c if c.is_control() => {
                return Err(LexError {
                    pos,
                    message: format!("unexpected control character U+{:04X}", c as u32),
                })
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace()
                        || matches!(c, '{' | '}' | ';' | '"' | '#')
                        || c.is_control()
                    {
                        break;
                    }
                    chars.next();
                    advance(c, &mut line, &mut col);
                    w.push(c);
                }
                out.push((pos, Tok::Word(w)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokens(s).unwrap().into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn words_strings_braces_and_comments() {
        assert_eq!(
            toks("host \"a b\" { # note\n  proxy_pass http://x:1;}"),
            vec![
                Tok::Word("host".into()),
                Tok::Str("a b".into()),
                Tok::Open,
                Tok::Word("proxy_pass".into()),
                Tok::Word("http://x:1".into()),
                Tok::Semi,
                Tok::Close,
            ]
        );
        assert_eq!(toks("# host \"x\" { }\n"), vec![]);
        assert_eq!(toks(r#""q\"uote""#), vec![Tok::Str("q\"uote".into())]);
    }

    #[test]
    fn positions_are_lines_and_columns() {
        let t = tokens("a\n\tbb ;").unwrap();
        assert_eq!(t[0].0, Pos { line: 1, col: 1 });
        assert_eq!(t[1].0, Pos { line: 2, col: 2 });
        assert_eq!(t[2].0, Pos { line: 2, col: 5 });
    }

    #[test]
    fn broken_strings_are_errors_with_a_position() {
        let e = tokens("host \"abc").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 6 });
        assert!(tokens("x \"a\nb\"").is_err());
        assert!(tokens("x \"a\\n\"").is_err());
        assert!(tokens("x \u{7}").is_err());
    }
}
