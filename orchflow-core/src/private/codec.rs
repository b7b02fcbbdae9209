//! Codec: values to and from JSON (captured values, checkpoints).

use super::*;

/// The value behind a reference as JSON when its type is `Serialize`, else `None`; decided at
/// compile time (autoref specialisation) where the type is concrete.
#[doc(hidden)]
#[macro_export]
macro_rules! __orchflow_to_json {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private_0_1_0::{CaptureJson as _, CaptureNone as _};
        (&&$crate::__private_0_1_0::Capture($value)).capture()
    }};
}
pub use crate::__orchflow_to_json as to_json;

/// Wraps a captured value for autoref-based JSON capture (see [`CaptureJson`]).
pub struct Capture<'a, T>(pub &'a T);

/// Chosen when `T: Serialize`.
pub trait CaptureJson {
    /// The value as JSON.
    fn capture(&self) -> Option<Value>;
}
impl<T: serde::Serialize> CaptureJson for &Capture<'_, T> {
    fn capture(&self) -> Option<Value> {
        serde_json::to_value(self.0).ok()
    }
}

/// Chosen otherwise: nothing is captured.
pub trait CaptureNone {
    /// `None`.
    fn capture(&self) -> Option<Value>;
}
impl<T> CaptureNone for Capture<'_, T> {
    fn capture(&self) -> Option<Value> {
        None
    }
}

/// A value of type `$ty` read from JSON when the type is `Deserialize`, else `None`; decided at
/// compile time (autoref specialisation) where the type is concrete.
#[doc(hidden)]
#[macro_export]
macro_rules! __orchflow_from_json {
    ($ty:ty, $json:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private_0_1_0::{RestoreJson as _, RestoreNone as _};
        (&&$crate::__private_0_1_0::Restore::<$ty>($crate::__private_0_1_0::PhantomData))
            .restore($json)
    }};
}
pub use crate::__orchflow_from_json as from_json;

/// Names a type for autoref-based JSON reading (see [`RestoreJson`]).
pub struct Restore<T>(pub PhantomData<fn() -> T>);

/// Chosen when `T: DeserializeOwned`.
pub trait RestoreJson<T> {
    /// The value read from JSON.
    fn restore(&self, json: Value) -> Option<Result<T, serde_json::Error>>;
}
impl<T: serde::de::DeserializeOwned> RestoreJson<T> for &Restore<T> {
    fn restore(&self, json: Value) -> Option<Result<T, serde_json::Error>> {
        Some(serde_json::from_value(json))
    }
}

/// Chosen otherwise: nothing is read.
pub trait RestoreNone<T> {
    /// `None`.
    fn restore(&self, json: Value) -> Option<Result<T, serde_json::Error>>;
}
impl<T> RestoreNone<T> for Restore<T> {
    fn restore(&self, _json: Value) -> Option<Result<T, serde_json::Error>> {
        None
    }
}

/// A value as JSON.
#[inline]
pub fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(v)
}

/// A value from JSON.
#[inline]
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

/// `{name: content}`.
pub fn variant(name: &'static str, content: Value) -> Value {
    let mut m = serde_json::Map::with_capacity(1);
    m.insert(name.to_string(), content);
    Value::Object(m)
}

/// An object of named fields.
pub fn fields<const N: usize>(pairs: [(&'static str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The variant name and content of `{name: content}`.
pub fn split_variant(json: Value) -> Result<(String, Value), serde_json::Error> {
    match json {
        Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
            Some(pair) => Ok(pair),
            None => Err(json_error(
                "a resumable point is an object with one key".into(),
            )),
        },
        other => Err(json_error(format!(
            "a resumable point is an object with one key, not {other}"
        ))),
    }
}

/// Field `name` of an object, taken out and decoded.
pub fn field<T: serde::de::DeserializeOwned>(
    content: &mut Value,
    name: &'static str,
) -> Result<T, serde_json::Error> {
    match content.as_object_mut().and_then(|o| o.remove(name)) {
        Some(v) => serde_json::from_value(v),
        None => Err(json_error(format!("missing field `{name}`"))),
    }
}

/// The error for a variant name that is not one of the flow's points.
pub fn unknown_variant(name: &str, expected: &'static [&'static str]) -> serde_json::Error {
    json_error(format!(
        "unknown resumable point `{name}`, expected one of {}",
        expected.join(", ")
    ))
}

fn json_error(message: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(message)
}

/// The error of [`Checkpointable`].
pub type JsonError = serde_json::Error;
