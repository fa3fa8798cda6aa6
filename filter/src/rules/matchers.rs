//! Conditions: one compiled test each, evaluated to match / no match / needs
//! the body. A rule's `match` compiles to a list of conditions that must all
//! hold; the ones that need no body come first.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::body::{Body, JsonCond, JsonTest, Pointer};
use super::config::{
    BodyDoc, HeaderDoc, IdentityMatchDoc, JsonDoc, MatchDoc, McpDoc, OpenAiApi, OpenAiDoc, PathDoc,
    StringList,
};
use super::path::{has_prefix, normalize, NormalizedPath};
use super::shapes;
use super::RequestView;
use crate::body::Reading;
use crate::policy::PolicyError;

/// The result of a condition or a rule's whole `match` on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchResult {
    Match,
    NoMatch,
    /// Every condition that can be decided without the body matched, and the
    /// body was not given.
    NeedsBody,
}

/// What the conditions of one evaluation share: computed once per request.
pub(crate) struct Ctx<'r, 'a> {
    pub(crate) req: &'r RequestView<'a>,
    pub(crate) path: NormalizedPath,
    path_lower: std::cell::OnceCell<String>,
    host: String,
    port: Option<String>,
    body: Option<Body<'a>>,
}

impl<'r, 'a> Ctx<'r, 'a> {
    pub(crate) fn new(req: &'r RequestView<'a>) -> Self {
        Ctx::read(req, None)
    }

    /// With the flow's reading of the body (the one masks rewrite from).
    pub(crate) fn read(req: &'r RequestView<'a>, reading: Option<&'a Reading<'a>>) -> Self {
        let (host, port) = split_authority(req.authority);
        Ctx {
            req,
            path: normalize(req.path),
            path_lower: std::cell::OnceCell::new(),
            host,
            port,
            body: req.body.map(|b| {
                let ct = req
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.as_str());
                match reading.filter(|r| std::ptr::eq(r.raw, b)) {
                    Some(r) => Body::read(r, ct),
                    None => Body::new(b, ct),
                }
            }),
        }
    }

    /// The normalised path, lowercase (for `ignore_case`).
    fn path_lower(&self) -> &str {
        self.path_lower
            .get_or_init(|| self.path.path.to_lowercase())
    }

    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        crate::headers::values(self.req.headers, name)
    }
}

/// `Host:port`, `[v6]:port` → lowercase host without a trailing dot, port.
fn split_authority(a: &str) -> (String, Option<String>) {
    let a = a.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (format!("[{h}]"), p.strip_prefix(':').map(str::to_string)),
            None => (a.clone(), None),
        }
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.to_string())),
            _ => (a.clone(), None),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    (host, port.filter(|p| !p.is_empty()))
}

#[derive(Debug)]
pub(crate) struct AuthorityPattern {
    text: String,
    /// `Some(suffix)` for `*.suffix` (stored with its leading dot).
    wildcard: bool,
    host: String,
    port: Option<String>,
}

impl AuthorityPattern {
    fn parse(text: &str, path: &str) -> Result<Self, PolicyError> {
        let (host, port) = split_authority(text);
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, format!(".{rest}")),
            None => (false, host),
        };
        let bad_host = host.is_empty()
            || host == "."
            || host.contains('*')
            || host.contains('/')
            || host.chars().any(char::is_whitespace);
        if bad_host {
            return Err(PolicyError::at(
                path,
                format!("invalid authority {text:?}: expected host, host:port, *.suffix or *.suffix:port"),
            ));
        }
        if let Some(p) = &port {
            if p.parse::<u16>().is_err() {
                return Err(PolicyError::at(
                    path,
                    format!("invalid port in authority {text:?}"),
                ));
            }
        }
        Ok(AuthorityPattern {
            text: text.to_string(),
            wildcard,
            host,
            port,
        })
    }

    fn matches(&self, host: &str, port: Option<&str>) -> bool {
        let host_ok = if self.wildcard {
            host.ends_with(&self.host) && host.len() > self.host.len()
        } else {
            host == self.host
        };
        host_ok
            && match &self.port {
                None => true,
                Some(p) => port == Some(p.as_str()),
            }
    }
}

/// Exact names and `*` globs.
#[derive(Debug)]
pub(crate) struct Names {
    list: Vec<String>,
    exact: Vec<String>,
    globs: Option<Regex>,
}

impl Names {
    fn compile(list: &StringList, path: &str) -> Result<Names, PolicyError> {
        non_empty(list, path)?;
        let mut exact = Vec::new();
        let mut globs = Vec::new();
        for n in &list.0 {
            if n.contains('*') {
                let parts: Vec<String> = n.split('*').map(regex::escape).collect();
                globs.push(parts.join(".*"));
            } else {
                exact.push(n.clone());
            }
        }
        let globs = if globs.is_empty() {
            None
        } else {
            Some(build_regex(&format!("^(?:{})$", globs.join("|")), path)?)
        };
        Ok(Names {
            list: list.0.clone(),
            exact,
            globs,
        })
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.exact.iter().any(|e| e == name)
            || self.globs.as_ref().is_some_and(|g| g.is_match(name))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SetTest {
    Any,
    All,
    None,
}

#[derive(Debug)]
pub(crate) enum HeaderTest {
    Present(bool),
    Exact(String),
    Regex(Regex),
}

#[derive(Debug)]
pub(crate) struct McpCond {
    methods: Option<Names>,
    tools: Option<Names>,
    arguments: Vec<JsonCond>,
}

/// One compiled condition.
#[derive(Debug)]
pub(crate) enum Cond {
    Methods(Vec<String>),
    Authority(Vec<AuthorityPattern>),
    /// Paths (lowercase when the flag, `ignore_case`, is set).
    PathExact(Vec<String>, bool),
    PathPrefix(Vec<String>, bool),
    PathRegex(Regex),
    PathAmbiguous(bool),
    Header(String, HeaderTest),
    Authenticated(bool),
    Subject(Vec<String>),
    Groups(SetTest, Vec<String>),
    Scopes(SetTest, Vec<String>),
    OpenAiEndpoint(Option<OpenAiApi>),
    // Conditions below need the body.
    BodyRegex(Regex),
    BodyKeywords(Vec<String>, Regex),
    BodyJson(JsonCond),
    OpenAiModels(Names),
    OpenAiTextRegex(Regex),
    OpenAiTextKeywords(Vec<String>, Regex),
    OpenAiTools(Names),
    Mcp(McpCond),
    /// A nested `match` that must not hold.
    Not(Vec<Cond>),
}

impl Cond {
    pub(crate) fn needs_body(&self) -> bool {
        if let Cond::Not(inner) = self {
            return inner.iter().any(Cond::needs_body);
        }
        matches!(
            self,
            Cond::BodyRegex(_)
                | Cond::BodyKeywords(..)
                | Cond::BodyJson(_)
                | Cond::OpenAiModels(_)
                | Cond::OpenAiTextRegex(_)
                | Cond::OpenAiTextKeywords(..)
                | Cond::OpenAiTools(_)
                | Cond::Mcp(_)
        )
    }

    pub(crate) fn eval(&self, ctx: &Ctx<'_, '_>) -> MatchResult {
        let yes = |b: bool| {
            if b {
                MatchResult::Match
            } else {
                MatchResult::NoMatch
            }
        };
        if let Cond::Not(inner) = self {
            return match all(inner, ctx) {
                MatchResult::Match => MatchResult::NoMatch,
                MatchResult::NoMatch => MatchResult::Match,
                MatchResult::NeedsBody => MatchResult::NeedsBody,
            };
        }
        if self.needs_body() {
            let Some(body) = &ctx.body else {
                return MatchResult::NeedsBody;
            };
            return yes(self.eval_body(ctx, body));
        }
        let id = ctx.req.identity;
        yes(match self {
            Cond::Methods(ms) => ms.iter().any(|m| m.eq_ignore_ascii_case(ctx.req.method)),
            Cond::Authority(ps) => ps.iter().any(|p| p.matches(&ctx.host, ctx.port.as_deref())),
            Cond::PathExact(ps, false) => ps.contains(&ctx.path.path),
            Cond::PathExact(ps, true) => ps.iter().any(|p| p == ctx.path_lower()),
            Cond::PathPrefix(ps, false) => ps.iter().any(|p| has_prefix(&ctx.path.path, p)),
            Cond::PathPrefix(ps, true) => ps.iter().any(|p| has_prefix(ctx.path_lower(), p)),
            Cond::PathRegex(re) => re.is_match(&ctx.path.path),
            Cond::PathAmbiguous(want) => ctx.path.ambiguous == *want,
            Cond::Header(name, test) => match test {
                HeaderTest::Present(want) => ctx.header_values(name).next().is_some() == *want,
                HeaderTest::Exact(v) => ctx.header_values(name).any(|h| h == v),
                HeaderTest::Regex(re) => ctx.header_values(name).any(|h| re.is_match(h)),
            },
            Cond::Authenticated(want) => id.is_some() == *want,
            Cond::Subject(subs) => id.is_some_and(|i| subs.contains(&i.subject)),
            Cond::Groups(t, want) => set_test(*t, id.map(|i| i.groups.as_slice()), want),
            Cond::Scopes(t, want) => set_test(*t, id.map(|i| i.scopes.as_slice()), want),
            Cond::OpenAiEndpoint(api) => match shapes::openai_api(ctx.req.method, &ctx.path) {
                Some(found) => api.is_none_or(|a| a == found),
                None => false,
            },
            _ => false,
        })
    }

    fn eval_body(&self, ctx: &Ctx<'_, '_>, body: &Body<'_>) -> bool {
        let api = || shapes::openai_api(ctx.req.method, &ctx.path);
        match self {
            Cond::BodyRegex(re) | Cond::BodyKeywords(_, re) => body.text_matches(re),
            Cond::BodyJson(c) => body.json().is_some_and(|v| c.matches(v)),
            Cond::OpenAiModels(names) => body
                .json()
                .and_then(shapes::model)
                .is_some_and(|m| names.matches(m)),
            Cond::OpenAiTextRegex(re) | Cond::OpenAiTextKeywords(_, re) => {
                match (api(), body.doc()) {
                    (Some(api), Some(doc)) => shapes::openai_texts(api, doc)
                        .iter()
                        .any(|t| re.is_match(t)),
                    // Not JSON: the text is whatever the body says.
                    _ => re.is_match(body.text()),
                }
            }
            Cond::OpenAiTools(names) => match (api(), body.json()) {
                (Some(api), Some(v)) => shapes::openai_tools(api, v)
                    .iter()
                    .any(|t| names.matches(t)),
                _ => false,
            },
            Cond::Mcp(c) => body
                .json()
                .is_some_and(|v| shapes::mcp_messages(v).iter().any(|m| c.matches(m))),
            _ => false,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Cond::Methods(ms) => format!("method in {ms:?}"),
            Cond::Authority(ps) => {
                let t: Vec<&str> = ps.iter().map(|p| p.text.as_str()).collect();
                format!("authority in {t:?}")
            }
            Cond::PathExact(ps, i) => format!("normalised path in {ps:?}{}", case(*i)),
            Cond::PathPrefix(ps, i) => {
                format!("normalised path under any of {ps:?}{}", case(*i))
            }
            Cond::PathRegex(re) => format!("normalised path matches /{}/", re.as_str()),
            Cond::PathAmbiguous(b) => format!("path ambiguous is {b}"),
            Cond::Header(n, HeaderTest::Present(true)) => format!("header {n:?} present"),
            Cond::Header(n, HeaderTest::Present(false)) => format!("header {n:?} absent"),
            Cond::Header(n, HeaderTest::Exact(v)) => format!("header {n:?} equals {v:?}"),
            Cond::Header(n, HeaderTest::Regex(re)) => {
                format!("header {n:?} matches /{}/", re.as_str())
            }
            Cond::Authenticated(b) => format!("authenticated is {b}"),
            Cond::Subject(s) => format!("subject in {s:?}"),
            Cond::Groups(t, g) => format!("groups {} of {g:?}", set_word(*t)),
            Cond::Scopes(t, g) => format!("scopes {} of {g:?}", set_word(*t)),
            Cond::OpenAiEndpoint(None) => {
                "OpenAI request (POST …/chat/completions or …/responses)".into()
            }
            Cond::OpenAiEndpoint(Some(OpenAiApi::ChatCompletions)) => {
                "OpenAI Chat Completions request (POST …/chat/completions)".into()
            }
            Cond::OpenAiEndpoint(Some(OpenAiApi::Responses)) => {
                "OpenAI Responses request (POST …/responses)".into()
            }
            Cond::BodyRegex(re) => format!("body matches /{}/", re.as_str()),
            Cond::BodyKeywords(k, _) => format!("body contains any of {k:?} (case-insensitive)"),
            Cond::BodyJson(c) => format!("body JSON {}", c.describe()),
            Cond::OpenAiModels(n) => format!("OpenAI model in {:?}", n.list),
            Cond::OpenAiTextRegex(re) => format!("OpenAI message text matches /{}/", re.as_str()),
            Cond::OpenAiTextKeywords(k, _) => {
                format!("OpenAI message text contains any of {k:?} (case-insensitive)")
            }
            Cond::OpenAiTools(n) => format!("OpenAI tool/function in {:?}", n.list),
            Cond::Mcp(c) => c.describe(),
            Cond::Not(inner) => {
                let parts: Vec<String> = inner.iter().map(Cond::describe).collect();
                format!("not ({})", parts.join(" and "))
            }
        }
    }
}

/// Whether every condition holds: the first `NoMatch` decides; otherwise a
/// condition that needs the body makes the whole need it.
pub(crate) fn all(conds: &[Cond], ctx: &Ctx<'_, '_>) -> MatchResult {
    let mut needs_body = false;
    for c in conds {
        match c.eval(ctx) {
            MatchResult::NoMatch => return MatchResult::NoMatch,
            MatchResult::NeedsBody => needs_body = true,
            MatchResult::Match => {}
        }
    }
    if needs_body {
        MatchResult::NeedsBody
    } else {
        MatchResult::Match
    }
}

fn case(ignore: bool) -> &'static str {
    if ignore {
        " (ignoring case)"
    } else {
        ""
    }
}

fn set_word(t: SetTest) -> &'static str {
    match t {
        SetTest::Any => "include any",
        SetTest::All => "include all",
        SetTest::None => "include none",
    }
}

/// No identity has no groups or scopes: `none` holds, `any`/`all` do not.
fn set_test(t: SetTest, have: Option<&[String]>, want: &[String]) -> bool {
    let has = |w: &String| have.is_some_and(|h| h.contains(w));
    match t {
        SetTest::Any => want.iter().any(has),
        SetTest::All => have.is_some() && want.iter().all(has),
        SetTest::None => !want.iter().any(has),
    }
}

impl McpCond {
    fn matches(&self, m: &serde_json::Map<String, Value>) -> bool {
        let method = m.get("method").and_then(Value::as_str).unwrap_or("");
        if let Some(ms) = &self.methods {
            if !ms.matches(method) {
                return false;
            }
        }
        if self.tools.is_none() && self.arguments.is_empty() {
            return true;
        }
        if method != "tools/call" {
            return false;
        }
        let params = m.get("params");
        if let Some(tools) = &self.tools {
            let name = params.and_then(|p| p.get("name")).and_then(Value::as_str);
            if !name.is_some_and(|n| tools.matches(n)) {
                return false;
            }
        }
        let args = params
            .and_then(|p| p.get("arguments"))
            .unwrap_or(&Value::Null);
        self.arguments.iter().all(|c| c.matches(args))
    }

    fn describe(&self) -> String {
        let mut parts = vec!["MCP JSON-RPC request".to_string()];
        if let Some(m) = &self.methods {
            parts.push(format!("method in {:?}", m.list));
        }
        if let Some(t) = &self.tools {
            parts.push(format!("tools/call of {:?}", t.list));
        } else if !self.arguments.is_empty() {
            parts.push("tools/call".into());
        }
        for a in &self.arguments {
            parts.push(format!("arguments {}", a.describe()));
        }
        parts.join(", ")
    }
}

// ---- compiling `match` ----

pub(crate) fn build_regex(pattern: &str, path: &str) -> Result<Regex, PolicyError> {
    RegexBuilder::new(pattern)
        .build()
        .map_err(|e| PolicyError::at(path, format!("invalid regex: {}", one_line(&e.to_string()))))
}

fn keywords(list: &StringList, path: &str) -> Result<Regex, PolicyError> {
    non_empty(list, path)?;
    if list.0.iter().any(|k| k.is_empty()) {
        return Err(PolicyError::at(path, "keywords must not be empty strings"));
    }
    let alts: Vec<String> = list.0.iter().map(|k| regex::escape(k)).collect();
    build_regex(&format!("(?i)(?:{})", alts.join("|")), path)
}

/// regex's errors span several lines (the pattern and a caret); keep the reason.
fn one_line(msg: &str) -> String {
    msg.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| msg.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn non_empty(list: &StringList, path: &str) -> Result<(), PolicyError> {
    if list.0.is_empty() {
        return Err(PolicyError::at(path, "must not be an empty list"));
    }
    Ok(())
}

fn json_cond(doc: &JsonDoc, path: &str) -> Result<JsonCond, PolicyError> {
    let pointer = Pointer::parse(&doc.pointer, &format!("{path}.pointer"))?;
    let mut tests = Vec::new();
    if let Some(v) = &doc.equals {
        tests.push(JsonTest::Equals(v.clone()));
    }
    if let Some(r) = &doc.regex {
        tests.push(JsonTest::Regex(build_regex(r, &format!("{path}.regex"))?));
    }
    if let Some(b) = doc.exists {
        tests.push(JsonTest::Exists(b));
    }
    if tests.len() != 1 {
        return Err(PolicyError::at(
            path,
            "give exactly one of `equals`, `regex`, `exists`",
        ));
    }
    let test = tests
        .pop()
        .ok_or_else(|| PolicyError::at(path, "no test"))?;
    if doc.all && matches!(test, JsonTest::Exists(_)) {
        return Err(PolicyError::at(
            &format!("{path}.all"),
            "`all` applies to `equals` and `regex`",
        ));
    }
    Ok(JsonCond {
        pointer,
        test,
        all: doc.all,
    })
}

/// Compiles a rule's `match` (at `path`, e.g. `rules[2].match`).
pub(crate) fn compile_match(m: &MatchDoc, path: &str) -> Result<Vec<Cond>, PolicyError> {
    let mut out = Vec::new();
    if let Some(ms) = &m.methods {
        let p = format!("{path}.methods");
        non_empty(ms, &p)?;
        for x in &ms.0 {
            if x.is_empty()
                || !x
                    .bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
            {
                return Err(PolicyError::at(&p, format!("invalid method {x:?}")));
            }
        }
        out.push(Cond::Methods(
            ms.0.iter().map(|x| x.to_ascii_uppercase()).collect(),
        ));
    }
    if let Some(a) = &m.authority {
        let p = format!("{path}.authority");
        non_empty(a, &p)?;
        let pats =
            a.0.iter()
                .map(|x| AuthorityPattern::parse(x, &p))
                .collect::<Result<_, _>>()?;
        out.push(Cond::Authority(pats));
    }
    if let Some(pd) = &m.path {
        compile_path(pd, &format!("{path}.path"), &mut out)?;
    }
    for (i, h) in m.headers.iter().enumerate() {
        out.push(compile_header(h, &format!("{path}.headers[{i}]"))?);
    }
    if let Some(id) = &m.identity {
        compile_identity(id, &format!("{path}.identity"), &mut out)?;
    }
    if let Some(o) = &m.openai {
        out.push(Cond::OpenAiEndpoint(o.api));
    }
    // Body conditions last: cheap header conditions short-circuit them.
    if let Some(b) = &m.body {
        compile_body(b, &format!("{path}.body"), &mut out)?;
    }
    if let Some(o) = &m.openai {
        compile_openai(o, &format!("{path}.openai"), &mut out)?;
    }
    if let Some(mcp) = &m.mcp {
        out.push(compile_mcp(mcp, &format!("{path}.mcp"))?);
    }
    if let Some(not) = &m.not {
        let p = format!("{path}.not");
        let inner = compile_match(not, &p)?;
        if inner.is_empty() {
            return Err(PolicyError::at(&p, "an empty `not` would never match"));
        }
        out.push(Cond::Not(inner));
    }
    Ok(out)
}

fn compile_path(pd: &PathDoc, path: &str, out: &mut Vec<Cond>) -> Result<(), PolicyError> {
    let mut any = false;
    let norm = |list: &StringList, p: &str| -> Result<Vec<String>, PolicyError> {
        non_empty(list, p)?;
        list.0
            .iter()
            .map(|x| {
                if x.starts_with('/') {
                    let n = normalize(x).path;
                    Ok(if pd.ignore_case { n.to_lowercase() } else { n })
                } else {
                    Err(PolicyError::at(
                        p,
                        format!("a path starts with `/`, got {x:?}"),
                    ))
                }
            })
            .collect()
    };
    if let Some(e) = &pd.exact {
        out.push(Cond::PathExact(
            norm(e, &format!("{path}.exact"))?,
            pd.ignore_case,
        ));
        any = true;
    }
    if let Some(e) = &pd.prefix {
        out.push(Cond::PathPrefix(
            norm(e, &format!("{path}.prefix"))?,
            pd.ignore_case,
        ));
        any = true;
    }
    if let Some(r) = &pd.regex {
        out.push(Cond::PathRegex(build_regex(r, &format!("{path}.regex"))?));
        any = true;
    }
    if let Some(b) = pd.ambiguous {
        out.push(Cond::PathAmbiguous(b));
        any = true;
    }
    if !any {
        return Err(PolicyError::at(
            path,
            "give at least one of `exact`, `prefix`, `regex`, `ambiguous`",
        ));
    }
    Ok(())
}

fn compile_header(h: &HeaderDoc, path: &str) -> Result<Cond, PolicyError> {
    let name = h.name.to_ascii_lowercase();
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == ':' && !name.starts_with(':'))
    {
        return Err(PolicyError::at(
            &format!("{path}.name"),
            format!("invalid header name {:?}", h.name),
        ));
    }
    let mut tests = Vec::new();
    if let Some(b) = h.present {
        tests.push(HeaderTest::Present(b));
    }
    if let Some(v) = &h.exact {
        tests.push(HeaderTest::Exact(v.clone()));
    }
    if let Some(r) = &h.regex {
        tests.push(HeaderTest::Regex(build_regex(r, &format!("{path}.regex"))?));
    }
    if tests.len() != 1 {
        return Err(PolicyError::at(
            path,
            "give exactly one of `present`, `exact`, `regex`",
        ));
    }
    let test = tests
        .pop()
        .ok_or_else(|| PolicyError::at(path, "no test"))?;
    Ok(Cond::Header(name, test))
}

fn compile_identity(
    id: &IdentityMatchDoc,
    path: &str,
    out: &mut Vec<Cond>,
) -> Result<(), PolicyError> {
    let start = out.len();
    if let Some(b) = id.authenticated {
        out.push(Cond::Authenticated(b));
    }
    let list = |l: &Option<StringList>, field: &str| -> Result<Option<Vec<String>>, PolicyError> {
        match l {
            Some(l) => {
                non_empty(l, &format!("{path}.{field}"))?;
                Ok(Some(l.0.clone()))
            }
            None => Ok(None),
        }
    };
    if let Some(s) = list(&id.subject, "subject")? {
        out.push(Cond::Subject(s));
    }
    for (l, t, f) in [
        (&id.groups_any, SetTest::Any, "groups_any"),
        (&id.groups_all, SetTest::All, "groups_all"),
        (&id.groups_none, SetTest::None, "groups_none"),
    ] {
        if let Some(g) = list(l, f)? {
            out.push(Cond::Groups(t, g));
        }
    }
    for (l, t, f) in [
        (&id.scopes_any, SetTest::Any, "scopes_any"),
        (&id.scopes_all, SetTest::All, "scopes_all"),
        (&id.scopes_none, SetTest::None, "scopes_none"),
    ] {
        if let Some(g) = list(l, f)? {
            out.push(Cond::Scopes(t, g));
        }
    }
    if out.len() == start {
        return Err(PolicyError::at(
            path,
            "give at least one identity condition",
        ));
    }
    Ok(())
}

fn compile_body(b: &BodyDoc, path: &str, out: &mut Vec<Cond>) -> Result<(), PolicyError> {
    let start = out.len();
    if let Some(r) = &b.regex {
        out.push(Cond::BodyRegex(build_regex(r, &format!("{path}.regex"))?));
    }
    if let Some(k) = &b.keywords {
        out.push(Cond::BodyKeywords(
            k.0.clone(),
            keywords(k, &format!("{path}.keywords"))?,
        ));
    }
    for (i, j) in b.json.iter().enumerate() {
        out.push(Cond::BodyJson(json_cond(j, &format!("{path}.json[{i}]"))?));
    }
    if out.len() == start {
        return Err(PolicyError::at(
            path,
            "give at least one of `regex`, `keywords`, `json`",
        ));
    }
    Ok(())
}

fn compile_openai(o: &OpenAiDoc, path: &str, out: &mut Vec<Cond>) -> Result<(), PolicyError> {
    if let Some(m) = &o.models {
        out.push(Cond::OpenAiModels(Names::compile(
            m,
            &format!("{path}.models"),
        )?));
    }
    if let Some(r) = &o.text_regex {
        out.push(Cond::OpenAiTextRegex(build_regex(
            r,
            &format!("{path}.text_regex"),
        )?));
    }
    if let Some(k) = &o.text_keywords {
        out.push(Cond::OpenAiTextKeywords(
            k.0.clone(),
            keywords(k, &format!("{path}.text_keywords"))?,
        ));
    }
    if let Some(t) = &o.tools {
        out.push(Cond::OpenAiTools(Names::compile(
            t,
            &format!("{path}.tools"),
        )?));
    }
    Ok(())
}

fn compile_mcp(m: &McpDoc, path: &str) -> Result<Cond, PolicyError> {
    let methods = m
        .methods
        .as_ref()
        .map(|l| Names::compile(l, &format!("{path}.methods")))
        .transpose()?;
    let tools = m
        .tools
        .as_ref()
        .map(|l| Names::compile(l, &format!("{path}.tools")))
        .transpose()?;
    let arguments = m
        .arguments
        .iter()
        .enumerate()
        .map(|(i, j)| json_cond(j, &format!("{path}.arguments[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if (tools.is_some() || !arguments.is_empty())
        && methods.as_ref().is_some_and(|ms| !ms.matches("tools/call"))
    {
        return Err(PolicyError::at(
            &format!("{path}.methods"),
            "`tools` and `arguments` apply to `tools/call`, which `methods` excludes",
        ));
    }
    Ok(Cond::Mcp(McpCond {
        methods,
        tools,
        arguments,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_split() {
        assert_eq!(
            split_authority("API.Internal:8443"),
            ("api.internal".into(), Some("8443".into()))
        );
        assert_eq!(
            split_authority("api.internal."),
            ("api.internal".into(), None)
        );
        assert_eq!(
            split_authority("[::1]:80"),
            ("[::1]".into(), Some("80".into()))
        );
        assert_eq!(split_authority("[::1]"), ("[::1]".into(), None));
        assert_eq!(split_authority("h:"), ("h".into(), None));
    }

    #[test]
    fn authority_patterns() {
        let p = |t| AuthorityPattern::parse(t, "x").unwrap();
        assert!(p("api.internal").matches("api.internal", Some("8443")));
        assert!(p("api.internal").matches("api.internal", None));
        assert!(!p("api.internal:443").matches("api.internal", None));
        assert!(p("api.internal:443").matches("api.internal", Some("443")));
        assert!(!p("api.internal:443").matches("api.internal", Some("8443")));
        assert!(p("*.example.com").matches("a.example.com", None));
        assert!(p("*.example.com").matches("a.b.example.com", Some("1")));
        assert!(!p("*.example.com").matches("example.com", None));
        assert!(!p("*.example.com").matches("badexample.com", None));
        assert!(!p("*.example.com:8443").matches("a.example.com", Some("443")));
        for bad in ["", "a*.b", "x:notaport", "*", "a b"] {
            assert!(AuthorityPattern::parse(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn names_with_globs() {
        let n = Names::compile(&StringList(vec!["gpt-4o*".into(), "o3".into()]), "x").unwrap();
        assert!(n.matches("gpt-4o"));
        assert!(n.matches("gpt-4o-mini"));
        assert!(n.matches("o3"));
        assert!(!n.matches("o3-mini"));
        assert!(!n.matches("xgpt-4o"));
        let dot = Names::compile(&StringList(vec!["a.b".into()]), "x").unwrap();
        assert!(!dot.matches("axb"));
    }

    #[test]
    fn ordinary_unicode_regexes_fit_the_size_limit() {
        for p in [
            r"(?i)\b\w+\s+\w{3,}\b",
            r"[\p{L}\p{N}]{2,40}@\w+",
            r"(?i)(?:\w+\.){1,5}\w+",
        ] {
            assert!(build_regex(p, "x").is_ok(), "{p}");
        }
    }

    #[test]
    fn regex_errors_are_one_line() {
        let e = build_regex("a(b", "rules[0].match.path.regex").unwrap_err();
        assert_eq!(e.path, "rules[0].match.path.regex");
        assert!(e.reason.starts_with("invalid regex: "), "{e}");
        assert!(!e.reason.contains('\n'), "{e}");
    }
}
