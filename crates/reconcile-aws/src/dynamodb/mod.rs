//! Amazon DynamoDB: tables.

pub mod dynamodb_table;
