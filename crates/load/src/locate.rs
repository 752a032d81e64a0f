//! Where a field sits in a YAML document.
//!
//! Rules checked after parsing (`AgentCard::validate`, `EvidenceRecord::validate`, the path
//! rules of this crate) name a field path such as `success_criteria[2].threshold`. To give
//! those errors a line and column like syntax errors have, the document is read a second time
//! into a tree of serde-saphyr [`Spanned`] nodes (keys, sequence positions and the place of
//! every value) and the path is looked up in it. Nothing is parsed by hand; aliases and merge
//! keys resolve as serde-saphyr resolves them (the place is where the value is used).

use serde::Deserializer;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

/// The shape of a YAML value: a leaf, or a mapping or sequence of placed values.
enum Shape {
    Leaf,
    Map(Vec<(String, Spanned<Shape>)>),
    Seq(Vec<Spanned<Shape>>),
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_none<E>(self) -> Result<Shape, E> {
                Ok(Shape::Leaf)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
                Shape::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    entries.push((k, m.next_value()?));
                }
                Ok(Shape::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Shape, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = s.next_element()? {
                    items.push(x);
                }
                Ok(Shape::Seq(items))
            }
        }
        d.deserialize_any(V)
    }
}

use serde::Deserialize as _;

/// The 1-based line and column of every value in a document, by field path (`a.b[2].c`, the
/// form `serde_path_to_error` and the validators write; the root is `""`).
#[derive(Debug, Clone, Default)]
pub struct FieldPlaces {
    places: BTreeMap<String, (u64, u64)>,
}

impl FieldPlaces {
    /// Reads `text`'s shape. `None` when the text is not a YAML document serde-saphyr reads
    /// (callers have already parsed it, so this does not happen in practice).
    pub fn of(text: &str) -> Option<Self> {
        let root: Spanned<Shape> = serde_saphyr::from_str(text).ok()?;
        let mut places = BTreeMap::new();
        walk(&root, String::new(), &mut places);
        Some(Self { places })
    }

    /// The line and column of `field`, or of its nearest ancestor present in the document (a
    /// missing field is reported where its mapping is).
    pub fn get(&self, field: &str) -> Option<(u64, u64)> {
        let mut path = field;
        loop {
            if let Some(p) = self.places.get(path) {
                return Some(*p);
            }
            if path.is_empty() {
                return None;
            }
            path = match path.rfind(['.', '[']) {
                Some(i) => &path[..i],
                None => "",
            };
        }
    }
}

fn walk(node: &Spanned<Shape>, path: String, out: &mut BTreeMap<String, (u64, u64)>) {
    let at = node.referenced;
    if at.line() > 0 {
        out.insert(path.clone(), (at.line(), at.column()));
    }
    match &node.value {
        Shape::Leaf => {}
        Shape::Map(entries) => {
            for (k, v) in entries {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, p, out);
            }
        }
        Shape::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_and_falls_back_to_the_mapping() {
        let text = "# comment\nid: x\npilot:\n  start: 2026-05-13\n  cohort_size: 12\n\
                    success_criteria:\n  - id: a\n    threshold: 0.9\n  - { id: b, threshold: 2 }\n";
        let p = FieldPlaces::of(text).unwrap();
        assert_eq!(p.get("id"), Some((2, 5)));
        assert_eq!(p.get("pilot.cohort_size"), Some((5, 16)));
        assert_eq!(p.get("success_criteria[0].threshold"), Some((8, 16)));
        assert_eq!(p.get("success_criteria[1].threshold"), Some((9, 25)));
        // Absent: the criterion's own place.
        assert_eq!(p.get("success_criteria[1].metric"), Some((9, 5)));
        assert_eq!(p.get("success_criteria[0].compare.margin"), Some((7, 5)));
        // A top-level field that is absent: the document's first line of content.
        assert_eq!(p.get("economics"), Some((2, 1)));
    }

    #[test]
    fn aliases_are_placed_where_used() {
        let text = "a: &x\n  b: 1\nc: *x\n";
        let p = FieldPlaces::of(text).unwrap();
        assert_eq!(p.get("a.b"), Some((2, 6)));
        assert_eq!(p.get("c").map(|l| l.0), Some(3));
    }
}
