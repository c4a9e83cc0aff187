//! `web_acl_association`: puts a regional web ACL in front of a resource (an
//! application load balancer, an API Gateway stage, ...).
//!
//! Its id is `<web acl arn>|<resource arn>`. WAF can only be asked about one
//! resource at a time (`GetWebACLForResource`), so observing costs one call per
//! association. A resource holds one web ACL at most: a delete only
//! disassociates when the resource still holds this association's ACL, so a
//! replacement (or someone else's ACL) is never torn off by mistake.

use crate::elbv2::{diagnostics, Problem};
use crate::kit::each;
use crate::kit::error::at;
use crate::kit::error::unless_gone as found;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use crate::wafv2::web_acl::{waf_error, AclArn};
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_STACK};
use std::collections::HashMap;

pub struct WebAclAssociation;

pub static SCHEMA: Schema = Schema {
    kind: "web_acl_association",
    doc: "Associates a REGIONAL web ACL with a resource (an application load balancer, an API \
          Gateway stage, ...). Its id is `<web acl arn>|<resource arn>`. Observing costs one \
          GetWebACLForResource per association (WAF answers per resource only). Deleting it \
          disassociates the resource, only while it still holds this ACL. Not taggable.",
    fields: &[
        Field::new(
            "web_acl_arn",
            Ty::Str,
            "The web ACL's ARN, like \"${web_acl.main.arn}\". Changing it replaces the association.",
        )
        .required()
        .force_new(),
        Field::new(
            "resource_arn",
            Ty::Str,
            "The ARN of the resource to protect (an application load balancer, say). Changing it \
             replaces the association.",
        )
        .required()
        .force_new(),
    ],
    attributes: &[("id", "`<web acl arn>|<resource arn>`.")],
    taggable: false,
};

/// The two ARNs of an association id.
pub fn split_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('|')
        .filter(|(a, r)| a.starts_with("arn:") && r.starts_with("arn:"))
}

fn bad_id(id: &str) -> ProviderError {
    ProviderError::InvalidInput(format!(
        "`{id}` is not a web ACL association id: write it `<web acl arn>|<resource arn>`"
    ))
}

fn observed(acl: &str, resource: &str) -> Observed {
    let id = format!("{acl}|{resource}");
    let mut fields = Fields::new();
    fields.insert("web_acl_arn".into(), Value::str(acl));
    fields.insert("resource_arn".into(), Value::str(resource));
    let mut attributes = Fields::new();
    attributes.insert("id".into(), Value::str(&id));
    Observed {
        id,
        fields,
        attributes,
        tags: Default::default(),
    }
}

/// The ARN of the web ACL a resource holds; `None` when it holds none or is gone.
pub async fn acl_of(cx: &Cx, resource: &str) -> Result<Option<String>, ProviderError> {
    let req = cx.wafv2.get_web_acl_for_resource().resource_arn(resource);
    let out = found(req.send().await.map_err(waf_error))?;
    Ok(out.and_then(|o| o.web_acl().map(|a| a.arn().to_string())))
}

/// Problems in one declaration. Values still holding a reference are checked
/// at apply time by AWS itself.
pub fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    let literal = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.contains("${"))
    };
    if let Some(a) = literal("web_acl_arn") {
        match AclArn::parse(a) {
            None => out.push((
                "web_acl_arn",
                format!("\"{a}\" is not a web ACL ARN"),
                "write `web_acl_arn = \"${web_acl.NAME.arn}\"`".into(),
            )),
            Some(p) if p.scope != "REGIONAL" => out.push((
                "web_acl_arn",
                format!("\"{a}\" is a CLOUDFRONT web ACL"),
                "a CloudFront distribution names its web ACL itself; associate a REGIONAL one here"
                    .into(),
            )),
            Some(_) => {}
        }
    }
    if let Some(r) = literal("resource_arn") {
        if !r.starts_with("arn:") {
            out.push((
                "resource_arn",
                format!("\"{r}\" is not an ARN"),
                "write the resource's ARN, like \"${load_balancer.NAME.arn}\"".into(),
            ));
        } else if r.contains(":loadbalancer/net/") {
            out.push((
                "resource_arn",
                "a network load balancer cannot hold a web ACL".into(),
                "associate an application load balancer (or API Gateway stage) instead".into(),
            ));
        }
    }
    out
}

#[async_trait::async_trait]
impl Provider for WebAclAssociation {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    /// A resource holds one web ACL: the old association goes before the new one
    /// is made, or the delete would tear the new ACL off.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        false
    }

    /// One GetWebACLForResource per association: WAF has no batch form.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let pairs: Vec<(String, String)> = ids
            .iter()
            .map(|id| {
                split_id(id)
                    .map(|(a, r)| (a.to_string(), r.to_string()))
                    .ok_or_else(|| bad_id(id))
            })
            .collect::<Result<_, _>>()?;
        let calls = pairs.into_iter().map(|(acl, resource)| async move {
            let live = acl_of(cx, &resource).await?;
            Ok((live.as_deref() == Some(acl.as_str())).then(|| observed(&acl, &resource)))
        });
        let found = each(calls.collect()).await?;
        Ok(found.into_iter().map(|o| (o.id.clone(), o)).collect())
    }

    /// Not taggable: an interrupted create is simply made again (associating
    /// the same pair twice is harmless).
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let get = |k: &str| {
            want.fields
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| s.starts_with("arn:"))
                .map(str::to_string)
                .ok_or_else(|| {
                    ProviderError::InvalidInput(format!("{addr}: `{k}` must be a known ARN"))
                })
        };
        let acl = get("web_acl_arn")?;
        let resource = get("resource_arn")?;
        if let Some((field, msg, help)) = problems(want.fields).into_iter().next() {
            return Err(ProviderError::InvalidInput(format!(
                "{addr}: {field}: {msg}; {help}"
            )));
        }
        // AWS would silently swap a resource's web ACL: look first. Another ACL of
        // this stack may be swapped (a replacement in flight); anyone else's is not.
        match acl_of(cx, &resource).await? {
            Some(current) if current == acl => return Ok(observed(&acl, &resource)),
            Some(current) => {
                let ours = match AclArn::parse(&current) {
                    Some(_) => crate::wafv2::web_acl::list_tags(cx, &current)
                        .await
                        .map(|t| t.get(TAG_STACK) == Some(&cx.stack))
                        .unwrap_or(false),
                    None => false,
                };
                if !ours {
                    return Err(ProviderError::InvalidInput(format!(
                        "{addr}: {resource} is already protected by web ACL {current}, which this stack \
                         does not manage; disassociate it first (or import its association with \
                         `reconcile import {addr} '{current}|{resource}'`)"
                    )));
                }
            }
            None => {}
        }
        cx.wafv2
            .associate_web_acl()
            .web_acl_arn(&acl)
            .resource_arn(&resource)
            .send()
            .await
            .map_err(|e| at(addr, "AssociateWebACL", waf_error(e)))?;
        Ok(observed(&acl, &resource))
    }

    /// Every field forces a replacement: there is nothing to change in place.
    async fn update(
        &self,
        _cx: &Cx,
        live: &Observed,
        _want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        Ok(live.clone())
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (acl, resource) = split_id(id).ok_or_else(|| bad_id(id))?;
        if acl_of(cx, resource).await?.as_deref() != Some(acl) {
            return Ok(());
        }
        match cx
            .wafv2
            .disassociate_web_acl()
            .resource_arn(resource)
            .send()
            .await
            .map_err(waf_error)
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(at(id, "DisassociateWebACL", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_validation() {
        let acl = "arn:aws:wafv2:us-east-1:1:regional/webacl/a/b";
        let alb = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1";
        let id = format!("{acl}|{alb}");
        assert_eq!(split_id(&id), Some((acl, alb)));
        assert!(split_id("x|y").is_none());
        let o = observed(acl, alb);
        assert_eq!(o.id, id);
        assert_eq!(o.attributes["id"], Value::str(&id));

        let f = |a: &str, r: &str| -> Fields {
            [
                ("web_acl_arn".to_string(), Value::str(a)),
                ("resource_arn".to_string(), Value::str(r)),
            ]
            .into_iter()
            .collect()
        };
        assert!(problems(&f(acl, alb)).is_empty());
        assert!(problems(&f("${web_acl.main.arn}", alb)).is_empty());
        assert_eq!(problems(&f("nope", alb))[0].0, "web_acl_arn");
        assert!(
            problems(&f("arn:aws:wafv2:us-east-1:1:global/webacl/a/b", alb))[0]
                .1
                .contains("CLOUDFRONT")
        );
        assert!(problems(&f(
            acl,
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/x/1"
        ))[0]
            .1
            .contains("network"));
    }
}
