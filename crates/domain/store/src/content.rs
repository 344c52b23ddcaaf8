//! What every backend stores of a message, made ready before the write:
//! its hash (blobs are stored once, by SHA-256), its content serialized, its
//! decoded bodies compressed. Nothing here knows a database.
use crate::CalendarEntry;
use crate::{Result, StoreError};
use postgate_types::{CalendarObject, FolderId, ItemBody, ItemContent, ItemKind, UserId};

pub(crate) fn compress(text: &str) -> Vec<u8> {
    lz4_flex::compress_prepend_size(text.as_bytes())
}

pub(crate) fn decompress(data: &[u8]) -> Result<String> {
    let bytes = lz4_flex::decompress_size_prepended(data)
        .map_err(|e| StoreError::Backend(format!("stored body: {e}")))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Backend(format!("stored body: {e}")))
}

/// Folder paths: "/"-separated, no empty segment, no control characters.
pub(crate) fn valid_path(path: &str) -> Result<&str> {
    let path = path.trim();
    if path.is_empty()
        || path.split('/').any(|s| s.trim().is_empty())
        || path.chars().any(char::is_control)
        || path.len() > 1024
    {
        return Err(StoreError::Invalid(format!("not a folder name: {path:?}")));
    }
    Ok(path)
}

/// SHA-256 of a message: its address in the store.
pub(crate) fn digest(raw: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, raw).as_ref());
    out
}

/// Messages larger than this are hashed on a blocking thread, not an async one.
pub(crate) const HASH_INLINE_MAX: usize = 256 * 1024;

/// A message made ready for the store's writer: hashed, its content
/// serialized and its bodies compressed, so that the single writer thread,
/// which every delivery waits for, only inserts rows.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) hash: [u8; 32],
    pub(crate) kind: &'static str,
    pub(crate) from_name: Option<String>,
    pub(crate) from_addr: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) sent_date: Option<i64>,
    pub(crate) content: String,
    pub(crate) text: Option<Vec<u8>>,
    pub(crate) html: Option<Vec<u8>>,
}

/// How a sealed message is keyed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    /// By its bytes (mail: its content follows from them); the hash given.
    Bytes([u8; 32]),
    /// By its bytes and its content (a calendar object's MIME form does not
    /// show all of the object: a pending COUNTER, say).
    BytesAndContent,
}

/// Seals a message: the decoded bodies go in columns of their own,
/// compressed, not through JSON escaping.
pub(crate) fn seal(raw: &[u8], mut content: ItemContent, key: Key) -> Result<Sealed> {
    let text = content.text.take().map(|t| compress(&t));
    let html = content.html.take().map(|h| compress(&h));
    let json = serde_json::to_string(&content).map_err(|e| StoreError::Backend(e.to_string()))?;
    let hash = match key {
        Key::Bytes(h) => h,
        Key::BytesAndContent => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(raw);
            ctx.update(b"\0");
            ctx.update(json.as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(ctx.finish().as_ref());
            out
        }
    };
    let from = content.from.take().unwrap_or_default();
    Ok(Sealed {
        hash,
        kind: content.kind().as_str(),
        from_name: from.name,
        from_addr: from.address,
        subject: content.subject,
        sent_date: content.date,
        content: json,
        text,
        html,
    })
}

/// Seals a delivery's message and serializes its envelope, on a blocking
/// thread when the message is large (hashing a big message would hold up an
/// async thread).
pub(crate) async fn seal_delivery(
    mut d: crate::NewDelivery,
) -> Result<(crate::NewDelivery, Sealed, Option<String>)> {
    let prepare = |d: &mut crate::NewDelivery| -> Result<(Sealed, Option<String>)> {
        let content = std::mem::take(&mut d.content);
        let sealed = seal(&d.raw, content, Key::Bytes(digest(&d.raw)))?;
        let envelope = d
            .envelope
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok((sealed, envelope))
    };
    if d.raw.len() > HASH_INLINE_MAX {
        tokio::task::spawn_blocking(move || prepare(&mut d).map(|(s, e)| (d, s, e)))
            .await
            .map_err(|e| StoreError::Backend(format!("hash task: {e}")))?
    } else {
        let (s, e) = prepare(&mut d)?;
        Ok((d, s, e))
    }
}

/// Seals an appended message, on a blocking thread when it is large.
pub(crate) async fn seal_message(mut m: crate::NewMessage) -> Result<(crate::NewMessage, Sealed)> {
    let prepare = |m: &mut crate::NewMessage| {
        let content = std::mem::take(&mut m.content);
        seal(&m.raw, content, Key::Bytes(digest(&m.raw)))
    };
    if m.raw.len() > HASH_INLINE_MAX {
        tokio::task::spawn_blocking(move || prepare(&mut m).map(|s| (m, s)))
            .await
            .map_err(|e| StoreError::Backend(format!("hash task: {e}")))?
    } else {
        let s = prepare(&mut m)?;
        Ok((m, s))
    }
}

/// Seals the messages of a batch, on one blocking thread (hashing and
/// compressing many messages would hold up an async thread).
pub(crate) async fn seal_messages(
    messages: Vec<crate::NewMessage>,
) -> Result<Vec<(crate::NewMessage, Sealed)>> {
    tokio::task::spawn_blocking(move || {
        messages
            .into_iter()
            .map(|mut m| {
                let content = std::mem::take(&mut m.content);
                let sealed = seal(&m.raw, content, Key::Bytes(digest(&m.raw)))?;
                Ok((m, sealed))
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Backend(format!("hash task: {e}")))?
}

/// Decodes a stored content row: the JSON fields and the compressed bodies.
pub(crate) fn unseal(
    json: &str,
    text: Option<Vec<u8>>,
    html: Option<Vec<u8>>,
) -> Result<ItemContent> {
    let mut c: ItemContent = serde_json::from_str(json)
        .map_err(|e| StoreError::Backend(format!("item content: {e}")))?;
    c.text = text.map(|t| decompress(&t)).transpose()?;
    c.html = html.map(|h| decompress(&h)).transpose()?;
    Ok(c)
}

/// A calendar object row as both backends read it: id, user, kind,
/// folder, item UID, span, and the content (or listing) JSON.
pub(crate) type CalendarRow = (
    i64,
    UserId,
    String,
    FolderId,
    i64,
    Option<i64>,
    Option<i64>,
    String,
);

/// An entry from a row whose JSON is the item's whole content.
pub(crate) fn calendar_entry(r: CalendarRow) -> Result<CalendarEntry> {
    decode_calendar_row(r, |id, content| {
        let content: ItemContent = serde_json::from_str(content)
            .map_err(|e| StoreError::Backend(format!("calendar object {id}: {e}")))?;
        match content.body {
            ItemBody::Appointment(o) | ItemBody::Task(o) => Ok(*o),
            ItemBody::Mail => Err(StoreError::Backend(format!(
                "calendar object {id} holds mail"
            ))),
        }
    })
}

/// An entry from a range query's row, its object read from `listing`.
pub(crate) fn calendar_listed(r: CalendarRow) -> Result<CalendarEntry> {
    decode_calendar_row(r, |id, listing| {
        serde_json::from_str(listing)
            .map_err(|e| StoreError::Backend(format!("calendar object {id}: {e}")))
    })
}

/// A row's columns, its JSON read into the object by `object`.
fn decode_calendar_row(
    r: CalendarRow,
    object: impl FnOnce(i64, &str) -> Result<CalendarObject>,
) -> Result<CalendarEntry> {
    let (id, user, kind, folder, item_uid, lo, hi, json) = r;
    let kind = ItemKind::parse(&kind)
        .ok_or_else(|| StoreError::Backend(format!("calendar object {id}: kind {kind:?}")))?;
    Ok(CalendarEntry {
        id,
        user,
        kind,
        folder,
        item_uid: item_uid as u32,
        object: object(id, &json)?,
        span: lo.zip(hi),
    })
}
