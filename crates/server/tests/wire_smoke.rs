//! The in-process test world itself: an engine served inside the test, a
//! login, a delivery seen by a selected session, and a paused clock stepping
//! past the autologout timer.
use postgate_testkit::world::World;

#[tokio::test]
async fn world_serves_imap_and_sees_a_delivery() {
    let w = World::new().await;
    w.user("alice@test.example", "pw").await;
    let mut c = w.imap_login("alice@test.example", "pw").await;
    c.ok("SELECT INBOX").await.has("* 0 EXISTS");
    w.deliver("alice@test.example", b"Subject: hi\r\n\r\nbody\r\n")
        .await;
    c.ok("NOOP").await.has("* 1 EXISTS");
    let r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    r.has("* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n)");
    c.no("SELECT Nowhere").await;
    c.bad("FETCH").await;
}

#[tokio::test]
async fn paused_clock_steps_past_the_idle_timeout() {
    let w = World::with_config("[imap]\nallow_plaintext = true\nidle_timeout = \"31m\"\n").await;
    w.user("bob@test.example", "pw").await;
    let mut c = w.imap_login("bob@test.example", "pw").await;
    c.ok("SELECT INBOX").await;
    c.patient();
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(31 * 60 + 1)).await;
    c.expect_start("* BYE").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn wire_upgrades_to_tls_then_deflate() {
    let w = World::with_config("[imap]\nallow_plaintext = false\n").await;
    w.user("carol@test.example", "pw").await;
    let addr = w.imap().await;
    let mut c = postgate_testkit::world::Wire::connect(addr).await;
    let greeting = c.line().await;
    assert!(greeting.contains("LOGINDISABLED"), "{greeting}");
    c.no("LOGIN carol@test.example pw").await;
    c.ok("STARTTLS").await;
    c.start_tls(&w.cert_pem()).await;
    let r = c.ok("CAPABILITY").await;
    let caps = r.one("* CAPABILITY ");
    assert!(
        caps.contains("AUTH=PLAIN") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    c.ok("LOGIN carol@test.example pw").await;
    c.ok("COMPRESS DEFLATE").await;
    c.start_deflate();
    c.ok("SELECT INBOX").await.has("* 0 EXISTS");
}
