//! How sign-in's refusals read: passkey ceremonies, passwords, the hashing pool.

use super::AppError;

impl From<crate::passkeys::PasskeyError> for AppError {
    fn from(e: crate::passkeys::PasskeyError) -> Self {
        use crate::passkeys::PasskeyError as P;
        match e {
            P::CeremonyNotFound => AppError::bad_request(
                "This attempt expired or was already used. Please start again.",
            )
            .with_code("ceremony_expired"),
            P::Verification(detail) => {
                tracing::info!(%detail, "passkey response refused");
                AppError::bad_request("Your passkey's response could not be verified. Please try again.")
                    .with_code("verification_failed")
            }
            P::AmbiguousCredential => AppError::bad_request(e.to_string()).with_code("verification_failed"),
            P::UnknownCredential => AppError::unauthorized(
                "That passkey is not registered for this account here. Try another passkey or sign in another way.",
            )
            .with_code("unknown_credential"),
            P::AlreadyRegistered => {
                AppError::conflict("This passkey is already registered.").with_code("already_registered")
            }
            P::UserVerificationRequired => AppError::forbidden(
                "Your organisation requires unlocking your passkey with a PIN or biometric. Set one up on your device or security key and try again.",
            )
            .with_code("user_verification_required"),
            P::PolicyRefused { rule, reason } => {
                AppError::forbidden(format!("{reason}. (Your organisation's policy \"{rule}\".)"))
                    .with_code("policy_refused")
            }
            P::CounterRegression => AppError::forbidden(
                "This passkey looks like a copy (its signature counter went backwards), and your organisation's policy refuses it. Use another passkey or contact your administrator.",
            )
            .with_code("policy_refused"),
            P::AccountInactive => AppError::forbidden("This account cannot sign in.").with_code("account_inactive"),
            P::InvalidLabel => AppError::bad_request(e.to_string()),
            P::Policy(e) => AppError::internal(e),
            P::Store(e) => e.into(),
            P::Internal(e) => AppError::internal(e),
        }
    }
}

impl From<crate::signin::SignInError> for AppError {
    fn from(e: crate::signin::SignInError) -> Self {
        use crate::signin::SignInError as S;
        match e {
            S::Passkey(e) => e.into(),
            S::WrongPassword => {
                AppError::unauthorized("Wrong email or password.").with_code("invalid_credentials")
            }
            S::Password(e) => e.into(),
            S::Store(e) => e.into(),
        }
    }
}

impl From<crate::passwords::PasswordError> for AppError {
    fn from(e: crate::passwords::PasswordError) -> Self {
        use crate::passwords::PasswordError as P;
        match e {
            P::Overloaded => {
                let mut err = AppError::unavailable(
                    "Too many sign-ins are being checked right now. Please try again in a moment.",
                );
                err.retry_after = Some(1);
                err
            }
            P::TooShort | P::TooLong => AppError::bad_request(e.to_string()),
            P::Hashing(e) => AppError::internal(e),
        }
    }
}
