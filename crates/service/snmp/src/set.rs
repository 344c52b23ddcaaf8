//! SET (RFC 3416 §4.2.5), in two phases: every binding is checked first,
//! and only if all pass are they committed, all together ([`Control::commit`]:
//! the state file first, so a write that fails changes nothing). The
//! writable objects are POSTGATE-MIB's postgateQueueDepthThreshold,
//! postgateDeferredAgeThreshold and postgateResetStats.
//!
//! The caller says whether the request may write at all (SNMPv2c: the write
//! community; SNMPv3: the user's access), so every version shares this one
//! path; errors are SNMPv2's, and [`v1_status`] maps them for SNMPv1.
use crate::control::{Change, Control, MAX_AGE_THRESHOLD, MAX_DEPTH_THRESHOLD};
use crate::mib::{self, object};
use rasn_smi::v2::{ApplicationSyntax, ObjectSyntax, SimpleSyntax};
use rasn_snmp::v2::{VarBind, VarBindValue};

/// RFC 3416 §3 error-status values.
pub mod status {
    /// tooBig.
    pub const TOO_BIG: u32 = 1;
    /// noSuchName (SNMPv1 only).
    pub const NO_SUCH_NAME: u32 = 2;
    /// badValue (SNMPv1 only).
    pub const BAD_VALUE: u32 = 3;
    /// genErr.
    pub const GEN_ERR: u32 = 5;
    /// noAccess.
    pub const NO_ACCESS: u32 = 6;
    /// wrongType.
    pub const WRONG_TYPE: u32 = 7;
    /// wrongValue.
    pub const WRONG_VALUE: u32 = 10;
    /// noCreation.
    pub const NO_CREATION: u32 = 11;
    /// commitFailed.
    pub const COMMIT_FAILED: u32 = 14;
    /// notWritable.
    pub const NOT_WRITABLE: u32 = 17;
}

/// Why a SET was refused: an RFC 3416 error-status and the 0-based index of
/// the binding at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetError {
    /// The SNMPv2 error-status.
    pub status: u32,
    /// Which binding (0-based; the PDU's error-index is one more).
    pub index: usize,
}

/// One validated assignment.
enum Assign {
    DepthThreshold(u32),
    AgeThreshold(u32),
    Reset,
    Nothing,
}

/// Checks `bindings`, then commits them all or none.
pub(crate) fn set(
    control: &Control,
    bindings: &[VarBind],
    may_write: bool,
) -> Result<(), SetError> {
    let writable = [
        object::DEPTH_THRESHOLD,
        object::AGE_THRESHOLD,
        object::RESET_STATS,
    ];
    let mut change = Change::default();
    // Phase one: every binding (RFC 3416 §4.2.5 steps 1 to 11).
    let mut plan = Vec::with_capacity(bindings.len());
    for (index, vb) in bindings.iter().enumerate() {
        let fail = |status| SetError { status, index };
        let name: &[u32] = vb.name.as_ref();
        let target = writable
            .iter()
            .copied()
            .find(|&n| name.starts_with(&mib::object_oid(&[n])));
        let Some(n) = target else {
            // Step 2: nothing writable shares the name's prefix (an object
            // read-only, or none at all): notWritable.
            return Err(fail(status::NOT_WRITABLE));
        };
        if !may_write {
            // Step 1: not in the requester's write view. With the read
            // community a writable object is noAccess.
            return Err(fail(status::NO_ACCESS));
        }
        let value = match &vb.value {
            VarBindValue::Value(v) => v,
            // Step 3: NULL and the exceptions are no value of any type.
            _ => return Err(fail(status::WRONG_TYPE)),
        };
        // Step 6: a scalar has one instance, .0; any other could never be
        // created (checked after the type, step 3, before the value, step 9).
        let instance_ok = name.len() == mib::object_oid(&[n]).len() + 1 && name.last() == Some(&0);
        let assign = match n {
            object::DEPTH_THRESHOLD | object::AGE_THRESHOLD => {
                // Unsigned32 ([APPLICATION 2]); an INTEGER is wrongType (step 3).
                let ObjectSyntax::ApplicationWide(ApplicationSyntax::Unsigned(g)) = value else {
                    return Err(fail(status::WRONG_TYPE));
                };
                if !instance_ok {
                    return Err(fail(status::NO_CREATION));
                }
                let max = if n == object::DEPTH_THRESHOLD {
                    MAX_DEPTH_THRESHOLD
                } else {
                    MAX_AGE_THRESHOLD
                };
                if g.0 > max {
                    // Step 9: outside the object's range.
                    return Err(fail(status::WRONG_VALUE));
                }
                if n == object::DEPTH_THRESHOLD {
                    Assign::DepthThreshold(g.0)
                } else {
                    Assign::AgeThreshold(g.0)
                }
            }
            _ => {
                let ObjectSyntax::Simple(SimpleSyntax::Integer(i)) = value else {
                    return Err(fail(status::WRONG_TYPE));
                };
                if !instance_ok {
                    return Err(fail(status::NO_CREATION));
                }
                match i64::try_from(i) {
                    Ok(mib::RESET) => Assign::Reset,
                    Ok(mib::NO_OP) => Assign::Nothing,
                    _ => return Err(fail(status::WRONG_VALUE)),
                }
            }
        };
        plan.push(assign);
    }
    // Phase two: all of them, or (commitFailed) none.
    for a in plan {
        match a {
            Assign::DepthThreshold(v) => change.depth_threshold = Some(v),
            Assign::AgeThreshold(v) => change.age_threshold = Some(v),
            Assign::Reset => change.reset = true,
            Assign::Nothing => {}
        }
    }
    if change == Change::default() {
        return Ok(());
    }
    control.commit(change).map_err(|e| {
        tracing::error!(error = %e, "snmp: SET not committed: the state file cannot be written");
        SetError {
            status: status::COMMIT_FAILED,
            index: 0,
        }
    })
}

/// An SNMPv2 error-status as SNMPv1 says it (RFC 3584 §4.4, which was
/// RFC 2576 §4.4).
pub fn v1_status(v2: u32) -> u32 {
    match v2 {
        0..=5 => v2,
        // wrongType, wrongLength, wrongEncoding, wrongValue,
        // inconsistentValue.
        7 | 8 | 9 | 10 | 12 => status::BAD_VALUE,
        // noAccess, noCreation, authorizationError, notWritable,
        // inconsistentName.
        6 | 11 | 16 | 17 | 18 => status::NO_SUCH_NAME,
        // resourceUnavailable, commitFailed, undoFailed, and anything else.
        _ => status::GEN_ERR,
    }
}
