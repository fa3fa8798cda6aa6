//! Reading the policy document into its typed sections, naming the field of
//! any error (`limits.max_body_bytes`, `rules[2].match.path.regex`).
//!
//! Two steps: serde_json parses the text into a [`Node`] tree (syntax errors,
//! with their line and column), then the sections' derived `Deserialize`
//! impls read that tree through [`NodeDe`], which knows where it is and puts
//! the path on the first error. One plain deserializer instead of a generic
//! path-tracking wrapper around serde_json's (`serde_path_to_error`), whose
//! doubled visitors cost 108 KB of the module (docs/performance.md).
//!
//! Objects keep their members in order, duplicates included, so a member name
//! given twice is refused at any depth (serde_json's `Map` would silently keep
//! the last one: two masking profiles of the same name, say).

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::Deserialize;

use super::PolicyError;

/// Parses `text` as one JSON document and reads it as a `T`.
pub fn from_slice<T: DeserializeOwned>(text: &[u8]) -> Result<T, PolicyError> {
    let node: Node = serde_json::from_slice(text).map_err(|e| PolicyError::from_syntax(&e))?;
    T::deserialize(NodeDe {
        node: &node,
        path: &Path::Root,
    })
    .map_err(|e| PolicyError::at(e.path.as_deref().unwrap_or("."), e.reason))
}

/// A parsed JSON value, objects as their members in document order.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            members.push((k, v));
        }
        Ok(Node::Object(members))
    }
}

/// Where a node is, as a chain up to the document; rendered only on error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Path::Root => f.write_str("."),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(Path::Root, i) => write!(f, "[{i}]"),
            Path::Item(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// A deserialization error and, once known, the path of the node it is about.
#[derive(Debug)]
struct Error {
    path: Option<String>,
    reason: String,
}

impl Error {
    /// Blames `path` unless a node deeper down was blamed already.
    fn at(mut self, path: &Path) -> Error {
        if self.path.is_none() {
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error {
            path: None,
            reason: msg.to_string(),
        }
    }

    // JSON's `null` by its name, as serde_json says it (not "unit value").
    fn invalid_type(unexp: Unexpected, exp: &dyn de::Expected) -> Error {
        match unexp {
            Unexpected::Unit => {
                de::Error::custom(format_args!("invalid type: null, expected {exp}"))
            }
            _ => de::Error::custom(format_args!("invalid type: {unexp}, expected {exp}")),
        }
    }
}

/// One node of the tree, at `path`, as a serde `Deserializer`.
struct NodeDe<'de, 'p> {
    node: &'de Node,
    path: &'p Path<'p>,
}

impl<'de> NodeDe<'de, '_> {
    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => visitor.visit_unit(),
            Node::Bool(v) => visitor.visit_bool(*v),
            Node::U64(v) => visitor.visit_u64(*v),
            Node::I64(v) => visitor.visit_i64(*v),
            Node::F64(v) => visitor.visit_f64(*v),
            Node::Str(v) => visitor.visit_borrowed_str(v),
            // What the visitor leaves unread (a tuple's extra items) is
            // refused, as serde_json refuses it: nothing loads half-read.
            Node::Array(items) => {
                let mut seq = Items {
                    items: items.iter().enumerate(),
                    path: self.path,
                };
                let value = visitor.visit_seq(&mut seq)?;
                if seq.items.len() > 0 {
                    return Err(de::Error::invalid_length(items.len(), &"fewer items"));
                }
                Ok(value)
            }
            Node::Object(members) => {
                let mut map = Members {
                    all: members,
                    next: 0,
                    path: self.path,
                };
                let value = visitor.visit_map(&mut map)?;
                if map.next < members.len() {
                    return Err(de::Error::invalid_length(members.len(), &"fewer members"));
                }
                Ok(value)
            }
        }
    }

    /// `"variant"` or `{"variant": value}`, as serde_json reads enums.
    fn variant<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Str(name) => visitor.visit_enum(Variant {
                name,
                value: None,
                path: self.path,
            }),
            Node::Object(members) => match members.as_slice() {
                [(name, value)] => visitor.visit_enum(Variant {
                    name,
                    value: Some(value),
                    path: self.path,
                }),
                _ => Err(de::Error::invalid_value(
                    Unexpected::Map,
                    &"a string or an object with one member",
                )),
            },
            _ => self.mismatch(&visitor),
        }
    }

    /// The node is not of the kind `expected` reads.
    fn mismatch<T>(&self, expected: &dyn de::Expected) -> Result<T, Error> {
        let e: Error = de::Error::invalid_type(self.unexpected(), expected);
        Err(e.at(self.path))
    }

    fn unexpected(&self) -> Unexpected<'de> {
        match self.node {
            Node::Null => Unexpected::Unit,
            Node::Bool(v) => Unexpected::Bool(*v),
            Node::U64(v) => Unexpected::Unsigned(*v),
            Node::I64(v) => Unexpected::Signed(*v),
            Node::F64(v) => Unexpected::Float(*v),
            Node::Str(v) => Unexpected::Str(v),
            Node::Array(_) => Unexpected::Seq,
            Node::Object(_) => Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path;
        self.any(visitor).map_err(|e| e.at(path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path;
        match self.node {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let path = self.path;
        self.variant(visitor).map_err(|e| e.at(path))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let path = self.path;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(path))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    // Where the type is known, only its JSON kind is read: a struct from an
    // object only (serde would also fill one from an array, by position), and
    // the visitors' other entry points are never called, so never linked.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Object(_) => self.deserialize_any(visitor),
            _ => self.mismatch(&visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Array(_) => self.deserialize_any(visitor),
            _ => self.mismatch(&visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Str(_) => self.deserialize_any(visitor),
            _ => self.mismatch(&visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// An array's items, each at `path[i]`.
struct Items<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    path: &'p Path<'p>,
}

impl<'de> SeqAccess<'de> for Items<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = Path::Item(self.path, i);
        seed.deserialize(NodeDe { node, path: &path })
            .map(Some)
            .map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An object's members in order, each at `path.name`.
struct Members<'de, 'p> {
    all: &'de [(String, Node)],
    next: usize,
    path: &'p Path<'p>,
}

impl<'de> MapAccess<'de> for Members<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let (Some(before), Some((name, _))) = (self.all.get(..self.next), self.all.get(self.next))
        else {
            return Ok(None);
        };
        // An unknown or repeated member is blamed on its own path.
        let path = Path::Member(self.path, name);
        if before.iter().any(|(earlier, _)| earlier == name) {
            let e: Error = de::Error::custom(format_args!("duplicate member name `{name}`"));
            return Err(e.at(&path));
        }
        seed.deserialize(IntoDeserializer::<Error>::into_deserializer(name.as_str()))
            .map(Some)
            .map_err(|e| e.at(&path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((name, node)) = self.all.get(self.next) else {
            return Err(de::Error::custom(
                "a value asked for before its member name",
            ));
        };
        self.next += 1;
        let path = Path::Member(self.path, name);
        seed.deserialize(NodeDe { node, path: &path })
            .map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.all.len().saturating_sub(self.next))
    }
}

/// An enum's variant name and, for `{"variant": value}`, its value.
struct Variant<'de, 'p> {
    name: &'de str,
    value: Option<&'de Node>,
    path: &'p Path<'p>,
}

impl<'de, 'p> Variant<'de, 'p> {
    /// The variant's value at `path.variant`, read by `read`.
    fn value<T>(self, read: impl FnOnce(NodeDe<'de, '_>) -> Result<T, Error>) -> Result<T, Error> {
        let path = Path::Member(self.path, self.name);
        let Some(node) = self.value else {
            let e: Error =
                de::Error::invalid_type(Unexpected::UnitVariant, &"a variant with a value");
            return Err(e.at(&path));
        };
        read(NodeDe { node, path: &path }).map_err(|e| e.at(&path))
    }
}

impl<'de, 'p> EnumAccess<'de> for Variant<'de, 'p> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let v = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(self.name))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(_) => Err(de::Error::invalid_type(
                Unexpected::NewtypeVariant,
                &"a variant without a value",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.value(|d| seed.deserialize(d))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.value(|d| d.deserialize_seq(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.value(|d| d.deserialize_map(visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        name: String,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        by_name: BTreeMap<String, u32>,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        any: Option<serde_json::Value>,
        #[serde(default)]
        pair: Option<(u8, u8)>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        size: u8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        Limit(u32),
        Range { from: u32 },
    }

    fn err(json: &str) -> PolicyError {
        from_slice::<Doc>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let d: Doc = from_slice(
            br#"{"name":"a\u00e9","items":[{"size":1}],"by_name":{"x":2},
                 "kind":{"range":{"from":3}},"any":{"k":[1,-2,2.5,null,true]}}"#,
        )
        .unwrap();
        assert_eq!(d.name, "a\u{e9}");
        assert_eq!(d.items, vec![Item { size: 1 }]);
        assert_eq!(d.by_name.get("x"), Some(&2));
        assert_eq!(d.kind, Some(Kind::Range { from: 3 }));
        assert_eq!(d.any, Some(serde_json::json!({"k":[1,-2,2.5,null,true]})));
        let d: Doc = from_slice(br#"{"kind":"plain","any":null}"#).unwrap();
        assert_eq!((d.kind, d.any), (Some(Kind::Plain), None));
        let d: Doc = from_slice(br#"{"kind":{"limit":7}}"#).unwrap();
        assert_eq!(d.kind, Some(Kind::Limit(7)));
    }

    #[test]
    fn errors_name_the_deepest_node() {
        let e = err(r#"{"items":[{"size":1},{"size":300}]}"#);
        assert_eq!(e.path, "items[1].size");
        assert!(e.reason.contains("300"), "{e}");
        let e = err(r#"{"items":[{"size":1,"colour":2}]}"#);
        assert_eq!(e.path, "items[0].colour");
        assert!(e.reason.contains("unknown field `colour`"), "{e}");
        let e = err(r#"{"items":[{}]}"#);
        assert_eq!(e.path, "items[0]");
        assert!(e.reason.contains("missing field `size`"), "{e}");
        let e = err(r#"{"by_name":{"x":"two"}}"#);
        assert_eq!(e.path, "by_name.x");
        assert_eq!(e.reason, "invalid type: string \"two\", expected u32");
        let e = err(r#"{"kind":{"range":{"from":-1}}}"#);
        assert_eq!(e.path, "kind.range.from");
        let e = err(r#"{"kind":"other"}"#);
        assert_eq!(e.path, "kind");
        assert!(e.reason.contains("unknown variant `other`"), "{e}");
        let e = err(r#"{"kind":{"plain":1,"limit":2}}"#);
        assert_eq!(e.path, "kind");
        // serde would fill a struct from an array by position.
        let e = err(r#"[]"#);
        assert_eq!(e.path, ".");
        assert!(
            e.reason
                .contains("invalid type: sequence, expected struct Doc"),
            "{e}"
        );
        let e = err(r#"{"items":[["1"]]}"#);
        assert_eq!(e.path, "items[0]");
    }

    #[test]
    fn a_member_given_twice_is_refused_at_any_depth() {
        let e = err(r#"{"name":"a","name":"b"}"#);
        assert_eq!(e.path, "name");
        assert_eq!(e.reason, "duplicate member name `name`");
        let e = err(r#"{"by_name":{"x":1,"y":2,"x":1}}"#);
        assert_eq!(e.path, "by_name.x");
        // Inside a free-form value too (a JWKS, a JSON condition).
        let e = err(r#"{"any":[{"k":1,"k":2}]}"#);
        assert_eq!(e.path, "any[0].k");
    }

    /// serde_json refuses items a visitor leaves unread (a tuple's third);
    /// so does this reader: nothing loads half-read.
    #[test]
    fn items_a_type_does_not_read_are_refused() {
        let d: Doc = from_slice(br#"{"pair":[1,2]}"#).unwrap();
        assert_eq!(d.pair, Some((1, 2)));
        let e = err(r#"{"pair":[1,2,3]}"#);
        assert_eq!(e.path, "pair");
        assert!(e.reason.contains("invalid length 3"), "{e}");
        assert!(serde_json::from_str::<Doc>(r#"{"pair":[1,2,3]}"#).is_err());
    }

    /// Numbers and strings mean what serde_json reads: no coercion from a
    /// float, a negative zero or an integer past u64 (serde_json makes those
    /// floats) into an integer field; `1e400` and lone surrogates are syntax
    /// errors; `null` is an absent option.
    #[test]
    fn numbers_and_strings_are_not_coerced() {
        for (json, path, reason) in [
            (
                r#"{"items":[{"size":1.0}]}"#,
                "items[0].size",
                "floating point `1.0`",
            ),
            (
                r#"{"items":[{"size":1e2}]}"#,
                "items[0].size",
                "floating point `100.0`",
            ),
            (
                r#"{"items":[{"size":-0}]}"#,
                "items[0].size",
                "floating point `-0.0`",
            ),
            (
                r#"{"items":[{"size":"1"}]}"#,
                "items[0].size",
                "string \"1\"",
            ),
            (r#"{"by_name":{"x":4294967296}}"#, "by_name.x", "4294967296"),
            (
                r#"{"by_name":{"x":18446744073709551616}}"#,
                "by_name.x",
                "floating point",
            ),
            (r#"{"kind":{"limit":-1}}"#, "kind.limit", "integer `-1`"),
            (r#"{"name":1e400}"#, ".", "number out of range"),
            (r#"{"name":"\ud800"}"#, ".", "hex escape"),
            (r#"{"name":null}"#, "name", "invalid type: null"),
        ] {
            let e = err(json);
            assert_eq!(
                (e.path.as_str(), e.reason.contains(reason)),
                (path, true),
                "{json}: {e}"
            );
        }
        let d: Doc = from_slice(br#"{"kind":null,"name":"a\"\u00e9\ud83d\ude00\n"}"#).unwrap();
        assert_eq!((d.kind, d.name.as_str()), (None, "a\"\u{e9}\u{1F600}\n"));
        // serde_json's depth limit holds: a deep free-form value is refused.
        let deep = format!(r#"{{"any":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(err(&deep).reason.contains("recursion limit"), "deep");
    }

    #[test]
    fn syntax_errors_keep_line_and_column() {
        let e = err("{\n\"name\":}");
        assert_eq!(e.path, ".");
        assert!(e.reason.contains("line 2 column 8"), "{e}");
        let e = err(r#"{} {}"#);
        assert!(e.reason.starts_with("trailing characters"), "{e}");
    }
}
