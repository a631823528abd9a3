//! End to end in a real browser (issue 3, "Tests"): Debian's headless Chromium driven over the
//! DevTools protocol, with DevTools WebAuthn virtual authenticators in place of a laptop's
//! platform authenticator and a USB security key. Everything the person does goes through the
//! pages and `static/passgate.js`; the test asserts on what the page shows and on the database.
//!
//! How Chromium 148's virtual environment behaves, which shapes the test:
//! - With the WebAuthn UI disabled (`WebAuthn.enable {enableUI:false}`, the usual setting for
//!   automation) modal requests are answered by the virtual authenticators, but a conditional
//!   request is answered at once too, with no autofill choice at all.
//! - With the UI enabled, a conditional request waits for the person like the real thing:
//!   clicking the email field opens the autofill popup, ArrowDown highlights the passkey (the
//!   field then matches `:autofill`, the username previewed in it) and Enter picks it. Modal
//!   requests, however, wait on browser dialogs that the protocol cannot press.
//!
//! So the test turns the UI on before it lands on the login page, and off before a modal
//! ceremony. The setting is fixed when the domain is enabled, so a switch disables the domain
//! (which drops the virtual authenticators) and re-creates each authenticator with the same
//! options, presence setting and credentials (private keys and sign counters, exported with
//! `WebAuthn.getCredentials`). A conditional request already pending stays pending across it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel, LogEntrySource};
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddCredentialParams, AddVirtualAuthenticatorParams, AuthenticatorId, AuthenticatorProtocol,
    AuthenticatorTransport, Credential, DisableParams, EnableParams, GetCredentialsParams,
    SetAutomaticPresenceSimulationParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::cdp::js_protocol::runtime::EventExceptionThrown;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Every wait is bounded by this.
pub const WAIT: Duration = Duration::from_secs(15);
pub const POLL: Duration = Duration::from_millis(25);

/// The Chromium binary (`CHROME`, else Debian's `/usr/bin/chromium`), or `None` after a loud
/// notice. Under `CI=true` a missing browser fails the test instead (as PostgreSQL does).
pub fn chromium() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.is_file() {
        return Some(path);
    }
    if crate::pg::is_ci() {
        panic!(
            "Chromium is required when CI=true: {} not found",
            path.display()
        );
    }
    eprintln!(
        "\n*** NOTICE: browser test SKIPPED: {} not found.\n*** Install Debian's `chromium` package or set CHROME to run it.\n",
        path.display()
    );
    None
}

/// A headless Chromium with a fresh profile and one tab.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    pub page: Page,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch(executable: PathBuf) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        // The machine's network is closed: everything Chromium would fetch in the background
        // is turned off, so it neither waits on it nor logs failures.
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
            ])
            .launch_timeout(WAIT)
            .request_timeout(WAIT)
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.unwrap();
        Chromium {
            browser,
            handler,
            page,
            _profile: profile,
        }
    }

    pub async fn close(mut self) {
        self.browser.close().await.unwrap();
        self.browser.wait().await.unwrap();
        self.handler.abort();
    }
}

/// One virtual authenticator, as the test means it to be; its DevTools id changes when the
/// environment is re-created.
pub struct VirtualKey {
    options: VirtualAuthenticatorOptions,
    id: AuthenticatorId,
    presence: bool,
}

/// The tab's WebAuthn environment: its virtual authenticators.
pub struct WebAuthn {
    keys: Vec<VirtualKey>,
}

/// A discoverable-credential (resident key) authenticator that verifies the user, as a
/// laptop's platform authenticator (`internal`) or a security key with a PIN (`usb`) does.
pub fn passkey_authenticator(transport: AuthenticatorTransport) -> VirtualAuthenticatorOptions {
    let mut options = VirtualAuthenticatorOptions::new(AuthenticatorProtocol::Ctap2, transport);
    options.has_resident_key = Some(true);
    options.has_user_verification = Some(true);
    options.is_user_verified = Some(true);
    options.automatic_presence_simulation = Some(true);
    options
}

impl WebAuthn {
    pub async fn enable(page: &Page, ui: bool) -> WebAuthn {
        page.execute(EnableParams::builder().enable_ui(ui).build())
            .await
            .unwrap();
        WebAuthn { keys: Vec::new() }
    }

    pub async fn add(&mut self, page: &Page, transport: AuthenticatorTransport) -> usize {
        let options = passkey_authenticator(transport);
        let id = page
            .execute(AddVirtualAuthenticatorParams::new(options.clone()))
            .await
            .unwrap()
            .result
            .authenticator_id;
        self.keys.push(VirtualKey {
            options,
            id,
            presence: true,
        });
        self.keys.len() - 1
    }

    pub async fn credentials(&self, page: &Page, key: usize) -> Vec<Credential> {
        page.execute(GetCredentialsParams::new(self.keys[key].id.clone()))
            .await
            .unwrap()
            .result
            .credentials
    }

    /// With presence simulation off an authenticator never answers, as a key nobody touches:
    /// that is how the test chooses which of two authenticators signs.
    pub async fn set_presence(&mut self, page: &Page, key: usize, presence: bool) {
        page.execute(SetAutomaticPresenceSimulationParams::new(
            self.keys[key].id.clone(),
            presence,
        ))
        .await
        .unwrap();
        self.keys[key].presence = presence;
    }

    /// Turns the browser's WebAuthn UI on or off, keeping every authenticator and credential.
    pub async fn set_ui(&mut self, page: &Page, ui: bool) {
        let mut saved = Vec::new();
        for key in 0..self.keys.len() {
            saved.push(self.credentials(page, key).await);
        }
        page.execute(DisableParams::default()).await.unwrap();
        page.execute(EnableParams::builder().enable_ui(ui).build())
            .await
            .unwrap();
        for (key, credentials) in self.keys.iter_mut().zip(saved) {
            let mut options = key.options.clone();
            options.automatic_presence_simulation = Some(key.presence);
            key.id = page
                .execute(AddVirtualAuthenticatorParams::new(options))
                .await
                .unwrap()
                .result
                .authenticator_id;
            for credential in credentials {
                page.execute(AddCredentialParams::new(key.id.clone(), credential))
                    .await
                    .unwrap();
            }
        }
    }
}

/// A credential id as the database keeps it (base64url); DevTools reports standard base64.
pub fn stored_id(credential: &Credential) -> String {
    let bytes = STANDARD
        .decode(<_ as AsRef<str>>::as_ref(&credential.credential_id))
        .unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

// --- the page, as the person sees it -------------------------------------------------------

/// Evaluates `expr` in the page; `None` while the page is between documents.
pub async fn eval<T: DeserializeOwned>(page: &Page, expr: &str) -> Option<T> {
    page.evaluate(expr).await.ok()?.into_value().ok()
}

/// Polls `expr` until `done` accepts its value; panics with `what` and the page's text after
/// [`WAIT`].
pub async fn wait_for<T: DeserializeOwned + std::fmt::Debug>(
    page: &Page,
    what: &str,
    expr: &str,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Some(value) = eval::<T>(page, expr).await {
            if done(&value) {
                return value;
            }
            last = Some(value);
        }
        if Instant::now() > deadline {
            let url: Option<String> = eval(page, "location.href").await;
            let text: Option<String> = eval(page, "document.body.innerText").await;
            panic!(
                "timed out after {WAIT:?} waiting for {what}; last value {last:?}\nat {url:?}\npage text:\n{}",
                text.unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the tab shows `path` (with its query), fully loaded, so the page script has run.
pub async fn wait_for_page(page: &Page, path: &str) {
    wait_for::<String>(
        page,
        &format!("the page {path}"),
        "document.readyState === 'complete' ? location.pathname + location.search : ''",
        |at| at == path,
    )
    .await;
}

pub async fn text(page: &Page, selector: &str) -> String {
    let expr = format!("(document.querySelector({selector:?}) || {{}}).innerText || ''");
    eval(page, &expr).await.unwrap_or_default()
}

pub async fn wait_for_text(page: &Page, selector: &str, needle: &str) -> String {
    let expr = format!("(document.querySelector({selector:?}) || {{}}).innerText || ''");
    wait_for::<String>(
        page,
        &format!("{needle:?} in {selector}"),
        &expr,
        |t: &String| t.contains(needle),
    )
    .await
}

pub async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"))
        .click()
        .await
        .unwrap();
}

/// What the pages report as broken: uncaught exceptions in the page script and console errors
/// other than HTTP statuses (a refused login answers 401 on purpose), such as CSP refusals.
pub async fn page_errors(page: &Page) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    page.enable_log().await.unwrap();
    let mut thrown = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut logged = page.event_listener::<EventEntryAdded>().await.unwrap();
    let sink = errors.clone();
    tokio::spawn(async move {
        loop {
            let error = tokio::select! {
                Some(e) = thrown.next() => {
                    let details = &e.exception_details;
                    let exception = details.exception.as_ref().and_then(|o| o.description.clone());
                    exception.unwrap_or_else(|| details.text.clone())
                }
                Some(e) = logged.next() => {
                    if e.entry.level != LogEntryLevel::Error || e.entry.source == LogEntrySource::Network {
                        continue;
                    }
                    format!("{:?}: {} ({:?})", e.entry.source, e.entry.text, e.entry.url)
                }
                else => break,
            };
            sink.lock().unwrap().push(error);
        }
    });
    errors
}

/// A key press as the browser's autofill popup handles it: a raw key down and its key up (the
/// popup listens to raw key downs; chromiumoxide's `press_key` sends a text key down for
/// Enter, which reaches the form instead).
pub async fn press(page: &Page, key: &str, key_code: i64) {
    for kind in [
        DispatchKeyEventType::RawKeyDown,
        DispatchKeyEventType::KeyUp,
    ] {
        let event = DispatchKeyEventParams::builder()
            .r#type(kind)
            .key(key)
            .code(key)
            .windows_virtual_key_code(key_code)
            .native_virtual_key_code(key_code)
            .build()
            .unwrap();
        page.execute(event).await.unwrap();
    }
}

/// The credential ids of the account page's passkey rows.
pub async fn passkey_rows(page: &Page) -> Vec<String> {
    let expr = "Array.from(document.querySelectorAll('tr[data-credential-id]')).map(r => r.dataset.credentialId)";
    eval(page, expr).await.expect("the account page")
}

/// The name in a passkey row's rename field.
pub async fn passkey_name(page: &Page, credential_id: &str) -> Option<String> {
    let expr = format!(
        "(document.querySelector(\"tr[data-credential-id='{credential_id}'] input[name=label]\") || {{}}).value"
    );
    eval(page, &expr).await
}

pub const SIGN_OUT: &str = "nav form[action$='/signout'] button";

/// What a person does to use passkey autofill: click the email field, arrow down to the
/// passkey the browser suggests, until it is highlighted (the browser previews its username
/// in the field, which then matches `:autofill`). The popup opens only once the page's
/// conditional request is registered, and wraps around, so pressing until then is exactly
/// what a person does: never more than a few presses.
pub async fn highlight_passkey_suggestion(page: &Page) {
    let email = page.find_element("#email").await.unwrap();
    email.click().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        press(page, "ArrowDown", 40).await;
        let pressed = Instant::now();
        while pressed.elapsed() < Duration::from_millis(500) {
            if eval::<bool>(
                page,
                "document.getElementById('email').matches(':autofill')",
            )
            .await
                == Some(true)
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(
            Instant::now() < deadline,
            "the email field never offered a passkey in its autofill (is the conditional request running?)"
        );
    }
}

/// Enter on the highlighted passkey. Chromium ignores accepting an autofill suggestion until
/// its popup has been shown for 500 ms and the browser is next idle (its guard against
/// clickjacking, `kIgnoreEarlyClicksOnSuggestionsDuration`): the test waits those 500 ms, and
/// a press the guard still swallows leaves the suggestion highlighted, so it is pressed again.
/// Accepted, the authenticator signs (its counter moves).
pub async fn accept_highlighted_passkey(page: &Page, webauthn: &WebAuthn, key: usize) {
    let signed =
        |credentials: Vec<Credential>| credentials.iter().map(|c| c.sign_count).sum::<i64>();
    let before = signed(webauthn.credentials(page, key).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + WAIT;
    loop {
        press(page, "Enter", 13).await;
        let pressed = Instant::now();
        while pressed.elapsed() < Duration::from_secs(1) {
            if signed(webauthn.credentials(page, key).await) > before {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(
            eval::<bool>(
                page,
                "document.getElementById('email').matches(':autofill')"
            )
            .await
                == Some(true),
            "Enter neither picked the passkey nor left it highlighted"
        );
        assert!(
            Instant::now() < deadline,
            "the autofill never took the passkey"
        );
    }
}
