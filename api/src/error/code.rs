//! [`ErrorCode`]: every stable code an `/api/*` error answers, with its HTTP status, in one
//! table. Clients (the web app's `ERROR_CODE_KEYS` in `web/assets/js/i18n.js`, scripts) key on
//! these strings: never rename one; add a variant (and the web app's message) instead.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Defines [`ErrorCode`] from one table: variant, wire string (kebab-case of the variant, as
/// serde writes it; a test checks the two agree) and HTTP status.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => ($wire:literal, $status:ident),)+) => {
        /// A stable, kebab-case error code: the `code` of every `/api/*` error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "kebab-case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as it is sent (`"too-many-uploads"`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }

            /// The HTTP status every error with this code answers.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)+
                }
            }
        }
    };
}

error_codes! {
    // 400: the request is malformed or a field is invalid.
    /// The JSON (or webhook) body is missing, malformed or lacks a field.
    InvalidBody => ("invalid-body", BAD_REQUEST),
    /// A form field is too long or not UTF-8.
    InvalidField => ("invalid-field", BAD_REQUEST),
    /// A mastering parameter, query parameter or style is out of range or unknown.
    InvalidParameter => ("invalid-parameter", BAD_REQUEST),
    /// The upload is not well-formed multipart/form-data.
    InvalidMultipart => ("invalid-multipart", BAD_REQUEST),
    /// The upload has a form field the route does not take.
    UnknownField => ("unknown-field", BAD_REQUEST),
    /// The upload repeats a form field.
    DuplicateField => ("duplicate-field", BAD_REQUEST),
    /// The upload has no `file` field.
    MissingFile => ("missing-file", BAD_REQUEST),
    /// The uploaded file is empty.
    EmptyFile => ("empty-file", BAD_REQUEST),
    /// The audio is damaged: its container or stream cannot be decoded.
    CorruptAudio => ("corrupt-audio", BAD_REQUEST),
    /// The audio is too short to master.
    TooShort => ("too-short", BAD_REQUEST),
    /// The audio is digital silence.
    SilentAudio => ("silent-audio", BAD_REQUEST),
    /// The e-mail address is not valid.
    InvalidEmail => ("invalid-email", BAD_REQUEST),
    /// The password is too short.
    WeakPassword => ("weak-password", BAD_REQUEST),
    /// An admin asked for a tier that does not exist.
    InvalidTier => ("invalid-tier", BAD_REQUEST),
    /// There is no plan with that id.
    UnknownPlan => ("unknown-plan", BAD_REQUEST),
    /// The plan would replace a higher tier that is still running.
    PlanBelowCurrentTier => ("plan-below-current-tier", BAD_REQUEST),

    // 401: no valid login.
    /// The route needs a login and none was sent.
    NotAuthenticated => ("not-authenticated", UNAUTHORIZED),
    /// The access token is malformed, forged, or its account is gone.
    InvalidToken => ("invalid-token", UNAUTHORIZED),
    /// The access token has expired.
    TokenExpired => ("token-expired", UNAUTHORIZED),
    /// Wrong e-mail or password.
    InvalidCredentials => ("invalid-credentials", UNAUTHORIZED),

    // 403: logged in (or known) but not allowed.
    /// The route is for administrators.
    AdminOnly => ("admin-only", FORBIDDEN),
    /// The account is blocked.
    UserBlocked => ("user-blocked", FORBIDDEN),
    /// The output format needs a paid plan.
    FormatNotAllowed => ("format-not-allowed", FORBIDDEN),
    /// A payment notification from outside the provider's addresses.
    WebhookForbidden => ("webhook-forbidden", FORBIDDEN),

    /// 404: no such job, payment or route.
    NotFound => ("not-found", NOT_FOUND),

    // 408: the request body stalled or trickled (the connection is closed).
    /// No byte of the body for the idle timeout.
    BodyTimeout => ("body-timeout", REQUEST_TIMEOUT),
    /// The body arrived slower than the minimum rate.
    BodyTooSlow => ("body-too-slow", REQUEST_TIMEOUT),

    // 409: the request conflicts with the current state.
    /// An account with this e-mail exists.
    EmailTaken => ("email-taken", CONFLICT),
    /// The job has no result (yet).
    NotReady => ("not-ready", CONFLICT),
    /// Only a failed job can be retried.
    NotFailed => ("not-failed", CONFLICT),
    /// The job was cancelled by its owner: it has no result (also the status document's
    /// `error_code` of such a job).
    Cancelled => ("cancelled", CONFLICT),
    /// The job has already finished: there is nothing to cancel.
    AlreadyFinished => ("already-finished", CONFLICT),

    /// 410: the job's files were deleted after the retention period.
    Expired => ("expired", GONE),

    // 413
    /// The body or upload is larger than its limit.
    TooLarge => ("too-large", PAYLOAD_TOO_LARGE),
    /// The audio lasts longer than `MAX_DURATION_SECONDS`.
    TooLong => ("too-long", PAYLOAD_TOO_LARGE),

    /// 415: the file is not audio we can read.
    UnsupportedMedia => ("unsupported-media", UNSUPPORTED_MEDIA_TYPE),

    // 429 (with `Retry-After`): a limit that passes with time.
    /// A request-rate limit (global, login, analyses).
    RateLimited => ("rate-limited", TOO_MANY_REQUESTS),
    /// The daily masters (and tokens) are used up; the body has `reset_at`.
    QuotaExhausted => ("quota-exhausted", TOO_MANY_REQUESTS),
    /// This client has as many uploads in flight as allowed.
    TooManyUploads => ("too-many-uploads", TOO_MANY_REQUESTS),
    /// This client follows as many job streams as allowed.
    TooManyStreams => ("too-many-streams", TOO_MANY_REQUESTS),

    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    Internal => ("internal", INTERNAL_SERVER_ERROR),

    /// 502: the payment provider refused or answered nonsense.
    PaymentProviderError => ("payment-provider-error", BAD_GATEWAY),

    // 503: try again shortly.
    /// A dependency (database, queue, disk, the payment provider) failed; the cause is logged.
    Unavailable => ("unavailable", SERVICE_UNAVAILABLE),
    /// Uploads in flight over all clients are at their cap (with `Retry-After`).
    UploadsBusy => ("uploads-busy", SERVICE_UNAVAILABLE),
    /// Job streams over all clients are at their cap (with `Retry-After`).
    StreamsBusy => ("streams-busy", SERVICE_UNAVAILABLE),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    /// The web app's texts and its code → text map (`ERROR_CODE_KEYS`).
    const WEB_TEXTS: &str = include_str!("../../../web/assets/js/i18n.js");

    /// The `'key': …` entries of the object literal that opens with the line `opening` and
    /// closes with the first line that is `closing`, in `WEB_TEXTS`.
    fn object_entries(opening: &str, closing: &str) -> Vec<(String, String)> {
        let mut lines = WEB_TEXTS.lines().skip_while(|line| *line != opening);
        assert!(lines.next().is_some(), "no line {opening:?} in i18n.js");
        lines
            .take_while(|line| *line != closing)
            .filter_map(|line| {
                let entry = line.trim().strip_prefix('\'')?;
                let (key, value) = entry.split_once("':")?;
                let value = value.trim().trim_end_matches(',').trim_matches('\'');
                Some((key.to_owned(), value.to_owned()))
            })
            .collect()
    }

    #[test]
    fn the_web_app_has_a_message_for_every_code_and_none_for_codes_never_sent() {
        let mapped = object_entries("export const ERROR_CODE_KEYS = {", "};");
        let web_codes: BTreeSet<&str> = mapped.iter().map(|(code, _)| code.as_str()).collect();
        let api_codes: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let without_message: Vec<_> = api_codes.difference(&web_codes).collect();
        let never_sent: Vec<_> = web_codes.difference(&api_codes).collect();
        assert!(
            without_message.is_empty(),
            "codes the API sends without a message in ERROR_CODE_KEYS: {without_message:?}"
        );
        assert!(
            never_sent.is_empty(),
            "ERROR_CODE_KEYS has messages for codes the API never sends: {never_sent:?}"
        );
        for language in ["en", "ru"] {
            let texts = object_entries(&format!("  {language}: {{"), "  },");
            assert!(!texts.is_empty(), "no {language} texts found in i18n.js");
            let keys: HashSet<&str> = texts.iter().map(|(key, _)| key.as_str()).collect();
            for (code, key) in &mapped {
                assert!(
                    keys.contains(key.as_str()),
                    "{code} maps to {key}, which has no {language} text"
                );
            }
        }
    }

    #[test]
    fn every_wire_string_is_what_serde_writes_and_reads() {
        for &code in ErrorCode::ALL {
            let written = serde_json::to_value(code).unwrap();
            assert_eq!(written, code.as_str(), "{code:?}");
            let read: ErrorCode = serde_json::from_value(written).unwrap();
            assert_eq!(read, code);
        }
    }

    #[test]
    fn codes_are_unique_and_every_status_is_an_error() {
        let wire: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(wire.len(), ErrorCode::ALL.len());
        for &code in ErrorCode::ALL {
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}: {status}"
            );
        }
    }
}
