//! WAFv2: regional web ACLs and their association with load balancers.

pub mod web_acl;
pub mod web_acl_association;
