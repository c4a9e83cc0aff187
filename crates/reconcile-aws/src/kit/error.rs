//! Typed AWS errors: every SDK error becomes a [`ProviderError`] by its AWS
//! error code, so callers tell throttling, absence and refusals apart.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Typed provider errors: callers tell these apart (retry, report, skip).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("throttled by AWS: {0}")]
    Throttled(String),
    #[error("dependency violation: {0}")]
    DependencyViolation(String),
    /// The resource is in a state that refuses the call right now (in use,
    /// being modified, changed by someone else meanwhile).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// Types an SDK error by its AWS error code, keeping AWS's own message.
    pub fn from_sdk<E, R>(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let (code, message) = match e.as_service_error() {
            Some(se) => (
                se.code().unwrap_or("Unknown").to_string(),
                se.message().unwrap_or("").to_string(),
            ),
            None => return ProviderError::Other(transport_message(&e)),
        };
        let text = if message.is_empty() {
            code.clone()
        } else {
            format!("{code}: {message}")
        };
        if code.ends_with(".NotFound")
            || code.ends_with("NotFound")
            || code == "ResourceNotFoundException"
            || code == "NotFoundException"
            || code == "NoSuchEntity"
            || code == "NoSuchHostedZone"
            || code == "NoSuchDistribution"
            || code == "NoSuchOriginAccessControl"
        {
            ProviderError::NotFound(text)
        } else if code.contains("Throttl") || code == "RequestLimitExceeded" {
            ProviderError::Throttled(text)
        } else if code == "DependencyViolation" {
            ProviderError::DependencyViolation(text)
        } else if code.starts_with("AccessDenied")
            || code == "UnauthorizedOperation"
            || code == "AuthFailure"
            || code == "UnrecognizedClientException"
        {
            ProviderError::AccessDenied(text)
        } else if code == "ConflictException"
            || code == "ResourceInUseException"
            || code == "ResourceConflictException"
            || code == "OperationAbortedException"
        {
            ProviderError::Conflict(text)
        } else if code.starts_with("InvalidParameter")
            || code == "ValidationException"
            || code.ends_with(".Malformed")
        {
            ProviderError::InvalidInput(text)
        } else {
            ProviderError::Aws { code, message }
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ProviderError::NotFound(_))
    }

    /// The AWS error code of an answer reconcile has no type for, which a
    /// kind may still know (`RepositoryNotEmptyException`, say).
    pub fn code(&self) -> Option<&str> {
        match self {
            ProviderError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl<E, R> From<aws_smithy_runtime_api::client::result::SdkError<E, R>> for ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    fn from(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Self {
        ProviderError::from_sdk(e)
    }
}

/// An answer (an SDK one, or already typed) with "not found" as `None`: a read
/// of one thing that may be gone.
pub fn unless_gone<T, X: Into<ProviderError>>(r: Result<T, X>) -> Result<Option<T>, ProviderError> {
    match r.map_err(Into::into) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete's answer: what is gone already counts as deleted.
pub fn gone_is_done<T, X: Into<ProviderError>>(r: Result<T, X>) -> Result<(), ProviderError> {
    unless_gone(r).map(|_| ())
}

/// A short account of a request that never got an AWS answer: the innermost
/// cause, and what to do when it is the usual one (no credentials).
fn transport_message(e: &(dyn std::error::Error + 'static)) -> String {
    let full = DisplayErrorContext(e).to_string();
    if full.contains("loading credentials") || full.contains("no providers in chain") {
        return "no AWS credentials: the standard chain (environment, profile, SSO, IMDS) found none; \
                set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            .into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("cannot reach AWS: {e}: {cause}")
}

impl ProviderError {
    /// The same error with its message rewritten; its type is kept, so a
    /// throttled call stays throttled however much context it gathers.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            ProviderError::NotFound(m) => ProviderError::NotFound(f(m)),
            ProviderError::Throttled(m) => ProviderError::Throttled(f(m)),
            ProviderError::DependencyViolation(m) => ProviderError::DependencyViolation(f(m)),
            ProviderError::Conflict(m) => ProviderError::Conflict(f(m)),
            ProviderError::AccessDenied(m) => ProviderError::AccessDenied(f(m)),
            ProviderError::InvalidInput(m) => ProviderError::InvalidInput(f(m)),
            ProviderError::Aws { code, message } => ProviderError::Aws {
                code,
                message: f(message),
            },
            ProviderError::Other(m) => ProviderError::Other(f(m)),
        }
    }
}

/// Prefixes an error with the address and the operation, keeping its type.
pub fn at(address: &str, op: &str, e: ProviderError) -> ProviderError {
    e.map_message(|m| format!("{address}: {op}: {m}"))
}

/// As [`at`], followed by what the reader can do about it.
pub fn at_with_hint(address: &str, doing: &str, hint: &str, e: ProviderError) -> ProviderError {
    e.map_message(|m| format!("{address}: {doing}: {m} ({hint})"))
}
