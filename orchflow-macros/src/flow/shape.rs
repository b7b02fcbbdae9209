//! The shape of a flow as one normalised line (`plan => [docs, market] => if short { publish }`)
//! and its fingerprint, which a checkpoint carries so that a run is only resumed by the flow
//! that wrote it.

use super::tree::{Item, LoopMax, Pipeline};
use crate::flow::ast::path_name;

/// The shape of a pipeline as one normalised line, the input of the fingerprint.
pub(crate) fn shape(p: &Pipeline) -> String {
    p.items().map(item_shape).collect::<Vec<_>>().join(" => ")
}

fn item_shape(i: &Item) -> String {
    match i {
        Item::Step(s) => s.name.clone(),
        Item::Group(g) => {
            let branches: Vec<String> = g.branches.iter().map(shape).collect();
            format!("[{}]", branches.join(", "))
        }
        Item::If(i) => match &i.otherwise {
            Some(o) => format!(
                "if {} {{ {} }} else {{ {} }}",
                i.pred.name(),
                shape(&i.then),
                shape(o)
            ),
            None => format!("if {} {{ {} }}", i.pred.name(), shape(&i.then)),
        },
        Item::Map(m) => format!("map({}, limit = {})", shape(&m.body), max(&m.limit)),
        Item::Loop(l) => {
            let head = format!("loop(max = {}) {{ {} }}", max(&l.max), shape(&l.body));
            match &l.until {
                Some(u) => format!("{head} until {}", u.name()),
                None => head,
            }
        }
    }
}

fn max(m: &LoopMax) -> String {
    match m {
        LoopMax::Lit(n) => n.to_string(),
        LoopMax::Const(p) => path_name(p),
    }
}

/// The fingerprint of a flow named `name` of shape `shape`.
pub(crate) fn fingerprint(name: &str, shape: &str) -> u64 {
    fnv1a(format!("{name}\u{0}{shape}").as_bytes())
}

/// FNV-1a, 64 bits: stable across compilers and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_reference_function() {
        // Test vectors of the FNV reference implementation.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_fingerprint_covers_name_and_shape() {
        assert_ne!(fingerprint("a", "b => c"), fingerprint("a b", "=> c"));
        assert_eq!(fingerprint("f", "x"), fnv1a(b"f\0x"));
    }
}
