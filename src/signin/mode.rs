//! The identifier step's answer (DESIGN "Login" step 1, P3): which ceremony the login page
//! runs for an email. Pure, so every account shape is table-tested.

use serde::Serialize;

/// What the login page does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// A passkey ceremony: the account's passkeys, or a decoy for an email that has none
    /// here (the same shape, P3).
    Passkey,
    /// The password fallback, for an account that has no passkey yet.
    Password,
}

/// What the identifier step knows of the account behind an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountShape {
    pub is_active: bool,
    pub passkeys: usize,
    pub has_password: bool,
    pub is_password_disabled: bool,
}

/// `Password` only for an active account with no passkey and a password it may still use;
/// every other email — unknown, inactive, passkey holders, accounts whose password is
/// disabled — gets a passkey ceremony, so the answer says nothing about the account (P3).
pub fn login_mode(account: Option<&AccountShape>) -> LoginMode {
    match account {
        Some(a) if a.is_active && a.passkeys == 0 && a.has_password && !a.is_password_disabled => {
            LoginMode::Password
        }
        _ => LoginMode::Passkey,
    }
}

#[cfg(test)]
mod tests {
    use super::{AccountShape, LoginMode, login_mode};

    fn shape(is_active: bool, passkeys: usize, has_password: bool, disabled: bool) -> AccountShape {
        AccountShape {
            is_active,
            passkeys,
            has_password,
            is_password_disabled: disabled,
        }
    }

    #[test]
    fn the_identifier_step_answers_password_only_for_an_active_password_account_without_passkeys_p3()
     {
        use LoginMode::{Passkey, Password};
        let table = [
            ("unknown email", None, Passkey),
            ("password only", Some(shape(true, 0, true, false)), Password),
            (
                "password disabled",
                Some(shape(true, 0, true, true)),
                Passkey,
            ),
            (
                "no password, no passkey",
                Some(shape(true, 0, false, false)),
                Passkey,
            ),
            (
                "one passkey and a password",
                Some(shape(true, 1, true, false)),
                Passkey,
            ),
            ("two passkeys", Some(shape(true, 2, false, false)), Passkey),
            (
                "inactive with a password",
                Some(shape(false, 0, true, false)),
                Passkey,
            ),
            (
                "inactive with a passkey",
                Some(shape(false, 1, false, false)),
                Passkey,
            ),
        ];
        for (case, account, expected) in table {
            assert_eq!(login_mode(account.as_ref()), expected, "{case}");
        }
    }
}
