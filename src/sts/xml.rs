//! Parsing STS's XML answers: credentials on success, `ErrorResponse` on
//! failure.
//!
//! Strict where it matters (the root element must be the action's response,
//! all four credential fields must be present and non-empty, the expiry must
//! be a timestamp) and tolerant where real servers differ (namespaces or
//! none, extra elements, fractional seconds or offsets in `Expiration`).
//! Pure: takes the body as `&str`.

use chrono::{DateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::credentials::Credentials;
use crate::secret::Secret;

/// What a successful STS call returned.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) credentials: Credentials,
    /// `AssumedRoleUser/Arn`, when the action returns one.
    pub(crate) assumed_role_arn: Option<String>,
}

/// An STS error document: `<ErrorResponse><Error><Code>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceError {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) request_id: Option<String>,
}

/// Why a response body could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("expected <{expected}> as the root element, found <{found}>")]
    UnexpectedRoot { expected: String, found: String },
    #[error("missing or empty <{0}>")]
    Missing(&'static str),
    #[error("<Expiration> `{0}` is not an RFC 3339 timestamp")]
    BadExpiration(String),
}

/// Leaf elements collected from a document: (path of local names, text).
struct Leaves {
    root: String,
    leaves: Vec<(String, String)>,
}

impl Leaves {
    fn get(&self, path: &str) -> Option<&str> {
        self.leaves
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn take(&mut self, path: &str) -> Option<String> {
        let i = self
            .leaves
            .iter()
            .position(|(p, v)| p == path && !v.is_empty())?;
        Some(self.leaves.swap_remove(i).1)
    }
}

impl Drop for Leaves {
    // The leaves hold the secret key and session token as they were parsed.
    fn drop(&mut self) {
        for (_, v) in &mut self.leaves {
            zeroize::Zeroize::zeroize(v);
        }
    }
}

/// Walks the document and records the text of every element by its path
/// below the root, e.g. `AssumeRoleResult/Credentials/AccessKeyId`.
fn leaves(body: &str) -> Result<Leaves, XmlError> {
    let mut reader = Reader::from_str(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut root = None;
    let mut out = Vec::new();
    loop {
        match reader.read_event().map_err(|_| {
            XmlError::Syntax(format!("at byte {}", reader.error_position()))
        })? {
            Event::Start(e) => {
                let name = checked_local_name(&e, reader.buffer_position())?;
                if stack.is_empty() {
                    set_root(&mut root, &name)?;
                }
                stack.push(name);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Empty(e) => {
                let name = checked_local_name(&e, reader.buffer_position())?;
                if stack.is_empty() {
                    set_root(&mut root, &name)?;
                }
            }
            // Whitespace and a byte-order mark are not content.
            Event::Text(_) | Event::CData(_) if stack.is_empty() => {
                return Err(XmlError::Syntax("text outside the root element".into()));
            }
            Event::Text(t) => {
                // The message would quote the text, which may be a secret.
                let text = t.unescape().map_err(|_| {
                    XmlError::Syntax(format!(
                        "bad character reference before byte {}",
                        reader.buffer_position()
                    ))
                })?;
                push_leaf(&stack, text.into_owned(), &mut out);
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c.into_inner()).into_owned();
                push_leaf(&stack, text, &mut out);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Counted, not named: a name is whatever stood between `<` and a space,
    // which in a broken body can be the text of any element.
    if !stack.is_empty() {
        return Err(XmlError::Syntax(format!(
            "{} unclosed element(s) at the end",
            stack.len()
        )));
    }
    let root = root.ok_or_else(|| XmlError::Syntax("empty document".into()))?;
    Ok(Leaves { root, leaves: out })
}

/// The local name of a start or empty tag whose name and attributes are
/// well-formed (one check for both kinds of tag).
fn checked_local_name(tag: &BytesStart<'_>, position: u64) -> Result<String, XmlError> {
    check_name(tag, position)?;
    check_attributes(tag)?;
    Ok(String::from_utf8_lossy(tag.local_name().as_ref()).into_owned())
}

/// A tag's attributes are well-formed (`name="value"`, each once).
/// quick-xml reads them only when asked, so `<Root xmlns"…"/ >` would
/// otherwise pass as a start tag that another reader takes for an empty
/// element: documents are read one way or refused.
fn check_attributes(tag: &BytesStart<'_>) -> Result<(), XmlError> {
    match tag.attributes().find_map(Result::err) {
        // The position, not the text: a broken body's tag may be secret.
        Some(e) => Err(XmlError::Syntax(format!(
            "malformed attribute ({})",
            attribute_problem(&e)
        ))),
        None => Ok(()),
    }
}

/// A tag's name is an XML `Name`. quick-xml takes whatever stands before
/// a space or `/` for the name, quotes and `<` included, so a broken tag
/// can swallow the elements after it, secrets and all, into a "name" that
/// an error would then quote.
fn check_name(tag: &BytesStart<'_>, position: u64) -> Result<(), XmlError> {
    match std::str::from_utf8(tag.name().as_ref()) {
        Ok(name) if is_xml_name(name) => Ok(()),
        _ => Err(XmlError::Syntax(format!(
            "an element name that is not an XML name, before byte {position}"
        ))),
    }
}

/// Whether `name` matches XML 1.0's `Name` production (section 2.3).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// What is wrong with an attribute, without quoting it.
fn attribute_problem(e: &quick_xml::events::attributes::AttrError) -> &'static str {
    use quick_xml::events::attributes::AttrError;
    match e {
        AttrError::ExpectedEq(_) => "no `=`",
        AttrError::ExpectedValue(_) => "no value",
        AttrError::UnquotedValue(_) => "unquoted value",
        AttrError::ExpectedQuote(_, _) => "no opening quote",
        AttrError::Duplicated(_, _) => "given twice",
    }
}

/// Records the root element; a document has one (quick-xml reads on after
/// it, and paths below a second one would pass for the first's).
fn set_root(root: &mut Option<String>, name: &str) -> Result<(), XmlError> {
    if root.is_some() {
        return Err(XmlError::Syntax("more than one root element".into()));
    }
    *root = Some(name.to_string());
    Ok(())
}

fn push_leaf(stack: &[String], text: String, out: &mut Vec<(String, String)>) {
    if stack.len() > 1 {
        out.push((stack[1..].join("/"), text));
    }
}

/// The leaves of an answer to `action`, whose root must be
/// `{action}Response`.
fn response(action: &str, body: &str) -> Result<Leaves, XmlError> {
    let doc = leaves(body)?;
    let expected_root = format!("{action}Response");
    if doc.root != expected_root {
        return Err(XmlError::UnexpectedRoot {
            expected: expected_root,
            found: doc.root.clone(),
        });
    }
    Ok(doc)
}

/// Parses the body of a 200 answer to `action`.
pub(crate) fn parse_credentials(action: &str, body: &str) -> Result<Issued, XmlError> {
    let mut doc = response(action, body)?;
    let base = format!("{action}Result/Credentials");
    let field = |name| format!("{base}/{name}");
    let access_key_id = doc
        .take(&field("AccessKeyId"))
        .ok_or(XmlError::Missing("AccessKeyId"))?;
    let secret = doc
        .take(&field("SecretAccessKey"))
        .ok_or(XmlError::Missing("SecretAccessKey"))?;
    let token = doc
        .take(&field("SessionToken"))
        .ok_or(XmlError::Missing("SessionToken"))?;
    let expiration = doc
        .get(&field("Expiration"))
        .ok_or(XmlError::Missing("Expiration"))?;
    let expiration = parse_expiration(expiration)?;
    let assumed_role_arn = doc
        .get(&format!("{action}Result/AssumedRoleUser/Arn"))
        .map(str::to_string);
    Ok(Issued {
        credentials: Credentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: Some(Secret::new(token)),
            expiration: Some(expiration),
        },
        assumed_role_arn,
    })
}

/// The texts at `paths` (below `{action}Result/`) in a 200 answer to
/// another awsQuery `action` (IAM's, GetCallerIdentity), in order, wiped
/// when dropped (CreateAccessKey's holds a secret key).
pub(crate) fn parse_result(
    action: &str,
    body: &str,
    paths: &[&'static str],
) -> Result<Vec<zeroize::Zeroizing<String>>, XmlError> {
    let mut doc = response(action, body)?;
    paths
        .iter()
        .map(|path| {
            doc.take(&format!("{action}Result/{path}"))
                .map(zeroize::Zeroizing::new)
                .ok_or(XmlError::Missing(path))
        })
        .collect()
}

/// RFC 3339 with any fractional seconds and offset, normalised to UTC.
pub(crate) fn parse_expiration(text: &str) -> Result<DateTime<Utc>, XmlError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| XmlError::BadExpiration(text.chars().take(64).collect()))
}

/// Parses an error body. `None` when it is not an STS error document (an
/// HTML page from a proxy, say).
///
/// STS answers `<ErrorResponse><Error>`; the awsQuery family also has
/// `<ErrorResponse><Errors><Error>` and EC2's `<Response><Errors><Error>`
/// (moto answers some STS errors so), which botocore reads as well. Any
/// other root is not an STS error, whatever elements it holds.
pub(crate) fn parse_error(body: &str) -> Option<ServiceError> {
    let doc = leaves(body).ok()?;
    if doc.root != "ErrorResponse" && doc.root != "Response" {
        return None;
    }
    let error = ["Error", "Errors/Error"]
        .into_iter()
        .find(|e| doc.get(&format!("{e}/Code")).is_some())?;
    let get = |name: &str| doc.get(&format!("{error}/{name}"));
    Some(ServiceError {
        code: get("Code")?.to_string(),
        message: get("Message").unwrap_or("").to_string(),
        request_id: doc
            .get("RequestId")
            .or(get("RequestId"))
            .or(doc.get("ResponseMetadata/RequestId"))
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_results_are_read_by_path_and_a_wrong_root_is_refused() {
        let body = "<CreateAccessKeyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
            <CreateAccessKeyResult><AccessKey><UserName>alice</UserName>\
            <AccessKeyId>AKIANEW</AccessKeyId><SecretAccessKey>s3cr3t</SecretAccessKey>\
            </AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        let found = parse_result(
            "CreateAccessKey",
            body,
            &["AccessKey/AccessKeyId", "AccessKey/SecretAccessKey"],
        )
        .unwrap();
        assert_eq!(
            (found[0].as_str(), found[1].as_str()),
            ("AKIANEW", "s3cr3t")
        );
        let err = parse_result("GetUser", body, &["User/UserName"]).unwrap_err();
        assert!(matches!(err, XmlError::UnexpectedRoot { .. }), "{err}");
        let err = parse_result("CreateAccessKey", body, &["User/UserName"]).unwrap_err();
        assert_eq!(err, XmlError::Missing("User/UserName"));
        assert!(
            parse_result("DeleteAccessKey", "<DeleteAccessKeyResponse/>", &[]).is_ok()
        );
    }

    const OK: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>alice</SourceIdentity>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/s3-access-example</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>
      <SecretAccessKey>9drTJvcXLB89EXAMPLELB8923FB892xMFI</SecretAccessKey>
      <SessionToken>AQoXdzELDDY//////////wEaoAK1wvxJY12r2IrDFT2IvAzTCn3zHoZ7YNtpiQLF0MqZye/qwjzP2iEXAMPLEtokenA&amp;B</SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

    #[test]
    fn parses_documented_assume_role_response() {
        let issued = parse_credentials("AssumeRole", OK).unwrap();
        let c = &issued.credentials;
        assert_eq!(c.access_key_id, "ASIAJEXAMPLEXEG2JICEA");
        assert_eq!(
            c.secret_access_key.expose(),
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI"
        );
        assert!(
            c.session_token
                .as_ref()
                .unwrap()
                .expose()
                .ends_with("tokenA&B")
        );
        assert_eq!(
            c.expiration.unwrap().to_rfc3339(),
            "2019-11-09T13:34:41+00:00"
        );
        assert_eq!(
            issued.assumed_role_arn.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/demo/s3-access-example")
        );
    }

    #[test]
    fn tolerates_fractional_seconds_offsets_and_no_namespace() {
        let body = OK
            .replace(" xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"", "")
            .replace("2019-11-09T13:34:41Z", "2019-11-09T15:34:41.123456+02:00");
        let c = parse_credentials("AssumeRole", &body).unwrap().credentials;
        assert_eq!(c.expiration.unwrap().timestamp(), 1573306481);
    }

    #[test]
    fn rejects_wrong_root_missing_fields_and_bad_expiry() {
        assert_eq!(
            parse_credentials("GetSessionToken", OK).unwrap_err(),
            XmlError::UnexpectedRoot {
                expected: "GetSessionTokenResponse".into(),
                found: "AssumeRoleResponse".into()
            }
        );
        let no_token = OK
            .replace("<SessionToken>", "<Other>")
            .replace("</SessionToken>", "</Other>");
        assert_eq!(
            parse_credentials("AssumeRole", &no_token).unwrap_err(),
            XmlError::Missing("SessionToken")
        );
        let empty_secret = OK.replace("9drTJvcXLB89EXAMPLELB8923FB892xMFI", "");
        assert_eq!(
            parse_credentials("AssumeRole", &empty_secret).unwrap_err(),
            XmlError::Missing("SecretAccessKey")
        );
        let bad_time = OK.replace("2019-11-09T13:34:41Z", "tomorrow");
        assert!(matches!(
            parse_credentials("AssumeRole", &bad_time),
            Err(XmlError::BadExpiration(_))
        ));
    }

    #[test]
    fn rejects_truncated_and_non_xml_bodies() {
        let truncated = &OK[..OK.len() / 2];
        assert!(matches!(
            parse_credentials("AssumeRole", truncated),
            Err(XmlError::Syntax(_))
        ));
        assert!(parse_credentials("AssumeRole", "").is_err());
        assert!(parse_credentials("AssumeRole", "<html><body>502</body>").is_err());
        assert!(parse_credentials("AssumeRole", "{\"json\": true}").is_err());
    }

    #[test]
    fn a_bad_character_reference_in_a_secret_is_not_quoted() {
        let body = OK.replace(
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI",
            "9drTJvc&hunter2secret;XLB",
        );
        let err = parse_credentials("AssumeRole", &body)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("malformed XML: bad character reference"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_parse_errors() {
        let bad_time = OK.replace("2019-11-09T13:34:41Z", "x");
        let err = parse_credentials("AssumeRole", &bad_time)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("9drTJvcXLB89"), "{err}");
    }

    #[test]
    fn content_outside_the_one_root_element_is_refused() {
        // The sts_xml fuzz target's root invariant: paths were taken below
        // whichever element was on top, so credentials under a second
        // top-level element passed for the root's.
        let second_root = format!(
            "<AssumeRoleResponse/>{}",
            OK.replace("AssumeRoleResponse", "SomethingElse")
        );
        let trailing = format!("{OK}<AssumeRoleResponse/>");
        let leading_text = format!("junk{OK}");
        for body in [second_root, trailing, leading_text] {
            assert!(
                matches!(
                    parse_credentials("AssumeRole", &body),
                    Err(XmlError::Syntax(_))
                ),
                "{body}"
            );
        }
        let with_prolog =
            format!("\u{feff}<?xml version=\"1.0\"?>\n<!-- c -->\n{OK}\n<!-- end -->\n");
        for body in [format!("\u{feff}{OK}"), format!("  \n{OK}  \n")] {
            assert!(parse_credentials("AssumeRole", &body).is_ok(), "{body:?}");
        }
        // A byte-order mark belongs only at the very start.
        let late_bom = format!("<?xml version=\"1.0\"?>\u{feff}{OK}");
        assert!(matches!(
            parse_credentials("AssumeRole", &late_bom),
            Err(XmlError::Syntax(_))
        ));
        assert!(parse_credentials("AssumeRole", &with_prolog).is_ok());
    }

    #[test]
    fn malformed_attributes_are_refused_without_quoting_them() {
        // The sts_xml fuzz target: `<Root xmlns"…"/ >` is no empty element
        // to an XML reader, but the attribute was never read, so the
        // document passed; a reader that saw an empty root would find the
        // credentials outside it.
        let root =
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">";
        for (tag, problem) in [
            ("<AssumeRoleResponse xmlns\"hunter2\"/ \n>", "no `=`"),
            ("<AssumeRoleResponse a=\"1\" a=\"2\">", "given twice"),
            ("<AssumeRoleResponse a=hunter2>", "unquoted value"),
        ] {
            let body = OK.replacen(root, tag, 1);
            assert_eq!(
                parse_credentials("AssumeRole", &body).unwrap_err(),
                XmlError::Syntax(format!("malformed attribute ({problem})")),
                "{tag}"
            );
        }
        let inner = OK.replace("<PackedPolicySize>6</PackedPolicySize>", "<Tag k=v/>");
        assert!(matches!(
            parse_credentials("AssumeRole", &inner),
            Err(XmlError::Syntax(_))
        ));
    }

    #[test]
    fn element_names_that_are_not_xml_names_are_refused_without_quoting_them() {
        // The sts_xml fuzz target: quick-xml takes everything up to a space
        // or `/` for a name, quotes and `<` included, so a broken root tag
        // swallowed the next elements' text into its "name", which the
        // unexpected-root error then quoted.
        let body = "<AssumeRoleResponse\"x<SessionToken>AQoSECRET<SessionToken>/\"/>";
        let err = parse_credentials("AssumeRole", body).unwrap_err();
        assert!(matches!(err, XmlError::Syntax(_)), "{err:?}");
        assert!(!err.to_string().contains("AQoSECRET"), "{err}");
        let inner = OK.replace("<PackedPolicySize>", "<Packed\"Policy\"Size>");
        assert!(matches!(
            parse_credentials("AssumeRole", &inner),
            Err(XmlError::Syntax(_))
        ));
        // A wrong but well-formed root is still named: it helps find a
        // misrouted endpoint.
        assert_eq!(
            parse_credentials("AssumeRole", "<html/>").unwrap_err(),
            XmlError::UnexpectedRoot {
                expected: "AssumeRoleResponse".into(),
                found: "html".into()
            }
        );
    }

    #[test]
    fn xml_names_follow_the_xml_1_0_production() {
        for name in [
            "AssumeRoleResponse",
            "sts:Credentials",
            "_a.b-c9",
            "Ünïcode",
            "x\u{B7}",
        ] {
            assert!(is_xml_name(name), "{name}");
        }
        for name in [
            "", "9lives", "-a", ".a", "a\"b", "a<b", "a=b", "a'b", "a>b", "a&b", "a b",
        ] {
            assert!(!is_xml_name(name), "{name}");
        }
    }

    #[test]
    fn empty_elements_and_cdata_inside_the_root_are_read() {
        let body = OK
            .replace(
                "<PackedPolicySize>6</PackedPolicySize>",
                "<PackedPolicySize/>",
            )
            .replace(
                "9drTJvcXLB89EXAMPLELB8923FB892xMFI",
                "<![CDATA[9drTJvc<&>892xMFI]]>",
            );
        let issued = parse_credentials("AssumeRole", &body).unwrap();
        assert_eq!(
            issued.credentials.secret_access_key.expose(),
            "9drTJvc<&>892xMFI"
        );
    }

    #[test]
    fn syntax_errors_never_quote_element_names() {
        // The sts_xml fuzz target: with a `<` inside the secret's text, a
        // piece of it became an element name, and the "unclosed element"
        // error listed every open element by name.
        let body = OK.replace(
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI",
            "9drTJvc<hunter2secret",
        );
        let err = parse_credentials("AssumeRole", &body)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("malformed XML"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let cut = &OK[..OK.find("</SecretAccessKey>").unwrap()];
        assert_eq!(
            parse_credentials("AssumeRole", cut).unwrap_err(),
            XmlError::Syntax("4 unclosed element(s) at the end".into())
        );
    }

    #[test]
    fn parses_web_identity_saml_and_session_token_answers() {
        for action in ["AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"] {
            let body = OK.replace("AssumeRole", action);
            let issued = parse_credentials(action, &body).unwrap();
            assert!(issued.assumed_role_arn.is_some(), "{action}");
        }
        let body = OK.replace("AssumeRole", "GetSessionToken");
        let issued = parse_credentials("GetSessionToken", &body).unwrap();
        assert_eq!(issued.credentials.access_key_id, "ASIAJEXAMPLEXEG2JICEA");
    }

    #[test]
    fn error_documents_have_an_error_root_and_either_error_shape() {
        // Any root with an <Error><Code> below it was taken for an STS
        // error, and the `Errors` wrapper of the awsQuery family (botocore
        // reads both) was not.
        let wrapped = "<ErrorResponse><Errors><Error><Type>Sender</Type><Code>ValidationError</Code>\
                       <Message>bad</Message></Error></Errors><RequestId>r-1</RequestId></ErrorResponse>";
        assert_eq!(
            parse_error(wrapped),
            Some(ServiceError {
                code: "ValidationError".into(),
                message: "bad".into(),
                request_id: Some("r-1".into()),
            })
        );
        let ec2 = "<Response><Errors><Error><Code>X</Code></Error></Errors></Response>";
        assert_eq!(parse_error(ec2).unwrap().code, "X");
        let proxy =
            "<html><Error><Code>502</Code><Message>Bad Gateway</Message></Error></html>";
        assert_eq!(parse_error(proxy), None);
    }

    #[test]
    fn parses_error_response() {
        let body = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/x is not authorized</Message></Error>
  <RequestId>4c1e-uuid</RequestId>
</ErrorResponse>"#;
        assert_eq!(
            parse_error(body),
            Some(ServiceError {
                code: "AccessDenied".into(),
                message: "User: arn:aws:iam::123456789012:user/x is not authorized"
                    .into(),
                request_id: Some("4c1e-uuid".into()),
            })
        );
        assert_eq!(parse_error("<html>Bad Gateway</html>"), None);
        assert_eq!(parse_error("not xml at all <"), None);
    }
}
