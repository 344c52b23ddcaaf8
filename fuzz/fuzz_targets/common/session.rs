//! What the session targets share: one tokio runtime and one in-process
//! post office ([`postgate_testkit::world::World`]: a store in a temporary
//! directory, engines on 127.0.0.1:0) per process, and a client that sends
//! an input over TCP, closes its sending side and reads the server's bytes
//! to the end.
//!
//! The world has one user, [`USER`] with password [`PASSWORD`], and a few
//! messages in the Inbox ([`MESSAGES`]). It is rebuilt every [`REBUILD`]
//! inputs, so that what inputs add (APPEND, CREATE, mail sent over SMTP) and
//! take away (EXPUNGE, DELE) stays bounded.
//!
//! A panic in a server task would be caught by tokio and go unnoticed: the
//! panic hook aborts the process so that libFuzzer reports it.
#[path = "hook.rs"]
mod hook;

use postgate_store::{Envelope, NewUser, UserRef};
use postgate_testkit::world::World;
use postgate_types::EmailAddress;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The user every session may log in as.
pub const USER: &str = "fuzz@test.example";
/// Its password.
pub const PASSWORD: &str = "pw";

/// Inputs served by one world before it is replaced.
const REBUILD: u32 = 2000;

/// How long a session may take, from connecting to the server closing the
/// connection after the client closed its side. Every engine must end a
/// session on end of input; one still open after this is a hang.
const DEADLINE: Duration = Duration::from_secs(8);

/// Most bytes of the server's reply kept (a FETCH loop can write a lot).
const MAX_REPLY: usize = 4 << 20;

/// The Inbox's messages: plain text, multipart with an attachment, a
/// forwarded message, an iMIP invitation.
pub const MESSAGES: &[&[u8]] = &[
    b"From: Ann <ann@example.org>\r\nTo: fuzz@test.example\r\nSubject: Lunch\r\n\
Date: Mon, 2 Feb 2026 10:00:00 +0100\r\nMessage-ID: <1@example.org>\r\n\r\n\
Shall we?\r\n.dot at line start\r\n",
    b"From: Bob <bob@example.net>\r\nTo: fuzz@test.example\r\nSubject: Re: Lunch\r\n\
Date: Mon, 2 Feb 2026 11:00:00 +0100\r\nMessage-ID: <2@example.net>\r\n\
In-Reply-To: <1@example.org>\r\nReferences: <1@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Gr=C3=BC=C3=9Fe\r\n--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAwQFBgc=\r\n--b1--\r\n",
    b"From: ann@example.org\r\nTo: fuzz@test.example\r\nSubject: Fwd: report\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
Content-Type: text/plain\r\n\r\nsee below\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: carol@example.com\r\nSubject: report\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n\
--i\r\nContent-Type: text/plain\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n\
--i--\r\n--o--\r\n",
    b"From: Organizer <org@example.org>\r\nTo: fuzz@test.example\r\nSubject: Invitation: Plan\r\n\
MIME-Version: 1.0\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n\
BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n\
UID:plan-1@example.org\r\nDTSTAMP:20260201T090000Z\r\nDTSTART:20260210T090000Z\r\n\
DTEND:20260210T100000Z\r\nSUMMARY:Plan\r\nORGANIZER:mailto:org@example.org\r\n\
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:fuzz@test.example\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n",
];

/// Serves the engines a target talks to in a new world; returns their addresses.
pub type Setup = for<'a> fn(&'a World) -> Pin<Box<dyn Future<Output = Vec<SocketAddr>> + 'a>>;

struct Current {
    /// Kept for its engines and store; dropping it shuts them down.
    _world: World,
    addrs: Vec<SocketAddr>,
    served: u32,
}

/// The runtime and the current world.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    setup: Setup,
    current: Mutex<Option<Current>>,
}

impl Harness {
    /// A harness whose worlds serve what `setup` starts. Installs the
    /// aborting panic hook (`common/hook.rs`).
    pub fn new(setup: Setup) -> Harness {
        hook::install();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        Harness {
            rt,
            setup,
            current: Mutex::new(None),
        }
    }

    /// Sends `input` to the listener number `which` of the current world,
    /// closes the sending side, and returns everything the server sent until
    /// it closed the connection. Panics if that takes longer than
    /// [`DEADLINE`].
    pub fn exchange(&self, which: usize, input: &[u8]) -> Vec<u8> {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|c| c.served >= REBUILD) {
            // Drop the old world first (its shutdown ends its listeners).
            *guard = None;
            *guard = Some(self.rt.block_on(self.build()));
        }
        let current = guard.as_mut().expect("world");
        current.served += 1;
        let addr = current.addrs[which % current.addrs.len()];
        self.rt.block_on(async {
            match tokio::time::timeout(DEADLINE, talk(addr, input)).await {
                Ok(reply) => reply,
                Err(_) => panic!(
                    "the session on {addr} did not end within {DEADLINE:?} of the client \
                     closing its side; input {:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        })
    }

    async fn build(&self) -> Current {
        let mut world = World::new().await;
        // No failure throttle: fuzz inputs fail logins all the time, and the
        // throttle's delays would only slow the fuzzer down.
        world.auth = world
            .auth
            .clone()
            .with_throttle(u32::MAX, Duration::ZERO, Duration::ZERO);
        let user = add_user(&world).await;
        for m in MESSAGES {
            world
                .delivery
                .deliver(
                    m.to_vec(),
                    Envelope::default(),
                    std::slice::from_ref(&user),
                    None,
                )
                .await
                .expect("deliver");
        }
        let addrs = (self.setup)(&world).await;
        Current {
            _world: world,
            addrs,
            served: 0,
        }
    }
}

/// Adds [`USER`] with an argon2id hash of [`PASSWORD`] at the lowest costs
/// (verified in microseconds; the server reads the costs from the hash).
async fn add_user(world: &World) -> UserRef {
    use argon2::PasswordHasher;
    let params = argon2::Params::new(8, 1, 1, None).expect("argon2 params");
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = hasher
        .hash_password(PASSWORD.as_bytes())
        .expect("hash")
        .to_string();
    let user = world
        .store
        .add_user(NewUser {
            address: EmailAddress::parse(USER).expect("address"),
            post_office: None,
            display_name: "fuzz".into(),
            given_name: None,
            surname: None,
            title: None,
            department: None,
            phone: None,
            password_hash: Some(hash),
        })
        .await
        .expect("add user");
    UserRef {
        id: user.id,
        address: user.address.clone(),
    }
}

/// Connects, writes `input` while reading, closes the sending side, and
/// reads to the end of the server's stream.
async fn talk(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let write = async {
        // The server may close first (QUIT, LOGOUT, a fatal error): then
        // writing fails, which is fine.
        let _ = wr.write_all(input).await;
        let _ = wr.shutdown().await;
        wr
    };
    let read = async {
        let mut reply = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if reply.len() < MAX_REPLY {
                        reply.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        reply
    };
    let (_wr, reply) = tokio::join!(write, read);
    reply
}

/// Splits a reply into lines ending in LF (the last one maybe without).
#[allow(dead_code)] // not every target includes it
pub fn lines(reply: &[u8]) -> impl Iterator<Item = &[u8]> {
    reply.split_inclusive(|&b| b == b'\n')
}
