//! THREAD (RFC 5256 §4): the ORDEREDSUBJECT and REFERENCES algorithms, and
//! the thread-list syntax of the `* THREAD` response.
//!
//! The caller describes each message with a [`ThreadItem`] (its ids from the
//! Message-ID, References and In-Reply-To headers through [`parse_msg_ids`],
//! its sent date, and its base subject from
//! [`crate::sort::base_subject_and_reply`]), in sequence order, then calls
//! [`ordered_subject`] or [`references`] (or [`thread`]) and writes the
//! result with [`write()`].
//!
//! Nothing here recurses on the input: a chain of a hundred thousand replies
//! is built, written and dropped with loops and explicit stacks, so a
//! mailbox built to be deep cannot overflow the stack. Duplicate
//! Message-IDs, missing ids, messages that reference themselves and
//! References that form loops are all handled as RFC 5256 says, without
//! panicking.

use std::collections::HashMap;
use std::fmt;

/// What the THREAD algorithms need to know about one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadItem {
    /// The number the response carries: the sequence number, or the UID for
    /// UID THREAD. Both rise together, so either breaks ties between equal
    /// dates as RFC 5256 asks (by sequence number).
    pub id: u32,
    /// The sent date (Date header, normalized to UTC), or the internal date
    /// when the Date header is missing or does not parse (RFC 5256 §2.2),
    /// seconds since the epoch.
    pub sent_date: i64,
    /// The Message-ID, or `None` when there is no valid one. Ids are compared
    /// exactly, case included (RFC 5256 §4), so every id must come through
    /// the same normalization: [`parse_msg_ids`] does it.
    pub message_id: Option<String>,
    /// The valid message ids of the References header, in order
    /// ([`parse_msg_ids`]).
    pub references: Vec<String>,
    /// The first valid message id of In-Reply-To. Used only when
    /// `references` is empty (RFC 5256 §4, REFERENCES step 1).
    pub in_reply_to: Option<String>,
    /// The base subject, as [`crate::sort::base_subject`] returns it
    /// (case-mapped, so equal subjects are equal strings).
    pub base_subject: String,
    /// Whether the subject marks a reply or forward, as
    /// [`crate::sort::is_reply_or_forward`] returns it.
    pub is_reply: bool,
}

/// The message ids of a Message-ID, References or In-Reply-To header value,
/// in order, normalized so that equal ids are equal strings: RFC 5256 §4
/// says implementations "MUST normalize any msg-id in order to avoid false
/// non-matches due to differences in quoting", so `<"01KF8JCEOCBS0045PS"@x>`
/// and `<01KF8JCEOCBS0045PS@x>` both give `01KF8JCEOCBS0045PS@x`.
///
/// An id is returned without its angle brackets, with quoted strings
/// unquoted, comments and white space dropped, and case kept. Quoted strings
/// and comments outside ids are skipped (In-Reply-To may hold a phrase such
/// as `"your message <of Monday>"`). What lacks an `@` with text on both
/// sides, or a closing `>`, is not a msg-id (RFC 5322 §3.6.4) and is left
/// out.
///
/// ```
/// use postgate_imap_proto::thread::parse_msg_ids;
/// assert_eq!(parse_msg_ids("<a@x> (old) <\"b\"@x>"), ["a@x", "b@x"]);
/// assert_eq!(parse_msg_ids("\"re <y@z>\" <c@x> <bogus>"), ["c@x"]);
/// ```
pub fn parse_msg_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => skip_quoted(&mut chars),
            '(' => skip_comment(&mut chars),
            '<' => ids.extend(read_msg_id(&mut chars)),
            _ => {}
        }
    }
    ids
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Reads the rest of a msg-id after its `<`. Stops before an unquoted `<`,
/// so that `<<a@b>` still finds `a@b`.
fn read_msg_id(chars: &mut Chars<'_>) -> Option<String> {
    let mut id = String::new();
    loop {
        if chars.peek() == Some(&'<') {
            return None;
        }
        match chars.next()? {
            '>' => break,
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => id.push(chars.next()?),
                    c => id.push(c),
                }
            },
            '(' => skip_comment(chars),
            c if c.is_whitespace() => {}
            c => id.push(c),
        }
    }
    let at = id.find('@')?;
    (at > 0 && at + 1 < id.len()).then_some(id)
}

/// Skips a quoted string whose opening quote was read.
fn skip_quoted(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '"' => return,
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
}

/// Skips a comment, nested ones included, whose `(` was read.
fn skip_comment(chars: &mut Chars<'_>) {
    let mut depth = 1usize;
    while let Some(c) = chars.next() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
}

/// A threading algorithm of RFC 5256 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ORDEREDSUBJECT, "poor man's threading".
    OrderedSubject,
    /// REFERENCES, after Jamie Zawinski's algorithm.
    References,
}

impl Algorithm {
    /// The algorithm a THREAD command names, compared case-insensitively as
    /// IMAP atoms are.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("ORDEREDSUBJECT") {
            Some(Self::OrderedSubject)
        } else if name.eq_ignore_ascii_case("REFERENCES") {
            Some(Self::References)
        } else {
            None
        }
    }

    /// The name to advertise in `THREAD=<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OrderedSubject => "ORDEREDSUBJECT",
            Self::References => "REFERENCES",
        }
    }
}

/// Threads `items` with `algorithm`.
pub fn thread(items: &[ThreadItem], algorithm: Algorithm) -> Vec<Thread> {
    match algorithm {
        Algorithm::OrderedSubject => ordered_subject(items),
        Algorithm::References => references(items),
    }
}

/// One node of a thread tree: a message, or a dummy standing for a common
/// parent that is not in the result (RFC 5256 §4). The algorithms only put
/// dummies at the top, each with two children or more, as the response
/// syntax needs; the fields are private so no other tree can be built.
pub struct Thread {
    id: Option<u32>,
    children: Vec<Thread>,
}

impl Thread {
    /// The message's [`ThreadItem::id`], or `None` for a dummy.
    pub fn id(&self) -> Option<u32> {
        self.id
    }

    /// The replies, oldest first.
    pub fn children(&self) -> &[Thread] {
        &self.children
    }
}

impl Drop for Thread {
    /// Drops the subtree with a loop: the derived drop would recurse once per
    /// level, and a thread can be as deep as the mailbox is large.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.children);
        while let Some(mut node) = stack.pop() {
            stack.append(&mut node.children);
        }
    }
}

impl fmt::Debug for Thread {
    /// The response syntax, e.g. `Thread(3 6 (4 23)(44 7 96))`: readable,
    /// and written without recursion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        write(&mut out, std::slice::from_ref(self));
        write!(f, "Thread{}", String::from_utf8_lossy(&out))
    }
}

/// Writes `threads` in the syntax of RFC 5256 §4, without the leading
/// `THREAD` and space: `(2)(3 6 (4 23)(44 7 96))`, a dummy parent as
/// `((3)(5))`. Writes nothing for no threads.
///
/// ```text
/// thread-list    = "(" (thread-members / thread-nested) ")"
/// thread-members = nz-number *(SP nz-number) [SP thread-nested]
/// thread-nested  = 2*thread-list
/// ```
pub fn write(out: &mut Vec<u8>, threads: &[Thread]) {
    enum Task<'a> {
        List(&'a Thread),
        Close,
    }
    let mut stack: Vec<Task<'_>> = threads.iter().rev().map(Task::List).collect();
    while let Some(task) = stack.pop() {
        let mut node = match task {
            Task::Close => {
                out.push(b')');
                continue;
            }
            Task::List(node) => node,
        };
        // A dummy with one child stands for that child, one with none for
        // nothing (RFC 5256 §4 step 3); the algorithms leave neither.
        while node.id.is_none() && node.children.len() == 1 {
            node = &node.children[0];
        }
        let Some(id) = node.id else {
            if !node.children.is_empty() {
                // RFC 5256 §4: a dummy parent is a thread-nested of its
                // children.
                out.push(b'(');
                stack.push(Task::Close);
                stack.extend(node.children.iter().rev().map(Task::List));
            }
            continue;
        };
        out.push(b'(');
        stack.push(Task::Close);
        push_id(out, id);
        // RFC 5256 §4: a single child follows its parent after a space; two
        // or more follow as a thread-nested, one thread-list each.
        loop {
            match node.children.as_slice() {
                [] => break,
                [only] if only.id.is_some() => {
                    out.push(b' ');
                    push_id(out, only.id.unwrap_or_default());
                    node = only;
                }
                children => {
                    out.push(b' ');
                    stack.extend(children.iter().rev().map(Task::List));
                    break;
                }
            }
        }
    }
}

fn push_id(out: &mut Vec<u8>, id: u32) {
    out.extend_from_slice(id.to_string().as_bytes());
}

/// The sort key of RFC 5256 §4 for siblings: sent date, then id (standing
/// for the sequence number).
fn date_key(item: &ThreadItem) -> (i64, u32) {
    (item.sent_date, item.id)
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 §4): messages with the same base subject
/// form a thread; the oldest is the root, the others its children in date
/// order; threads are ordered by the date of their root. Messages with an
/// empty base subject form one thread too, as with Dovecot.
pub fn ordered_subject(items: &[ThreadItem]) -> Vec<Thread> {
    // "sorted by base subject and then by the sent date"
    let mut order: Vec<&ThreadItem> = items.iter().collect();
    order.sort_by(|a, b| {
        a.base_subject
            .cmp(&b.base_subject)
            .then(date_key(a).cmp(&date_key(b)))
    });
    // "split into separate threads, with each thread containing messages
    // with the same base subject text"
    let mut threads: Vec<(&ThreadItem, Thread)> = Vec::new();
    for group in order.chunk_by(|a, b| a.base_subject == b.base_subject) {
        let Some((first, rest)) = group.split_first() else {
            continue;
        };
        // RFC 5256 §4: the first message is the root, every later one its
        // child; there are no grandchildren.
        let children = rest
            .iter()
            .map(|m| Thread {
                id: Some(m.id),
                children: Vec::new(),
            })
            .collect();
        threads.push((
            first,
            Thread {
                id: Some(first.id),
                children,
            },
        ));
    }
    // "the threads are sorted by the sent date of the first message in the
    // thread"
    threads.sort_by_key(|(first, _)| date_key(first));
    threads.into_iter().map(|(_, t)| t).collect()
}

/// A node of the id table of REFERENCES step 1: a message, or a dummy for an
/// id that was referenced but is not among the messages.
struct Link {
    /// Index into the items, `None` for a dummy.
    item: Option<usize>,
    parent: Option<usize>,
    /// How many nodes have this one as parent; a node with none cannot be an
    /// ancestor, which spares most loop checks their walk.
    children: u32,
}

/// The id table and parent links of REFERENCES step 1.
struct Links<'a> {
    nodes: Vec<Link>,
    by_id: HashMap<&'a str, usize>,
}

impl<'a> Links<'a> {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Link {
            item,
            parent: None,
            children: 0,
        });
        self.nodes.len() - 1
    }

    /// The node for a referenced id: a new dummy the first time an id that no
    /// message has is referenced, the same dummy every later time (RFC 5256
    /// §4 step 1(A)).
    fn node_for(&mut self, id: &'a str) -> usize {
        if let Some(&n) = self.by_id.get(id) {
            return n;
        }
        let n = self.add(None);
        self.by_id.insert(id, n);
        n
    }

    /// Whether `ancestor` is `node` or above it. The walk is bounded by the
    /// number of nodes, so it ends even if a loop had slipped in.
    fn has_ancestor(&self, mut node: usize, ancestor: usize) -> bool {
        for _ in 0..=self.nodes.len() {
            if node == ancestor {
                return true;
            }
            match self.nodes.get(node).and_then(|n| n.parent) {
                Some(p) => node = p,
                None => return false,
            }
        }
        true
    }

    /// Makes `parent` the parent of `child` unless the child has a parent
    /// already (step 1(A) keeps existing links) or the link would make a loop
    /// (RFC 5256 §4 step 1(A): "Do not create a parent/child link if creating
    /// that link would introduce a loop").
    fn link(&mut self, parent: usize, child: usize) {
        if parent == child || self.nodes[child].parent.is_some() {
            return;
        }
        if self.nodes[child].children > 0 && self.has_ancestor(parent, child) {
            return;
        }
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children += 1;
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children = self.nodes[p].children.saturating_sub(1);
        }
    }
}

/// A node of the thread tree while steps 2–6 reshape it.
struct Node {
    /// Index into the items, `None` for a dummy.
    item: Option<usize>,
    kids: Vec<usize>,
}

/// The thread tree of REFERENCES steps 2–6, as an arena.
struct Tree<'a> {
    items: &'a [ThreadItem],
    nodes: Vec<Node>,
}

impl<'a> Tree<'a> {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Node {
            item,
            kids: Vec::new(),
        });
        self.nodes.len() - 1
    }

    fn item(&self, n: usize) -> Option<&'a ThreadItem> {
        self.nodes[n].item.and_then(|i| self.items.get(i))
    }

    fn is_dummy(&self, n: usize) -> bool {
        self.nodes[n].item.is_none()
    }

    /// The message a node is represented by: itself, or for a dummy its
    /// first child (RFC 5256 §4 step 4: "In the case of a dummy message, sort
    /// its children by sent date and then use the first child for the
    /// top-level sort").
    fn representative(&self, mut n: usize) -> Option<&'a ThreadItem> {
        for _ in 0..=self.nodes.len() {
            if let Some(item) = self.item(n) {
                return Some(item);
            }
            n = *self.nodes[n].kids.first()?;
        }
        None
    }

    fn key(&self, n: usize) -> (i64, u32) {
        self.representative(n)
            .map_or((i64::MAX, u32::MAX), date_key)
    }

    fn sort(&self, list: &mut [usize]) {
        list.sort_by_cached_key(|&n| self.key(n));
    }

    /// Makes `n` a child of the dummy `parent`, or its children if it is a
    /// dummy itself, so that dummies never nest.
    fn adopt(&mut self, parent: usize, n: usize) {
        if self.is_dummy(n) {
            let kids = std::mem::take(&mut self.nodes[n].kids);
            self.nodes[parent].kids.extend(kids);
        } else {
            self.nodes[parent].kids.push(n);
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 §4): threads by the References and
/// In-Reply-To headers, then joins threads whose first messages share a base
/// subject. `items` must be in sequence order: where headers conflict, the
/// earlier message wins, as the algorithm is defined by processing order.
pub fn references(items: &[ThreadItem]) -> Vec<Thread> {
    let mut links = Links {
        nodes: Vec::with_capacity(items.len()),
        by_id: HashMap::new(),
    };
    let mut own = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // RFC 5256 §4 (1): a message without a valid Message-ID gets a
        // unique one; of messages sharing one, only the first (lowest
        // sequence number) keeps it and the others get unique ones.
        let me = match item.message_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => match links.by_id.get(id) {
                Some(&n) if links.nodes[n].item.is_none() => {
                    links.nodes[n].item = Some(i);
                    n
                }
                Some(_) => links.add(Some(i)),
                None => {
                    let n = links.add(Some(i));
                    links.by_id.insert(id, n);
                    n
                }
            },
            None => links.add(Some(i)),
        };
        own.push(me);

        // RFC 5256 §4 (1): the references are those of References or, when
        // it has no valid id, the first valid id of In-Reply-To.
        let refs: Vec<&str> = if item.references.iter().any(|r| !r.is_empty()) {
            item.references
                .iter()
                .map(String::as_str)
                .filter(|r| !r.is_empty())
                .collect()
        } else {
            item.in_reply_to
                .as_deref()
                .filter(|r| !r.is_empty())
                .into_iter()
                .collect()
        };

        // RFC 5256 §4 (1)(A): link each reference to the next as parent and
        // child.
        let mut last = None;
        for r in refs {
            let n = links.node_for(r);
            if let Some(p) = last {
                links.link(p, n);
            }
            last = Some(n);
        }

        // RFC 5256 §4 (1)(B): the last reference becomes the message's
        // parent. "If the current message already has a parent, it is
        // probably the result of a truncated References header line, so
        // break the current parent/child link before creating the new
        // correct one", and with no references the message has no parent.
        if links.nodes[me].parent != last {
            links.unlink(me);
        }
        if let Some(p) = last {
            links.link(p, me);
        }
    }

    // Children lists, to walk the links downwards.
    let mut link_kids: Vec<Vec<usize>> = vec![Vec::new(); links.nodes.len()];
    let mut link_roots = Vec::new();
    for (n, link) in links.nodes.iter().enumerate() {
        match link.parent {
            Some(p) => link_kids[p].push(n),
            None => link_roots.push(n),
        }
    }

    // RFC 5256 §4 (2): the messages without parents are the roots. (3):
    // prune dummies. Each message hangs from its nearest ancestor that is a
    // message, or, having none, from the dummy at the top of its thread; a
    // top dummy with one child gives way to it, one with none disappears.
    let mut tree = Tree {
        items,
        nodes: Vec::with_capacity(items.len()),
    };
    let mut roots: Vec<usize> = Vec::new();
    let mut placed = vec![false; items.len()];
    let mut queue: Vec<(usize, usize)> = Vec::new();
    for &r in &link_roots {
        let t = tree.add(links.nodes[r].item);
        if let Some(i) = links.nodes[r].item {
            placed[i] = true;
        }
        roots.push(t);
        queue.extend(link_kids[r].iter().map(|&k| (k, t)));
        while let Some((n, attach)) = queue.pop() {
            let attach = match links.nodes[n].item {
                Some(i) => {
                    placed[i] = true;
                    let t = tree.add(Some(i));
                    tree.nodes[attach].kids.push(t);
                    t
                }
                None => attach,
            };
            queue.extend(link_kids[n].iter().map(|&k| (k, attach)));
        }
    }
    // Every message is under some root since links never form loops; should
    // one not be, it still gets a thread of its own rather than vanish.
    for i in (0..items.len()).filter(|&i| !placed[i]) {
        roots.push(tree.add(Some(i)));
    }
    let mut pruned = Vec::with_capacity(roots.len());
    for r in roots {
        if !tree.is_dummy(r) {
            pruned.push(r);
            continue;
        }
        match tree.nodes[r].kids.as_slice() {
            [] => {}
            // "Do not promote the children if doing so would make them
            // children of the root, unless there is only one child."
            &[only] => pruned.push(only),
            _ => pruned.push(r),
        }
    }
    let mut roots = pruned;

    // RFC 5256 §4 (4): sort the roots by sent date, a dummy by its first
    // child after sorting its children.
    for &r in &roots {
        if tree.is_dummy(r) {
            let mut kids = std::mem::take(&mut tree.nodes[r].kids);
            tree.sort(&mut kids);
            tree.nodes[r].kids = kids;
        }
    }
    tree.sort(&mut roots);

    // RFC 5256 §4 (5)(A)(B): the subject table, one root per base subject.
    // (5)(B)(i): the thread subject is the base subject of the message, or
    // of its first child for a dummy.
    let subjects: Vec<&str> = roots
        .iter()
        .map(|&r| {
            tree.representative(r)
                .map_or("", |m| m.base_subject.as_str())
        })
        .collect();
    let reply = |tree: &Tree<'_>, n: usize| tree.item(n).is_some_and(|m| m.is_reply);
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (&r, &subject) in roots.iter().zip(&subjects) {
        // (ii) "If the thread subject is empty, skip this message."
        if subject.is_empty() {
            continue;
        }
        match table.get(subject) {
            // (iv) "If there is no message in the subject table with the
            // thread subject, add the current message"
            None => {
                table.insert(subject, r);
            }
            // "Otherwise, if the message in the subject table is not a
            // dummy, AND either of the following criteria are true: The
            // current message is a dummy, OR The message in the subject table
            // is a reply or forward and the current message is not. then
            // replace the message in the subject table with the current
            // message."
            Some(&t) => {
                if !tree.is_dummy(t) && (tree.is_dummy(r) || (reply(&tree, t) && !reply(&tree, r)))
                {
                    table.insert(subject, r);
                }
            }
        }
    }

    // RFC 5256 §4 (5)(C): merge threads with the same thread subject.
    let mut merged = vec![false; tree.nodes.len()];
    let mut new_roots = Vec::new();
    for (&r, &subject) in roots.iter().zip(&subjects) {
        // (ii) skip an empty subject; skip a root merged already.
        if subject.is_empty() || merged.get(r).copied().unwrap_or(false) {
            continue;
        }
        // (iii) (iv) "If the message in the subject table is the current
        // message, skip this message."
        let Some(&t) = table.get(subject) else {
            continue;
        };
        if t == r {
            continue;
        }
        // (v) "merge the current message with the one in the subject table"
        match (tree.is_dummy(t), tree.is_dummy(r)) {
            // "If both messages are dummies, append the current message's
            // children to the children of the message in the subject table
            // (the children of both messages become siblings), and then
            // delete the current message."
            // "If the message in the subject table is a dummy and the
            // current message is not, make the current message a child of
            // the message in the subject table (a sibling of its children)."
            (true, _) => tree.adopt(t, r),
            // "If the current message is a reply or forward and the message
            // in the subject table is not, make the current message a child
            // of the message in the subject table (a sibling of its
            // children)."
            (false, false) if reply(&tree, r) && !reply(&tree, t) => tree.nodes[t].kids.push(r),
            // "Otherwise, create a new dummy message and make both the
            // current message and the message in the subject table children
            // of the dummy. Then replace the message in the subject table
            // with the dummy message."
            _ => {
                let d = tree.add(None);
                merged.push(false);
                tree.adopt(d, t);
                tree.adopt(d, r);
                merged[t] = true;
                table.insert(subject, d);
                new_roots.push(d);
            }
        }
        merged[r] = true;
    }
    roots.retain(|&r| !merged.get(r).copied().unwrap_or(false));
    roots.extend(
        new_roots
            .into_iter()
            .filter(|&d| !merged.get(d).copied().unwrap_or(false)),
    );

    // RFC 5256 §4 (6): sort every set of siblings by sent date; children
    // first, so that a dummy at the top is sorted by its first child.
    for n in 0..tree.nodes.len() {
        if tree.nodes[n].kids.len() > 1 {
            let mut kids = std::mem::take(&mut tree.nodes[n].kids);
            tree.sort(&mut kids);
            tree.nodes[n].kids = kids;
        }
    }
    tree.sort(&mut roots);

    build(&mut tree, &roots)
}

/// Turns the arena into [`Thread`] trees, children before parents, without
/// recursion.
fn build(tree: &mut Tree<'_>, roots: &[usize]) -> Vec<Thread> {
    let mut built: Vec<Option<Thread>> = (0..tree.nodes.len()).map(|_| None).collect();
    let mut seen = vec![false; tree.nodes.len()];
    let mut out = Vec::with_capacity(roots.len());
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for &r in roots {
        stack.push((r, false));
        while let Some((n, kids_done)) = stack.pop() {
            if kids_done {
                let kids = std::mem::take(&mut tree.nodes[n].kids);
                let children = kids.iter().filter_map(|&k| built[k].take()).collect();
                let id = tree.item(n).map(|m| m.id);
                built[n] = Some(Thread { id, children });
            } else if !std::mem::replace(&mut seen[n], true) {
                stack.push((n, true));
                stack.extend(tree.nodes[n].kids.iter().map(|&k| (k, false)));
            }
        }
        if let Some(t) = built[r].take() {
            // A dummy left with fewer than two children (none can be, by the
            // steps above) would break the response syntax: splice it.
            match (t.id, t.children.len()) {
                (None, 0) => {}
                (None, 1) => {
                    let mut t = t;
                    out.extend(t.children.pop());
                }
                _ => out.push(t),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::base_subject_and_reply;

    /// A message for the tests: id, sent date, Message-ID, References and
    /// subject; In-Reply-To set with [`irt`].
    fn msg(
        id: u32,
        date: i64,
        message_id: Option<&str>,
        refs: &[&str],
        subject: &str,
    ) -> ThreadItem {
        let (base_subject, is_reply) = base_subject_and_reply(subject);
        ThreadItem {
            id,
            sent_date: date,
            message_id: message_id.map(str::to_owned),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
            in_reply_to: None,
            base_subject,
            is_reply,
        }
    }

    fn irt(mut m: ThreadItem, id: &str) -> ThreadItem {
        m.in_reply_to = Some(id.to_owned());
        m
    }

    fn out(threads: &[Thread]) -> String {
        let mut o = Vec::new();
        write(&mut o, threads);
        String::from_utf8(o).unwrap_or_default()
    }

    fn refs(items: &[ThreadItem]) -> String {
        out(&references(items))
    }

    #[test]
    fn msg_ids() {
        let cases: [(&str, &[&str]); 12] = [
            ("<a@b>", &["a@b"]),
            ("<a@b> <c@d>", &["a@b", "c@d"]),
            ("<a@b>\r\n\t<c@d>", &["a@b", "c@d"]),
            (
                "<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>",
                &["01KF8JCEOCBS0045PS@xxx.yyy.com"],
            ),
            ("< a@b >", &["a@b"]),
            ("<\"a>b\"@c>", &["a>b@c"]),
            ("<a(comment)@b>", &["a@b"]),
            ("\"Your message <x@y>\" <real@id> (and <c@d>)", &["real@id"]),
            ("<<a@b>", &["a@b"]),
            ("<nodomain> <@b> <a@> <a@b", &[]),
            ("<A@B> <a@b>", &["A@B", "a@b"]),
            ("", &[]),
        ];
        for (value, want) in cases {
            assert_eq!(parse_msg_ids(value), want, "{value:?}");
        }
        for odd in [
            "<", "\"", "(", "<\"", "<(", "<a\\", "\"\\", "(\\", "((())", "<\"\\",
        ] {
            let _ = parse_msg_ids(odd);
        }
    }

    /// Quoting differences do not split a thread (RFC 5256 §4).
    #[test]
    fn normalized_ids_thread_together() {
        let mut a = msg(1, 1, None, &[], "");
        a.message_id = parse_msg_ids("<\"x\"@y>").pop();
        let mut b = msg(2, 2, None, &[], "");
        b.references = parse_msg_ids("<x@y>");
        assert_eq!(refs(&[a, b]), "(1 2)");
    }

    /// The example of RFC 5256 §4: `(2)(3 6 (4 23)(44 7 96))`.
    #[test]
    fn rfc_example_tree() {
        let items = [
            msg(2, 1, Some("m2"), &[], "other"),
            msg(3, 2, Some("m3"), &[], "topic"),
            msg(4, 4, Some("m4"), &["m3", "m6"], "Re: topic"),
            msg(6, 3, Some("m6"), &["m3"], "Re: topic"),
            msg(7, 7, Some("m7"), &["m3", "m6", "m44"], "Re: topic"),
            msg(23, 6, Some("m23"), &["m3", "m6", "m4"], "Re: topic"),
            msg(44, 5, Some("m44"), &["m3", "m6"], "Re: topic"),
            msg(96, 8, Some("m96"), &["m3", "m6", "m44", "m7"], "Re: topic"),
        ];
        assert_eq!(refs(&items), "(2)(3 6 (4 23)(44 7 96))");
    }

    /// RFC 5256 §4: siblings under a dummy parent, `((3)(5))`.
    #[test]
    fn rfc_example_dummy() {
        let items = [
            msg(3, 1, Some("a"), &["gone"], ""),
            msg(5, 2, Some("b"), &["gone"], ""),
        ];
        assert_eq!(refs(&items), "((3)(5))");
    }

    #[test]
    fn writer_forms() {
        let leaf = |id| Thread {
            id: Some(id),
            children: Vec::new(),
        };
        let threads = vec![
            leaf(1),
            Thread {
                id: None,
                children: vec![leaf(2), leaf(3)],
            },
            Thread {
                id: Some(4),
                children: vec![Thread {
                    id: Some(5),
                    children: vec![leaf(6), leaf(7)],
                }],
            },
            Thread {
                id: None,
                children: Vec::new(),
            },
            Thread {
                id: None,
                children: vec![leaf(8)],
            },
        ];
        assert_eq!(out(&threads), "(1)((2)(3))(4 5 (6)(7))(8)");
        assert_eq!(out(&[]), "");
        assert_eq!(format!("{:?}", threads[2]), "Thread(4 5 (6)(7))");
    }

    /// imaptest thread: References naming a later message, and that message
    /// naming the first as its parent, which would be a loop.
    #[test]
    fn imaptest_thread() {
        let a = msg(1, 17, Some("<a@b>"), &[], "");
        let b = msg(2, 15, Some("<b@b>"), &["<a@b>", "<c@b>"], "");
        let c = msg(3, 16, Some("<c@b>"), &["<b@b>"], "");
        assert_eq!(refs(&[a, b.clone(), c.clone()]), "(3 2)(1)");
        // After expunging message 1.
        let (mut b, mut c) = (b, c);
        b.id = 1;
        c.id = 2;
        assert_eq!(refs(&[b, c]), "(2 1)");
    }

    /// imaptest thread2: a duplicate Message-ID counts as none.
    #[test]
    fn imaptest_thread2() {
        let items = [
            msg(1, 0, Some("<a@b>"), &[], ""),
            msg(2, 0, Some("<a@b>"), &[], ""),
        ];
        assert_eq!(refs(&items), "(1)(2)");
    }

    /// imaptest thread3: a duplicate Message-ID, joined by subject.
    #[test]
    fn imaptest_thread3() {
        let items = [
            msg(1, 0, Some("<a@b>"), &[], "foo"),
            msg(2, 1, Some("<a@b>"), &[], "Re: foo"),
        ];
        assert_eq!(refs(&items), "(1 2)");
    }

    /// imaptest thread4: a reply to a missing message, joined by subject.
    #[test]
    fn imaptest_thread4() {
        let items = [
            msg(1, 0, Some("<a@b>"), &[], "foo"),
            msg(2, 1, Some("<b@b>"), &["<c@b>"], "Re: foo"),
        ];
        assert_eq!(refs(&items), "(1 2)");
    }

    /// imaptest thread5: In-Reply-To, then expunges that leave dummies.
    #[test]
    fn imaptest_thread5() {
        let m1 = msg(1, 0, Some("<1@b>"), &[], "");
        let m2 = irt(msg(2, 0, Some("<2@b>"), &[], ""), "<1@b>");
        let m3 = irt(msg(3, 0, Some("<3@b>"), &[], ""), "<1@b>");
        let m4 = irt(msg(4, 0, Some("<4@b>"), &[], ""), "<2@b>");
        let m5 = irt(msg(5, 0, Some("<5@b>"), &[], ""), "<2@b>");
        assert_eq!(refs(&[m1, m2, m3.clone(), m4.clone()]), "(1 (2 4)(3))");
        // Messages 1 and 2 expunged; 3 and 4 are now 1 and 2.
        let (mut m3, mut m4, mut m5) = (m3, m4, m5);
        m3.id = 1;
        m4.id = 2;
        assert_eq!(refs(&[m3.clone(), m4.clone()]), "(1)(2)");
        // Message 5 appended as 3.
        m5.id = 3;
        assert_eq!(refs(&[m3, m4, m5]), "(1)((2)(3))");
    }

    /// imaptest thread6: no Message-IDs, one missing parent.
    #[test]
    fn imaptest_thread6() {
        let items = [
            msg(1, 0, None, &["<a@b>"], ""),
            msg(2, 1, None, &["<a@b>"], ""),
        ];
        assert_eq!(refs(&items), "((1)(2))");
    }

    /// imaptest thread7: a duplicate Message-ID with its own parent.
    #[test]
    fn imaptest_thread7() {
        let a = msg(1, 0, Some("<a@b>"), &[], "");
        let b = msg(2, 0, Some("<b@b>"), &["<a@b>"], "");
        let c = msg(3, 0, Some("<c@b>"), &["<b@b>"], "");
        let b2 = msg(4, 0, Some("<b@b>"), &["<a@b>"], "");
        assert_eq!(refs(&[a.clone(), b, c.clone(), b2.clone()]), "(1 (2 3)(4))");
        // Message 2 expunged.
        let (mut c, mut b2) = (c, b2);
        c.id = 2;
        b2.id = 3;
        assert_eq!(refs(&[a, c, b2]), "(1 3 2)");
    }

    /// imaptest thread8.
    #[test]
    fn imaptest_thread8() {
        let a = msg(1, 0, Some("<a@b>"), &[], "");
        let b = msg(2, 0, Some("<b@b>"), &["<a@b>"], "");
        assert_eq!(refs(&[a.clone(), b.clone()]), "(1 2)");
        assert_eq!(refs(std::slice::from_ref(&a)), "(1)");
        assert_eq!(refs(&[a, b]), "(1 2)");
    }

    /// The subjects of imaptest's thread-orderedsubject.mbox (decoded), all
    /// with the same date.
    const IMAPTEST_SUBJECTS: [&str; 15] = [
        "a",
        "C",
        "b",
        "_",
        "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)",
        "b (a)",
        "Re: [FWD: c]",
        "[xyz]",
        "",
        " ",
        "Re: b",
        "RE: C",
        "Re: c",
        "Ad: Re: Ad: Re: Ad: x",
        "re: [fwd: [fwd: re: [fwd: babylon]]]",
    ];

    /// imaptest thread-orderedsubject.
    #[test]
    fn imaptest_orderedsubject() {
        let items: Vec<_> = IMAPTEST_SUBJECTS
            .iter()
            .enumerate()
            .map(|(i, s)| msg(i as u32 + 1, 0, None, &[], s))
            .collect();
        assert_eq!(
            out(&ordered_subject(&items)),
            "(1)(2 (7)(12)(13))(3 (5)(11))(4)(6)(8)(9 10)(14)(15)"
        );
    }

    /// imaptest thread-orderedsubject2: sent dates, falling back to the
    /// internal date for messages 5–8.
    #[test]
    fn imaptest_orderedsubject2() {
        let data = [
            (1, 10, "a"),
            (2, 9, "b"),
            (3, 8, "a"),
            (4, 7, "b"),
            (5, 30, "a"),
            (6, 29, "b"),
            (7, 28, "a"),
            (8, 27, "b"),
        ];
        let items: Vec<_> = data
            .iter()
            .map(|&(id, d, s)| msg(id, d, None, &[], s))
            .collect();
        assert_eq!(out(&ordered_subject(&items)), "(4 (2)(8)(6))(3 (1)(7)(5))");
    }

    /// The REFERENCES subject steps: a reply joins a non-reply, two
    /// non-replies meet under a dummy, a dummy root takes the others.
    #[test]
    fn subject_merging() {
        // (v) reply joins the thread of the original.
        let items = [
            msg(1, 1, Some("a"), &[], "lunch"),
            msg(2, 2, Some("b"), &[], "Re: lunch"),
        ];
        assert_eq!(refs(&items), "(1 2)");
        // The original need not come first: the table keeps the non-reply.
        let items = [
            msg(1, 1, Some("b"), &[], "Re: lunch"),
            msg(2, 2, Some("a"), &[], "lunch"),
        ];
        assert_eq!(refs(&items), "(2 1)");
        // (v) "Otherwise": two originals become siblings under a dummy.
        let items = [
            msg(1, 1, Some("a"), &[], "lunch"),
            msg(2, 2, Some("b"), &[], "lunch"),
        ];
        assert_eq!(refs(&items), "((1)(2))");
        // Two replies too.
        let items = [
            msg(1, 1, Some("a"), &[], "Re: lunch"),
            msg(2, 2, Some("b"), &[], "Re: lunch"),
        ];
        assert_eq!(refs(&items), "((1)(2))");
        // Three originals: the third joins the dummy.
        let items = [
            msg(1, 1, Some("a"), &[], "lunch"),
            msg(2, 2, Some("b"), &[], "lunch"),
            msg(3, 3, Some("c"), &[], "LUNCH"),
        ];
        assert_eq!(refs(&items), "((1)(2)(3))");
        // A dummy root (two replies to a missing message) takes a message
        // with the same subject as a child.
        let items = [
            msg(1, 1, Some("a"), &["x"], "Re: lunch"),
            msg(2, 2, Some("b"), &["x"], "Re: lunch"),
            msg(3, 3, Some("c"), &[], "lunch"),
        ];
        assert_eq!(refs(&items), "((1)(2)(3))");
        // Two dummy roots with the same subject pool their children.
        let items = [
            msg(1, 1, Some("a"), &["x"], "Re: lunch"),
            msg(2, 4, Some("b"), &["x"], "Re: lunch"),
            msg(3, 2, Some("c"), &["y"], "Re: lunch"),
            msg(4, 3, Some("d"), &["y"], "Re: lunch"),
        ];
        assert_eq!(refs(&items), "((1)(3)(4)(2))");
        // An empty subject joins nothing.
        let items = [
            msg(1, 1, Some("a"), &[], "Re:"),
            msg(2, 2, Some("b"), &[], ""),
        ];
        assert_eq!(refs(&items), "(1)(2)");
    }

    /// In-Reply-To counts only without References (step 1).
    #[test]
    fn in_reply_to_fallback() {
        let items = [
            msg(1, 1, Some("a"), &[], "x"),
            msg(2, 2, Some("b"), &[], "y"),
            irt(msg(3, 3, Some("c"), &["a"], "z"), "b"),
            irt(msg(4, 4, Some("d"), &[], "w"), "b"),
        ];
        assert_eq!(refs(&items), "(1 3)(2 4)");
    }

    /// Step 1(B): a message's own References override the parent a
    /// truncated References line of an earlier message gave it.
    #[test]
    fn own_references_win() {
        let items = [
            msg(1, 1, Some("a"), &[], "x"),
            msg(2, 2, Some("b"), &[], "y"),
            msg(3, 3, Some("d"), &["b", "c"], "z"), // says c's parent is b
            msg(4, 4, Some("c"), &["a"], "v"),      // c says its parent is a
        ];
        assert_eq!(refs(&items), "(1 4 3)(2)");
    }

    /// Self-references, loops through References and ids repeated in one
    /// header: nothing panics, every message appears once.
    #[test]
    fn loops_and_self_references() {
        let items = [
            msg(1, 1, Some("a"), &["a"], ""),
            msg(2, 2, Some("b"), &["c", "b", "c"], ""),
            msg(3, 3, Some("c"), &["b"], ""),
            msg(4, 4, Some("d"), &["e", "d"], ""),
            msg(5, 5, Some("e"), &["d", "e"], ""),
            msg(6, 6, Some("f"), &["x", "x", "x"], ""),
        ];
        let s = refs(&items);
        let mut numbers: Vec<u32> = s
            .split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.parse().ok())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6], "{s}");
        // c and b each name the other as parent: the first link made
        // stands. d and e each name themselves last: both are roots.
        assert_eq!(s, "(1)(3 2)(4)(5)(6)");
    }

    /// A chain of replies deep enough to overflow the stack of any
    /// recursive implementation: built, written and dropped.
    #[test]
    fn deep_chain() {
        let n = 200_000u32;
        let items: Vec<ThreadItem> = (1..=n)
            .map(|i| {
                let mut m = msg(i, i64::from(i), Some(&i.to_string()), &[], "");
                if i > 1 {
                    m.in_reply_to = Some((i - 1).to_string());
                }
                m
            })
            .collect();
        let threads = references(&items);
        let mut o = Vec::new();
        write(&mut o, &threads);
        assert!(o.starts_with(b"(1 2 3 "));
        assert!(o.ends_with(format!(" {n})").as_bytes()));
        drop(threads);
    }

    #[test]
    fn empty_input() {
        assert!(references(&[]).is_empty());
        assert!(ordered_subject(&[]).is_empty());
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(
            Algorithm::from_name("references"),
            Some(Algorithm::References)
        );
        assert_eq!(
            Algorithm::from_name("OrderedSubject"),
            Some(Algorithm::OrderedSubject)
        );
        assert_eq!(Algorithm::from_name("REFS"), None);
        assert_eq!(Algorithm::References.name(), "REFERENCES");
    }

    /// Random headers over a few ids: every message appears exactly once in
    /// the result, and the response has balanced parentheses.
    #[test]
    fn random_headers() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let ids = ["a", "b", "c", "d", "e", "f"];
        let subjects = ["x", "Re: x", "y", "", "Fwd: y"];
        for _ in 0..2000 {
            let count = (next() % 8) as u32;
            let items: Vec<ThreadItem> = (1..=count)
                .map(|i| {
                    let mid = (next() % 8 < 6).then(|| ids[(next() % 6) as usize]);
                    let refs: Vec<&str> = (0..next() % 4)
                        .map(|_| ids[(next() % 6) as usize])
                        .collect();
                    let mut m = msg(
                        i,
                        (next() % 3) as i64,
                        mid,
                        &refs,
                        subjects[(next() % 5) as usize],
                    );
                    if next() % 2 == 0 {
                        m.in_reply_to = Some(ids[(next() % 6) as usize].to_owned());
                    }
                    m
                })
                .collect();
            for algorithm in [Algorithm::References, Algorithm::OrderedSubject] {
                let s = out(&thread(&items, algorithm));
                let mut numbers: Vec<u32> = s
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|t| t.parse().ok())
                    .collect();
                numbers.sort_unstable();
                assert_eq!(
                    numbers,
                    (1..=count).collect::<Vec<_>>(),
                    "{s} from {items:?}"
                );
                let mut depth = 0i32;
                for c in s.chars() {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    assert!(depth >= 0, "{s}");
                }
                assert_eq!(depth, 0, "{s}");
                assert!(
                    !s.contains("()") && !s.contains(" )") && !s.contains("( "),
                    "{s}"
                );
            }
        }
    }
}
