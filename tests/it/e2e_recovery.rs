//! Recovery in a real browser (issue 5): the recovery page's script, with the recovery code
//! and with the emailed link, through Debian's Chromium and a fresh virtual authenticator for
//! each "new device" (see `e2e_support.rs` for how the browser is driven).

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::web_authn::AuthenticatorTransport;

use crate::e2e_support::{
    Chromium, SIGN_OUT, WebAuthn, chromium, click, eval, page_errors, text, wait_for_page,
    wait_for_text,
};
use crate::harness::Backend;
use crate::recovery_support::{app_with_mail, enroll};
use passgate::users::Role;

async fn type_into(page: &Page, selector: &str, value: &str) {
    // The node is looked up again if the page replaced it between finding and clicking.
    for attempt in 0..20 {
        let typed = async {
            page.find_element(selector)
                .await?
                .click()
                .await?
                .type_str(value)
                .await
                .map(|_| ())
        };
        match typed.await {
            Ok(()) => return,
            Err(e) if attempt == 19 => panic!("cannot type into {selector}: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Alice lost her laptop. On a new phone she recovers with her recovery code (and is shown a
/// new one); later, on another new device, by the link mailed to her — the account page then
/// says it is restricted. Each time the page registers a passkey on the new device and only
/// that signs her in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_in_a_real_browser() {
    let Some(executable) = chromium() else {
        return;
    };
    let (app, smtp) = app_with_mail(Backend::Sqlite).await;
    let tenant = app.create_tenant("acme").await;
    let alice = enroll(&app, &tenant, "alice@example.com", Role::Member).await;

    let chromium = Chromium::launch(executable).await;
    let page = &chromium.page;
    let page_errors = page_errors(page).await;
    let mut webauthn = WebAuthn::enable(page, false).await;
    let phone = webauthn.add(page, AuthenticatorTransport::Internal).await;

    // 1. The login page's "Lost your passkey?" leads to the recovery page.
    page.goto(format!("{}/t/acme/login", app.address))
        .await
        .unwrap();
    wait_for_page(page, "/t/acme/login").await;
    wait_for_text(page, "main", "Lost your passkey?").await;
    page.goto(format!("{}/t/acme/recover", app.address))
        .await
        .unwrap();
    wait_for_page(page, "/t/acme/recover").await;
    type_into(page, "#code-email", "alice@example.com").await;
    type_into(page, "#code", "AAAA-BBBB-CCCC-DDDD").await;
    click(page, "#code-submit").await;
    let error = wait_for_text(page, "#error", "don't match").await;
    assert!(!error.is_empty());
    assert!(webauthn.credentials(page, phone).await.is_empty());

    // 2. The right code: the phone creates a passkey, a fresh code is shown once.
    page.evaluate("document.querySelector('#code').value = ''")
        .await
        .unwrap();
    type_into(page, "#code", &alice.recovery_code.to_lowercase()).await;
    click(page, "#code-submit").await;
    let fresh = wait_for_text(page, "#code-value", "-").await;
    assert_eq!(fresh.len(), 19, "{fresh}");
    assert_ne!(fresh, alice.recovery_code);
    assert_eq!(webauthn.credentials(page, phone).await.len(), 1);
    click(page, "#code-saved").await;
    wait_for_page(page, "/t/acme/account?welcome=1").await;
    wait_for_text(page, "nav", "alice@example.com").await;
    assert_eq!(
        page.find_elements("tr[data-passkey-id]")
            .await
            .unwrap()
            .len(),
        2,
        "the lost laptop's passkey and the phone's"
    );

    // 3. Later, on a tablet: the emailed link. The phone stays out of it: with the WebAuthn UI
    //    off, it would answer the login page's conditional request at once and sign her in.
    webauthn.set_presence(page, phone, false).await;
    click(page, SIGN_OUT).await;
    wait_for_page(page, "/t/acme/login").await;
    // Chromium allows one platform authenticator: the second new device is a security key.
    let tablet = webauthn.add(page, AuthenticatorTransport::Usb).await;
    page.goto(format!("{}/t/acme/recover", app.address))
        .await
        .unwrap();
    wait_for_page(page, "/t/acme/recover").await;
    type_into(page, "#recover-email", "alice@example.com").await;
    click(page, "#email-submit").await;
    wait_for_text(page, "#status", "If an account exists").await;
    let link = smtp
        .wait_for_subject("alice@example.com", "Recover your")
        .await
        .link(&format!("{}/t/acme/recover/link?token=", app.address));
    let path = link.trim_start_matches(&app.address).to_string();
    page.goto(link).await.unwrap();
    wait_for_page(page, &path).await;
    wait_for_text(page, "main", "alice@example.com").await;
    assert_eq!(
        eval::<String>(page, "location.pathname").await.as_deref(),
        Some("/t/acme/recover/link")
    );
    click(page, "#create-passkey").await;
    wait_for_page(page, "/t/acme/account?welcome=1").await;
    let restricted = text(page, "#restricted").await;
    assert!(restricted.contains("recovered by email"), "{restricted}");
    assert_eq!(webauthn.credentials(page, tablet).await.len(), 1);

    let page_errors = page_errors.lock().unwrap().clone();
    assert!(
        page_errors.is_empty(),
        "the pages reported errors: {page_errors:#?}"
    );
    chromium.close().await;
}
