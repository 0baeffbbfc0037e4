//! Sets of field paths, the unit of field ownership in `metadata.managedFields`, and their
//! `FieldsV1` encoding (`{"f:spec":{"f:replicas":{}}}`).
//!
//! A path walks from the object's root through struct fields and map keys (`f:name`), items of
//! lists keyed by some of their fields (`k:{"name":"nginx"}`), items of lists of scalars that form
//! a set (`v:"a"`) and, for completeness, list positions (`i:0`). A set is a tree: each node says
//! whether the path to it is itself a member (`".": {}` in the encoding when it also has
//! children) and holds its children in upstream's order (fields, then keys, then values, then
//! indices; within each, by value), so that the encoding is the one a Go apiserver writes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Element {
    /// A struct field or map key.
    Field(String),
    /// An item of a list keyed by the named fields (in name order).
    Key(Vec<(String, Value)>),
    /// An item of a list of scalars that is a set.
    Value(Value),
    /// A list position.
    Index(usize),
}

impl Element {
    fn rank(&self) -> u8 {
        match self {
            Self::Field(_) => 0,
            Self::Key(_) => 1,
            Self::Value(_) => 2,
            Self::Index(_) => 3,
        }
    }

    /// The element as a `FieldsV1` key: `f:name`, `k:{...}`, `v:...`, `i:0`.
    fn encode(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(fields) => {
                let object: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(object))
            }
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(key: &str) -> Result<Self, String> {
        let bad = || format!("invalid managed fields key {key:?}");
        let (prefix, rest) = key.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(Self::Field(rest.to_string())),
            "k" => {
                let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(rest) else {
                    return Err(bad());
                };
                let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Self::Key(fields))
            }
            "v" => serde_json::from_str(rest)
                .map(Self::Value)
                .map_err(|_| bad()),
            "i" => rest.parse().map(Self::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl Ord for Element {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Field(a), Self::Field(b)) => a.cmp(b),
            (Self::Key(a), Self::Key(b)) => a.len().cmp(&b.len()).then_with(|| {
                a.iter()
                    .zip(b)
                    .map(|((an, av), (bn, bv))| an.cmp(bn).then_with(|| compare_values(av, bv)))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            }),
            (Self::Value(a), Self::Value(b)) => compare_values(a, b),
            (Self::Index(a), Self::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Element {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The path syntax of upstream's conflict messages: `.spec.containers[name="nginx"].image`.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={v}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A total order on JSON values as upstream's `value.Compare` orders them: numbers, strings,
/// booleans, lists, maps, null.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare_values(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            xs.iter()
                .zip(&ys)
                .map(|(p, q)| p.0.cmp(q.0).then_with(|| compare_values(p.1, q.1)))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| xs.len().cmp(&ys.len()))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A path, written as upstream writes one in conflict messages.
pub(super) fn display_path(path: &[Element]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Set {
    /// Whether the path to this node is in the set.
    member: bool,
    children: BTreeMap<Element, Set>,
}

impl Set {
    pub(super) fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Add a path (the empty path is the root itself).
    pub(super) fn insert(&mut self, path: &[Element]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the path is a member.
    pub(super) fn has(&self, path: &[Element]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree under `element`, if any.
    pub(super) fn child(&self, element: &Element) -> Option<&Set> {
        self.children.get(element)
    }

    pub(super) fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_in(other);
        out
    }

    fn union_in(&mut self, other: &Set) {
        self.member |= other.member;
        for (element, child) in &other.children {
            self.children
                .entry(element.clone())
                .or_default()
                .union_in(child);
        }
    }

    /// The members of `self` that are not members of `other`.
    pub(super) fn difference(&self, other: &Set) -> Set {
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(element.clone(), rest);
            }
        }
        Set {
            member: self.member && !other.member,
            children,
        }
    }

    /// The members of both.
    pub(super) fn intersection(&self, other: &Set) -> Set {
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if let Some(o) = other.children.get(element) {
                let both = child.intersection(o);
                if !both.is_empty() {
                    children.insert(element.clone(), both);
                }
            }
        }
        Set {
            member: self.member && other.member,
            children,
        }
    }

    /// `self` without every path under (or at) the paths in `prefixes`.
    pub(super) fn without_subtrees(&self, prefixes: &Set) -> Set {
        if prefixes.member {
            return Set::default();
        }
        let mut out = self.clone();
        for (element, prefix) in &prefixes.children {
            if let Some(child) = out.children.get_mut(element) {
                *child = child.without_subtrees(prefix);
                if child.is_empty() {
                    out.children.remove(element);
                }
            }
        }
        out
    }

    /// Every member path, as upstream iterates a set: at each level the members first (in
    /// order), then what lies under each child.
    pub(super) fn paths(&self) -> Vec<Vec<Element>> {
        let mut out = Vec::new();
        if self.member {
            out.push(Vec::new());
        }
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<Element>, out: &mut Vec<Vec<Element>>) {
        for (element, child) in &self.children {
            if child.member {
                let mut path = prefix.clone();
                path.push(element.clone());
                out.push(path);
            }
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` encoding.
    pub(super) fn to_fields_v1(&self) -> Value {
        let mut object = Map::new();
        if self.member && !self.children.is_empty() {
            object.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            object.insert(element.encode(), child.to_fields_v1());
        }
        Value::Object(object)
    }

    /// Decode a `FieldsV1` value.
    pub(super) fn from_fields_v1(fields: &Value) -> Result<Set, String> {
        let mut set = Set::default();
        set.decode_into(fields)?;
        // The root of a FieldsV1 tree is never a member itself.
        set.member = false;
        Ok(set)
    }

    fn decode_into(&mut self, fields: &Value) -> Result<(), String> {
        let object = fields
            .as_object()
            .ok_or_else(|| format!("managed fields must be objects, not {fields}"))?;
        if object.is_empty() {
            self.member = true;
        }
        for (key, value) in object {
            if key == "." {
                self.member = true;
                continue;
            }
            let mut child = Set::default();
            child.decode_into(value)?;
            self.children.insert(Element::decode(key)?, child);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> Element {
        Element::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trips_in_upstream_order() {
        let fields = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {
                "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}},
                "k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}},
        });
        let set = Set::from_fields_v1(&fields).unwrap();
        assert!(set.has(&[f("metadata"), f("labels")]));
        assert!(!set.has(&[f("metadata")]));
        assert_eq!(set.to_fields_v1(), fields);
        // Keys order by value, numbers numerically: port 80 before port 443 (the JSON object
        // itself is written in key order, as every object here is).
        let ports: Vec<String> = set
            .child(&f("spec"))
            .unwrap()
            .child(&f("ports"))
            .unwrap()
            .children
            .keys()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ports,
            ["[port=80,protocol=\"TCP\"]", "[port=443,protocol=\"TCP\"]"]
        );
    }

    #[test]
    fn difference_keeps_children_of_a_removed_member() {
        let mut a = Set::default();
        a.insert(&[f("labels")]);
        a.insert(&[f("labels"), f("app")]);
        let mut b = Set::default();
        b.insert(&[f("labels")]);
        let d = a.difference(&b);
        assert!(!d.has(&[f("labels")]));
        assert!(d.has(&[f("labels"), f("app")]));
        let mut prefix = Set::default();
        prefix.insert(&[f("labels")]);
        assert!(a.without_subtrees(&prefix).is_empty());
    }

    #[test]
    fn paths_print_as_upstream_conflicts_do() {
        let path = [
            f("spec"),
            f("containers"),
            Element::Key(vec![("name".into(), json!("nginx"))]),
            f("image"),
        ];
        assert_eq!(
            display_path(&path),
            ".spec.containers[name=\"nginx\"].image"
        );
    }
}
