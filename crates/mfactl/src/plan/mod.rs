//! The plan: what must change for the live state to match the desired state.
//!
//! [`diff`] is a pure function of (desired, live): no I/O, no clock, no tokio. It writes the
//! minimal PATCH body per endpoint (only changed fields, at most one PATCH per endpoint per user)
//! and never names a field the manifest left out. The plan document (`plan --format json`, plan
//! files) is [`Plan`]; its keys follow design.md and are never renamed.

pub mod category;
pub mod coverage;
mod diff;
pub mod estimate;
pub mod policy;
pub mod protect;
pub mod saved;
pub mod seal;
pub mod wire;

use std::fmt;

use schemars::JsonSchema;
use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Serialize};

use crate::model::{Endpoint, Field, PerUserMfaState, PreferredMethod};

pub use diff::{LiveUser, apply_writes, diff, ignored_note, live_value, needs_methods, object_id};

/// The plan document's format version.
pub const FORMAT_VERSION: u32 = 1;

/// A whole plan (or, after apply, the report of the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// The Graph root the live state came from.
    pub graph: String,
    pub tenant_id: Option<String>,
    /// The tenant's primary domain, when Graph said (`/organization`).
    #[serde(default)]
    pub tenant_domain: Option<String>,
    /// When the plan was made (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The desired-state file the plan was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<saved::SourceFile>,
    /// The `--policy` file the policy section came from, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<saved::SourceFile>,
    /// When the apply run this document reports on ended (apply reports, RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The manifest's `maxChanges:`: apply refuses a plan with more writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<u64>,
    /// Made with `--allow-mfa-gap` (or the manifest's `allowMfaGap: true`): users whose
    /// per-user MFA is disabled although no Conditional Access policy is known to require MFA
    /// for them are written anyway (each says so in a note).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_mfa_gap: bool,
    pub summary: Summary,
    /// Every user that is not in sync, in manifest order.
    pub users: Vec<UserPlan>,
    /// The tenant's authentication methods policy, when the manifest manages it (`null` when
    /// it does not).
    #[serde(default)]
    pub policy: Option<policy::PolicyPlan>,
    /// Saved plans end with `"checksum": "hmac-sha256:KEYID:HEX"`, the HMAC under the plan key
    /// of the file's bytes before it ([`saved`], [`seal`]); read back here, never serialised
    /// from here.
    #[serde(default, skip_serializing)]
    pub checksum: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The counts of design.md. Every user is counted in exactly one of `to_change`, `changed`,
/// `in_sync`, `blocked`, `not_found`, `failed`, `drifted`, `unverified`, `not_reached` and
/// `protected` (one category per user), so they add up to `users`. `applied` (and `changed`, `drifted`,
/// `not_reached`, `unverified` when not zero) appear only in apply reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Users in the manifest.
    pub users: u64,
    pub in_sync: u64,
    /// Users whose writes are planned (status `change`; in an apply report the users the run
    /// did not reach are `not_reached` instead, and this is 0).
    pub to_change: u64,
    /// Users every write of which Graph accepted and kept (status `applied`; apply only, when
    /// not zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changed: u64,
    /// PATCH calls (blocked users' other fields included).
    pub writes: u64,
    pub blocked: u64,
    /// Of the blocked users, those with other fields to write (when not zero): their writes are
    /// in `writes`, and they are counted once, as blocked.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocked_with_writes: u64,
    pub not_found: u64,
    pub failed: u64,
    /// PATCH calls to the tenant's authentication methods policy (0 or 1; not in `writes`,
    /// which counts the users' PATCHes).
    #[serde(default)]
    pub policy_writes: u64,
    /// Users whose live values changed between plan and write (apply only; never written).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drifted: u64,
    /// Writes that succeeded (apply only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// Users with writes the run never started because it stopped first (Ctrl-C, a refused
    /// token, an unreachable Graph; apply only, when not zero). They are still `change`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_reached: u64,
    /// Users the manifest's `protect:` list keeps from any write (when not zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub protected: u64,
    /// Users whose writes Graph accepted but reading back did not show (apply only, when not
    /// zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unverified: u64,
    /// Whether MFA stays required for the users whose per-user MFA the plan disables (present
    /// when it disables any): users per Conditional Access verdict, and how many of those not
    /// covered (or unknown) are held (counted in `blocked` too) or written anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_coverage: Option<coverage::CoverageCounts>,
    /// What applying this plan will cost: its calls and the least time Graph's quotas allow
    /// (plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
    /// The calls this run made, by kind (filled in at the end of a plan or apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<Calls>,
}

/// Requests a run sent, by kind (retries included; a batch item counts as one request, and
/// `batches` counts the `$batch` round trips that carried them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Calls {
    /// Live state of managed endpoints.
    pub reads: u64,
    /// Endpoints read again just before writing them.
    pub rereads: u64,
    /// Registered methods.
    pub methods: u64,
    /// Pages of the registration report (absent from plans made before bulk reads existed).
    #[serde(default)]
    pub reports: u64,
    /// UPNs resolved to object ids.
    pub identity: u64,
    /// PATCHes.
    pub writes: u64,
    /// Writes whose answer was lost, read back.
    pub settles: u64,
    /// Endpoints read back after apply's writes, to see that Graph kept them (apply only;
    /// absent from plans made before read-back verification existed).
    #[serde(default)]
    pub verifies: u64,
    /// `/organization`, to name the tenant.
    pub tenant: u64,
    /// Conditional Access coverage: the policies, security defaults, and the groups, roles and
    /// users the policies name (plans that disable per-user MFA; absent from older plans).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub coverage: u64,
    /// HTTP round trips in all, and how many of them were `$batch` requests.
    pub http_requests: u64,
    pub batches: u64,
}

/// Where a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Live matches desired; never listed in a plan, only counted.
    InSync,
    /// Writes are planned.
    Change,
    /// Part of the desired state cannot be reached by writing (the preferred method is not
    /// registered): that field is not written; the user's other changes still are.
    Blocked,
    /// Graph does not know the user.
    NotFound,
    /// Reading or writing failed after retries.
    Failed,
    /// At apply time a value was no longer what the plan saw: nothing was written over it.
    Drifted,
    /// Every planned write succeeded (apply only).
    Applied,
    /// Named by the manifest's `protect:` list: never written, whatever another entry asks.
    Protected,
    /// Graph accepted every write but reading back after the run did not show the new values
    /// (apply only).
    Unverified,
}

/// One user's entry in the plan, held compactly: a plan of a million users is a million of
/// these. It serialises to design.md's shape ([`wire::UserPlan`]): `writes` are not stored but
/// derived from `fields`, one per endpoint with a field that is not blocked (its `before` and
/// `body` are those fields' values, in Graph's property names), with the write's result.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "wire::UserPlan")]
pub struct UserPlan {
    /// As written in the manifest (the manifest's own copy, shared).
    pub user: std::sync::Arc<str>,
    /// The object id, when known (the manifest named the user by id, or it was resolved).
    pub id: Option<uuid::Uuid>,
    pub status: Status,
    /// Every managed field whose live value differs from the desired one.
    pub fields: Box<[FieldChange]>,
    /// What Graph answered to each endpoint's write, by [`endpoint_index`] (apply only), in
    /// 20 bytes each: a million applied users hold 48 MB of answers, not 112 MB.
    results: Option<Box<[Option<HeldResult>; 2]>>,
    /// Why a field is blocked, and notes (rare: most users have neither).
    remarks: Option<Box<Remarks>>,
    /// What failed, for `failed`, `not_found` and `drifted` users.
    pub error: Option<Box<UserError>>,
    /// Whether MFA stays required once per-user MFA is disabled, for a user the plan disables
    /// it for ([`coverage`]); shared by every user with the same verdict.
    pub coverage: Option<std::sync::Arc<coverage::Coverage>>,
}

/// A user's rarely present explanations.
#[derive(Clone, Debug, Default, PartialEq)]
struct Remarks {
    /// Why a field is blocked (nothing is written for it), and what to do about it.
    reason: Option<String>,
    /// Things worth knowing that do not stop the change (e.g. an ineffective preferred method).
    notes: Vec<String>,
    /// What a [`HeldResult`] leaves out of each endpoint's answer, by [`endpoint_index`].
    /// Boxed again: many users carry a note, few an unusual answer.
    answers: Option<Box<[RareAnswer; 2]>>,
}

/// The parts of a write's answer that most answers lack: an error code, a request-id that is
/// not a GUID.
#[derive(Clone, Debug, Default, PartialEq)]
struct RareAnswer {
    request_id: Option<Box<str>>,
    code: Option<Box<str>>,
}

/// A [`WriteResult`] as a plan holds it, in 20 bytes: everything of the common answer (`ok`, the
/// status, a GUID request-id or none); a [`RareAnswer`] in the user's remarks holds the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeldResult {
    /// The request-id's GUID, when it was one ([`HeldResult::GUID`]).
    guid: [u8; 16],
    /// The HTTP status, when an answer came ([`HeldResult::STATUS`]).
    status: u16,
    ok: bool,
    flags: u8,
}

impl HeldResult {
    const STATUS: u8 = 1;
    const GUID: u8 = 2;
    const SETTLED_BY_READ: u8 = 4;
    const NOT_KEPT: u8 = 8;
    const ALREADY_APPLIED: u8 = 16;
    const UNSETTLED: u8 = 32;

    /// The held part of `result`, and what is left over when anything is.
    fn hold(result: WriteResult) -> (HeldResult, Option<RareAnswer>) {
        let WriteResult {
            ok,
            status,
            request_id,
            code,
            settled_by_read,
            unsettled,
            not_kept,
            already_applied,
        } = result;
        let mut held = HeldResult {
            guid: [0; 16],
            status: status.unwrap_or(0),
            ok,
            flags: 0,
        };
        if status.is_some() {
            held.flags |= HeldResult::STATUS;
        }
        for (set, flag) in [
            (settled_by_read, HeldResult::SETTLED_BY_READ),
            (not_kept, HeldResult::NOT_KEPT),
            (already_applied, HeldResult::ALREADY_APPLIED),
        ] {
            if set {
                held.flags |= flag;
            }
        }
        if unsettled {
            held.flags |= HeldResult::UNSETTLED;
        }
        let mut rare = RareAnswer {
            request_id: None,
            code,
        };
        match request_id {
            Some(RequestId::Guid(guid)) => {
                held.guid = guid;
                held.flags |= HeldResult::GUID;
            }
            Some(RequestId::Text(text)) => rare.request_id = Some(text),
            None => {}
        }
        let rare = (rare.request_id.is_some() || rare.code.is_some()).then_some(rare);
        (held, rare)
    }

    /// The whole answer again.
    fn unfold(self, rare: Option<&RareAnswer>) -> WriteResult {
        let has = |flag| self.flags & flag != 0;
        let text_id = rare.and_then(|r| r.request_id.clone()).map(RequestId::Text);
        WriteResult {
            ok: self.ok,
            status: has(HeldResult::STATUS).then_some(self.status),
            request_id: if has(HeldResult::GUID) {
                Some(RequestId::Guid(self.guid))
            } else {
                text_id
            },
            code: rare.and_then(|r| r.code.clone()),
            settled_by_read: has(HeldResult::SETTLED_BY_READ),
            unsettled: has(HeldResult::UNSETTLED),
            not_kept: has(HeldResult::NOT_KEPT),
            already_applied: has(HeldResult::ALREADY_APPLIED),
        }
    }
}

/// One field's change.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub field: Field,
    /// The live value as Graph returned it (`null` when unset).
    pub before: Value,
    pub after: Value,
    /// Shown but never written (a preferred method the user has not registered): no write
    /// carries it.
    pub blocked: bool,
}

/// A managed property's value, as Graph returned it or as mfactl writes it: what a
/// `serde_json::Value` held here, in 16 bytes and without an allocation for the values this
/// build knows. Strings are kept exactly as spelt (`SMS` stays `Other("SMS")`, never `sms`), so
/// the plan shows and compares what Graph said; build them with [`Value::text`] or
/// [`Value::from_json`] so that equal JSON gives equal values.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A preferred method in Graph's exact spelling.
    Method(PreferredMethod),
    /// A per-user MFA state in Graph's exact spelling.
    State(PerUserMfaState),
    /// Anything else, as Graph returned it: a string this build does not know
    /// (`unknownFutureValue`) or spelt otherwise (`SMS`); or, read from a plan file, any JSON.
    Other(Box<serde_json::Value>),
}

impl Value {
    /// The value of a JSON string.
    pub fn text(text: &str) -> Value {
        Value::known(text).unwrap_or_else(|| Value::Other(Box::new(text.into())))
    }

    /// The known value spelt exactly `text`.
    fn known(text: &str) -> Option<Value> {
        let method = PreferredMethod::ALL.iter().find(|m| m.as_str() == text);
        let state = PerUserMfaState::ALL.iter().find(|s| s.as_str() == text);
        method
            .map(|m| Value::Method(*m))
            .or_else(|| state.map(|s| Value::State(*s)))
    }

    /// The value of any JSON.
    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::String(s) => {
                Value::known(&s).unwrap_or_else(|| Value::Other(Box::new(s.into())))
            }
            other => Value::Other(Box::new(other)),
        }
    }

    /// A string property's value (`null` when unset).
    pub fn from_text(text: Option<&str>) -> Value {
        text.map_or(Value::Null, Value::text)
    }

    /// A boolean property's value (`null` when unset).
    pub fn from_bool(value: Option<bool>) -> Value {
        value.map_or(Value::Null, Value::Bool)
    }

    /// The string, when the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Method(method) => Some(method.as_str()),
            Value::State(state) => Some(state.as_str()),
            Value::Other(json) => json.as_str(),
            Value::Null | Value::Bool(_) => None,
        }
    }

    /// The boolean, when the value is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Method(method) => serializer.serialize_str(method.as_str()),
            Value::State(state) => serializer.serialize_str(state.as_str()),
            Value::Other(json) => json.serialize(serializer),
        }
    }
}

/// As JSON (`"enforced"`, `null`, `true`): how a drift message quotes values.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Method(method) => write!(f, "\"{method}\""),
            Value::State(state) => write!(f, "\"{state}\""),
            Value::Other(json) => write!(f, "{json}"),
        }
    }
}

impl Serialize for FieldChange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("FieldChange", 3)?;
        s.serialize_field("field", &self.field)?;
        s.serialize_field("before", &self.before)?;
        s.serialize_field("after", &self.after)?;
        s.end()
    }
}

/// The slot of an endpoint's write result (writes go in this order too).
pub(crate) fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::SignInPreferences => 0,
        Endpoint::Requirements => 1,
    }
}

/// The managed fields in the order of their Graph property names: the order `serde_json::Map`
/// (a `BTreeMap`) gave `before` and `body`, which the plan document and the journal keep.
const PROPERTY_ORDER: [Field; 3] = [
    Field::SystemPreferred, // isSystemPreferredAuthenticationMethodEnabled
    Field::PerUserMfaState, // perUserMfaState
    Field::PreferredMethod, // userPreferredMethodForSecondaryAuthentication
];

impl UserPlan {
    /// A user's entry with no result and no error yet.
    pub fn new(
        user: std::sync::Arc<str>,
        status: Status,
        fields: Vec<FieldChange>,
        reason: Option<String>,
        notes: Vec<String>,
    ) -> UserPlan {
        let remarks = (reason.is_some() || !notes.is_empty()).then(|| {
            Box::new(Remarks {
                reason,
                notes,
                ..Remarks::default()
            })
        });
        UserPlan {
            id: diff::object_id(&user),
            user,
            status,
            fields: fields.into_boxed_slice(),
            results: None,
            remarks,
            error: None,
            coverage: None,
        }
    }

    /// The entry of a user whose state could not be read.
    pub fn unread(user: std::sync::Arc<str>, status: Status, error: UserError) -> UserPlan {
        UserPlan {
            error: Some(Box::new(error)),
            ..UserPlan::new(user, status, Vec::new(), None, Vec::new())
        }
    }

    /// Why a field is blocked, and what to do about it.
    pub fn reason(&self) -> Option<&str> {
        self.remarks.as_ref()?.reason.as_deref()
    }

    /// Adds a thing worth knowing (e.g. what the tenant's policy means for this user).
    pub fn add_note(&mut self, note: String) {
        self.remarks
            .get_or_insert_with(Box::default)
            .notes
            .push(note);
    }

    /// Replaces the note `old` with `new` (one note per subject), or adds `new` when the user
    /// has no such note.
    pub fn replace_note(&mut self, old: &str, new: String) {
        let notes = &mut self.remarks.get_or_insert_with(Box::default).notes;
        match notes.iter_mut().find(|note| note.as_str() == old) {
            Some(note) => *note = new,
            None => notes.push(new),
        }
    }

    /// Things worth knowing that do not stop the change.
    pub fn notes(&self) -> &[String] {
        self.remarks.as_ref().map_or(&[], |r| &r.notes)
    }

    /// The per-user MFA change to `disabled`, when the plan makes one (written or held).
    pub fn disables_per_user_mfa(&self) -> bool {
        self.status != Status::Protected
            && self.fields.iter().any(|field| {
                field.field == Field::PerUserMfaState
                    && field.after == Value::State(PerUserMfaState::Disabled)
            })
    }

    /// Records the Conditional Access verdict for this user's per-user MFA change to
    /// `disabled`: a gap (not covered, or unknown) holds the change (the field is shown, not
    /// written, and the user is `blocked` with the gap as reason) unless `allow_gap`, which
    /// writes it with a note saying so; partly covered writes it with a warning naming the
    /// conditions.
    pub fn set_coverage(&mut self, coverage: std::sync::Arc<coverage::Coverage>, allow_gap: bool) {
        let summary = coverage.summary();
        let status = coverage.status;
        self.coverage = Some(coverage);
        if status == coverage::CoverageStatus::PartlyCovered {
            self.add_note(format!("warning: once per-user MFA is disabled, {summary}"));
        }
        if !status.is_gap() {
            return;
        }
        if allow_gap {
            self.add_note(format!(
                "per-user MFA is disabled anyway (--allow-mfa-gap): {summary}"
            ));
            return;
        }
        let Some(field) = self
            .fields
            .iter_mut()
            .find(|f| f.field == Field::PerUserMfaState)
        else {
            return;
        };
        field.blocked = true;
        let held = format!(
            "per-user MFA stays {}: {summary}; require MFA for this user in Conditional Access, \
             or pass --allow-mfa-gap (allowMfaGap: true) to disable it anyway",
            field.before
        );
        let remarks = self.remarks.get_or_insert_with(Box::default);
        remarks.reason = Some(match remarks.reason.take() {
            Some(earlier) => format!("{earlier}; and {held}"),
            None => held,
        });
        if matches!(self.status, Status::Change | Status::InSync) {
            self.status = Status::Blocked;
        }
    }

    /// Whether the per-user MFA change to `disabled` is held for an MFA gap.
    pub fn mfa_gap_held(&self) -> bool {
        self.coverage.as_ref().is_some_and(|c| c.status.is_gap())
            && self
                .fields
                .iter()
                .any(|f| f.field == Field::PerUserMfaState && f.blocked)
    }

    /// The PATCH calls that make the fields match, signInPreferences first (a blocked field
    /// has none); none for not-found and unreadable users, and none at all for a protected
    /// user, whose fields only show what the manifest would have changed: every count,
    /// estimate and apply sees its writes through here.
    pub fn writes(&self) -> impl Iterator<Item = Write<'_>> {
        let protected = self.status == Status::Protected;
        Endpoint::ALL
            .iter()
            .filter(move |_| !protected)
            .map(|endpoint| Write {
                user: self,
                endpoint: *endpoint,
            })
            .filter(|write| !write.body().is_empty())
    }

    /// How many PATCH calls [`UserPlan::writes`] lists.
    pub fn write_count(&self) -> usize {
        self.writes().count()
    }

    /// The write to `endpoint`, when there is one.
    pub fn write(&self, endpoint: Endpoint) -> Option<Write<'_>> {
        self.writes().find(|write| write.endpoint == endpoint)
    }

    /// Marks the write to `endpoint` as not kept: Graph accepted it, reading back does not show
    /// it.
    pub fn set_not_kept(&mut self, endpoint: Endpoint) {
        if let Some(mut result) = self.write(endpoint).and_then(|write| write.result()) {
            result.not_kept = true;
            self.set_result(endpoint, result);
        }
    }

    /// Records Graph's answer to the write to `endpoint`.
    pub fn set_result(&mut self, endpoint: Endpoint, result: WriteResult) {
        let slot = endpoint_index(endpoint);
        let (held, rare) = HeldResult::hold(result);
        self.results.get_or_insert_with(Box::default)[slot] = Some(held);
        match (rare, &mut self.remarks) {
            (Some(rare), remarks) => {
                let remarks = remarks.get_or_insert_with(Box::default);
                remarks.answers.get_or_insert_with(Box::default)[slot] = rare;
            }
            (None, Some(remarks)) => {
                if let Some(answers) = &mut remarks.answers {
                    answers[slot] = RareAnswer::default();
                }
            }
            (None, None) => {}
        }
    }
}

impl Serialize for UserPlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The writes as a JSON array, without collecting them.
        struct Writes<'a>(&'a UserPlan);
        impl Serialize for Writes<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.writes())
            }
        }
        let reason = self.reason();
        let notes = self.notes();
        let len = 5
            + usize::from(reason.is_some())
            + usize::from(!notes.is_empty())
            + usize::from(self.error.is_some())
            + usize::from(self.coverage.is_some());
        let mut s = serializer.serialize_struct("UserPlan", len)?;
        s.serialize_field("user", &*self.user)?;
        s.serialize_field("id", &self.id.map(|id| id.hyphenated().to_string()))?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("fields", &self.fields)?;
        s.serialize_field("writes", &Writes(self))?;
        if let Some(reason) = reason {
            s.serialize_field("reason", reason)?;
        }
        if !notes.is_empty() {
            s.serialize_field("notes", notes)?;
        }
        if let Some(error) = &self.error {
            s.serialize_field("error", error)?;
        }
        if let Some(coverage) = &self.coverage {
            s.serialize_field("coverage", &**coverage)?;
        }
        s.end()
    }
}

/// The schema is the JSON shape's: the compact form serialises to exactly it.
impl JsonSchema for UserPlan {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        wire::UserPlan::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        wire::UserPlan::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        wire::UserPlan::json_schema(generator)
    }
}

/// One PATCH call: a view of the user's written fields on one endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    user: &'a UserPlan,
    pub endpoint: Endpoint,
}

impl<'a> Write<'a> {
    /// The live values of the properties the body changes.
    pub fn before(&self) -> Properties<'a> {
        Properties {
            write: *self,
            side: Side::Before,
        }
    }

    /// Exactly the properties to change, in Graph's names and spelling.
    pub fn body(&self) -> Properties<'a> {
        Properties {
            write: *self,
            side: Side::After,
        }
    }

    /// When this write disables per-user MFA although no Conditional Access policy is known
    /// to require MFA for the user (allowed with `--allow-mfa-gap`): the verdict.
    pub fn mfa_gap(&self) -> Option<String> {
        let coverage = self.user.coverage.as_ref()?;
        (coverage.status.is_gap() && self.body().get(Field::PerUserMfaState).is_some())
            .then(|| coverage.summary())
    }

    /// What Graph answered (apply only).
    pub fn result(&self) -> Option<WriteResult> {
        let slot = endpoint_index(self.endpoint);
        let held = self.user.results.as_ref()?[slot]?;
        let rare = self.user.remarks.as_ref().and_then(|r| r.answers.as_ref());
        Some(held.unfold(rare.map(|answers| &answers[slot])))
    }
}

impl Serialize for Write<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let result = self.result();
        let mut s = serializer.serialize_struct("Write", 3 + usize::from(result.is_some()))?;
        s.serialize_field("endpoint", &self.endpoint)?;
        s.serialize_field("before", &self.before())?;
        s.serialize_field("body", &self.body())?;
        if let Some(result) = &result {
            s.serialize_field("result", result)?;
        }
        s.end()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// A write's `before` or `body`: Graph property name → value, in property-name order. Serialises
/// as the JSON object.
#[derive(Clone, Copy, Debug)]
pub struct Properties<'a> {
    write: Write<'a>,
    side: Side,
}

impl<'a> Properties<'a> {
    /// Each written field and its value, in property-name order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &'a Value)> + 'a {
        let Properties { write, side } = *self;
        PROPERTY_ORDER
            .iter()
            .filter(move |field| field.endpoint() == write.endpoint)
            .filter_map(move |field| {
                let change = write
                    .user
                    .fields
                    .iter()
                    .find(|change| change.field == *field && !change.blocked)?;
                Some(match side {
                    Side::Before => (change.field, &change.before),
                    Side::After => (change.field, &change.after),
                })
            })
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The value of `field`, when written.
    pub fn get(&self, field: Field) -> Option<&'a Value> {
        self.iter()
            .find(|(f, _)| *f == field)
            .map(|(_, value)| value)
    }
}

impl Serialize for Properties<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.iter()
                .map(|(field, value)| (field.graph_property(), value)),
        )
    }
}

/// Graph's `request-id` for one answer, held in 24 bytes: a GUID (what Graph sends) as its 16
/// bytes, anything else as text. It reads back exactly as Graph wrote it: only the canonical
/// lower-case hyphenated form is stored as a GUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestId {
    Guid([u8; 16]),
    Text(Box<str>),
}

impl From<String> for RequestId {
    fn from(text: String) -> RequestId {
        match uuid::Uuid::parse_str(&text) {
            Ok(id) if id.hyphenated().to_string() == text => RequestId::Guid(*id.as_bytes()),
            _ => RequestId::Text(text.into_boxed_str()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Guid(bytes) => write!(f, "{}", uuid::Uuid::from_bytes(*bytes).hyphenated()),
            RequestId::Text(text) => f.write_str(text),
        }
    }
}

impl Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RequestId, D::Error> {
        String::deserialize(deserializer).map(RequestId::from)
    }
}

/// In the JSON Schema, a request-id is the string it serialises to.
impl JsonSchema for RequestId {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

/// The answer to one PATCH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WriteResult {
    pub ok: bool,
    /// HTTP status of the last attempt (none when no answer came).
    pub status: Option<u16>,
    pub request_id: Option<RequestId>,
    /// Graph's error code when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Box<str>>,
    /// The answer was lost (the connection dropped after Graph took the request) and reading
    /// the endpoint back showed the write made; `status` is then null.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settled_by_read: bool,
    /// With `ok: false`: the write may have been made all the same (an attempt's answer was
    /// lost and reading back failed too). Resume reads it back; rollback restores it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsettled: bool,
    /// Graph accepted the write, but reading it back after the run did not show it (apply's
    /// read-back; `ok` stays true: Graph said yes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_kept: bool,
    /// The endpoint already showed the write's values when apply read it just before writing
    /// (an earlier run of the same plan made it): nothing was sent; `status` is null.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_applied: bool,
}

impl WriteResult {
    /// A write found made by reading the endpoint back, its answer lost (a dropped
    /// connection, or a run killed before it recorded the answer).
    pub fn settled_by_read() -> WriteResult {
        WriteResult {
            settled_by_read: true,
            ..WriteResult::accepted()
        }
    }

    /// A write not sent because the endpoint already showed its values.
    pub fn already_applied() -> WriteResult {
        WriteResult {
            already_applied: true,
            ..WriteResult::accepted()
        }
    }

    /// `ok`, and nothing else known.
    pub fn accepted() -> WriteResult {
        WriteResult {
            ok: true,
            status: None,
            request_id: None,
            code: None,
            settled_by_read: false,
            unsettled: false,
            not_kept: false,
            already_applied: false,
        }
    }

    /// Graph took the write and nothing since says it was lost.
    pub fn landed(&self) -> bool {
        self.ok && !self.not_kept
    }
}

/// The error code of a write Graph accepted and did not keep (apply's read-back).
pub const NOT_KEPT: &str = "notKept";

/// A Graph failure attached to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserError {
    /// The endpoint that failed, when it was a per-endpoint call.
    pub endpoint: Option<Endpoint>,
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl Plan {
    /// A plan over `total_users` manifest users, of which `users` are the ones not in sync
    /// (any order: they are sorted by `order` first).
    pub fn new(
        graph: impl Into<String>,
        total_users: u64,
        mut users: Vec<(usize, UserPlan)>,
    ) -> Plan {
        // Unstable: the orders are distinct, and a stable sort would allocate half the list
        // again. The collect reuses the allocation (same alignment, smaller items).
        users.sort_unstable_by_key(|(order, _)| *order);
        let users: Vec<UserPlan> = users.into_iter().map(|(_, user)| user).collect();
        let mut plan = Plan {
            format_version: FORMAT_VERSION,
            graph: graph.into(),
            tenant_id: None,
            tenant_domain: None,
            created: None,
            finished: None,
            manifest: None,
            policy_file: None,
            max_changes: None,
            allow_mfa_gap: false,
            summary: Summary::default(),
            users,
            policy: None,
            checksum: None,
        };
        plan.summary = plan.count(total_users);
        plan
    }

    /// The summary after an apply: every user in its category ([`category`]), users left at
    /// `change` counted as not reached, and `applied` always present.
    pub fn count_after_apply(&self, total_users: u64) -> Summary {
        let mut summary = self.tally(total_users, category::Phase::Apply);
        summary.applied.get_or_insert(0);
        summary.estimate = self.summary.estimate;
        summary
    }

    /// Recomputes a plan's summary from the users' statuses and write results.
    pub fn count(&self, total_users: u64) -> Summary {
        self.tally(total_users, category::Phase::Plan)
    }

    /// Counts each user once, in its category, and the writes.
    fn tally(&self, total_users: u64, phase: category::Phase) -> Summary {
        let mut summary = Summary {
            users: total_users,
            ..Summary::default()
        };
        let mut applied = 0;
        let mut has_results = false;
        for user in &self.users {
            *summary.users_in_mut(category::Category::of(user.status, phase)) += 1;
            let writes = user.write_count() as u64;
            summary.writes += writes;
            if user.status == Status::Blocked && writes > 0 {
                summary.blocked_with_writes += 1;
            }
            for write in user.writes() {
                if let Some(result) = write.result() {
                    has_results = true;
                    applied += u64::from(result.ok);
                }
            }
        }
        if let Some(policy) = &self.policy {
            summary.policy_writes = u64::from(policy.has_write());
            if let Some(result) = &policy.result {
                has_results = true;
                applied += u64::from(result.ok);
            }
        }
        // In-sync users are not listed (protected ones are, in their own category).
        summary.in_sync = total_users.saturating_sub(self.users.len() as u64);
        summary.applied = has_results.then_some(applied);
        summary.mfa_coverage = self.coverage_counts();
        summary
    }

    /// Users per Conditional Access verdict, when any user has one.
    fn coverage_counts(&self) -> Option<coverage::CoverageCounts> {
        let mut counts = coverage::CoverageCounts::default();
        for user in &self.users {
            if let Some(coverage) = &user.coverage {
                counts.add(coverage.status, user.mfa_gap_held());
            }
        }
        (counts.total() > 0).then_some(counts)
    }

    /// Whether the plan would write anything (for `--detailed-exitcode`). Blocked and
    /// not-found users without writes are reported but are not changes.
    pub fn has_changes(&self) -> bool {
        self.summary.writes > 0 || self.summary.policy_writes > 0
    }

    /// The PATCH calls apply would send, counted from the entries themselves (the users' writes
    /// and the policy's), not from the summary: what every guard compares with its limit.
    pub fn write_count(&self) -> u64 {
        let users: u64 = self
            .users
            .iter()
            .filter(|user| matches!(user.status, Status::Change | Status::Blocked))
            .map(|user| user.write_count() as u64)
            .sum();
        users + u64::from(self.policy.as_ref().is_some_and(|p| p.has_write()))
    }
}
