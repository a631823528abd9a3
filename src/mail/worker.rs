//! Delivery: each node's worker claims due messages under a lease (so two nodes never send
//! the same one), sends them without holding a database connection, then marks them sent,
//! or schedules a retry with back-off. Without SMTP, messages become .eml files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentTransferEncoding;
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Notify;

use crate::clock::UtcTime;
use crate::config::Settings;
use crate::scheduler::{Job, JobFuture};
use crate::store::mail::{self as outbox, OutboxMessage};
use crate::store::{Store, StoreError};

const BATCH: i64 = 20;
const LEASE: time::Duration = time::Duration::seconds(60);
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// The node's sender: its transport, its identity for leases, and a bell to ring when a
/// request has just queued mail.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    node: String,
    bell: Arc<Notify>,
}

impl Mailer {
    pub fn new(settings: &Settings) -> Result<Mailer, String> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| e.to_string())?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => Transport::Files(settings.data_dir.join("mail")),
        };
        Ok(Mailer {
            transport,
            node: crate::crypto::new_id(),
            bell: Arc::new(Notify::new()),
        })
    }

    /// Delivers soon rather than at the next poll.
    pub fn wake(&self) {
        self.bell.notify_one();
    }

    /// Where mail goes, for the start-up banner.
    pub fn describe(&self, settings: &Settings) -> String {
        match &self.transport {
            Transport::Smtp(_) => settings
                .smtp_url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|mut u| {
                    let _ = u.set_password(None);
                    let _ = u.set_username("");
                    u.to_string()
                })
                .unwrap_or_default(),
            Transport::Files(dir) => {
                format!("{} (.eml files; set smtp_url to send)", dir.display())
            }
        }
    }
}

impl Mailer {
    /// One pass: claims due messages and tries each once. Returns how many were sent.
    pub async fn deliver_due(&self, store: &Store, now: UtcTime) -> Result<usize, StoreError> {
        let node = self.node.clone();
        let claimed = store
            .write(move |conn| outbox::claim_due_messages(conn, &node, now, now + LEASE, BATCH))
            .await?;
        let mut sent = 0;
        for message in claimed {
            let outcome = send(&self.transport, &message).await;
            let (id, node) = (message.id.clone(), self.node.clone());
            match outcome {
                Ok(()) => {
                    sent += 1;
                    store
                        .write(move |conn| outbox::mark_sent(conn, &id, &node, now))
                        .await?;
                }
                Err(Failure { error, permanent }) => {
                    tracing::warn!(message = %message.id, template = %message.template, %error, "mail not delivered");
                    let retry_at = now + retry_delay(message.attempts, permanent);
                    store
                        .write(move |conn| outbox::mark_failed(conn, &id, &node, &error, retry_at))
                        .await?;
                }
            }
        }
        Ok(sent)
    }
}

/// Delivery polls the outbox, and a request that queued mail rings the bell.
impl Job for Mailer {
    fn name(&self) -> &'static str {
        "mail-delivery"
    }

    fn every(&self) -> Duration {
        POLL
    }

    fn run<'a>(&'a self, store: &'a Store, now: UtcTime) -> JobFuture<'a> {
        Box::pin(async move {
            self.deliver_due(store, now)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn bell(&self) -> Option<Arc<Notify>> {
        Some(self.bell.clone())
    }
}

/// 30 s, 1 min, 2 min, … capped at an hour; a message that can never be sent waits a day
/// for an operator to look.
fn retry_delay(attempts: i32, permanent: bool) -> time::Duration {
    if permanent {
        return time::Duration::days(1);
    }
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    time::Duration::seconds((30i64 << exponent).min(3600))
}

struct Failure {
    error: String,
    permanent: bool,
}

/// How the text part is encoded: as lettre chooses for SMTP (quoted-printable for lines
/// longer than 76 characters, safe across every relay), or unencoded (RFC 2045 `binary`) in
/// the file outbox, which no relay carries and where a person opens the `.eml` and must find
/// each link whole on one line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextEncoding {
    ForRelays,
    ForReading,
}

fn build(message: &OutboxMessage, encoding: TextEncoding) -> Result<lettre::Message, Failure> {
    let permanent = |e: String| Failure {
        error: e,
        permanent: true,
    };
    let from: Mailbox = message
        .sender
        .parse()
        .map_err(|e| permanent(format!("sender: {e}")))?;
    let to: Mailbox = message
        .recipient
        .parse()
        .map_err(|e| permanent(format!("recipient: {e}")))?;
    let builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(message.subject.clone());
    let text = message.body_text.clone();
    let text = match encoding {
        TextEncoding::ForReading => Body::new_with_encoding(text, ContentTransferEncoding::Binary)
            .unwrap_or_else(|_| Body::new(message.body_text.clone())),
        TextEncoding::ForRelays => Body::new(text),
    };
    let built = match &message.body_html {
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .singlepart(SinglePart::html(html.clone())),
        ),
        None => builder.singlepart(SinglePart::plain(text)),
    };
    built.map_err(|e| permanent(e.to_string()))
}

async fn send(transport: &Transport, message: &OutboxMessage) -> Result<(), Failure> {
    match transport {
        Transport::Smtp(smtp) => {
            let email = build(message, TextEncoding::ForRelays)?;
            smtp.send(email).await.map(|_| ()).map_err(|e| Failure {
                permanent: e.is_permanent(),
                error: e.to_string(),
            })
        }
        Transport::Files(dir) => {
            let email = build(message, TextEncoding::ForReading)?;
            write_file(dir, message, &email.formatted()).await
        }
    }
}

async fn write_file(
    dir: &std::path::Path,
    message: &OutboxMessage,
    bytes: &[u8],
) -> Result<(), Failure> {
    let failure = |e: std::io::Error| Failure {
        error: e.to_string(),
        permanent: false,
    };
    // Mail holds recovery and enrollment links: the folder and its files are the passgate
    // user's only (0700, 0600).
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(failure)?;
    let path = dir.join(format!("{}-{}.eml", stamp(message.created_at), message.id));
    // Written aside, then renamed: whoever watches the folder never reads half a message.
    let partial = path.with_extension("eml.partial");
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .await
        .map_err(failure)?;
    tokio::fs::write(&partial, bytes).await.map_err(failure)?;
    tokio::fs::rename(&partial, &path).await.map_err(failure)?;
    tracing::info!(recipient = %message.recipient, subject = %message.subject, path = %path.display(), "mail written to a file (no smtp_url configured)");
    Ok(())
}

fn stamp(t: UtcTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn retries_back_off_up_to_an_hour() {
        assert_eq!(retry_delay(1, false).whole_seconds(), 30);
        assert_eq!(retry_delay(2, false).whole_seconds(), 60);
        assert_eq!(retry_delay(5, false).whole_seconds(), 480);
        assert_eq!(retry_delay(30, false).whole_seconds(), 3600);
        assert_eq!(retry_delay(1, true).whole_days(), 1);
    }
}
