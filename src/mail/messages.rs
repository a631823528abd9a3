//! The messages passgate sends, each a plain-text and an HTML template over the same fields.

use askama::Template;

use super::{Mail, render};

macro_rules! message {
    (
        $(#[$meta:meta])*
        $name:ident ($template:literal) via $text:ident ($text_path:literal)
            and $html:ident ($html_path:literal),
        subject: |$m:ident| $subject:expr,
        { $($field:ident: $ty:ty),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(pub $field: $ty),*
        }

        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text<'a> {
            $($field: &'a $ty),*
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            $($field: &'a $ty),*
        }

        impl Mail for $name {
            const TEMPLATE: &'static str = $template;

            fn subject(&self) -> String {
                let $m = self;
                $subject
            }

            fn text(&self) -> askama::Result<String> {
                render(&$text { $($field: &self.$field),* })
            }

            fn html(&self) -> askama::Result<String> {
                render(&$html { $($field: &self.$field),* })
            }
        }
    };
}

message!(
    /// C3: the self-service recovery link.
    EmailRecoveryLink("email_recovery") via EmailRecoveryText("mail/email_recovery.txt")
        and EmailRecoveryHtml("mail/email_recovery.html"),
    subject: |m| format!("Recover your {} account", m.tenant_name),
    { tenant_name: String, email: String, link: String, minutes: i64 }
);

message!(
    /// C4: the link an administrator started.
    AdminRecoveryLink("admin_recovery") via AdminRecoveryText("mail/admin_recovery.txt")
        and AdminRecoveryHtml("mail/admin_recovery.html"),
    subject: |m| format!("Set up a new passkey for {}", m.tenant_name),
    { tenant_name: String, email: String, link: String, hours: i64, passkeys_revoked: bool }
);

message!(
    /// C2, C5: the notice that a passkey was added by recovery or from another device.
    PasskeyAdded("passkey_added") via PasskeyAddedText("mail/passkey_added.txt")
        and PasskeyAddedHtml("mail/passkey_added.html"),
    subject: |m| format!("A passkey was added to your {} account", m.tenant_name),
    { tenant_name: String, email: String, label: String, device: String, when: String, how: String, account_url: String }
);

message!(
    /// S5: an invitation to enroll a first passkey.
    Invitation("invitation") via InvitationText("mail/invitation.txt")
        and InvitationHtml("mail/invitation.html"),
    subject: |m| format!("You're invited to {}", m.tenant_name),
    { tenant_name: String, email: String, link: String, hours: i64 }
);
