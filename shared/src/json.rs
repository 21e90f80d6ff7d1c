//! Small JSON helpers shared by the API's and the model layer's validation messages.

use serde_json::Value;

/// "a string", "a number", …: what a value is, for an error message.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
