//! A real SMTP listener on loopback for the mail tests: it speaks enough of RFC 5321 for
//! lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps what it receives, and can be
//! switched "down" (it then answers every connection with 421, a transient failure).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Received {
    pub recipients: Vec<String>,
    pub from: String,
    pub subject: String,
    /// The plain-text part, transfer encoding undone.
    pub text: String,
    pub html: String,
}

impl Received {
    /// The first link in the message that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in:\n{}", self.text));
        let rest = &self.text[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest[..end].to_string()
    }
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = SmtpServer {
            port,
            received: Arc::default(),
            down: Arc::default(),
        };
        let (received, down) = (server.received.clone(), server.down.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (received, down) = (received.clone(), down.clone());
                tokio::spawn(async move {
                    let _ = session(stream, &received, &down).await;
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Messages to `recipient`, in arrival order.
    pub fn to(&self, recipient: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.recipients.iter().any(|r| r == recipient))
            .collect()
    }

    /// Waits (a few seconds at most) for a message to `recipient` whose subject contains
    /// `subject`.
    pub async fn wait_for_subject(&self, recipient: &str, subject: &str) -> Received {
        for _ in 0..200 {
            if let Some(m) = self
                .to(recipient)
                .into_iter()
                .find(|m| m.subject.contains(subject))
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no message {subject:?} to {recipient}; received: {:#?}",
            self.received()
        );
    }

    /// Waits (a few seconds at most) for the `n`th message to `recipient` (1-based).
    pub async fn wait_for(&self, recipient: &str, n: usize) -> Received {
        for _ in 0..200 {
            if let Some(m) = self.to(recipient).get(n - 1) {
                return m.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "message {n} to {recipient} never arrived; received: {:#?}",
            self.received()
        );
    }
}

async fn session(
    stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    down: &AtomicBool,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    if down.load(Ordering::SeqCst) {
        write
            .write_all(b"421 4.3.2 Service not available, try later\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 localhost ESMTP test\r\n").await?;
    let mut lines = BufReader::new(read);
    let mut recipients = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-localhost\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                recipients.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                let address = line
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default();
                recipients.push(address);
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    data.extend_from_slice(l.as_bytes());
                }
                received
                    .lock()
                    .unwrap()
                    .push(parse(std::mem::take(&mut recipients), &data));
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

fn parse(recipients: Vec<String>, data: &[u8]) -> Received {
    let mail = mailparse::parse_mail(data).expect("a well-formed message");
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let part = |mime: &str| {
        std::iter::once(&mail)
            .chain(mail.subparts.iter())
            .find(|p| p.ctype.mimetype == mime)
            .map(|p| p.get_body().unwrap())
            .unwrap_or_default()
    };
    Received {
        recipients,
        from: header("from"),
        subject: header("subject"),
        text: part("text/plain"),
        html: part("text/html"),
    }
}
