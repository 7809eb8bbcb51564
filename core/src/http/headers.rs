//! An ordered header list that keeps each field's name case as received.
//!
//! Names and values live in one byte arena with spans, so parsing a head costs two allocations
//! however many fields it has, and none at all when read in place through [`FieldsRef`]. Lookup is case-insensitive and linear: a head holds at most
//! [`crate::http::Limits::max_headers`] fields, where a scan beats hashing.

use std::fmt;

/// A byte range of an arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(r: std::ops::Range<usize>) -> Span {
        Span {
            start: r.start as u32,
            end: r.end as u32,
        }
    }
}

/// One field: its name and value as spans of the arena it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: Span,
    pub value: Span,
}

/// Header fields in order. Values are bytes (obs-text is legal and kept opaque).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    arena: Vec<u8>,
    fields: Vec<Field>,
}

/// A borrowed header list: the same reads as [`Headers`] over bytes someone else holds (the
/// parser's buffer, for [`super::parse::EventRef`]). [`FieldsRef::to_headers`] makes the owned
/// copy in two allocations.
#[derive(Clone, Copy)]
pub struct FieldsRef<'a> {
    arena: &'a [u8],
    fields: &'a [Field],
}

impl<'a> FieldsRef<'a> {
    /// No fields.
    pub const EMPTY: FieldsRef<'static> = FieldsRef {
        arena: &[],
        fields: &[],
    };
    /// Fields whose spans index `arena`; every span must lie inside it.
    pub(crate) fn new(arena: &'a [u8], fields: &'a [Field]) -> Self {
        debug_assert!(fields
            .iter()
            .all(|f| f.name.end as usize <= arena.len() && f.value.end as usize <= arena.len()));
        FieldsRef { arena, fields }
    }
    fn span(&self, s: Span) -> &'a [u8] {
        self.arena
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }
    /// The first value of `name` (case-insensitive), if any.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
    /// The first value of `name` as UTF-8 text, if present and valid.
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }
    /// Every value of `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        let this = *self;
        this.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }
    /// True when some comma-separated element of some `name` field equals `token`
    /// (case-insensitive), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| super::chars::trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
        })
    }
    /// Fields in order as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let this = *self;
        this.fields
            .iter()
            .map(move |f| (this.span(f.name), this.span(f.value)))
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
    /// Writes `Name: value\r\n` for every field.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for (n, v) in self.iter() {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    /// The owned copy: the arena is copied whole, so its spans stay valid.
    pub fn to_headers(&self) -> Headers {
        Headers {
            arena: self.arena.to_vec(),
            fields: self.fields.to_vec(),
        }
    }
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers {
            arena: Vec::with_capacity(bytes),
            fields: Vec::with_capacity(fields),
        }
    }
    /// The same fields, borrowed: every read goes through here.
    pub fn view(&self) -> FieldsRef<'_> {
        FieldsRef {
            arena: &self.arena,
            fields: &self.fields,
        }
    }
    fn push_bytes(&mut self, b: &[u8]) -> Span {
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(b);
        Span {
            start,
            end: self.arena.len() as u32,
        }
    }
    /// Appends a field; an existing field of the same name is kept.
    pub fn append(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let name = self.push_bytes(name.as_ref());
        let value = self.push_bytes(value.as_ref());
        self.fields.push(Field { name, value });
    }
    /// Replaces every field named `name` with one field (appended at the end).
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.remove(name);
        self.append(name, value);
    }
    /// Removes every field named `name` (case-insensitive); returns how many went.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        let arena = &self.arena;
        self.fields.retain(|f| {
            !arena[f.name.start as usize..f.name.end as usize].eq_ignore_ascii_case(name.as_bytes())
        });
        before - self.fields.len()
    }
    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.view().get(name)
    }
    /// The first value of `name` as UTF-8 text, if present and valid.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.view().get_str(name)
    }
    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.view().get_all(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.view().contains(name)
    }
    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.view().count(name)
    }
    /// See [`FieldsRef::has_token`].
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.view().has_token(name, token)
    }
    /// Fields in order as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.view().iter()
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
    /// Writes `Name: value\r\n` for every field.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.view().write_to(out)
    }
}

impl fmt::Debug for FieldsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_case_and_looks_up_without_case() {
        let mut h = Headers::new();
        h.append("X-One", "1");
        h.append("hoSt", "a");
        h.append("x-one", "2");
        assert_eq!(h.get("HOST"), Some(&b"a"[..]));
        assert_eq!(
            h.get_all("X-ONE").collect::<Vec<_>>(),
            vec![&b"1"[..], &b"2"[..]]
        );
        let names: Vec<_> = h.iter().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(
            names,
            vec![b"X-One".to_vec(), b"hoSt".to_vec(), b"x-one".to_vec()]
        );
        assert_eq!(h.remove("x-ONE"), 2);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn has_token_splits_lists() {
        let mut h = Headers::new();
        h.append("Connection", "keep-alive, Close");
        assert!(h.has_token("connection", "close"));
        assert!(!h.has_token("connection", "upgrade"));
    }
}
