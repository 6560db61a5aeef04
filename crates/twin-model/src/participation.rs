//! Consultations: what planners put to the public (scenarios, phases, surveys) and what citizens contribute
//! (comments, proposals, votes, supports, survey answers), with the rules that decide what may be done when and by whom.
//!
//! Everything here is pure: the store keeps these values as documents and marks (`twin_store::participation`), the
//! API turns requests into them. The rules follow the participation platforms cities already run (Decidim, CONSUL):
//! phases in order (information → feedback → voting → results), threads at most [`MAX_DEPTH`] deep, a stance on every
//! comment, supports limited per person, moderation in the open.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::{Principal, Role, Scope};

/// Replies nest at most this deep (a root comment is depth 1).
pub const MAX_DEPTH: u32 = 3;
/// The longest comment or proposal body, in characters.
pub const MAX_BODY: usize = 4000;
/// The longest title, in characters.
pub const MAX_TITLE: usize = 150;
/// The most links a comment or proposal may carry (spam is mostly links).
pub const MAX_LINKS: usize = 2;
/// The longest free-text survey answer, in characters.
pub const MAX_ANSWER: usize = 2000;
/// The default number of proposals one person may support in one consultation.
pub const DEFAULT_SUPPORTS: u32 = 3;

/// A text in several languages: BCP 47 tag → text.
pub type LangText = BTreeMap<String, String>;

/// The text of `t` in `lang`, else English, else any.
pub fn pick<'a>(t: &'a LangText, lang: &str) -> Option<&'a str> {
    t.get(lang)
        .or_else(|| t.get("en"))
        .or_else(|| t.values().next())
        .map(String::as_str)
}

/// A phase of a consultation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The scenarios are shown; nothing is collected yet.
    Information,
    /// Comments, proposals, supports and surveys.
    Feedback,
    /// The final round: comments, supports and surveys, no new proposals.
    Voting,
    /// Read only; the planners answer.
    Results,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Information => "information",
            Phase::Feedback => "feedback",
            Phase::Voting => "voting",
            Phase::Results => "results",
        }
    }
}

/// Where a consultation stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before its first phase.
    Upcoming,
    In(Phase),
    /// Between two phases (a gap in the calendar): nothing is collected.
    Between,
    /// After its last phase.
    Closed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Upcoming => "upcoming",
            Stage::In(p) => p.as_str(),
            Stage::Between => "between",
            Stage::Closed => "closed",
        }
    }
}

/// One phase with its dates: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What a participant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Comment,
    /// An up or down vote on a comment.
    Vote,
    Propose,
    Support,
    Survey,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Comment,
        Action::Vote,
        Action::Propose,
        Action::Support,
        Action::Survey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Comment => "comment",
            Action::Vote => "vote",
            Action::Propose => "propose",
            Action::Support => "support",
            Action::Survey => "survey",
        }
    }

    /// The phases in which this action is open.
    pub fn open_in(self, p: Phase) -> bool {
        match self {
            Action::Comment | Action::Vote | Action::Support | Action::Survey => {
                matches!(p, Phase::Feedback | Phase::Voting)
            }
            Action::Propose => p == Phase::Feedback,
        }
    }
}

/// A question's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    /// One option (its index).
    Single,
    /// Any options (their indices).
    Multiple,
    /// 1 to 5.
    Scale,
    /// Free text.
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub text: LangText,
    pub kind: QuestionKind,
    #[serde(default)]
    pub options: Vec<LangText>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    pub id: String,
    pub title: LangText,
    pub questions: Vec<Question>,
}

/// A consultation as planners write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consultation {
    #[serde(default)]
    pub id: String,
    pub title: LangText,
    #[serde(default)]
    pub summary: LangText,
    #[serde(default)]
    pub description: LangText,
    /// The scenarios put to the public (ids of `/api/scenarios`).
    pub scenarios: Vec<String>,
    pub phases: Vec<PhaseSpan>,
    /// Where the map opens: `[west, south, east, north]`.
    #[serde(default)]
    pub area: Option<[f64; 4]>,
    #[serde(default = "default_supports")]
    pub supports_per_person: u32,
    /// Votes, supports and survey answers need an account at least this old.
    #[serde(default)]
    pub min_account_age_hours: u32,
    /// Votes, supports and survey answers need a verified e-mail address.
    #[serde(default)]
    pub require_verified_email: bool,
    #[serde(default)]
    pub surveys: Vec<Survey>,
    #[serde(default)]
    pub published: bool,
    /// Set by the server: the planner who made it, and their organisation.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub organisation: Option<String>,
}

fn default_supports() -> u32 {
    DEFAULT_SUPPORTS
}

/// Why a value was refused, in words for the one who sent it.
pub type Refusal = String;

fn check_lang_text(t: &LangText, what: &str, max: usize, required: bool) -> Result<(), Refusal> {
    if required && t.values().all(|v| v.trim().is_empty()) {
        return Err(format!(
            "{what} is required (a text per language, e.g. {{\"en\": \"...\"}})"
        ));
    }
    for (lang, v) in t {
        if !valid_lang(lang) {
            return Err(format!("{what}: {lang:?} is not a language tag"));
        }
        if v.chars().count() > max {
            return Err(format!("{what} ({lang}) is longer than {max} characters"));
        }
    }
    Ok(())
}

/// A BCP 47 language tag, loosely: `en`, `fi`, `pt-BR`, `zh-Hant`.
pub fn valid_lang(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// An id given by a person: `[a-z0-9][a-z0-9-]{0,63}`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An id made from a title: lower case ASCII letters and digits joined by `-`, at most 48 characters.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(fold_char) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "consultation".into()
    } else {
        out
    }
}

/// Latin letters with accents, as their base letter (enough for ids; other scripts are dropped).
fn fold_char(c: char) -> Vec<char> {
    let base = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        'ß' => return vec!['s', 's'],
        c => c,
    };
    vec![base]
}

impl Consultation {
    /// Checks what a planner wrote: an id, a title, 1 to 10 scenarios, phases in order without overlaps, valid
    /// surveys and limits.
    pub fn validate(&self) -> Result<(), Refusal> {
        if !valid_id(&self.id) {
            return Err(format!(
                "id {:?}: lower case letters, digits and '-', at most 64, starting with a letter or digit",
                self.id
            ));
        }
        check_lang_text(&self.title, "title", MAX_TITLE, true)?;
        check_lang_text(&self.summary, "summary", 1000, false)?;
        check_lang_text(&self.description, "description", 20_000, false)?;
        if self.scenarios.is_empty() || self.scenarios.len() > 10 {
            return Err("a consultation is on 1 to 10 scenarios".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.scenarios {
            if !seen.insert(s) {
                return Err(format!("scenario {s:?} is listed twice"));
            }
        }
        if self.phases.is_empty() {
            return Err("a consultation needs at least one phase".into());
        }
        for (i, p) in self.phases.iter().enumerate() {
            if p.end <= p.start {
                return Err(format!(
                    "phase {}: its end is not after its start",
                    p.phase.as_str()
                ));
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &self.phases[j]) {
                if p.phase <= prev.phase {
                    return Err(format!(
                        "phases go information, feedback, voting, results, each at most once: {} after {}",
                        p.phase.as_str(),
                        prev.phase.as_str()
                    ));
                }
                if p.start < prev.end {
                    return Err(format!(
                        "phase {} starts before {} ends",
                        p.phase.as_str(),
                        prev.phase.as_str()
                    ));
                }
            }
        }
        if let Some([w, s, e, n]) = self.area {
            let ok = [w, e].iter().all(|x| (-180.0..=180.0).contains(x))
                && [s, n].iter().all(|y| (-90.0..=90.0).contains(y))
                && w < e
                && s < n;
            if !ok {
                return Err(
                    "area: [west, south, east, north] in degrees, west < east, south < north"
                        .into(),
                );
            }
        }
        if self.supports_per_person == 0 || self.supports_per_person > 100 {
            return Err("supportsPerPerson: 1 to 100".into());
        }
        if self.min_account_age_hours > 24 * 365 {
            return Err("minAccountAgeHours: at most a year".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for s in &self.surveys {
            if !valid_id(&s.id) || !ids.insert(&s.id) {
                return Err(format!("survey id {:?} is not a valid, unique id", s.id));
            }
            check_lang_text(&s.title, "survey title", MAX_TITLE, true)?;
            if s.questions.is_empty() || s.questions.len() > 50 {
                return Err(format!("survey {}: 1 to 50 questions", s.id));
            }
            let mut qids = std::collections::BTreeSet::new();
            for q in &s.questions {
                if !valid_id(&q.id) || !qids.insert(&q.id) {
                    return Err(format!(
                        "survey {}: question id {:?} is not a valid, unique id",
                        s.id, q.id
                    ));
                }
                check_lang_text(&q.text, "question", 500, true)?;
                match q.kind {
                    QuestionKind::Single | QuestionKind::Multiple => {
                        if !(2..=20).contains(&q.options.len()) {
                            return Err(format!("question {}: 2 to 20 options", q.id));
                        }
                        for o in &q.options {
                            check_lang_text(o, "option", 200, true)?;
                        }
                    }
                    QuestionKind::Scale | QuestionKind::Text => {
                        if !q.options.is_empty() {
                            return Err(format!(
                                "question {}: a {:?} question has no options",
                                q.id, q.kind
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the consultation stands at `now`.
    pub fn stage(&self, now: DateTime<Utc>) -> Stage {
        let (Some(first), Some(last)) = (self.phases.first(), self.phases.last()) else {
            return Stage::Closed;
        };
        if now < first.start {
            return Stage::Upcoming;
        }
        if now >= last.end {
            return Stage::Closed;
        }
        self.phases
            .iter()
            .find(|p| p.start <= now && now < p.end)
            .map_or(Stage::Between, |p| Stage::In(p.phase))
    }

    /// Whether `action` is open at `now`; the refusal says why not.
    pub fn allows(&self, action: Action, now: DateTime<Utc>) -> Result<(), Refusal> {
        if !self.published {
            return Err("the consultation is not published".into());
        }
        match self.stage(now) {
            Stage::In(p) if action.open_in(p) => Ok(()),
            s => Err(format!(
                "the consultation is {}: {} is not open now",
                match s {
                    Stage::In(_) => format!("in its {} phase", s.as_str()),
                    other => other.as_str().to_string(),
                },
                action.as_str()
            )),
        }
    }

    /// Whether the feedback phase has begun (planners answer proposals from then on).
    pub fn feedback_opened(&self, now: DateTime<Utc>) -> bool {
        self.phases
            .iter()
            .any(|p| p.phase >= Phase::Feedback && p.start <= now)
    }

    pub fn survey(&self, id: &str) -> Option<&Survey> {
        self.surveys.iter().find(|s| s.id == id)
    }
}

impl Survey {
    /// Checks a response (`{question id: answer}`) and returns it with only known questions: single → an option
    /// index; multiple → distinct indices; scale → 1 to 5; text → a string of at most [`MAX_ANSWER`] characters.
    /// Required questions must be answered.
    pub fn check_answers(&self, answers: &Value) -> Result<Value, Refusal> {
        let obj = answers
            .as_object()
            .ok_or("answers: an object of question id → answer")?;
        for k in obj.keys() {
            if !self.questions.iter().any(|q| &q.id == k) {
                return Err(format!("survey {} has no question {k:?}", self.id));
            }
        }
        let mut out = serde_json::Map::new();
        for q in &self.questions {
            let a = match obj.get(&q.id) {
                None | Some(Value::Null) => {
                    if q.required {
                        return Err(format!("question {} is required", q.id));
                    }
                    continue;
                }
                Some(a) => a,
            };
            let bad = || format!("question {}: not a valid {:?} answer", q.id, q.kind);
            let n = q.options.len() as u64;
            match q.kind {
                QuestionKind::Single => {
                    let i = a.as_u64().filter(|i| *i < n).ok_or_else(bad)?;
                    out.insert(q.id.clone(), Value::from(i));
                }
                QuestionKind::Multiple => {
                    let arr = a.as_array().ok_or_else(bad)?;
                    let mut idx: Vec<u64> = Vec::new();
                    for v in arr {
                        let i = v.as_u64().filter(|i| *i < n).ok_or_else(bad)?;
                        if !idx.contains(&i) {
                            idx.push(i);
                        }
                    }
                    if q.required && idx.is_empty() {
                        return Err(format!("question {} is required", q.id));
                    }
                    idx.sort_unstable();
                    out.insert(q.id.clone(), Value::from(idx));
                }
                QuestionKind::Scale => {
                    let i = a.as_u64().filter(|i| (1..=5).contains(i)).ok_or_else(bad)?;
                    out.insert(q.id.clone(), Value::from(i));
                }
                QuestionKind::Text => {
                    let s = a.as_str().ok_or_else(bad)?.trim();
                    if s.chars().count() > MAX_ANSWER {
                        return Err(format!(
                            "question {}: at most {MAX_ANSWER} characters",
                            q.id
                        ));
                    }
                    if s.is_empty() {
                        if q.required {
                            return Err(format!("question {} is required", q.id));
                        }
                        continue;
                    }
                    out.insert(q.id.clone(), Value::from(s));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// What a comment says of the scenario it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    For,
    Neutral,
    Against,
}

impl Stance {
    pub const ALL: [Stance; 3] = [Stance::For, Stance::Neutral, Stance::Against];
    pub fn as_str(self) -> &'static str {
        match self {
            Stance::For => "for",
            Stance::Neutral => "neutral",
            Stance::Against => "against",
        }
    }
}

/// Where a proposal is in the planners' hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Submitted,
    Evaluating,
    Accepted,
    Rejected,
    Implemented,
    /// By its author (or by erasing their account).
    Withdrawn,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Submitted => "submitted",
            ProposalStatus::Evaluating => "evaluating",
            ProposalStatus::Accepted => "accepted",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Implemented => "implemented",
            ProposalStatus::Withdrawn => "withdrawn",
        }
    }
}

/// Whether a contribution is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentState {
    #[default]
    Visible,
    /// By a moderator, with a public reason; the text is kept for moderators and the author.
    Hidden,
    /// By its author (or by erasure): the text is gone.
    Deleted,
}

/// A moderator's decision, as shown in the public log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hiding {
    pub reason: String,
    /// The moderator's account; none once that account was erased (the decision and its reason stay public).
    #[serde(default)]
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

/// Why a participant reports a contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagReason {
    Spam,
    Offensive,
    OffTopic,
    PersonalData,
    Other,
}

/// What a moderator does with a flagged contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModerationAction {
    Hide,
    Restore,
    /// The flags were unfounded: they are cleared and the contribution stays.
    Dismiss,
}

/// A comment as stored (the record's `doc`; its author, consultation, parent and times are the record's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommentDoc {
    pub body: String,
    pub stance: Stance,
    #[serde(default)]
    pub scenario: Option<String>,
    pub depth: u32,
    /// The comment this one answers (the record's parent is its thread's root).
    #[serde(default)]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    #[serde(default)]
    pub lang: Option<String>,
    /// The author's display name when they wrote it (a pseudonym).
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub state: ContentState,
    #[serde(default)]
    pub hidden: Option<Hiding>,
}

/// A planner's answer to a proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub text: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A step of what was done with a proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub at: DateTime<Utc>,
    pub title: String,
    #[serde(default)]
    pub body: String,
}

/// A proposal as stored (the record's `doc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalDoc {
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    /// A scenario of the author's: the street change they propose.
    #[serde(default)]
    pub scenario: Option<String>,
    /// The GeoJSON geometry of the scenario's edits, when there is one.
    #[serde(default)]
    pub geometry: Option<Value>,
    pub status: ProposalStatus,
    #[serde(default)]
    pub answer: Option<Answer>,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub state: ContentState,
    #[serde(default)]
    pub hidden: Option<Hiding>,
}

/// How many links a text carries (`http://`, `https://`, `www.` and bare `name.tld/` hosts).
pub fn count_links(text: &str) -> usize {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '<' || c == '>')
        .filter(|w| {
            let w = w.to_ascii_lowercase();
            w.starts_with("http://")
                || w.starts_with("https://")
                || w.starts_with("www.")
                || w.contains("://")
                || looks_like_host(&w)
        })
        .count()
}

fn looks_like_host(w: &str) -> bool {
    let host = w.split('/').next().unwrap_or("");
    let has_path = w.contains('/');
    let labels: Vec<&str> = host.split('.').collect();
    has_path
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Checks a contribution's text: not empty, at most `max` characters, at most [`MAX_LINKS`] links, no control
/// characters but line breaks and tabs. Returns it trimmed.
pub fn check_text(text: &str, what: &str, max: usize) -> Result<String, Refusal> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if t.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(format!("{what} contains control characters"));
    }
    let links = count_links(t);
    if links > MAX_LINKS {
        return Err(format!(
            "{what} carries {links} links; at most {MAX_LINKS} are allowed"
        ));
    }
    Ok(t.to_string())
}

/// A `[lon, lat]` in range.
pub fn check_point(p: [f64; 2]) -> Result<[f64; 2], Refusal> {
    if p[0].is_finite()
        && p[1].is_finite()
        && (-180.0..=180.0).contains(&p[0])
        && (-90.0..=90.0).contains(&p[1])
    {
        Ok(p)
    } else {
        Err("location: [longitude, latitude] in degrees".into())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// who may do what

/// Whether `p` may take part (comment, vote, propose, support, answer, flag, follow): signed in, not only a device,
/// and through an API key only with the `write` scope.
pub fn may_participate(p: &Principal) -> bool {
    !p.is_anonymous() && !p.is_device_only() && p.scope_allows(&Scope::Write)
}

/// Whether `p` may create consultations: a planner or an administrator (with the `write` scope).
pub fn may_create_consultation(p: &Principal) -> bool {
    p.is_admin() || (p.roles.contains(&Role::Planner) && p.scope_allows(&Scope::Write))
}

/// Whether `p` may change, answer or delete a consultation owned by `owner`: an administrator, or its owner while
/// they may create consultations.
pub fn may_manage_consultation(p: &Principal, owner: Option<&str>) -> bool {
    p.is_admin() || (may_create_consultation(p) && owner.is_some() && p.subject.as_deref() == owner)
}

/// Whether `p` may see a draft (unpublished) consultation owned by `owner`.
pub fn may_see_draft(p: &Principal, owner: Option<&str>) -> bool {
    p.is_admin() || (owner.is_some() && p.subject.as_deref() == owner)
}

/// Whether `p` moderates: a moderator or an administrator.
pub fn may_moderate(p: &Principal) -> bool {
    p.is_admin() || (p.roles.contains(&Role::Moderator) && p.scope_allows(&Scope::Write))
}

// ---------------------------------------------------------------------------------------------------------------
// plain language

/// A scenario's effect in words, from a traffic run's summary (as `/api/scenarios/{id}/runs/{run}` gives it):
/// `(key, value, unit, {lang: text})`. English and Finnish.
pub fn indicators(summary: &Value) -> Vec<(String, f64, String, LangText)> {
    let mut out = Vec::new();
    let d = &summary["delta"];
    let pct = |v: &Value| v.as_f64().filter(|x| x.is_finite());
    let lang =
        |en: String, fi: String| LangText::from([("en".to_string(), en), ("fi".to_string(), fi)]);
    if let Some(p) = pct(&d["vehicleHoursPct"]) {
        let (en, fi) = change_words(p);
        out.push((
            "vehicleHoursPct".into(),
            p,
            "%".into(),
            lang(
                format!("Time spent driving in the city {en} by {:.1} %", p.abs()),
                format!("Autoiluun käytetty aika {fi} {:.1} %", p.abs()),
            ),
        ));
    }
    if let Some(p) = pct(&d["vehicleKmPct"]) {
        let (en, fi) = change_words(p);
        out.push((
            "vehicleKmPct".into(),
            p,
            "%".into(),
            lang(
                format!("Kilometres driven {en} by {:.1} %", p.abs()),
                format!(
                    "Ajetut kilometrit: muutos {}{:.1} % ({fi})",
                    if p >= 0.0 { "+" } else { "−" },
                    p.abs()
                ),
            ),
        ));
    }
    if let Some(m) = pct(&summary["meanTripMinutes"]) {
        out.push((
            "meanTripMinutes".into(),
            m,
            "min".into(),
            lang(
                format!("An average car trip takes {m:.1} minutes"),
                format!("Keskimääräinen automatka kestää {m:.1} minuuttia"),
            ),
        ));
    }
    if let Some(u) = pct(&d["unservedTrips"]).filter(|u| *u > 0.5) {
        out.push((
            "unservedTrips".into(),
            u,
            "trips".into(),
            lang(
                format!("{u:.0} car trips can no longer be made by car"),
                format!("{u:.0} automatkaa ei voi enää tehdä autolla"),
            ),
        ));
    }
    if let Some(s) = summary["streets"].as_array().and_then(|a| a.first()) {
        if let (Some(name), Some(df)) = (s["name"].as_str(), s["deltaFlow"].as_f64()) {
            if !name.is_empty() && df.abs() >= 1.0 {
                let (en, fi) = if df > 0.0 {
                    ("more", "enemmän")
                } else {
                    ("fewer", "vähemmän")
                };
                out.push((
                    "mostChangedStreet".into(),
                    df,
                    "veh/h".into(),
                    lang(
                        format!("{name} changes most: {:.0} {en} vehicles an hour", df.abs()),
                        format!(
                            "{name} muuttuu eniten: {:.0} ajoneuvoa tunnissa {fi}",
                            df.abs()
                        ),
                    ),
                ));
            }
        }
    }
    out
}

fn change_words(p: f64) -> (&'static str, &'static str) {
    if p >= 0.0 {
        ("rises", "kasvaa")
    } else {
        ("falls", "vähenee")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0).unwrap()
    }

    fn consultation() -> Consultation {
        serde_json::from_value(json!({
            "id": "riverside",
            "title": {"en": "A calmer Riverside", "fi": "Rauhallisempi ranta"},
            "scenarios": ["close-bridge"],
            "phases": [
                {"phase": "information", "start": t(0), "end": t(2)},
                {"phase": "feedback", "start": t(2), "end": t(4)},
                {"phase": "voting", "start": t(5), "end": t(6)},
                {"phase": "results", "start": t(6), "end": t(8)}
            ],
            "published": true,
            "surveys": [{"id": "s1", "title": {"en": "How do you travel?"}, "questions": [
                {"id": "mode", "text": {"en": "Mostly by"}, "kind": "single", "options": [{"en": "car"}, {"en": "bike"}], "required": true},
                {"id": "days", "text": {"en": "Which days"}, "kind": "multiple", "options": [{"en": "Mon"}, {"en": "Tue"}, {"en": "Wed"}]},
                {"id": "calm", "text": {"en": "How calm"}, "kind": "scale"},
                {"id": "why", "text": {"en": "Why"}, "kind": "text"}
            ]}]
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_consultation_passes_and_defaults_apply() {
        let c = consultation();
        c.validate().unwrap();
        assert_eq!(c.supports_per_person, DEFAULT_SUPPORTS);
        assert!(!c.require_verified_email);
    }

    #[test]
    fn stages_follow_the_calendar() {
        let c = consultation();
        assert_eq!(
            c.stage(t(0) - chrono::Duration::seconds(1)),
            Stage::Upcoming
        );
        assert_eq!(c.stage(t(0)), Stage::In(Phase::Information));
        assert_eq!(c.stage(t(3)), Stage::In(Phase::Feedback));
        assert_eq!(c.stage(t(4)), Stage::Between);
        assert_eq!(c.stage(t(5)), Stage::In(Phase::Voting));
        assert_eq!(c.stage(t(7)), Stage::In(Phase::Results));
        assert_eq!(c.stage(t(8)), Stage::Closed);
        assert!(!c.feedback_opened(t(1)));
        assert!(c.feedback_opened(t(2)));
    }

    #[test]
    fn actions_open_only_in_their_phases() {
        let c = consultation();
        assert!(c
            .allows(Action::Comment, t(1))
            .unwrap_err()
            .contains("information"));
        for a in Action::ALL {
            assert!(c.allows(a, t(3)).is_ok(), "{a:?} in feedback");
        }
        assert!(
            c.allows(Action::Propose, t(5)).is_err(),
            "no new proposals in the final round"
        );
        assert!(c.allows(Action::Support, t(5)).is_ok());
        assert!(c
            .allows(Action::Comment, t(4))
            .unwrap_err()
            .contains("between"));
        assert!(c.allows(Action::Comment, t(7)).is_err());
        assert!(c
            .allows(Action::Comment, t(9))
            .unwrap_err()
            .contains("closed"));
        let mut draft = c.clone();
        draft.published = false;
        assert!(draft
            .allows(Action::Comment, t(3))
            .unwrap_err()
            .contains("not published"));
    }

    #[test]
    fn bad_consultations_are_refused_with_reasons() {
        let mut c = consultation();
        c.phases.swap(0, 1);
        assert!(c.validate().unwrap_err().contains("phases go"));
        let mut c = consultation();
        c.phases[2].start = t(3);
        assert!(c.validate().unwrap_err().contains("starts before"));
        let mut c = consultation();
        c.phases[0].end = c.phases[0].start;
        assert!(c.validate().unwrap_err().contains("end is not after"));
        let mut c = consultation();
        c.scenarios.clear();
        assert!(c.validate().is_err());
        let mut c = consultation();
        c.title = LangText::from([("en".into(), " ".into())]);
        assert!(c.validate().unwrap_err().contains("title is required"));
        let mut c = consultation();
        c.title.insert("not a tag!".into(), "x".into());
        assert!(c.validate().unwrap_err().contains("language tag"));
        let mut c = consultation();
        c.id = "Bad Id".into();
        assert!(c.validate().is_err());
        let mut c = consultation();
        c.surveys[0].questions[0].options.truncate(1);
        assert!(c.validate().unwrap_err().contains("2 to 20 options"));
        let mut c = consultation();
        c.area = Some([25.0, 60.0, 24.0, 61.0]);
        assert!(c.validate().is_err());
        assert!(serde_json::from_value::<Consultation>(
            json!({"title": {"en": "x"}, "scenarios": ["a"], "phases": [], "nonsense": 1})
        )
        .is_err());
    }

    #[test]
    fn survey_answers_are_checked_and_normalised() {
        let c = consultation();
        let s = c.survey("s1").unwrap();
        let ok = s
            .check_answers(&json!({"mode": 1, "days": [2, 0, 2], "calm": 4, "why": "  quiet  "}))
            .unwrap();
        assert_eq!(
            ok,
            json!({"mode": 1, "days": [0, 2], "calm": 4, "why": "quiet"})
        );
        assert!(s
            .check_answers(&json!({"days": [0]}))
            .unwrap_err()
            .contains("required"));
        assert!(s.check_answers(&json!({"mode": 2})).is_err());
        assert!(s.check_answers(&json!({"mode": 0, "calm": 6})).is_err());
        assert!(s.check_answers(&json!({"mode": 0, "calm": 0})).is_err());
        assert!(s
            .check_answers(&json!({"mode": 0, "nope": 1}))
            .unwrap_err()
            .contains("no question"));
        assert!(s
            .check_answers(&json!({"mode": 0, "why": "x".repeat(MAX_ANSWER + 1)}))
            .is_err());
        assert!(s.check_answers(&json!([1])).is_err());
    }

    #[test]
    fn links_are_counted_and_limited() {
        assert_eq!(
            count_links("see https://a.example and http://b.example/x"),
            2
        );
        assert_eq!(count_links("www.spam.example or (evil.example/buy)"), 2);
        assert_eq!(
            count_links("Mill Lane is 3.5 km long, e.g. near the school."),
            0
        );
        assert_eq!(count_links("ftp://x"), 1);
        assert!(check_text(
            "a http://1.example b http://2.example c http://3.example",
            "body",
            100
        )
        .unwrap_err()
        .contains("3 links"));
        assert_eq!(check_text("  fine  ", "body", 10).unwrap(), "fine");
        assert!(check_text("   ", "body", 10).is_err());
        assert!(check_text(&"x".repeat(11), "body", 10).is_err());
        assert!(check_text("bell\u{7}", "body", 10).is_err());
        assert_eq!(check_text("two\nlines", "body", 20).unwrap(), "two\nlines");
    }

    #[test]
    fn slugs_ids_languages() {
        assert_eq!(
            slug("Hämeentie: a calmer street!"),
            "hameentie-a-calmer-street"
        );
        assert_eq!(slug("¿¿"), "consultation");
        assert!(slug(&"long title ".repeat(20)).len() <= 48);
        assert!(valid_id(&slug("Straße 1")));
        assert!(valid_lang("en") && valid_lang("pt-BR") && valid_lang("zh-Hant"));
        assert!(!valid_lang("e") && !valid_lang("english") && !valid_lang("en_GB"));
        let t = LangText::from([
            ("fi".to_string(), "Hei".to_string()),
            ("en".to_string(), "Hi".to_string()),
        ]);
        assert_eq!(pick(&t, "fi"), Some("Hei"));
        assert_eq!(pick(&t, "sv"), Some("Hi"));
        let only = LangText::from([("sv".to_string(), "Hej".to_string())]);
        assert_eq!(pick(&only, "fi"), Some("Hej"));
    }

    #[test]
    fn roles_decide_who_does_what() {
        use crate::policy::AuthMethod;
        use std::collections::BTreeSet;
        let who = |id: &str, roles: &[Role]| Principal {
            subject: Some(id.into()),
            roles: roles.iter().copied().collect(),
            groups: BTreeSet::new(),
            organisation: None,
            method: AuthMethod::Session,
            scopes: None,
        };
        let citizen = who("ann", &[Role::Citizen]);
        let planner = who("pia", &[Role::Planner]);
        let moderator = who("mo", &[Role::Moderator]);
        let device = who("dev", &[Role::Device]);
        let admin = who("root", &[Role::Admin]);
        assert!(may_participate(&citizen) && may_participate(&planner));
        assert!(!may_participate(&Principal::anonymous()) && !may_participate(&device));
        assert!(!may_create_consultation(&citizen) && may_create_consultation(&planner));
        assert!(may_manage_consultation(&planner, Some("pia")));
        assert!(!may_manage_consultation(&planner, Some("other")));
        assert!(!may_manage_consultation(&citizen, Some("ann")));
        assert!(may_manage_consultation(&admin, Some("other")));
        assert!(may_moderate(&moderator) && may_moderate(&admin) && !may_moderate(&planner));
        let mut read_only = citizen.clone();
        read_only.scopes = Some(BTreeSet::from([Scope::Read]));
        assert!(!may_participate(&read_only));
    }

    #[test]
    fn indicators_speak_plainly() {
        let s = json!({
            "meanTripMinutes": 11.04,
            "delta": {"vehicleHoursPct": -3.24, "vehicleKmPct": 1.5, "unservedTrips": 0.0},
            "streets": [{"name": "Fabianinkatu", "deltaFlow": -412.3}]
        });
        let i = indicators(&s);
        let keys: Vec<&str> = i.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "vehicleHoursPct",
                "vehicleKmPct",
                "meanTripMinutes",
                "mostChangedStreet"
            ]
        );
        assert_eq!(
            i[0].3["en"],
            "Time spent driving in the city falls by 3.2 %"
        );
        assert_eq!(i[2].3["en"], "An average car trip takes 11.0 minutes");
        assert_eq!(
            i[3].3["en"],
            "Fabianinkatu changes most: 412 fewer vehicles an hour"
        );
        assert!(i.iter().all(|x| x.3.contains_key("fi")));
        assert!(indicators(&json!(null)).is_empty());
    }
}
