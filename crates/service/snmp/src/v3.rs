//! SNMPv3 (RFC 3412 message processing, RFC 3414 User-based Security
//! Model): requests in, answers and Reports out, and notifications sent
//! with the local engine authoritative. Only authPriv users exist
//! (HMAC-SHA-256-192 and AES-128-CFB, [`crate::usm`]); the PDUs themselves
//! go through the same dispatcher as v2c ([`Agent::dispatch`]), only the
//! wrapping differs.
//!
//! What is checked, in the RFCs' order, and what each failure costs:
//!
//! | check | RFC | counter | Report |
//! |---|---|---|---|
//! | security model is USM | 3412 §7.2 step 4 | snmpUnknownSecurityModels | none |
//! | msgFlags consistent | 3412 §7.2 step 5 | snmpInvalidMsgs | none |
//! | engine ID is ours | 3414 §3.2 step 3 | usmStatsUnknownEngineIDs | noAuthNoPriv (discovery) |
//! | user known | 3414 §3.2 step 4 | usmStatsUnknownUserNames | noAuthNoPriv |
//! | level is authPriv | 3414 §3.2 step 5 | usmStatsUnsupportedSecLevels | noAuthNoPriv |
//! | digest | 3414 §3.2 step 6 | usmStatsWrongDigests | noAuthNoPriv |
//! | time window | 3414 §3.2 step 7 | usmStatsNotInTimeWindows | authNoPriv |
//! | decryption | 3414 §3.2 step 8 | usmStatsDecryptionErrors | noAuthNoPriv |
//! | contextEngineID is ours | 3412 §4.2.2.1 | snmpUnknownPDUHandlers | authPriv |
//! | contextName is "" | 3413 §3.2 step 3 | snmpUnknownContexts | authPriv |
//!
//! A Report carries only the counter that failed, never requested data,
//! and goes only to a sender that asked for one (RFC 3412 §6.4, §7.1 step
//! 3b). Every failure is also counted in
//! `postgate_connections_refused_total{service="snmp",reason=…}`.
use crate::engine::{Engine, MAX_BOOTS};
use crate::usm::{self, DIGEST_LEN, SALT_LEN, User};
use crate::{Agent, MAX_ANSWER, View};
use postgate_metrics::{ServiceLabel, metrics};
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_smi::v1::Counter;
use rasn_smi::v2::{ApplicationSyntax, ObjectSyntax, SimpleSyntax};
use rasn_snmp::v2::{Pdu, Pdus, Report, Response, VarBind, VarBindValue};
use rasn_snmp::v3::{HeaderData, Message, ScopedPdu, ScopedPduData, USMSecurityParameters};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// msgFlags (RFC 3412 §6.4).
const AUTH_FLAG: u8 = 0x01;
const PRIV_FLAG: u8 = 0x02;
const REPORTABLE_FLAG: u8 = 0x04;
/// msgSecurityModel of the USM (RFC 3411 §5 SnmpSecurityModel).
const USM_MODEL: i64 = 3;
/// RFC 3414 §3.2 step 7a: the authoritative engine's window, ±150 s.
const TIME_WINDOW: i64 = 150;
/// snmpEngine (SNMP-FRAMEWORK-MIB, RFC 3411 §5): 1.3.6.1.6.3.10.2.1.
const SNMP_ENGINE: [u32; 9] = [1, 3, 6, 1, 6, 3, 10, 2, 1];

/// A securityLevel (RFC 3411 §3.4.3), named as the RFC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Level {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

impl Level {
    fn flags(self) -> u8 {
        match self {
            Level::NoAuthNoPriv => 0,
            Level::AuthNoPriv => AUTH_FLAG,
            Level::AuthPriv => AUTH_FLAG | PRIV_FLAG,
        }
    }
}

/// The counters SNMPv3 keeps, each readable in the agent's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stat {
    UnsupportedSecLevels,
    NotInTimeWindows,
    UnknownUserNames,
    UnknownEngineIds,
    WrongDigests,
    DecryptionErrors,
    UnknownSecurityModels,
    InvalidMsgs,
    UnknownPduHandlers,
    UnknownContexts,
}

impl Stat {
    const ALL: [Stat; 10] = [
        Stat::UnsupportedSecLevels,
        Stat::NotInTimeWindows,
        Stat::UnknownUserNames,
        Stat::UnknownEngineIds,
        Stat::WrongDigests,
        Stat::DecryptionErrors,
        Stat::UnknownSecurityModels,
        Stat::InvalidMsgs,
        Stat::UnknownPduHandlers,
        Stat::UnknownContexts,
    ];

    /// The counter's instance (`….0`).
    fn oid(self) -> Vec<u32> {
        let mut o = match self {
            // usmStats (SNMP-USER-BASED-SM-MIB, RFC 3414 §5):
            // 1.3.6.1.6.3.15.1.1.1–6.
            Stat::UnsupportedSecLevels => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 1],
            Stat::NotInTimeWindows => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 2],
            Stat::UnknownUserNames => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 3],
            Stat::UnknownEngineIds => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 4],
            Stat::WrongDigests => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 5],
            Stat::DecryptionErrors => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 6],
            // snmpMPDStats (SNMP-MPD-MIB, RFC 3412 §5): 1.3.6.1.6.3.11.2.1.1–3.
            Stat::UnknownSecurityModels => vec![1, 3, 6, 1, 6, 3, 11, 2, 1, 1],
            Stat::InvalidMsgs => vec![1, 3, 6, 1, 6, 3, 11, 2, 1, 2],
            Stat::UnknownPduHandlers => vec![1, 3, 6, 1, 6, 3, 11, 2, 1, 3],
            // snmpUnknownContexts (SNMP-TARGET-MIB, RFC 3413 §4.1.1).
            Stat::UnknownContexts => vec![1, 3, 6, 1, 6, 3, 12, 1, 5],
        };
        o.push(0);
        o
    }

    /// The reason the datagram is counted under in the refused counter.
    fn reason(self) -> &'static str {
        match self {
            Stat::UnsupportedSecLevels => "unsupported_level",
            Stat::NotInTimeWindows => "not_in_time",
            Stat::UnknownUserNames => "unknown_user",
            Stat::UnknownEngineIds => "unknown_engine",
            Stat::WrongDigests => "wrong_digest",
            Stat::DecryptionErrors => "decryption",
            Stat::UnknownSecurityModels | Stat::InvalidMsgs => "malformed",
            Stat::UnknownPduHandlers | Stat::UnknownContexts => "unknown_context",
        }
    }
}

#[derive(Debug, Default)]
struct Stats([AtomicU32; Stat::ALL.len()]);

impl Stats {
    /// Counts one (Counter32 wraps, RFC 2578 §7.1.6) and gives the new value.
    fn bump(&self, s: Stat) -> u32 {
        self.0[s as usize]
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }
    fn get(&self, s: Stat) -> u32 {
        self.0[s as usize].load(Ordering::Relaxed)
    }
}

/// Why the USM refused a message (RFC 3414 §3.2), with what the Report is
/// sent as.
enum Refusal<'a> {
    /// Reported as noAuthNoPriv.
    Plain(Stat),
    /// Reported as authNoPriv, signed with this user's key (RFC 3414 §3.2
    /// step 7a: notInTimeWindow, so the sender can resynchronise).
    Signed(Stat, &'a User),
}

/// What a Report answers: the request's message and, when known, its PDU.
struct Request<'a> {
    msg_id: i32,
    reportable: bool,
    user_name: &'a [u8],
    /// The PDU's request-id and whether it is of the Confirmed Class
    /// (RFC 3411 §2.8), when the PDU could be read.
    pdu: Option<(i32, bool)>,
}

/// The SNMPv3 side of the agent: the local engine, its users, and the
/// counters of what was refused.
#[derive(Debug)]
pub struct State {
    engine: Engine,
    users: Vec<User>,
    trap_user: Option<usize>,
    stats: Arc<Stats>,
    /// RFC 3826 §3.1.2.1: a 64-bit integer, random at boot, one more for
    /// each message encrypted.
    salt: AtomicU64,
    /// msgIDs of the notifications sent (RFC 3412 §6.2: from a random start).
    msg_ids: AtomicI32,
}

impl State {
    /// The state for these settings; a `trap_user` that is not one of the
    /// users leaves notifications on v2c.
    pub fn new(s: usm::Settings) -> State {
        let trap_user = s
            .trap_user
            .as_deref()
            .and_then(|t| s.users.iter().position(|u| u.name == t.as_bytes()));
        let seed = crate::engine::random_u64();
        State {
            engine: s.engine,
            users: s.users,
            trap_user,
            stats: Arc::default(),
            salt: AtomicU64::new(seed),
            msg_ids: AtomicI32::new((seed >> 33) as i32),
        }
    }

    /// The local engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The user notifications are sent as, if any.
    pub fn trap_user(&self) -> Option<&User> {
        self.trap_user.map(|i| &self.users[i])
    }

    /// Adds snmpEngine (RFC 3411 §5), usmStats (RFC 3414 §5), snmpMPDStats
    /// (RFC 3412 §5) and snmpUnknownContexts (RFC 3413 §4.1.1) to `view`.
    pub(crate) fn add_objects(&self, view: &mut View) {
        let at = |i: u32| {
            let mut o = SNMP_ENGINE.to_vec();
            o.extend([i, 0]);
            o
        };
        let id = self.engine.id().to_vec();
        view.insert(
            at(1),
            Box::new(move || {
                ObjectSyntax::Simple(SimpleSyntax::String(OctetString::from(id.clone())))
            }),
        );
        let boots = self.engine.boots();
        view.insert(at(2), Box::new(move || integer(boots as i64)));
        let engine = self.engine.clone();
        view.insert(at(3), Box::new(move || integer(engine.time() as i64)));
        view.insert(at(4), Box::new(|| integer(MAX_ANSWER as i64)));
        for s in Stat::ALL {
            let stats = self.stats.clone();
            view.insert(
                s.oid(),
                Box::new(move || {
                    ObjectSyntax::ApplicationWide(ApplicationSyntax::Counter(Counter(stats.get(s))))
                }),
            );
        }
    }

    /// Wraps a notification (`data`, an SNMPv2-Trap) into an SNMPv3 authPriv
    /// message from `user`, the local engine authoritative (RFC 3414 §3.1:
    /// our engine ID, boots and time; RFC 3412 §7.1 step 9a for an
    /// Unconfirmed Class PDU), contextEngineID ours and contextName "".
    pub fn wrap(&self, user: &User, data: Pdus) -> Option<Vec<u8>> {
        let msg_id = self.msg_ids.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let scoped = ScopedPdu {
            engine_id: OctetString::from(self.engine.id().to_vec()),
            name: OctetString::from_static(b""),
            data,
        };
        // Unconfirmed Class: not reportable (RFC 3412 §6.4).
        self.seal(Some(user), Level::AuthPriv, msg_id, 0, &user.name, &scoped)
    }

    /// A message from the local engine (RFC 3414 §3.1, the authoritative
    /// side): `scoped` in clear or encrypted, then signed, as `level` says.
    fn seal(
        &self,
        user: Option<&User>,
        level: Level,
        msg_id: i32,
        extra_flags: u8,
        user_name: &[u8],
        scoped: &ScopedPdu,
    ) -> Option<Vec<u8>> {
        let boots = self.engine.boots();
        let time = self.engine.time();
        // RFC 3414 §3.1 step 4: privacy first, over the scopedPDU.
        let (data, privacy) = if level == Level::AuthPriv {
            let salt = self.salt.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            let mut octets = rasn::ber::encode(scoped).ok()?;
            user?.keys.encrypt(boots, time, &salt, &mut octets);
            (
                ScopedPduData::EncryptedPdu(OctetString::from(octets)),
                salt.to_vec(),
            )
        } else {
            (ScopedPduData::CleartextPdu(scoped.clone()), Vec::new())
        };
        let signed = level != Level::NoAuthNoPriv;
        // RFC 3414 §3.1 step 6-7: the parameters, the digest's place filled
        // with zeros until the whole message is known (RFC 7860 §4.2.1).
        let params = USMSecurityParameters {
            authoritative_engine_id: OctetString::from(self.engine.id().to_vec()),
            authoritative_engine_boots: Integer::from(boots as i64),
            authoritative_engine_time: Integer::from(time as i64),
            user_name: OctetString::from(user_name.to_vec()),
            authentication_parameters: OctetString::from(if signed {
                vec![0u8; DIGEST_LEN]
            } else {
                Vec::new()
            }),
            privacy_parameters: OctetString::from(privacy.clone()),
        };
        let data_len = rasn::ber::encode(&data).ok()?.len();
        let msg = Message {
            version: Integer::from(3),
            global_data: HeaderData {
                message_id: Integer::from(msg_id),
                max_size: Integer::from(MAX_ANSWER as i64),
                flags: OctetString::from(vec![level.flags() | extra_flags]),
                security_model: Integer::from(USM_MODEL),
            },
            security_parameters: OctetString::from(rasn::ber::encode(&params).ok()?),
            scoped_data: data,
        };
        let mut out = rasn::ber::encode(&msg).ok()?;
        if signed {
            // msgSecurityParameters ends where msgData begins, with the
            // authentication parameters (04 18 + 24 octets) and then the
            // privacy parameters (04 len + salt).
            let end = out.len().checked_sub(data_len)?;
            let at = end.checked_sub(2 + privacy.len() + DIGEST_LEN)?;
            let placeholder = out.get(at.checked_sub(2)?..at + DIGEST_LEN)?;
            if placeholder[..2] != [0x04, DIGEST_LEN as u8]
                || placeholder[2..].iter().any(|b| *b != 0)
            {
                return None;
            }
            let digest = user?.keys.sign(&out);
            out[at..at + DIGEST_LEN].copy_from_slice(&digest);
        }
        Some(out)
    }

    /// RFC 3414 §3.2 (processIncomingMsg), as the authoritative engine: the
    /// user and the decrypted scopedPDU, or why not.
    fn process_incoming<'a>(
        &'a self,
        msg: &Message,
        params: &USMSecurityParameters,
        level: Level,
        whole: &[u8],
    ) -> Result<(&'a User, ScopedPdu), Refusal<'a>> {
        // Step 3: only our own engine is authoritative here; an empty ID is
        // a discovery (RFC 3414 §4).
        if params.authoritative_engine_id.as_ref() != self.engine.id() {
            return Err(Refusal::Plain(Stat::UnknownEngineIds));
        }
        // Step 4.
        let Some(user) = self
            .users
            .iter()
            .find(|u| u.name == params.user_name.as_ref())
        else {
            return Err(Refusal::Plain(Stat::UnknownUserNames));
        };
        // Step 5: every user is authPriv, and nothing less is accepted.
        if level != Level::AuthPriv {
            return Err(Refusal::Plain(Stat::UnsupportedSecLevels));
        }
        // Step 6 (RFC 7860 §4.2.2).
        if !authentic(user, whole, &params.authentication_parameters) {
            return Err(Refusal::Plain(Stat::WrongDigests));
        }
        // Step 7a: boots latched at the top, other boots, or more than
        // 150 s away from our time.
        let boots = u32::try_from(&params.authoritative_engine_boots).ok();
        let time = u32::try_from(&params.authoritative_engine_time).ok();
        let (Some(boots), Some(time)) = (boots, time) else {
            return Err(Refusal::Signed(Stat::NotInTimeWindows, user));
        };
        if self.engine.boots() == MAX_BOOTS
            || boots != self.engine.boots()
            || (time as i64 - self.engine.time() as i64).abs() > TIME_WINDOW
        {
            return Err(Refusal::Signed(Stat::NotInTimeWindows, user));
        }
        // Step 8 (RFC 3826 §3.1.4, §3.3.2): an OCTET STRING, an 8-octet
        // salt. AES-CFB itself cannot fail: a wrong key shows as a
        // plaintext that is no scopedPDU, counted here too (a decryption
        // error is what it is).
        let ScopedPduData::EncryptedPdu(cipher) = &msg.scoped_data else {
            return Err(Refusal::Plain(Stat::DecryptionErrors));
        };
        let Ok(salt) = <[u8; SALT_LEN]>::try_from(params.privacy_parameters.as_ref()) else {
            return Err(Refusal::Plain(Stat::DecryptionErrors));
        };
        let mut plain = cipher.to_vec();
        user.keys.decrypt(boots, time, &salt, &mut plain);
        match rasn::ber::decode_with_remainder::<ScopedPdu>(&plain) {
            Ok((scoped, _)) => Ok((user, scoped)),
            Err(_) => Err(Refusal::Plain(Stat::DecryptionErrors)),
        }
    }

    /// A Report of `stat` (RFC 3412 §7.1 step 3), or nothing when the
    /// sender did not ask for one.
    fn report(
        &self,
        req: &Request,
        stat: Stat,
        level: Level,
        user: Option<&User>,
    ) -> Option<Vec<u8>> {
        let value = self.stats.bump(stat);
        metrics().refuse("snmp", stat.reason());
        // RFC 3412 §6.4 and §7.1 step 3b: never to a sender that did not
        // set reportableFlag, nor about a PDU of another class than
        // Confirmed.
        if !req.reportable || req.pdu.is_some_and(|(_, confirmed)| !confirmed) {
            return None;
        }
        let name = ObjectIdentifier::new(stat.oid())?;
        // §7.1 step 3c-d: the counter alone; contextEngineID ours,
        // contextName "".
        let scoped = ScopedPdu {
            engine_id: OctetString::from(self.engine.id().to_vec()),
            name: OctetString::from_static(b""),
            data: Pdus::Report(Report(Pdu {
                request_id: req.pdu.map_or(0, |(id, _)| id),
                error_status: 0,
                error_index: 0,
                variable_bindings: vec![VarBind {
                    name,
                    value: VarBindValue::Value(ObjectSyntax::ApplicationWide(
                        ApplicationSyntax::Counter(Counter(value)),
                    )),
                }],
            })),
        };
        self.seal(user, level, req.msg_id, 0, req.user_name, &scoped)
    }
}

impl Agent {
    /// The answer to an SNMPv3 message (RFC 3412 §7.2), a Report, or
    /// nothing; `whole` is the datagram as received, which the digest
    /// covers.
    pub(crate) fn answer_v3(&self, st: &State, msg: Message, whole: &[u8]) -> Option<Vec<u8>> {
        let m = metrics();
        let malformed = || {
            m.refuse("snmp", "malformed");
            None
        };
        // Step 2: the header's fields, in their ranges (RFC 3412 §6).
        let h = &msg.global_data;
        let msg_id = i32::try_from(&h.message_id).ok().filter(|v| *v >= 0);
        let max_size = i32::try_from(&h.max_size).ok().filter(|v| *v >= 484);
        let (Some(msg_id), Some(max_size), [flags]) = (msg_id, max_size, h.flags.as_ref()) else {
            return malformed();
        };
        // Step 4.
        if h.security_model != Integer::from(USM_MODEL) {
            st.stats.bump(Stat::UnknownSecurityModels);
            return malformed();
        }
        // Step 5: privacy without authentication is no level at all.
        let level = match flags & (AUTH_FLAG | PRIV_FLAG) {
            0 => Level::NoAuthNoPriv,
            AUTH_FLAG => Level::AuthNoPriv,
            3 => Level::AuthPriv,
            _ => {
                st.stats.bump(Stat::InvalidMsgs);
                return malformed();
            }
        };
        // RFC 3414 §3.2 step 1 (snmpInASNParseErrs).
        let Ok(params) = rasn::ber::decode::<USMSecurityParameters>(&msg.security_parameters)
        else {
            return malformed();
        };
        let mut req = Request {
            msg_id,
            reportable: flags & REPORTABLE_FLAG != 0,
            user_name: params.user_name.as_ref(),
            pdu: match &msg.scoped_data {
                ScopedPduData::CleartextPdu(s) => pdu_class(&s.data),
                ScopedPduData::EncryptedPdu(_) => None,
            },
        };
        // Step 6: the security model; a refusal may be reported.
        let (user, scoped) = match st.process_incoming(&msg, &params, level, whole) {
            Ok(x) => x,
            Err(Refusal::Plain(stat)) => {
                return st.report(&req, stat, Level::NoAuthNoPriv, None);
            }
            Err(Refusal::Signed(stat, user)) => {
                return st.report(&req, stat, Level::AuthNoPriv, Some(user));
            }
        };
        req.pdu = pdu_class(&scoped.data);
        // RFC 3412 §4.2.2.1: no application serves another contextEngineID.
        if scoped.engine_id.as_ref() != st.engine.id() {
            return st.report(&req, Stat::UnknownPduHandlers, Level::AuthPriv, Some(user));
        }
        // RFC 3413 §3.2 step 3: only the default context ("") is here.
        if !scoped.name.is_empty() {
            return st.report(&req, Stat::UnknownContexts, Level::AuthPriv, Some(user));
        }
        let ScopedPdu {
            engine_id,
            name,
            data,
        } = scoped;
        let Some(pdu) = self.dispatch(data, false, user.write) else {
            return malformed();
        };
        m.connections
            .get_or_create(&ServiceLabel { service: "snmp" })
            .inc();
        // RFC 3412 §7.1 steps 2-7: the same msgID, contextEngineID and
        // contextName; securityLevel and user as received.
        let respond = |pdu: Pdu| {
            let scoped = ScopedPdu {
                engine_id: engine_id.clone(),
                name: name.clone(),
                data: Pdus::Response(Response(pdu)),
            };
            st.seal(Some(user), level, msg_id, 0, &user.name, &scoped)
        };
        let request_id = pdu.request_id;
        let out = respond(pdu)?;
        // RFC 3416 §4.2.1 with RFC 3412 §7.1 step 8: the smaller of the two
        // engines' maximum message sizes.
        if out.len() > MAX_ANSWER.min(max_size as usize) {
            return respond(Pdu {
                request_id,
                error_status: crate::TOO_BIG,
                error_index: 0,
                variable_bindings: Vec::new(),
            });
        }
        Some(out)
    }

    /// The user notifications go out as, when `trap_user` is set.
    pub(crate) fn v3_trap_user(&self) -> Option<&User> {
        self.v3.as_ref()?.trap_user()
    }

    /// The datagram a notification is sent as: its PDU in SNMPv3 authPriv
    /// when `[snmp] trap_user` names a user, else the SNMPv2c message as it
    /// is (with the trap community).
    pub(crate) fn encode_notification(
        &self,
        message: rasn_snmp::v2c::Message<Pdus>,
    ) -> Option<Vec<u8>> {
        if let Some(st) = &self.v3
            && let Some(user) = st.trap_user()
        {
            return st.wrap(user, message.data);
        }
        rasn::ber::encode(&message).ok()
    }
}

/// RFC 7860 §4.2.2 steps 1-3: the digest in `whole` replaced by zeros, the
/// HMAC recomputed and compared. The digest's place is where its own
/// encoding (04 18 + the 24 octets) occurs, once: a message where it does
/// not, or twice, is not authentic.
fn authentic(user: &User, whole: &[u8], digest: &[u8]) -> bool {
    if digest.len() != DIGEST_LEN {
        return false;
    }
    let mut tlv = vec![0x04, DIGEST_LEN as u8];
    tlv.extend_from_slice(digest);
    let mut found = whole
        .windows(tlv.len())
        .enumerate()
        .filter(|(_, w)| *w == tlv.as_slice())
        .map(|(i, _)| i);
    let (Some(at), None) = (found.next(), found.next()) else {
        return false;
    };
    let mut zeroed = whole.to_vec();
    zeroed[at + 2..at + tlv.len()].fill(0);
    user.keys.verify(&zeroed, digest)
}

/// The request-id of a PDU and whether it is of the Confirmed Class
/// (RFC 3411 §2.8: Get, GetNext, GetBulk, Set, Inform).
fn pdu_class(p: &Pdus) -> Option<(i32, bool)> {
    Some(match p {
        Pdus::GetRequest(r) => (r.0.request_id, true),
        Pdus::GetNextRequest(r) => (r.0.request_id, true),
        Pdus::GetBulkRequest(r) => (r.0.request_id, true),
        Pdus::SetRequest(r) => (r.0.request_id, true),
        Pdus::InformRequest(r) => (r.0.request_id, true),
        Pdus::Response(r) => (r.0.request_id, false),
        Pdus::Trap(r) => (r.0.request_id, false),
        Pdus::Report(r) => (r.0.request_id, false),
    })
}

fn integer(v: i64) -> ObjectSyntax {
    ObjectSyntax::Simple(SimpleSyntax::Integer(Integer::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Settings, mib};
    use rasn_snmp::v2::GetRequest;
    use std::net::{IpAddr, Ipv4Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const SYS_NAME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];

    fn engine_id() -> Vec<u8> {
        crate::engine::default_id(*b"testtest")
    }

    fn agent() -> Arc<Agent> {
        let engine = Engine::new(engine_id(), 3);
        let users = vec![User::new("ops", "authpass1", "privpass1", engine.id())];
        Agent::new(Settings {
            community: "public".into(),
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
            system: mib::System {
                contact: "c".into(),
                name: "mx.example.org".into(),
                location: "l".into(),
            },
            trap_receivers: Vec::new(),
            trap_community: "public".into(),
            write_community: None,
            inform: false,
            queue_depth_threshold: 0,
            deferred_age_threshold: 0,
            auth_failure_storm: 20,
            auth_failure_window: std::time::Duration::from_secs(60),
            v3: Some(usm::Settings {
                engine,
                users,
                trap_user: Some("ops".into()),
            }),
        })
    }

    fn get(oid: &[u32]) -> Pdus {
        Pdus::GetRequest(GetRequest(Pdu {
            request_id: 42,
            error_status: 0,
            error_index: 0,
            variable_bindings: vec![VarBind {
                name: ObjectIdentifier::new(oid.to_vec()).unwrap(),
                value: VarBindValue::Unspecified,
            }],
        }))
    }

    /// What a manager sends to this (authoritative) engine: the same
    /// wrapping the agent uses for its own messages, made reportable.
    fn request(a: &Agent, user: &User, level: Level, data: Pdus) -> Vec<u8> {
        let st = a.v3.as_ref().unwrap();
        let scoped = ScopedPdu {
            engine_id: OctetString::from(st.engine.id().to_vec()),
            name: OctetString::from_static(b""),
            data,
        };
        st.seal(Some(user), level, 7, REPORTABLE_FLAG, &user.name, &scoped)
            .unwrap()
    }

    /// An answer opened as the manager does: its digest checked, its
    /// scopedPDU decrypted; with its flags and USM parameters.
    fn open(bytes: &[u8], keys: Option<&usm::Keys>) -> (u8, USMSecurityParameters, ScopedPdu) {
        let msg = rasn::ber::decode::<Message>(bytes).unwrap();
        assert_eq!(msg.global_data.message_id, Integer::from(7));
        let flags = msg.global_data.flags[0];
        let p = rasn::ber::decode::<USMSecurityParameters>(&msg.security_parameters).unwrap();
        if flags & AUTH_FLAG != 0 {
            let u = User {
                name: p.user_name.to_vec(),
                keys: keys.unwrap().clone(),
                write: false,
            };
            assert!(authentic(&u, bytes, &p.authentication_parameters));
        }
        let scoped = match msg.scoped_data {
            ScopedPduData::CleartextPdu(s) => s,
            ScopedPduData::EncryptedPdu(c) => {
                let mut plain = c.to_vec();
                let boots = u32::try_from(&p.authoritative_engine_boots).unwrap();
                let time = u32::try_from(&p.authoritative_engine_time).unwrap();
                let salt = <[u8; 8]>::try_from(p.privacy_parameters.as_ref()).unwrap();
                keys.unwrap().decrypt(boots, time, &salt, &mut plain);
                rasn::ber::decode::<ScopedPdu>(&plain).unwrap()
            }
        };
        (flags, p, scoped)
    }

    fn report_of(s: &ScopedPdu) -> (Vec<u32>, VarBindValue) {
        let Pdus::Report(Report(p)) = &s.data else {
            panic!("{:?}", s.data)
        };
        assert_eq!(p.variable_bindings.len(), 1);
        let vb = &p.variable_bindings[0];
        (vb.name.to_vec(), vb.value.clone())
    }

    fn counter(v: u32) -> VarBindValue {
        VarBindValue::Value(ObjectSyntax::ApplicationWide(ApplicationSyntax::Counter(
            Counter(v),
        )))
    }

    #[test]
    fn discovery_then_an_authpriv_get() {
        let a = agent();
        let st = a.v3.as_ref().unwrap();
        // RFC 3414 §4: no engine ID, no user, noAuthNoPriv, reportable.
        let probe = Message {
            version: Integer::from(3),
            global_data: HeaderData {
                message_id: Integer::from(7),
                max_size: Integer::from(65507),
                flags: OctetString::from(vec![REPORTABLE_FLAG]),
                security_model: Integer::from(USM_MODEL),
            },
            security_parameters: OctetString::from(
                rasn::ber::encode(&USMSecurityParameters {
                    authoritative_engine_id: OctetString::from_static(b""),
                    authoritative_engine_boots: Integer::from(0),
                    authoritative_engine_time: Integer::from(0),
                    user_name: OctetString::from_static(b""),
                    authentication_parameters: OctetString::from_static(b""),
                    privacy_parameters: OctetString::from_static(b""),
                })
                .unwrap(),
            ),
            scoped_data: ScopedPduData::CleartextPdu(ScopedPdu {
                engine_id: OctetString::from_static(b""),
                name: OctetString::from_static(b""),
                data: Pdus::GetRequest(GetRequest(Pdu {
                    request_id: 99,
                    error_status: 0,
                    error_index: 0,
                    variable_bindings: Vec::new(),
                })),
            }),
        };
        let answer = a
            .answer(&rasn::ber::encode(&probe).unwrap(), LOCAL)
            .unwrap();
        let (flags, p, s) = open(&answer, None);
        assert_eq!(flags, 0);
        assert_eq!(p.authoritative_engine_id.as_ref(), engine_id().as_slice());
        assert_eq!(p.authoritative_engine_boots, Integer::from(3));
        assert_eq!(s.engine_id.as_ref(), engine_id().as_slice());
        assert_eq!(report_of(&s), (Stat::UnknownEngineIds.oid(), counter(1)));
        let Pdus::Report(Report(r)) = &s.data else {
            unreachable!()
        };
        assert_eq!(r.request_id, 99);

        // The real request, authPriv.
        let user = &st.users[0];
        let answer = a
            .answer(&request(&a, user, Level::AuthPriv, get(&SYS_NAME)), LOCAL)
            .unwrap();
        let (flags, p, s) = open(&answer, Some(&user.keys));
        assert_eq!(flags, AUTH_FLAG | PRIV_FLAG);
        assert_eq!(p.user_name.as_ref(), b"ops");
        assert_eq!(p.privacy_parameters.len(), SALT_LEN);
        let Pdus::Response(Response(r)) = &s.data else {
            panic!("{:?}", s.data)
        };
        assert_eq!(r.request_id, 42);
        assert_eq!(
            r.variable_bindings[0].value,
            VarBindValue::Value(ObjectSyntax::Simple(SimpleSyntax::String(
                OctetString::from_static(b"mx.example.org")
            )))
        );
        // The engine's objects are in the tree.
        let answer = a
            .answer(
                &request(
                    &a,
                    user,
                    Level::AuthPriv,
                    get(&[1, 3, 6, 1, 6, 3, 10, 2, 1, 2, 0]),
                ),
                LOCAL,
            )
            .unwrap();
        let (_, _, s) = open(&answer, Some(&user.keys));
        let Pdus::Response(Response(r)) = &s.data else {
            panic!("{:?}", s.data)
        };
        assert_eq!(
            r.variable_bindings[0].value,
            VarBindValue::Value(integer(3))
        );
    }

    #[test]
    fn refusals_are_counted_and_reported_without_data() {
        let a = agent();
        let st = a.v3.as_ref().unwrap();
        let user = st.users[0].clone();

        let refused = |reason| {
            metrics()
                .refused
                .get_or_create(&postgate_metrics::RefusedLabel {
                    service: "snmp",
                    reason,
                })
                .get()
        };
        let wrong_before = refused("wrong_digest");
        // Wrong authentication key: wrongDigests, reported in clear.
        let forger = User::new("ops", "wrongpass", "privpass1", st.engine.id());
        let answer = a
            .answer(
                &request(&a, &forger, Level::AuthPriv, get(&SYS_NAME)),
                LOCAL,
            )
            .unwrap();
        let (flags, _, s) = open(&answer, None);
        assert_eq!(flags, 0);
        assert_eq!(report_of(&s), (Stat::WrongDigests.oid(), counter(1)));
        // Not reportable: counted, not answered.
        let mut quiet = request(&a, &forger, Level::AuthPriv, get(&SYS_NAME));
        let at = quiet
            .windows(3)
            .position(|w| w == [0x04, 0x01, AUTH_FLAG | PRIV_FLAG | REPORTABLE_FLAG])
            .unwrap();
        quiet[at + 2] = AUTH_FLAG | PRIV_FLAG;
        assert!(a.answer(&quiet, LOCAL).is_none());
        assert_eq!(st.stats.get(Stat::WrongDigests), 2);
        // Also in the process's refused counter (other tests may add).
        assert!(refused("wrong_digest") >= wrong_before + 2);

        // Right authentication, wrong privacy key: decryptionErrors.
        let half = User::new("ops", "authpass1", "wrongpriv", st.engine.id());
        let answer = a
            .answer(&request(&a, &half, Level::AuthPriv, get(&SYS_NAME)), LOCAL)
            .unwrap();
        let (_, _, s) = open(&answer, None);
        assert_eq!(report_of(&s), (Stat::DecryptionErrors.oid(), counter(1)));

        // Unknown user; a known one below authPriv.
        let stranger = User::new("eve", "authpass1", "privpass1", st.engine.id());
        let answer = a
            .answer(
                &request(&a, &stranger, Level::AuthPriv, get(&SYS_NAME)),
                LOCAL,
            )
            .unwrap();
        let (_, p, s) = open(&answer, None);
        assert_eq!(p.user_name.as_ref(), b"eve");
        assert_eq!(report_of(&s), (Stat::UnknownUserNames.oid(), counter(1)));
        let answer = a
            .answer(
                &request(&a, &user, Level::AuthNoPriv, get(&SYS_NAME)),
                LOCAL,
            )
            .unwrap();
        let (_, _, s) = open(&answer, None);
        assert_eq!(
            report_of(&s),
            (Stat::UnsupportedSecLevels.oid(), counter(1))
        );

        // Another boots value: notInTimeWindows, authNoPriv and signed, with
        // our boots and time.
        let stale = Agent::new(Settings {
            v3: Some(usm::Settings {
                engine: Engine::new(engine_id(), 2),
                users: vec![user.clone()],
                trap_user: None,
            }),
            ..a.settings.clone()
        });
        let answer = a
            .answer(
                &request(&stale, &user, Level::AuthPriv, get(&SYS_NAME)),
                LOCAL,
            )
            .unwrap();
        let (flags, p, s) = open(&answer, Some(&user.keys));
        assert_eq!(flags, AUTH_FLAG);
        assert_eq!(p.authoritative_engine_boots, Integer::from(3));
        assert_eq!(report_of(&s), (Stat::NotInTimeWindows.oid(), counter(1)));

        // A context other than the default one.
        let scoped = ScopedPdu {
            engine_id: OctetString::from(st.engine.id().to_vec()),
            name: OctetString::from_static(b"other"),
            data: get(&SYS_NAME),
        };
        let bytes = st
            .seal(
                Some(&user),
                Level::AuthPriv,
                7,
                REPORTABLE_FLAG,
                b"ops",
                &scoped,
            )
            .unwrap();
        let (flags, _, s) = open(&a.answer(&bytes, LOCAL).unwrap(), Some(&user.keys));
        assert_eq!(flags, AUTH_FLAG | PRIV_FLAG);
        assert_eq!(report_of(&s), (Stat::UnknownContexts.oid(), counter(1)));

        // Privacy without authentication is no level: dropped, counted.
        let mut invalid = request(&a, &user, Level::AuthPriv, get(&SYS_NAME));
        let at = invalid
            .windows(3)
            .position(|w| w == [0x04, 0x01, AUTH_FLAG | PRIV_FLAG | REPORTABLE_FLAG])
            .unwrap();
        invalid[at + 2] = PRIV_FLAG | REPORTABLE_FLAG;
        assert!(a.answer(&invalid, LOCAL).is_none());
        assert_eq!(st.stats.get(Stat::InvalidMsgs), 1);
        // And readable, as Counter32s in the tree.
        assert_eq!(
            a.view.get(&Stat::WrongDigests.oid()).unwrap()(),
            ObjectSyntax::ApplicationWide(ApplicationSyntax::Counter(Counter(2)))
        );
    }

    #[test]
    fn notifications_from_the_trap_user() {
        let a = agent();
        let st = a.v3.as_ref().unwrap();
        let trap = Pdus::Trap(rasn_snmp::v2::Trap(Pdu {
            request_id: 5,
            error_status: 0,
            error_index: 0,
            variable_bindings: Vec::new(),
        }));
        let v2c = |data| rasn_snmp::v2c::Message {
            version: Integer::from(1),
            community: OctetString::from_static(b"public"),
            data,
        };
        let bytes = a.encode_notification(v2c(trap.clone())).unwrap();
        let msg = rasn::ber::decode::<Message>(&bytes).unwrap();
        assert_eq!(msg.global_data.flags.as_ref(), &[AUTH_FLAG | PRIV_FLAG]);
        let p = rasn::ber::decode::<USMSecurityParameters>(&msg.security_parameters).unwrap();
        assert_eq!(p.authoritative_engine_id.as_ref(), engine_id().as_slice());
        assert!(authentic(
            &st.users[0],
            &bytes,
            &p.authentication_parameters
        ));
        // Without v3, the trap community.
        let v2 = Agent::new(Settings {
            v3: None,
            ..a.settings.clone()
        });
        let bytes = v2.encode_notification(v2c(trap)).unwrap();
        let m = rasn::ber::decode::<rasn_snmp::v2c::Message<Pdus>>(&bytes).unwrap();
        assert_eq!(m.community.as_ref(), b"public");
    }
}
