//! The control RPC a Scope app calls over the control websocket (spec `app-protocol.md` §4),
//! and the control request and response bodies exchanged with plugins (spec
//! `report-format.md` §7.8).
//!
//! What it owns: Go `net/rpc` with Scope's JSON websocket codec, server side. Every websocket
//! text message is one envelope `{"Request":…,"Response":…,"Value":…}`; a call is a header
//! envelope then a body envelope each way. [`RpcServer`] pairs the app's two frames into an
//! [`RpcCall`], [`reply`] writes the probe's two frames. Also the `POST /control` body for
//! plugins ([`encode_control_request`]) and the decoding of their answers
//! ([`decode_control_response`]), whose `shortcutReport` is split off for the report layer.
//!
//! What it does not: websocket framing (`publish::ws`), routing a control to its plugin and
//! filling in `AppID` (the controls layer), decoding shortcut reports (the report layer).
//!
//! Decoding follows Scope's codec (RF §1): keys are exact and case-sensitive, unknown keys are
//! ignored, missing keys keep their default, `null` for a string is `""`, and a number or
//! boolean for a string is its literal text.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The one method a Scope app calls on a probe (spec AP §4).
pub const CONTROL_HANDLE: &str = "control.Handle";

/// A control request (RF §7.8, Go's `xfer.Request`): the keys are Go's field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The app's id; the app leaves it empty, the probe fills it in (AP §4).
    #[serde(rename = "AppID", default, deserialize_with = "lenient_string")]
    pub app_id: String,
    /// The control id, `<plugin id>~<control id>` for plugin controls (RF §7.7).
    #[serde(rename = "Control", default, deserialize_with = "lenient_string")]
    pub control: String,
    /// The UI's arguments; `None` is written as `null`, as Go does without arguments.
    #[serde(rename = "ControlArgs", default)]
    pub control_args: Option<BTreeMap<String, String>>,
    /// The node the control acts on.
    #[serde(rename = "NodeID", default, deserialize_with = "lenient_string")]
    pub node_id: String,
}

/// One call from the app, both of its frames received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    /// The call's sequence number, echoed in the reply.
    pub seq: u64,
    /// Always [`CONTROL_HANDLE`]; other methods come back as [`RpcError::UnknownMethod`].
    pub method: String,
    /// The control request.
    pub args: ControlRequest,
}

/// Why a frame or a body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// A frame that is not an envelope, or a header frame without `Request`. Go's server
    /// stops serving the connection here: close the websocket.
    Malformed(String),
    /// A call of a method other than [`CONTROL_HANDLE`]; answer it with [`RpcError::reply`].
    UnknownMethod {
        /// The call's sequence number.
        seq: u64,
        /// The method asked for.
        method: String,
    },
    /// A `control.Handle` call whose argument is not a control request; answer it with
    /// [`RpcError::reply`].
    BadArgs {
        /// The call's sequence number.
        seq: u64,
        /// The decoder's message.
        detail: String,
    },
    /// A plugin's `/control` answer that is not a control response (RF §7.4 step 4 text).
    Decoding(String),
}

impl RpcError {
    /// The two reply frames for an error the app should hear about (the call goes on), or
    /// `None` when the connection should be closed instead or the error is not an RPC one.
    pub fn reply(&self) -> Option<[String; 2]> {
        match self {
            RpcError::UnknownMethod { seq, method } => {
                Some(reply(*seq, method, Err(&self.to_string())))
            }
            RpcError::BadArgs { seq, .. } => {
                Some(reply(*seq, CONTROL_HANDLE, Err(&self.to_string())))
            }
            RpcError::Malformed(_) | RpcError::Decoding(_) => None,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Malformed(detail) => {
                write!(f, "rpc: server cannot decode request: {detail}")
            }
            // Go's net/rpc texts (server.go readRequestHeader), split at the last dot.
            RpcError::UnknownMethod { method, .. } => match method.rsplit_once('.') {
                None => write!(f, "rpc: service/method request ill-formed: {method}"),
                Some(("control", _)) => write!(f, "rpc: can't find method {method}"),
                Some(_) => write!(f, "rpc: can't find service {method}"),
            },
            RpcError::BadArgs { detail, .. } => {
                write!(f, "rpc: cannot decode control request: {detail}")
            }
            RpcError::Decoding(detail) => write!(f, "decoding error: {detail}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// An incoming envelope; `Response` is ignored (the app never answers the probe here).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "Request", default)]
    request: Option<RequestHeader>,
    #[serde(rename = "Value", borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RequestHeader {
    #[serde(rename = "Seq", default)]
    seq: u64,
    #[serde(rename = "ServiceMethod", default, deserialize_with = "lenient_string")]
    service_method: String,
}

/// What the server waits for next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Header,
    Body { seq: u64, method: String },
}

/// The probe's side of the control RPC on one websocket: feed it every text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcServer {
    expect: Expect,
}

impl Default for RpcServer {
    fn default() -> Self {
        RpcServer::new()
    }
}

impl RpcServer {
    /// A server waiting for the first call's header.
    pub fn new() -> Self {
        RpcServer {
            expect: Expect::Header,
        }
    }

    /// Takes one text message: `Ok(None)` after a header, the call after its body. After an
    /// error the server waits for a header again, but [`RpcError::Malformed`] means the
    /// connection should be closed.
    pub fn handle_message(&mut self, text: &str) -> Result<Option<RpcCall>, RpcError> {
        let expect = std::mem::replace(&mut self.expect, Expect::Header);
        let incoming: Incoming<'_> =
            serde_json::from_str(text).map_err(|e| RpcError::Malformed(e.to_string()))?;
        match expect {
            Expect::Header => {
                let Some(header) = incoming.request else {
                    return Err(RpcError::Malformed("frame has no Request header".into()));
                };
                self.expect = Expect::Body {
                    seq: header.seq,
                    method: header.service_method,
                };
                Ok(None)
            }
            Expect::Body { seq, method } => {
                // Go reads the body even for an unknown method, so the stream stays in step.
                if method != CONTROL_HANDLE {
                    return Err(RpcError::UnknownMethod { seq, method });
                }
                let args = match incoming.value {
                    // A null value leaves Go's argument at its zero value.
                    None => ControlRequest::default(),
                    Some(raw) => {
                        serde_json::from_str(raw.get()).map_err(|e| RpcError::BadArgs {
                            seq,
                            detail: e.to_string(),
                        })?
                    }
                };
                Ok(Some(RpcCall { seq, method, args }))
            }
        }
    }
}

/// The probe's two reply frames for call `seq` (AP §4): on success the response JSON `Ok`
/// (one JSON value, written as it is) is the body's `Value`; on an RPC error the header
/// carries the text and the body's `Value` is `null`.
pub fn reply(seq: u64, method: &str, result: Result<&str, &str>) -> [String; 2] {
    #[derive(Serialize)]
    struct Header<'a> {
        #[serde(rename = "Error")]
        error: &'a str,
        #[serde(rename = "Seq")]
        seq: u64,
        #[serde(rename = "ServiceMethod")]
        service_method: &'a str,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "Request")]
        request: (),
        #[serde(rename = "Response")]
        response: Header<'a>,
        #[serde(rename = "Value")]
        value: (),
    }
    let (error, value) = match result {
        Ok(value) => ("", value),
        Err(error) => (error, "null"),
    };
    let header = Envelope {
        request: (),
        response: Header {
            error,
            seq,
            service_method: method,
        },
        value: (),
    };
    // Serializing a struct of strings and integers into a String cannot fail; fall back to a
    // header without an error text rather than panic.
    let header = serde_json::to_string(&header).unwrap_or_default();
    let body = format!(r#"{{"Request":null,"Response":null,"Value":{value}}}"#);
    [header, body]
}

/// The `POST /control` body for a plugin (RF §7.8).
pub fn encode_control_request(req: &ControlRequest) -> Vec<u8> {
    // Strings and a string map always serialize; an empty body would be refused by the
    // plugin, which is the honest outcome of an impossible failure.
    serde_json::to_vec(req).unwrap_or_default()
}

/// A response that carries only an error (RF §7.7): `{"error":"<text>"}`.
pub fn error_response(text: &str) -> String {
    #[derive(Serialize)]
    struct ErrorOnly<'a> {
        error: &'a str,
    }
    serde_json::to_string(&ErrorOnly { error: text }).unwrap_or_default()
}

/// A plugin's answer to `POST /control` (RF §7.8, Go's `PluginResponse`), borrowing its raw
/// parts from the body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ControlResponse<'a> {
    /// Passed to the app as it is.
    #[serde(borrow, default)]
    pub value: Option<&'a RawValue>,
    /// Non-empty: the UI shows an error.
    #[serde(default, deserialize_with = "lenient_string")]
    pub error: String,
    /// A pipe id (of no practical use to plugins).
    #[serde(default, deserialize_with = "lenient_string")]
    pub pipe: String,
    /// The pipe is a raw TTY.
    #[serde(default, deserialize_with = "null_as_false")]
    pub raw_tty: bool,
    /// The control that resizes the TTY.
    #[serde(default, deserialize_with = "lenient_string")]
    pub resize_tty_control: String,
    /// A node the UI should treat as removed.
    #[serde(rename = "removedNode", default, deserialize_with = "lenient_string")]
    pub removed_node: String,
    /// The raw shortcut report (RF §7.9), exactly this spelling; `ShortcutReport` is an
    /// unknown key. `None` when absent or `null`.
    #[serde(rename = "shortcutReport", borrow, default)]
    pub shortcut_report: Option<&'a RawValue>,
}

/// The part of a response the app gets (Go's `xfer.Response`, every key omitempty).
#[derive(Serialize)]
struct AppResponse<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'r RawValue>,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'r str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pipe: &'r str,
    #[serde(skip_serializing_if = "is_false")]
    raw_tty: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    resize_tty_control: &'r str,
    #[serde(rename = "removedNode", skip_serializing_if = "str::is_empty")]
    removed_node: &'r str,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl<'a> ControlResponse<'a> {
    /// The response JSON for the app, without `shortcutReport` (RF §7.8): `{}` by default.
    pub fn encode_for_app(&self) -> String {
        let app = AppResponse {
            value: self.value,
            error: &self.error,
            pipe: &self.pipe,
            raw_tty: self.raw_tty,
            resize_tty_control: &self.resize_tty_control,
            removed_node: &self.removed_node,
        };
        // Strings, a bool and already-valid raw JSON always serialize.
        serde_json::to_string(&app).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The raw shortcut report text, for the report layer to decode (RF §7.9).
    pub fn shortcut_report(&self) -> Option<&'a str> {
        self.shortcut_report.map(RawValue::get)
    }
}

/// Decodes a plugin's `/control` body (RF §7.8). `null` is an empty response; an empty body
/// is an error; only the first JSON value is read (RF §1 rule 7).
pub fn decode_control_response(body: &[u8]) -> Result<ControlResponse<'_>, RpcError> {
    if body.trim_ascii().is_empty() {
        // Go's codec message for an empty body decoded into a struct (RF §7.4 step 4).
        return Err(RpcError::Decoding(
            "only encoded map or array can be decoded into a struct".into(),
        ));
    }
    let mut values =
        serde_json::Deserializer::from_slice(body).into_iter::<Option<ControlResponse<'_>>>();
    match values.next() {
        Some(Ok(response)) => Ok(response.unwrap_or_default()),
        Some(Err(e)) => Err(RpcError::Decoding(e.to_string())),
        None => Err(RpcError::Decoding("unexpected end of input".into())),
    }
}

/// A string the way Scope's codec reads one (RF §1 rules 5–6): `null` is `""`, a number or
/// boolean is its literal text, an object or array is an error.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text).map_err(D::Error::custom),
        Some(b'n') => Ok(String::new()),
        Some(b'{') => Err(D::Error::invalid_type(Unexpected::Map, &"a string")),
        Some(b'[') => Err(D::Error::invalid_type(Unexpected::Seq, &"a string")),
        _ => Ok(text.to_owned()),
    }
}

/// A boolean where `null` is `false` (RF §1 rule 5); strings are errors (rule 6).
fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    const HEADER: &str =
        r#"{"Request":{"Seq":3,"ServiceMethod":"control.Handle"},"Response":null,"Value":null}"#;
    const BODY: &str = r#"{"Request":null,"Response":null,"Value":{"AppID":"","Control":"iowait~switchToIdle","ControlArgs":null,"NodeID":"vm;<host>"}}"#;

    #[test]
    fn call_from_the_spec_frames() {
        let mut server = RpcServer::new();
        assert_eq!(server.handle_message(HEADER), Ok(None));
        let call = server.handle_message(BODY).unwrap().unwrap();
        assert_eq!(
            call,
            RpcCall {
                seq: 3,
                method: CONTROL_HANDLE.into(),
                args: ControlRequest {
                    app_id: String::new(),
                    control: "iowait~switchToIdle".into(),
                    control_args: None,
                    node_id: "vm;<host>".into(),
                },
            }
        );
        // The next frame is a header again.
        assert_eq!(server.handle_message(HEADER), Ok(None));
    }

    #[test]
    fn reply_frames_match_the_spec() {
        let [header, body] = reply(3, CONTROL_HANDLE, Ok(r#"{"value":{"ok":true}}"#));
        assert_eq!(
            parse(&header),
            parse(
                r#"{"Request":null,"Response":{"Error":"","Seq":3,"ServiceMethod":"control.Handle"},"Value":null}"#
            )
        );
        assert_eq!(
            parse(&body),
            parse(r#"{"Request":null,"Response":null,"Value":{"value":{"ok":true}}}"#)
        );
    }

    #[test]
    fn seq_is_echoed() {
        let mut server = RpcServer::new();
        let header = HEADER.replace("\"Seq\":3", "\"Seq\":18446744073709551615");
        server.handle_message(&header).unwrap();
        let call = server.handle_message(BODY).unwrap().unwrap();
        assert_eq!(call.seq, u64::MAX);
        let [header, _] = reply(call.seq, &call.method, Ok("{}"));
        assert_eq!(parse(&header)["Response"]["Seq"], json!(u64::MAX));
    }

    #[test]
    fn control_args_and_lenient_fields() {
        let mut server = RpcServer::new();
        server.handle_message(HEADER).unwrap();
        let body =
            r#"{"Value":{"Control":"c","ControlArgs":{"k":"v"},"NodeID":7,"Extra":[1]},"Junk":1}"#;
        let call = server.handle_message(body).unwrap().unwrap();
        assert_eq!(call.args.control, "c");
        assert_eq!(call.args.node_id, "7");
        assert_eq!(call.args.app_id, "");
        assert_eq!(
            call.args.control_args,
            Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]))
        );
    }

    #[test]
    fn null_value_is_an_empty_request() {
        let mut server = RpcServer::new();
        server.handle_message(HEADER).unwrap();
        let empty = r#"{"Request":null,"Response":null,"Value":null}"#;
        let call = server.handle_message(empty).unwrap().unwrap();
        assert_eq!(call.args, ControlRequest::default());
    }

    #[test]
    fn unknown_method_is_answered_with_an_error_header() {
        let mut server = RpcServer::new();
        let header = HEADER.replace("control.Handle", "control.Nope");
        server.handle_message(&header).unwrap();
        let err = server.handle_message(BODY).unwrap_err();
        assert_eq!(
            err,
            RpcError::UnknownMethod {
                seq: 3,
                method: "control.Nope".into()
            }
        );
        let [header, body] = err.reply().unwrap();
        assert_eq!(
            parse(&header),
            json!({"Request":null,"Response":{"Error":"rpc: can't find method control.Nope","Seq":3,"ServiceMethod":"control.Nope"},"Value":null})
        );
        assert_eq!(
            parse(&body),
            json!({"Request":null,"Response":null,"Value":null})
        );
        // The stream stays in step: the next call works.
        server.handle_message(HEADER).unwrap();
        assert!(server.handle_message(BODY).unwrap().is_some());
    }

    #[test]
    fn bad_args_are_answered_and_the_stream_goes_on() {
        let mut server = RpcServer::new();
        server.handle_message(HEADER).unwrap();
        let err = server
            .handle_message(r#"{"Value":{"ControlArgs":{"k":1}}}"#)
            .unwrap_err();
        assert!(matches!(err, RpcError::BadArgs { seq: 3, .. }), "{err:?}");
        let [header, _] = err.reply().unwrap();
        let header = parse(&header);
        assert_eq!(header["Response"]["Seq"], json!(3));
        assert!(
            header["Response"]["Error"]
                .as_str()
                .unwrap()
                .starts_with("rpc: cannot decode control request: ")
        );
        server.handle_message(HEADER).unwrap();
        assert!(server.handle_message(BODY).unwrap().is_some());
    }

    #[test]
    fn malformed_frames_are_errors() {
        for text in [
            "",
            "not json",
            "[1,2]",
            r#"{"Request":{"Seq":-1,"ServiceMethod":"control.Handle"}}"#,
            r#"{"Request":{"Seq":"x"}}"#,
            r#"{"Request":null,"Response":null,"Value":null}"#,
            r#"{"Request":{"Seq":1,"ServiceMethod":"control.Handle"}"#,
        ] {
            let mut server = RpcServer::new();
            let err = server.handle_message(text).unwrap_err();
            assert!(matches!(err, RpcError::Malformed(_)), "{text:?}: {err:?}");
            assert_eq!(err.reply(), None);
        }
        // A malformed body frame too.
        let mut server = RpcServer::new();
        server.handle_message(HEADER).unwrap();
        assert!(matches!(
            server.handle_message("{"),
            Err(RpcError::Malformed(_))
        ));
    }

    #[test]
    fn control_request_body_for_plugins() {
        let mut req = ControlRequest {
            app_id: "app".into(),
            control: "switchToIdle".into(),
            control_args: None,
            node_id: "vm;<host>".into(),
        };
        let body = encode_control_request(&req);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"AppID":"app","Control":"switchToIdle","ControlArgs":null,"NodeID":"vm;<host>"})
        );
        req.control_args = Some(BTreeMap::from([("a\"b".into(), "c".into())]));
        let body = encode_control_request(&req);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["ControlArgs"],
            json!({"a\"b":"c"})
        );
    }

    #[test]
    fn control_response_round_trip_drops_the_shortcut() {
        let body = br#"{"value":{"a":[1,2]},"error":"","pipe":"p","raw_tty":true,"resize_tty_control":"r","removedNode":"n","shortcutReport":{"Plugins":[{"id":"x"}]},"other":1}"#;
        let response = decode_control_response(body).unwrap();
        assert_eq!(
            response.shortcut_report(),
            Some(r#"{"Plugins":[{"id":"x"}]}"#)
        );
        assert_eq!(
            parse(&response.encode_for_app()),
            json!({"value":{"a":[1,2]},"pipe":"p","raw_tty":true,"resize_tty_control":"r","removedNode":"n"})
        );
    }

    #[test]
    fn capitalised_shortcut_report_is_ignored() {
        let body = br#"{"ShortcutReport":{"Plugins":[]},"error":"boom"}"#;
        let response = decode_control_response(body).unwrap();
        assert_eq!(response.shortcut_report(), None);
        assert_eq!(response.encode_for_app(), r#"{"error":"boom"}"#);
    }

    #[test]
    fn null_shortcut_report_is_absent() {
        let response = decode_control_response(br#"{"shortcutReport":null}"#).unwrap();
        assert_eq!(response.shortcut_report(), None);
    }

    #[test]
    fn null_body_is_an_empty_response() {
        let response = decode_control_response(b" null ").unwrap();
        assert_eq!(response.encode_for_app(), "{}");
        assert_eq!(
            decode_control_response(b"{}").unwrap().encode_for_app(),
            "{}"
        );
    }

    #[test]
    fn null_and_scalar_fields_are_lenient() {
        let body = br#"{"error":null,"pipe":42,"raw_tty":null,"removedNode":true,"value":null}"#;
        let response = decode_control_response(body).unwrap();
        assert_eq!(
            response.encode_for_app(),
            r#"{"pipe":"42","removedNode":"true"}"#
        );
    }

    #[test]
    fn only_the_first_value_is_read() {
        let response = decode_control_response(br#"{"error":"x"} trailing"#).unwrap();
        assert_eq!(response.error, "x");
    }

    #[test]
    fn bad_bodies_are_decoding_errors() {
        assert_eq!(
            decode_control_response(b"").unwrap_err().to_string(),
            "decoding error: only encoded map or array can be decoded into a struct"
        );
        assert!(decode_control_response(b" \n").is_err());
        for body in [
            &b"notJSON"[..],
            b"\"s\"",
            br#"{"error":{}}"#,
            br#"{"raw_tty":"true"}"#,
            br#"{"error":"x""#,
        ] {
            let err = decode_control_response(body).unwrap_err();
            assert!(
                err.to_string().starts_with("decoding error: "),
                "{body:?}: {err}"
            );
            assert_eq!(err.reply(), None);
        }
    }

    #[test]
    fn error_response_is_escaped_json() {
        let text = "Control \"a~b\" not recognised\n\\";
        let encoded = error_response(text);
        assert_eq!(encoded, r#"{"error":"Control \"a~b\" not recognised\n\\"}"#);
        assert_eq!(parse(&encoded), json!({ "error": text }));
    }

    #[test]
    fn error_texts() {
        let cases = [
            (
                RpcError::Malformed("EOF".into()),
                "rpc: server cannot decode request: EOF",
            ),
            (
                RpcError::UnknownMethod {
                    seq: 1,
                    method: "control.Nope".into(),
                },
                "rpc: can't find method control.Nope",
            ),
            (
                RpcError::UnknownMethod {
                    seq: 1,
                    method: "pipe.Handle".into(),
                },
                "rpc: can't find service pipe.Handle",
            ),
            (
                RpcError::UnknownMethod {
                    seq: 1,
                    method: "nodot".into(),
                },
                "rpc: service/method request ill-formed: nodot",
            ),
            (
                RpcError::BadArgs {
                    seq: 1,
                    detail: "bad".into(),
                },
                "rpc: cannot decode control request: bad",
            ),
            (RpcError::Decoding("eof".into()), "decoding error: eof"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
