//! Issue 3's browser journey in Debian's Chromium (the browser driving is in
//! `e2e_support.rs`, which says how Chromium's virtual WebAuthn environment behaves).

use chromiumoxide::cdp::browser_protocol::web_authn::AuthenticatorTransport;
use diesel::prelude::*;

use crate::e2e_support::*;
use crate::harness::{Backend, TestApp};
use passgate::passkeys::aaguid::authenticator_name;
use passgate::store::passkeys::Passkey;
use passgate::store::schema::{browser_sessions, webauthn_ceremonies};
use passgate::users::Role;

// --- the database ----------------------------------------------------------------------------

fn passkeys(app: &TestApp, tenant_id: &str, user_id: &str) -> Vec<Passkey> {
    let (tenant_id, user_id) = (tenant_id.to_string(), user_id.to_string());
    app.db(move |conn| passgate::store::passkeys::list_user_passkeys(conn, &tenant_id, &user_id))
}

/// The `amr` of every session not ended.
fn live_sessions(app: &TestApp) -> Vec<String> {
    app.db(|conn| {
        Ok(browser_sessions::table
            .filter(browser_sessions::ended_at.is_null())
            .select(browser_sessions::amr)
            .load::<String>(conn)?)
    })
}

/// Discoverable-login ceremonies started and not consumed (a login consumes its own).
fn open_discoverable_ceremonies(app: &TestApp) -> i64 {
    app.db(|conn| {
        Ok(webauthn_ceremonies::table
            .filter(webauthn_ceremonies::kind.eq("discoverable"))
            .count()
            .get_result(conn)?)
    })
}

fn sign_count(app: &TestApp, credential_id: &str) -> i64 {
    let id = credential_id.to_string();
    app.db(move |conn| passgate::store::passkeys::find_passkey_by_credential_id(conn, &id))
        .expect("passkey stored")
        .sign_count
}

/// Issue 3's browser scenario, start to end: invitation → passkey on the laptop → sign out →
/// passkey autofill (conditional UI) → sign out → "Sign in with a passkey" → the account page
/// lists it → a security key added → the laptop's passkey removed → it no longer signs in, the
/// key does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_journey_in_a_real_browser() {
    let Some(executable) = chromium() else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.create_tenant("acme").await;
    let token = app.invite(&tenant, "alice@example.com", Role::Member).await;
    let user_id = app
        .db(|conn| {
            passgate::store::users::find_user_by_email(conn, &tenant.id, "alice@example.com")
        })
        .unwrap()
        .id;

    let chromium = Chromium::launch(executable).await;
    let page = &chromium.page;
    let page_errors = page_errors(page).await;
    let mut webauthn = WebAuthn::enable(page, false).await;
    let laptop = webauthn.add(page, AuthenticatorTransport::Internal).await;

    // 1. The invitation link: what a passkey is, then one button creates it on the laptop.
    page.goto(format!("{}/t/acme/enroll?token={token}", app.address))
        .await
        .unwrap();
    wait_for_text(page, "h1", "Set up your passkey").await;
    let invitation = text(page, "main").await;
    assert!(invitation.contains("alice@example.com"), "{invitation}");
    assert!(invitation.contains("What is a passkey?"), "{invitation}");
    page.find_element("#label")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("Work laptop")
        .await
        .unwrap();
    click(page, "#create-passkey").await;
    // C1: the first passkey comes with a recovery code, shown once, grouped 4×4.
    let code = wait_for_text(page, "#code-value", "-").await;
    assert_eq!(code.len(), 19, "{code}");
    assert!(code.split('-').all(|g| g.len() == 4), "{code}");
    click(page, "#code-saved").await;
    wait_for_page(page, "/t/acme/account?welcome=1").await;
    wait_for_text(page, "main", "You're signed in with your new passkey.").await;
    let on_laptop = webauthn.credentials(page, laptop).await;
    assert_eq!(on_laptop.len(), 1, "the laptop holds one passkey");
    assert!(
        on_laptop[0].is_resident_credential,
        "residentKey required: discoverable"
    );
    let laptop_id = stored_id(&on_laptop[0]);
    let stored = passkeys(&app, &tenant.id, &user_id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, laptop_id);
    assert_eq!(stored[0].label, "Work laptop");
    assert!(stored[0].user_verified);
    assert!(
        stored[0].transports.contains("internal"),
        "{}",
        stored[0].transports
    );
    assert_eq!(live_sessions(&app).len(), 1, "enrollment signed her in");

    // 2. Sign out. The login page it lands on starts a conditional request; with the UI on it
    //    waits for the person.
    webauthn.set_ui(page, true).await;
    click(page, SIGN_OUT).await;
    wait_for_page(page, "/t/acme/login").await;
    assert!(live_sessions(&app).is_empty(), "signed out");

    // 3. Conditional UI: the passkey is offered in the email field's autofill; picking it
    //    signs in, with nothing typed and no button pressed.
    highlight_passkey_suggestion(page).await;
    assert_eq!(
        eval::<String>(page, "location.pathname").await.as_deref(),
        Some("/t/acme/login"),
        "nothing happens before the person picks the passkey"
    );
    assert!(live_sessions(&app).is_empty());
    assert_eq!(
        open_discoverable_ceremonies(&app),
        1,
        "the page's conditional request"
    );
    let count = sign_count(&app, &laptop_id);
    accept_highlighted_passkey(page, &webauthn, laptop).await;
    wait_for_page(page, "/t/acme/account").await;
    wait_for_text(page, "nav", "alice@example.com").await;
    let sessions = live_sessions(&app);
    assert_eq!(sessions.len(), 1, "signed in: {sessions:?}");
    assert!(
        sessions[0].contains("mfa"),
        "the laptop verified her: {sessions:?}"
    );
    assert_eq!(
        open_discoverable_ceremonies(&app),
        0,
        "the conditional request's own ceremony signed her in"
    );
    assert!(
        sign_count(&app, &laptop_id) > count,
        "the laptop's passkey signed"
    );

    // 4. Sign out; this time she ignores the suggestion and presses "Sign in with a passkey"
    //    (the account picker). Waiting for the suggestion first makes sure the conditional
    //    request is pending before the UI goes off for the modal request.
    click(page, SIGN_OUT).await;
    wait_for_page(page, "/t/acme/login").await;
    assert!(live_sessions(&app).is_empty(), "signed out");
    highlight_passkey_suggestion(page).await;
    press(page, "Escape", 27).await;
    webauthn.set_ui(page, false).await;
    let count = sign_count(&app, &laptop_id);
    click(page, "#passkey-button").await;
    wait_for_page(page, "/t/acme/account").await;
    assert_eq!(live_sessions(&app).len(), 1, "signed in");
    assert_eq!(
        open_discoverable_ceremonies(&app),
        1,
        "the button's ceremony signed her in; the aborted conditional one is left unused"
    );
    assert!(
        sign_count(&app, &laptop_id) > count,
        "the laptop's passkey signed"
    );

    // 5. The account page lists the passkey by name, in a row carrying its credential id.
    let row = format!("tr[data-credential-id='{laptop_id}']");
    assert_eq!(
        passkey_name(page, &laptop_id).await.as_deref(),
        Some("Work laptop")
    );
    let cells = text(page, &row).await;
    let stored = passkeys(&app, &tenant.id, &user_id);
    let named = authenticator_name(&stored[0].aaguid, stored[0].backup_eligible);
    assert!(cells.contains(&named), "authenticator {named:?} in {cells}");
    assert!(cells.contains("this device only"), "{cells}");
    wait_for_text(page, "#nudge", "You have only one passkey").await;

    // 6. "Add a passkey" with a USB security key, the one that answers now (nobody touches
    //    the laptop's authenticator).
    let key = webauthn.add(page, AuthenticatorTransport::Usb).await;
    webauthn.set_presence(page, laptop, false).await;
    click(page, "#add-passkey").await;
    wait_for_page(page, "/t/acme/account?added=1").await;
    wait_for_text(page, "main", "Your new passkey is ready.").await;
    let on_key = webauthn.credentials(page, key).await;
    assert_eq!(on_key.len(), 1, "the key holds one passkey");
    let key_id = stored_id(&on_key[0]);
    assert_eq!(
        webauthn.credentials(page, laptop).await.len(),
        1,
        "nothing new on the laptop"
    );
    let stored = passkeys(&app, &tenant.id, &user_id);
    assert_eq!(stored.len(), 2);
    let added = stored.iter().find(|p| p.credential_id == key_id).unwrap();
    assert!(added.transports.contains("usb"), "{}", added.transports);
    assert_eq!(
        passkey_name(page, &key_id).await.as_deref(),
        Some(added.label.as_str()),
        "named by default"
    );
    assert!(!added.label.is_empty());
    let rows = passkey_rows(page).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.contains(&laptop_id) && rows.contains(&key_id),
        "{rows:?}"
    );

    // 7. Remove the laptop's passkey: its Remove link, the confirmation page, "Remove passkey".
    click(page, &format!("{row} a")).await;
    wait_for_text(page, "h1", "Remove “Work laptop”?").await;
    let confirmation = text(page, "main").await;
    assert!(
        confirmation.contains("Your other passkeys keep working."),
        "{confirmation}"
    );
    click(page, "main form button[type=submit]").await;
    wait_for_page(page, "/t/acme/account").await;
    let rows = passkey_rows(page).await;
    assert_eq!(rows, vec![key_id.clone()]);
    let stored = passkeys(&app, &tenant.id, &user_id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, key_id);

    // 8. Sign out. The laptop still holds the removed passkey and offers it: it is refused
    //    with a clear message, and no session starts.
    webauthn.set_ui(page, true).await;
    click(page, SIGN_OUT).await;
    wait_for_page(page, "/t/acme/login").await;
    assert!(live_sessions(&app).is_empty(), "signed out");
    highlight_passkey_suggestion(page).await;
    press(page, "Escape", 27).await;
    webauthn.set_ui(page, false).await;
    webauthn.set_presence(page, laptop, true).await;
    webauthn.set_presence(page, key, false).await;
    let laptop_count = webauthn.credentials(page, laptop).await[0].sign_count;
    click(page, "#passkey-button").await;
    let error = wait_for_text(page, "#error", "not registered").await;
    assert!(error.contains("That passkey is not registered"), "{error}");
    assert!(
        webauthn.credentials(page, laptop).await[0].sign_count > laptop_count,
        "the laptop's removed passkey was the one offered"
    );
    assert_eq!(
        eval::<String>(page, "location.pathname").await.as_deref(),
        Some("/t/acme/login")
    );
    assert!(
        live_sessions(&app).is_empty(),
        "no session for a removed passkey"
    );
    let events = app.db(|conn| passgate::store::auth_events::list_auth_events(conn, &tenant.id));
    let refusals: Vec<_> = events.iter().filter(|e| e.outcome == "failure").collect();
    assert_eq!(refusals.len(), 1, "{events:?}");
    assert_eq!(
        refusals[0].failure_reason.as_deref(),
        Some("unknown_credential")
    );

    // 9. The security key still signs in.
    webauthn.set_presence(page, laptop, false).await;
    webauthn.set_presence(page, key, true).await;
    let count = sign_count(&app, &key_id);
    click(page, "#passkey-button").await;
    wait_for_page(page, "/t/acme/account").await;
    wait_for_text(page, "nav", "alice@example.com").await;
    assert_eq!(live_sessions(&app).len(), 1, "signed in with the key");
    assert!(
        sign_count(&app, &key_id) > count,
        "the key's passkey signed"
    );

    let page_errors = page_errors.lock().unwrap().clone();
    assert!(
        page_errors.is_empty(),
        "the pages reported errors: {page_errors:#?}"
    );
    chromium.close().await;
}
