//! Appointments and tasks: the post office's own record of a calendar object.
//!
//! A [`CalendarObject`] is everything the post office holds for one iCalendar
//! UID (RFC 5545 §3.8.4.7) in one user's calendar: the recurring master (or
//! the single event), the instances it overrides (RECURRENCE-ID), the time
//! zones that neither IANA nor Windows names explain, and the proposals
//! (COUNTER, RFC 5546 §3.2.7) waiting for the organizer. Its iCalendar text is
//! kept beside the fields ([`CalendarObject::ical`]): the fields are what the
//! post office reasons about, the text is what it serves and sends, with every
//! property it does not model (X- properties, VALARM details) intact.
//!
//! Status, role and participation values are the RFC 5545 tokens; values this
//! module does not know are kept as written (the `Other` variants), never
//! mapped to a known one.
use std::fmt;

/// A DATE or DATE-TIME as iCalendar writes it (RFC 5545 §3.3.4, §3.3.5), and
/// the instant it stands for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CalTime {
    /// The instant, Unix seconds UTC. Floating times and dates are read in
    /// the post office's calendar time zone.
    pub utc: i64,
    /// The value as written, without `Z`: `20261201` (a DATE) or
    /// `20261201T090000`.
    pub local: String,
    /// How `local` is to be read.
    pub form: TimeForm,
}

/// How a [`CalTime`]'s written value is read (RFC 5545 §3.3.5 forms #1–#3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "form", content = "tzid")]
pub enum TimeForm {
    /// A DATE: a whole day, wherever the reader is (all-day appointments).
    Date,
    /// A DATE-TIME with `Z`: UTC.
    Utc,
    /// A DATE-TIME without `Z` or TZID: the same wall-clock time everywhere.
    Floating,
    /// A DATE-TIME in the zone named by this TZID.
    Zone(String),
}

impl CalTime {
    /// Whether this is a DATE (an all-day value).
    pub fn is_date(&self) -> bool {
        self.form == TimeForm::Date
    }
    /// The TZID, for a zoned value.
    pub fn tzid(&self) -> Option<&str> {
        match &self.form {
            TimeForm::Zone(z) => Some(z),
            _ => None,
        }
    }
}

/// An RFC 5545 token enum: the known values, and `Other` keeping any other
/// (`x-name` / `iana-token`) as written.
macro_rules! token_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this version does not know, as written (upper-cased).
            Other(String),
        }

        impl $name {
            /// The RFC 5545 spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
            /// Parses a value, case-insensitively (RFC 5545 §3.2).
            pub fn parse(s: &str) -> $name {
                let up = s.trim().to_ascii_uppercase();
                match up.as_str() {
                    $($text => $name::$variant,)+
                    _ => $name::Other(up),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

token_enum! {
    /// PARTSTAT (RFC 5545 §3.2.12).
    PartStat {
        /// Not answered yet (the default).
        NeedsAction = "NEEDS-ACTION",
        /// Accepted.
        Accepted = "ACCEPTED",
        /// Declined.
        Declined = "DECLINED",
        /// Tentatively accepted.
        Tentative = "TENTATIVE",
        /// Delegated to someone else.
        Delegated = "DELEGATED",
        /// A task: completed.
        Completed = "COMPLETED",
        /// A task: in progress.
        InProcess = "IN-PROCESS",
    }
}

token_enum! {
    /// ROLE (RFC 5545 §3.2.16).
    Role {
        /// Chairs the meeting.
        Chair = "CHAIR",
        /// Required (the default).
        ReqParticipant = "REQ-PARTICIPANT",
        /// Optional.
        OptParticipant = "OPT-PARTICIPANT",
        /// For information only.
        NonParticipant = "NON-PARTICIPANT",
    }
}

token_enum! {
    /// STATUS (RFC 5545 §3.8.1.11).
    Status {
        /// An appointment: tentative.
        Tentative = "TENTATIVE",
        /// An appointment: confirmed.
        Confirmed = "CONFIRMED",
        /// Cancelled.
        Cancelled = "CANCELLED",
        /// A task: not started.
        NeedsAction = "NEEDS-ACTION",
        /// A task: completed.
        Completed = "COMPLETED",
        /// A task: in progress.
        InProcess = "IN-PROCESS",
    }
}

// The enums come from a macro that cannot carry `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for PartStat {
    fn default() -> Self {
        PartStat::NeedsAction
    }
}

#[allow(clippy::derivable_impls)]
impl Default for Role {
    fn default() -> Self {
        Role::ReqParticipant
    }
}

/// ORGANIZER (RFC 5545 §3.8.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Organizer {
    /// The calendar user's address (the `mailto:` stripped), lower-case.
    pub email: String,
    /// CN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SENT-BY: who acts for the organizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<String>,
}

/// ATTENDEE (RFC 5545 §3.8.4.1) with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Attendee {
    /// The calendar user's address (the `mailto:` stripped), lower-case.
    pub email: String,
    /// CN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ROLE.
    #[serde(default)]
    pub role: Role,
    /// PARTSTAT.
    #[serde(default)]
    pub partstat: PartStat,
    /// RSVP: the organizer wants an answer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rsvp: bool,
    /// CUTYPE, when not INDIVIDUAL (ROOM, RESOURCE, GROUP…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutype: Option<String>,
    /// DELEGATED-TO addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegated_to: Vec<String>,
    /// DELEGATED-FROM addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegated_from: Vec<String>,
    /// SENT-BY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A VALARM (RFC 5545 §3.6.6), as far as the post office shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Alarm {
    /// ACTION: DISPLAY, AUDIO, EMAIL…
    pub action: String,
    /// TRIGGER as written (`-PT15M`, or a DATE-TIME).
    pub trigger: String,
    /// DESCRIPTION, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One VEVENT or VTODO: the master of a series, a single occurrence, or one
/// overridden instance (with [`CalendarComponent::recurrence_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CalendarComponent {
    /// RECURRENCE-ID: the instance of the series this one overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<CalTime>,
    /// RANGE=THISANDFUTURE on the RECURRENCE-ID (RFC 5545 §3.2.13).
    #[serde(default, skip_serializing_if = "is_false")]
    pub this_and_future: bool,
    /// SEQUENCE (RFC 5545 §3.8.7.4), saturated at 2^31 − 1.
    #[serde(default)]
    pub sequence: u32,
    /// DTSTAMP, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtstamp: Option<i64>,
    /// ORGANIZER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Organizer>,
    /// ATTENDEEs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<Attendee>,
    /// SUMMARY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// LOCATION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// DESCRIPTION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// CATEGORIES.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// COMMENT (an attendee's note in a REPLY, RFC 5546 §3.2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// STATUS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// TRANSP: `OPAQUE` (the default for timed events) or `TRANSPARENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparency: Option<String>,
    /// CLASS: PUBLIC, PRIVATE, CONFIDENTIAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// PRIORITY, 0 (undefined) to 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// DTSTART.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<CalTime>,
    /// DTEND, or DTSTART + DURATION when the duration was given instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CalTime>,
    /// DURATION in seconds, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// DTSTART is a DATE: an all-day appointment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_day: bool,
    /// The IANA zone DTSTART's TZID stands for, when it stands for one
    /// (an IANA name, a Windows name as Exchange writes it, or a VTIMEZONE
    /// recognised as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// RRULE, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// RDATEs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<CalTime>,
    /// EXDATEs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<CalTime>,
    /// The start of the last occurrence the RRULE makes, when it ends
    /// (UNTIL or COUNT), Unix seconds; `None` for a rule without end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule_last: Option<i64>,
    /// VALARMs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<Alarm>,
    /// A task: DUE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<CalTime>,
    /// A task: PERCENT-COMPLETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<u8>,
    /// A task: COMPLETED, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<i64>,
}

impl CalendarComponent {
    /// The attendee with this address (case-insensitive).
    pub fn attendee(&self, email: &str) -> Option<&Attendee> {
        self.attendees
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
    }
    /// Whether `email` is the organizer (or acts for them, SENT-BY).
    pub fn is_organizer(&self, email: &str) -> bool {
        self.organizer.as_ref().is_some_and(|o| {
            o.email.eq_ignore_ascii_case(email)
                || o.sent_by
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(email))
        })
    }
    /// Whether this component is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.status == Some(Status::Cancelled)
    }
}

/// A custom time zone from a VTIMEZONE whose TZID names no zone the post
/// office knows (Outlook's "Customized Time Zone", a renamed zone): its
/// observances, enough to turn local times into instants (RFC 5545 §3.6.5).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ZoneRule {
    /// The TZID.
    pub tzid: String,
    /// STANDARD and DAYLIGHT observances.
    pub observances: Vec<Observance>,
}

/// One STANDARD or DAYLIGHT sub-component.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Observance {
    /// DTSTART: the first onset, local time (`YYYYMMDDTHHMMSS`) in the offset before it.
    pub start: String,
    /// TZOFFSETFROM, seconds east of UTC.
    pub offset_from: i32,
    /// TZOFFSETTO, seconds east of UTC.
    pub offset_to: i32,
    /// RRULE of later onsets, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// RDATEs of later onsets, local times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<String>,
}

/// A COUNTER (RFC 5546 §3.2.7) an attendee sent, kept for the organizer to
/// accept or decline.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    /// Who proposes.
    pub from: String,
    /// The instance it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_id: Option<CalTime>,
    /// Proposed DTSTART.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<CalTime>,
    /// Proposed DTEND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CalTime>,
    /// Proposed LOCATION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// COMMENT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The proposal's SEQUENCE.
    #[serde(default)]
    pub sequence: u32,
    /// When it arrived (its DTSTAMP), Unix seconds.
    #[serde(default)]
    pub received: i64,
    /// The COUNTER's own iCalendar text.
    pub ical: String,
}

/// Everything one calendar holds for one UID.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CalendarObject {
    /// UID.
    pub uid: String,
    /// The series master or the single occurrence; `None` when only
    /// overridden instances are known (an invitation to one instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<CalendarComponent>,
    /// Overridden instances, by RECURRENCE-ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<CalendarComponent>,
    /// Time zones the text defines and no known zone explains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneRule>,
    /// COUNTER proposals waiting for the organizer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<Counter>,
    /// The object as iCalendar (a VCALENDAR without METHOD, RFC 4791 §4.1),
    /// every property it arrived with kept.
    pub ical: String,
}

impl CalendarObject {
    /// The master, else the first override: what a listing shows.
    pub fn main(&self) -> Option<&CalendarComponent> {
        self.master.as_ref().or(self.overrides.first())
    }
    /// Every component: the master first.
    pub fn components(&self) -> impl Iterator<Item = &CalendarComponent> {
        self.master.iter().chain(self.overrides.iter())
    }
    /// The SEQUENCE of the object (the highest of its components).
    pub fn sequence(&self) -> u32 {
        self.components().map(|c| c.sequence).max().unwrap_or(0)
    }
}

/// What an item is, and what it holds beyond what a reader sees.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "calendar")]
pub enum ItemBody {
    /// A mail message: its bodies and attachments are the item's.
    #[default]
    Mail,
    /// An appointment (VEVENT).
    Appointment(Box<CalendarObject>),
    /// A task (VTODO).
    Task(Box<CalendarObject>),
}

impl ItemBody {
    /// The kind of item.
    pub fn kind(&self) -> crate::ItemKind {
        match self {
            ItemBody::Mail => crate::ItemKind::Mail,
            ItemBody::Appointment(_) => crate::ItemKind::Appointment,
            ItemBody::Task(_) => crate::ItemKind::Task,
        }
    }
    /// The calendar object of an appointment or task.
    pub fn calendar(&self) -> Option<&CalendarObject> {
        match self {
            ItemBody::Mail => None,
            ItemBody::Appointment(c) | ItemBody::Task(c) => Some(c),
        }
    }
    /// Whether this is mail (for serde's skip).
    pub fn is_mail(&self) -> bool {
        matches!(self, ItemBody::Mail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_unknown_values() {
        assert_eq!(PartStat::parse("accepted"), PartStat::Accepted);
        assert_eq!(PartStat::parse("X-Maybe").as_str(), "X-MAYBE");
        assert_eq!(Status::parse(" CANCELLED "), Status::Cancelled);
        let json = serde_json::to_string(&PartStat::Tentative).unwrap();
        assert_eq!(json, "\"TENTATIVE\"");
        assert_eq!(
            serde_json::from_str::<Role>("\"x-boss\"").unwrap(),
            Role::Other("X-BOSS".into())
        );
    }

    #[test]
    fn body_round_trips_and_defaults_to_mail() {
        let b = ItemBody::Appointment(Box::new(CalendarObject {
            uid: "u1".into(),
            ical: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
            ..Default::default()
        }));
        let json = serde_json::to_string(&b).unwrap();
        let back: ItemBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.kind(), crate::ItemKind::Appointment);
        assert!(serde_json::from_str::<ItemBody>(r#"{"kind":"note"}"#).is_err());
    }
}
