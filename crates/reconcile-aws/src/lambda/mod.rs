//! AWS Lambda: functions (code packed by reconcile) and their resource-based
//! permissions.

pub mod lambda_function;
pub mod lambda_permission;
pub mod package;

/// The function name in a function ARN (`arn:aws:lambda:R:A:function:NAME`,
/// with or without a version), or the name itself.
pub fn function_name_of(name_or_arn: &str) -> &str {
    match name_or_arn.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => name_or_arn,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_arns() {
        assert_eq!(
            super::function_name_of("arn:aws:lambda:us-east-1:1:function:backup"),
            "backup"
        );
        assert_eq!(
            super::function_name_of("arn:aws:lambda:us-east-1:1:function:backup:$LATEST"),
            "backup"
        );
        assert_eq!(super::function_name_of("backup"), "backup");
    }
}
