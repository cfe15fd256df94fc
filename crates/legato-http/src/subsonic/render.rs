//! One answer, three forms: the endpoints build the JSON form, and the XML form is derived
//! from it the way the Subsonic API maps them: an object is an element whose scalar fields
//! are attributes and whose object fields are child elements, an array is repeated elements
//! of its key's name, and a `value` field is the element's text.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Map, Value};

use super::error::SubsonicError;

/// The Subsonic API version whose response shapes we give.
pub const API_VERSION: &str = "1.16.1";

const NAMESPACE: &str = "http://subsonic.org/restapi";

/// What a client asked for with `f`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
    /// JSON wrapped in a call of this function.
    Jsonp(String),
}

impl Format {
    pub fn from_params(f: Option<&str>, callback: Option<&str>) -> Self {
        match f {
            Some("json") => Self::Json,
            Some("jsonp") => {
                // Only a plain JavaScript identifier path may be echoed into a script.
                let callback = callback
                    .filter(|c| {
                        !c.is_empty()
                            && c.len() <= 64
                            && c.chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || "_$.".contains(ch))
                    })
                    .unwrap_or("callback");
                Self::Jsonp(callback.to_owned())
            }
            _ => Self::Xml,
        }
    }
}

/// The `subsonic-response` object around an endpoint's fields.
pub fn envelope(result: Result<Map<String, Value>, SubsonicError>) -> Map<String, Value> {
    let mut response = Map::new();
    let (status, fields) = match result {
        Ok(fields) => ("ok", fields),
        Err(error) => {
            let mut fields = Map::new();
            fields.insert(
                "error".into(),
                serde_json::json!({ "code": error.code, "message": error.message }),
            );
            ("failed", fields)
        }
    };
    response.insert("status".into(), status.into());
    response.insert("version".into(), API_VERSION.into());
    response.insert("type".into(), "legato".into());
    response.insert("serverVersion".into(), env!("CARGO_PKG_VERSION").into());
    response.insert("openSubsonic".into(), true.into());
    response.extend(fields);
    response
}

/// The HTTP answer: always 200, as Subsonic clients expect errors inside the body.
pub fn respond(format: &Format, result: Result<Map<String, Value>, SubsonicError>) -> Response {
    let response = envelope(result);
    let (content_type, body) = match format {
        Format::Json => ("application/json", json_document(response)),
        Format::Jsonp(callback) => (
            "application/javascript",
            format!("{callback}({});", json_document(response)),
        ),
        Format::Xml => ("text/xml; charset=utf-8", to_xml(&response)),
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// `{"subsonic-response": …}`, the response moved in rather than copied.
fn json_document(response: Map<String, Value>) -> String {
    let mut document = Map::new();
    document.insert("subsonic-response".into(), Value::Object(response));
    Value::Object(document).to_string()
}

/// The XML document of a `subsonic-response` object.
pub fn to_xml(response: &Map<String, Value>) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    write_element(&mut writer, "subsonic-response", response, true);
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

/// Whether XML 1.0 can carry `c` (its `Char` production; surrogates cannot occur in a Rust
/// string): not the C0 controls other than tab, LF and CR, nor U+FFFE and U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` with every character XML cannot carry replaced by U+FFFD. Names are cleaned when
/// they are sent, but the store may hold text written otherwise (older versions, the seed,
/// another writer, file tags): one such character would make the whole answer unreadable to
/// every XML client. JSON escapes controls itself and carries U+FFFE as it is.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(xml_text(s)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn write_element(
    writer: &mut Writer<Vec<u8>>,
    name: &str,
    object: &Map<String, Value>,
    root: bool,
) {
    let mut start = BytesStart::new(name);
    if root {
        start.push_attribute(("xmlns", NAMESPACE));
    }
    for (key, value) in object {
        if key == "value" {
            continue;
        }
        if let Some(text) = scalar_text(value) {
            start.push_attribute((key.as_str(), text.as_str()));
        }
    }
    let text = object.get("value").and_then(scalar_text);
    let children: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(_, v)| matches!(v, Value::Object(_) | Value::Array(_)))
        .collect();
    if children.is_empty() && text.is_none() {
        let _ = writer.write_event(Event::Empty(start));
        return;
    }
    let _ = writer.write_event(Event::Start(start));
    if let Some(text) = text {
        let _ = writer.write_event(Event::Text(BytesText::new(&text)));
    }
    for (key, value) in children {
        match value {
            Value::Object(child) => write_element(writer, key, child, false),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(child) => write_element(writer, key, child, false),
                        other => {
                            if let Some(text) = scalar_text(other) {
                                let _ =
                                    writer.write_event(Event::Start(BytesStart::new(key.as_str())));
                                let _ = writer.write_event(Event::Text(BytesText::new(&text)));
                                let _ = writer.write_event(Event::End(BytesEnd::new(key.as_str())));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let _ = writer.write_event(Event::End(BytesEnd::new(name)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_maps_to_subsonic_xml() {
        let Value::Object(fields) = json!({
            "genres": { "genre": [
                { "songCount": 2, "albumCount": 1, "value": "Rock & Roll" },
                { "songCount": 1, "albumCount": 1, "value": "Jazz" }
            ]},
            "user": { "username": "ana", "adminRole": true, "folder": [1] }
        }) else {
            unreachable!()
        };
        let xml = to_xml(&envelope(Ok(fields)));
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        // Attribute order follows serde_json's map order, which a dependency's feature
        // (`preserve_order`) may change: look at each element's attributes, not their order.
        assert!(
            xml.contains("<subsonic-response xmlns=\"http://subsonic.org/restapi\" "),
            "{xml}"
        );
        let element = |start: &str, end: &str| -> String {
            let from = xml.find(start).unwrap_or(0);
            let to = xml[from..].find(end).map_or(xml.len(), |i| from + i);
            xml[from..to].to_owned()
        };
        let root = element("<subsonic-response", ">");
        assert!(
            root.contains(" status=\"ok\"") && root.contains(" openSubsonic=\"true\""),
            "{xml}"
        );
        let genre = element("<genre ", "</genre>");
        assert!(
            genre.contains(" songCount=\"2\"")
                && genre.contains(" albumCount=\"1\"")
                && genre.ends_with(">Rock &amp; Roll"),
            "{xml}"
        );
        let user = element("<user ", "</user>");
        assert!(
            user.contains(" username=\"ana\"")
                && user.contains(" adminRole=\"true\"")
                && user.ends_with("><folder>1</folder>"),
            "{xml}"
        );
    }

    #[test]
    fn text_xml_cannot_carry_is_replaced() {
        let Value::Object(fields) = json!({
            "song": { "title": "a\u{FFFE}b\u{FFFF}c\u{1}d\u{1F}\te\u{7F}\u{10FFFF}",
                      "value": "x\u{0}y\u{B}z" }
        }) else {
            unreachable!()
        };
        let xml = to_xml(&envelope(Ok(fields)));
        assert!(
            xml.contains("title=\"a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}\te\u{7F}\u{10FFFF}\""),
            "{xml:?}"
        );
        assert!(xml.contains(">x\u{FFFD}y\u{FFFD}z</song>"), "{xml:?}");
        assert!(xml.chars().all(xml_char), "{xml:?}");
    }

    #[test]
    fn errors_are_failed_responses() {
        let xml = to_xml(&envelope(Err(SubsonicError::new(
            40,
            "Wrong username or password",
        ))));
        assert!(xml.contains("status=\"failed\""), "{xml}");
        assert!(
            xml.contains("<error code=\"40\" message=\"Wrong username or password\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn jsonp_callbacks_are_identifiers() {
        assert_eq!(
            Format::from_params(Some("jsonp"), Some("cb.x_1")),
            Format::Jsonp("cb.x_1".into())
        );
        assert_eq!(
            Format::from_params(Some("jsonp"), Some("alert(1)")),
            Format::Jsonp("callback".into())
        );
        assert_eq!(Format::from_params(None, None), Format::Xml);
    }
}
