//! A deliberately small XML tokenizer, enough for JUnit reports.
//!
//! JUnit XML is machine-written and shallow; pulling in an XML crate for it is not worth a new
//! dependency. The scanner is lenient: malformed markup ends the scan instead of failing, since
//! a truncated report (gate killed mid-write) should still yield the test cases before the cut.

/// One piece of markup. Attribute values and text are entity-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        self_closing: bool,
    },
    End {
        name: &'a str,
    },
    Text(String),
}

/// Tokenize `s`, skipping the prolog, comments, processing instructions and doctypes.
pub(crate) fn tokens(s: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest);
            break;
        };
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        let Some(next) = markup(rest, &mut out) else {
            break;
        };
        rest = next;
    }
    out
}

fn push_text(out: &mut Vec<Token<'_>>, raw: &str) {
    if !raw.is_empty() {
        out.push(Token::Text(decode_entities(raw)));
    }
}

/// Consume one `<...>` construct at the start of `s`; returns the remainder.
fn markup<'a>(s: &'a str, out: &mut Vec<Token<'a>>) -> Option<&'a str> {
    if let Some(body) = s.strip_prefix("<![CDATA[") {
        let end = body.find("]]>")?;
        out.push(Token::Text(body[..end].to_string()));
        return Some(&body[end + 3..]);
    }
    if let Some(body) = s.strip_prefix("<!--") {
        return Some(&body[body.find("-->")? + 3..]);
    }
    if s.starts_with("<?") || s.starts_with("<!") {
        return Some(&s[s.find('>')? + 1..]);
    }
    let end = tag_end(s)?;
    let inner = &s[1..end];
    if let Some(name) = inner.strip_prefix('/') {
        out.push(Token::End { name: name.trim() });
    } else {
        out.push(start_tag(inner));
    }
    Some(&s[end + 1..])
}

/// Index of the `>` closing the tag at the start of `s`, ignoring `>` inside quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn start_tag(inner: &str) -> Token<'_> {
    let (inner, self_closing) = match inner.strip_suffix('/') {
        Some(i) => (i, true),
        None => (inner, false),
    };
    let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
    Token::Start {
        name: &inner[..name_end],
        attrs: attributes(&inner[name_end..]),
        self_closing,
    }
}

/// `a="1" b='2'` pairs; a value without quotes ends the scan.
fn attributes(mut s: &str) -> Vec<(&str, String)> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else { break };
        let name = s[..eq].trim();
        let value = s[eq + 1..].trim_start();
        let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = value[1..].find(quote) else {
            break;
        };
        attrs.push((name, decode_entities(&value[1..1 + close])));
        s = &value[close + 2..];
    }
    attrs
}

/// Decode the five predefined entities and numeric character references; unknown entities are
/// kept verbatim.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .find(';')
            .filter(|semi| *semi <= 10)
            .and_then(|semi| entity(&rest[1..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// The value of attribute `name`, if present.
pub(crate) fn attr<'t>(attrs: &'t [(&str, String)], name: &str) -> Option<&'t str> {
    attrs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_entities() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &amp;&quot;&apos; &#10;&#x41; &bogus; & x"),
            "a <b> &\"' \nA &bogus; & x"
        );
    }

    #[test]
    fn tokenizes_elements_attributes_and_cdata() {
        let toks = tokens(
            "<?xml version=\"1.0\"?><!-- c --><a x=\"1 &gt; 0\" y='q'>t<![CDATA[<raw>]]><b/></a>",
        );
        assert_eq!(
            toks,
            vec![
                Token::Start {
                    name: "a",
                    attrs: vec![("x", "1 > 0".to_string()), ("y", "q".to_string())],
                    self_closing: false
                },
                Token::Text("t".to_string()),
                Token::Text("<raw>".to_string()),
                Token::Start {
                    name: "b",
                    attrs: vec![],
                    self_closing: true
                },
                Token::End { name: "a" },
            ]
        );
    }

    #[test]
    fn truncated_input_keeps_what_came_before() {
        let toks = tokens("<a>x</a><b attr=\"unterminated");
        assert_eq!(toks.len(), 3);
    }
}
