//! How enrollment's and recovery's refusals read.

use super::AppError;

impl From<crate::enrollment::EnrollmentError> for AppError {
    fn from(e: crate::enrollment::EnrollmentError) -> Self {
        use crate::enrollment::EnrollmentError as E;
        match e {
            E::LinkInvalid => AppError::not_found(
                "This link has expired or was already used. Ask for a new one where you got it, or ask your administrator.",
            )
            .with_code("link_invalid"),
            E::AlreadyActive(_) => AppError::conflict(e.to_string()),
            E::NotYours => AppError::forbidden(e.to_string()),
            E::EmailRecoveryOff => AppError::forbidden(e.to_string()).with_code("email_recovery_off"),
            E::Passkey(e) => e.into(),
            E::User(e) => e.into(),
            E::Tenant(e) => e.into(),
            E::Recovery(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::recovery::RecoveryError> for AppError {
    fn from(e: crate::recovery::RecoveryError) -> Self {
        use crate::recovery::RecoveryError as R;
        match e {
            R::WrongCode => AppError::unauthorized(
                "That email and recovery code don't match, or the code is locked after too many attempts. Check the code, or recover by email or with your administrator.",
            )
            .with_code("invalid_recovery_code"),
            R::EmailRecoveryOff => AppError::forbidden(e.to_string()).with_code("email_recovery_off"),
            R::UserNotFound => AppError::not_found("No such user in this organisation."),
            R::Forbidden(why) => AppError::forbidden(format!("Not allowed: {why}.")),
            R::StepUpRequired => AppError::forbidden(
                "Your account was recovered recently. For your security, sign in again with a passkey you had before the recovery, then try again.",
            )
            .with_code("step_up_required"),
            R::Passkey(e) => e.into(),
            R::Store(e) => e.into(),
        }
    }
}
