//! Desired state: reads a stack's TOML files, checks them against the kinds' schemas and
//! produces a validated [`Stack`], or every problem at once as [`Diagnostic`]s.

pub mod diag;
pub mod schema;
pub mod value;

pub use diag::{Diagnostic, Pos};
pub use schema::{Schema, Ty};
pub use value::{Fields, Reference, Value};

use diag::{suggest, LineIndex};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use value::{parse_template, TemplatePart};

/// What the loader needs to know of the kinds: their names and schemas. The
/// full kind catalog (`catalog::KindCatalog`) extends it; the loader asks no more.
pub trait Schemas {
    /// Every kind, in documentation order.
    fn kinds(&self) -> Vec<&'static str>;
    fn schema(&self, kind: &str) -> Option<&'static Schema>;
}

type Catalog<'a> = &'a dyn Schemas;

#[derive(Clone, Debug)]
pub struct Resource {
    pub address: String,
    pub kind: String,
    pub name: String,
    /// Declared fields plus schema defaults; inputs substituted, resource references kept.
    pub fields: Fields,
    pub depends_on: Vec<String>,
    pub protect: bool,
    pub ignore_changes: Vec<String>,
    /// Stack tags merged with the resource's own (without the `reconcile:*` tags).
    pub tags: IndexMap<String, String>,
    pub pos: Pos,
    pub field_pos: IndexMap<String, Pos>,
    /// Every reference and where it is written.
    pub refs: Vec<(Reference, Pos)>,
}

#[derive(Clone, Debug)]
pub struct Output {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Stack {
    pub name: String,
    pub region: String,
    pub tags: IndexMap<String, String>,
    /// Where the stack's state lives (`s3://bucket/prefix`), when not in the
    /// local state directory.
    pub state: Option<String>,
    pub source: PathBuf,
    pub resources: IndexMap<String, Resource>,
    pub outputs: IndexMap<String, Output>,
}

/// Where a stack's inputs come from besides their defaults.
#[derive(Default, Clone)]
pub struct InputValues {
    /// `--input NAME=VALUE`
    pub cli: IndexMap<String, String>,
    /// `RECONCILE_INPUT_<NAME>` variables, already read from the environment.
    pub env: IndexMap<String, String>,
}

impl InputValues {
    pub fn from_env(cli: IndexMap<String, String>) -> Self {
        let env = std::env::vars()
            .filter_map(|(k, v)| {
                k.strip_prefix("RECONCILE_INPUT_")
                    .map(|n| (n.to_ascii_lowercase(), v))
            })
            .collect();
        InputValues { cli, env }
    }
}

/// The stacks under a `desired-state/` directory: each `.toml` file and each
/// sub-directory holding `.toml` files is one stack.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        Diagnostic::nowhere(
            format!("cannot read {}: {e}", root.display()),
            "run from the project directory, or pass the stack's path",
        )
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            (p.is_file() && p.extension().is_some_and(|x| x == "toml"))
                || (p.is_dir() && toml_files(p).map(|f| !f.is_empty()).unwrap_or(false))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and validates one stack (a `.toml` file or a directory of them).
pub fn load(
    path: &Path,
    catalog: &dyn Schemas,
    inputs: &InputValues,
    region_override: Option<&str>,
) -> Result<Stack, Vec<Diagnostic>> {
    match load_all(path, catalog, inputs, region_override) {
        (Some(stack), d) if d.is_empty() => Ok(stack),
        (_, d) => Err(d),
    }
}

/// As [`load`], but also returns what could be read when there are problems, so
/// the caller can look for more (dependency cycles) and report everything at once.
pub fn load_all(
    path: &Path,
    catalog: &dyn Schemas,
    inputs: &InputValues,
    region_override: Option<&str>,
) -> (Option<Stack>, Vec<Diagnostic>) {
    match read_files(path) {
        Ok(texts) => Loader::new(catalog).run(path, &texts, inputs, region_override),
        Err(d) => (None, d),
    }
}

fn read_files(path: &Path) -> Result<Vec<(PathBuf, String)>, Vec<Diagnostic>> {
    let files = if path.is_dir() {
        toml_files(path).map_err(|e| {
            vec![Diagnostic::nowhere(
                format!("cannot read {}: {e}", path.display()),
                "check the path and its permissions",
            )]
        })?
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(vec![Diagnostic::nowhere(
            format!("{} does not exist", path.display()),
            "pass a .toml file or a directory of .toml files",
        )]);
    };
    if files.is_empty() {
        return Err(vec![Diagnostic::nowhere(
            format!("{} holds no .toml file", path.display()),
            "add a .toml file describing the stack",
        )]);
    }
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.clone(), t)),
            Err(e) => {
                return Err(vec![Diagnostic::nowhere(
                    format!("cannot read {}: {e}", f.display()),
                    "check the file's permissions",
                )])
            }
        }
    }
    Ok(texts)
}

/// `written` resolved against the directory of the TOML file `file`, made
/// absolute; an error when nothing is there.
fn local_path(file: &Path, written: &str) -> Result<String, String> {
    let base = file.parent().unwrap_or(Path::new(""));
    let joined = base.join(written);
    let found = std::fs::canonicalize(&joined)
        .map_err(|e| format!("\"{written}\" ({}): {e}", joined.display()))?;
    found
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("\"{written}\" is not a UTF-8 path"))
}

struct StackHeader {
    name: Option<String>,
    region: Option<String>,
    tags: IndexMap<String, String>,
    /// Where each of `tags` is written, in the same order.
    tag_pos: Vec<Pos>,
    state: Option<String>,
    pos: Pos,
}

/// AWS allows 50 tags on a resource; reconcile adds `reconcile:stack` and
/// `reconcile:address` to every taggable one.
const MAX_USER_TAGS: usize = 48;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

struct InputDef {
    default: Option<String>,
    pos: Pos,
}

struct Loader<'c> {
    catalog: Catalog<'c>,
    diags: Vec<Diagnostic>,
    /// Where each resource's own tags are written, by address, in declaration order.
    own_tag_pos: IndexMap<String, Vec<Pos>>,
}

impl<'c> Loader<'c> {
    fn new(catalog: Catalog<'c>) -> Self {
        Loader {
            catalog,
            diags: Vec::new(),
            own_tag_pos: IndexMap::new(),
        }
    }

    fn err(&mut self, pos: Pos, msg: impl Into<String>, help: impl Into<String>) {
        self.diags.push(Diagnostic::at(pos, msg, help));
    }

    fn run(
        mut self,
        path: &Path,
        texts: &[(PathBuf, String)],
        inputs: &InputValues,
        region_override: Option<&str>,
    ) -> (Option<Stack>, Vec<Diagnostic>) {
        let mut header: Option<StackHeader> = None;
        let mut input_defs: IndexMap<String, InputDef> = IndexMap::new();
        let mut outputs: IndexMap<String, Output> = IndexMap::new();
        let mut resources: IndexMap<String, Resource> = IndexMap::new();

        for (file, text) in texts {
            let idx = LineIndex::new(file, text);
            let doc = match DeTable::parse(text) {
                Ok(d) => d,
                Err(e) => {
                    let pos = idx.pos(e.span().map(|s| s.start).unwrap_or(0));
                    self.err(
                        pos,
                        format!("TOML syntax error: {}", e.message().trim()),
                        "fix the TOML syntax at this place",
                    );
                    continue;
                }
            };
            for (key, val) in doc.get_ref().iter() {
                let kpos = idx.pos(key.span().start);
                let section: &str = key.get_ref().as_ref();
                match section {
                    "stack" => {
                        let Some(t) = self.table(&idx, val, "[stack]") else {
                            continue;
                        };
                        if let Some(prev) = &header {
                            self.err(
                                kpos,
                                "[stack] is declared twice",
                                format!("keep the one at {} and remove this one", prev.pos),
                            );
                            continue;
                        }
                        header = Some(self.stack_header(&idx, t, kpos));
                    }
                    "input" => {
                        let Some(t) = self.table(&idx, val, "[input]") else {
                            continue;
                        };
                        for (name, def) in t.iter() {
                            let npos = idx.pos(name.span().start);
                            let n = name.get_ref().to_string();
                            let Some(dt) = self.table(&idx, def, &format!("[input.{n}]")) else {
                                continue;
                            };
                            let mut default = None;
                            for (k, v) in dt.iter() {
                                let p = idx.pos(k.span().start);
                                match k.get_ref().as_ref() {
                                    "description" => {
                                        self.string(&idx, v, "description");
                                    }
                                    "default" => default = self.scalar_string(&idx, v, "default"),
                                    other => self.err(
                                        p,
                                        format!("unknown key `{other}` in [input.{n}]"),
                                        "an input takes only `description` and `default`",
                                    ),
                                }
                            }
                            if let Some(prev) = input_defs.get(&n) {
                                let prev = prev.pos.clone();
                                self.err(
                                    npos,
                                    format!("input `{n}` is declared twice"),
                                    format!("remove one: it is also declared at {prev}"),
                                );
                            } else {
                                input_defs.insert(n, InputDef { default, pos: npos });
                            }
                        }
                    }
                    "output" => {
                        let Some(t) = self.table(&idx, val, "[output]") else {
                            continue;
                        };
                        for (name, def) in t.iter() {
                            let npos = idx.pos(name.span().start);
                            let n = name.get_ref().to_string();
                            let Some(dt) = self.table(&idx, def, &format!("[output.{n}]")) else {
                                continue;
                            };
                            let mut value = None;
                            for (k, v) in dt.iter() {
                                let p = idx.pos(k.span().start);
                                match k.get_ref().as_ref() {
                                    "description" => {
                                        self.string(&idx, v, "description");
                                    }
                                    "value" => value = self.any_value(&idx, v),
                                    other => self.err(
                                        p,
                                        format!("unknown key `{other}` in [output.{n}]"),
                                        "an output takes only `value` and `description`",
                                    ),
                                }
                            }
                            match value {
                                Some(value) => {
                                    if outputs.contains_key(&n) {
                                        self.err(
                                            npos,
                                            format!("output `{n}` is declared twice"),
                                            "remove one of them",
                                        );
                                    } else {
                                        outputs.insert(
                                            n.clone(),
                                            Output {
                                                name: n,
                                                value,
                                                pos: npos,
                                            },
                                        );
                                    }
                                }
                                None => self.err(
                                    npos,
                                    format!("output `{n}` has no `value`"),
                                    "add `value = \"...\"`",
                                ),
                            }
                        }
                    }
                    kind => {
                        let Some(schema) = self.catalog.schema(kind) else {
                            let help = match suggest(kind, self.catalog.kinds()) {
                                Some(s) => format!("did you mean `{s}`? Known kinds are listed in docs/resources.md"),
                                None => "use one of the kinds listed in docs/resources.md".to_string(),
                            };
                            self.err(kpos, format!("unknown resource kind `{kind}`"), help);
                            continue;
                        };
                        let Some(t) = self.table(&idx, val, &format!("[{kind}]")) else {
                            continue;
                        };
                        for (name, body) in t.iter() {
                            let npos = idx.pos(name.span().start);
                            let n = name.get_ref().to_string();
                            let address = format!("{kind}.{n}");
                            if !valid_name(&n) {
                                self.err(npos.clone(), format!("`{address}`: resource names use letters, digits and `_` only"), "rename the resource");
                            }
                            let Some(bt) = self.table(&idx, body, &format!("[{address}]")) else {
                                continue;
                            };
                            let r = self.resource(&idx, schema, &address, &n, bt, npos.clone());
                            if let Some(prev) = resources.get(&address) {
                                let prev = prev.pos.clone();
                                self.err(
                                    npos,
                                    format!("`{address}` is declared twice"),
                                    format!("rename or remove one: it is also declared at {prev}"),
                                );
                            } else {
                                resources.insert(address, r);
                            }
                        }
                    }
                }
            }
        }

        let first_pos = Pos {
            file: texts[0].0.clone(),
            line: 1,
            col: 1,
        };
        let header = header.unwrap_or_else(|| {
            self.err(
                first_pos.clone(),
                "the stack has no [stack] table",
                "add `[stack]` with `name = \"...\"` and `region = \"...\"`",
            );
            StackHeader {
                name: None,
                region: None,
                tags: IndexMap::new(),
                tag_pos: Vec::new(),
                state: None,
                pos: first_pos.clone(),
            }
        });
        let name = header.name.clone().unwrap_or_default();
        if let Some(r) = region_override {
            if let Err(e) = schema::check_region(r) {
                self.diags.push(Diagnostic::nowhere(
                    format!("--region {e}"),
                    "write it like --region us-east-1",
                ));
            }
        }
        let region = region_override
            .map(str::to_string)
            .or(header.region.clone())
            .unwrap_or_default();
        if header.name.is_none() && self.diags.iter().all(|d| !d.message.contains("[stack]")) {
            self.err(
                header.pos.clone(),
                "[stack] has no `name`",
                "add `name = \"my-stack\"` (lowercase letters, digits and `-`)",
            );
        }
        // A region written but refused was reported already; it is not missing.
        if region.is_empty()
            && self.diags.iter().all(|d| {
                !d.message.contains("[stack]") && !d.message.contains("is not an AWS region name")
            })
        {
            self.err(
                header.pos.clone(),
                "[stack] has no `region`",
                "add `region = \"us-east-1\"` or pass --region",
            );
        }

        // Inputs: --input, then RECONCILE_INPUT_*, then the default.
        let mut input_values: IndexMap<String, String> = IndexMap::new();
        for (n, def) in &input_defs {
            let v = inputs
                .cli
                .get(n)
                .or_else(|| inputs.env.get(n))
                .cloned()
                .or(def.default.clone());
            match v {
                Some(v) => {
                    input_values.insert(n.clone(), v);
                }
                None => self.diags.push(Diagnostic::at(
                    def.pos.clone(),
                    format!("input `{n}` has no value"),
                    format!(
                        "pass --input {n}=VALUE, set RECONCILE_INPUT_{}, or give it a `default`",
                        n.to_ascii_uppercase()
                    ),
                )),
            }
        }
        for n in inputs.cli.keys() {
            if !input_defs.contains_key(n) {
                self.diags.push(Diagnostic::nowhere(
                    format!("--input {n}=... names no input of this stack"),
                    "declare it with [input.NAME] or drop the flag",
                ));
            }
        }

        // References: each must name a declared resource and one of its attributes.
        let check_ref = |r: &Reference, pos: &Pos, diags: &mut Vec<Diagnostic>| match r {
            Reference::Input(n) => {
                if !input_defs.contains_key(n) {
                    diags.push(Diagnostic::at(
                        pos.clone(),
                        format!("reference to unknown input `{n}`"),
                        format!("declare [input.{n}] or fix the name"),
                    ));
                }
            }
            Reference::Resource { kind, name, attr } => {
                let addr = format!("{kind}.{name}");
                match resources.get(&addr) {
                    None => {
                        let help = match suggest(&addr, resources.keys().map(String::as_str)) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("declare [{addr}] or fix the reference"),
                        };
                        diags.push(Diagnostic::at(
                            pos.clone(),
                            format!("reference to unknown resource `{addr}`"),
                            help,
                        ));
                    }
                    Some(_) => {
                        let schema = self
                            .catalog
                            .schema(kind)
                            .expect("declared resources have known kinds");
                        if !schema.has_attribute(attr) {
                            let names = schema
                                .attributes
                                .iter()
                                .map(|(a, _)| *a)
                                .chain(schema.fields.iter().map(|f| f.name));
                            let help = match suggest(attr, names) {
                                Some(s) => {
                                    format!("did you mean `{s}`? See `{kind}` in docs/resources.md")
                                }
                                None => {
                                    format!("see the attributes of `{kind}` in docs/resources.md")
                                }
                            };
                            diags.push(Diagnostic::at(
                                pos.clone(),
                                format!("`{addr}` has no attribute `{attr}`"),
                                help,
                            ));
                        }
                    }
                }
            }
        };
        let mut ref_diags = Vec::new();
        for r in resources.values() {
            for (rf, pos) in &r.refs {
                check_ref(rf, pos, &mut ref_diags);
            }
            for d in &r.depends_on {
                if !resources.contains_key(d) {
                    ref_diags.push(Diagnostic::at(
                        r.field_pos
                            .get("depends_on")
                            .cloned()
                            .unwrap_or(r.pos.clone()),
                        format!("`{}` depends on unknown resource `{d}`", r.address),
                        "write an address like `vpc.main` that is declared in this stack",
                    ));
                }
            }
        }
        for o in outputs.values() {
            for rf in o.value.references() {
                check_ref(&rf, &o.pos, &mut ref_diags);
            }
        }
        self.diags.extend(ref_diags);

        self.check_tag_counts(&header, &resources);

        // Availability zones must lie in the stack's region.
        if !region.is_empty() {
            for r in resources.values() {
                for (k, v) in &r.fields {
                    let is_az = self
                        .catalog
                        .schema(&r.kind)
                        .and_then(|s| s.field(k))
                        .is_some_and(|f| matches!(f.ty, Ty::Az));
                    if let (true, Some(az)) = (is_az, v.as_str()) {
                        if !az.contains("${")
                            && schema::check_az(az).is_ok()
                            && !schema::az_in_region(az, &region)
                        {
                            self.diags.push(Diagnostic::at(
                                r.field_pos.get(k).cloned().unwrap_or(r.pos.clone()),
                                format!("`{}`: availability zone \"{az}\" is not in the stack's region {region}", r.address),
                                format!("use a zone of {region}, like \"{region}a\""),
                            ));
                        }
                    }
                }
            }
        }

        if !self.diags.is_empty() {
            let partial = Stack {
                name,
                region,
                tags: header.tags,
                state: header.state,
                source: path.to_path_buf(),
                resources,
                outputs,
            };
            return (Some(partial), self.diags);
        }

        // Inputs are known now: substitute them, keeping resource references for the planner.
        for r in resources.values_mut() {
            for v in r.fields.values_mut() {
                *v = substitute_inputs(v, &input_values);
            }
        }
        for o in outputs.values_mut() {
            o.value = substitute_inputs(&o.value, &input_values);
        }

        let stack = Stack {
            name,
            region,
            tags: header.tags,
            state: header.state,
            source: path.to_path_buf(),
            resources,
            outputs,
        };
        (Some(stack), Vec::new())
    }

    fn table<'a, 'i>(
        &mut self,
        idx: &LineIndex,
        v: &'a Spanned<DeValue<'i>>,
        what: &str,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    idx.pos(v.span().start),
                    format!("{what} must be a table, found {}", other.type_str()),
                    format!("write it as a table: {what}"),
                );
                None
            }
        }
    }

    fn string(&mut self, idx: &LineIndex, v: &Spanned<DeValue<'_>>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.err(
                    idx.pos(v.span().start),
                    format!("`{what}` must be a string, found {}", other.type_str()),
                    "put the value in double quotes",
                );
                None
            }
        }
    }

    fn scalar_string(
        &mut self,
        idx: &LineIndex,
        v: &Spanned<DeValue<'_>>,
        what: &str,
    ) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            DeValue::Integer(i) => Some(i.as_str().to_string()),
            DeValue::Boolean(b) => Some(b.to_string()),
            other => {
                self.err(
                    idx.pos(v.span().start),
                    format!(
                        "`{what}` must be a string, number or boolean, found {}",
                        other.type_str()
                    ),
                    "give a plain value",
                );
                None
            }
        }
    }

    fn any_value(&mut self, idx: &LineIndex, v: &Spanned<DeValue<'_>>) -> Option<Value> {
        let pos = idx.pos(v.span().start);
        Some(match v.get_ref() {
            DeValue::String(s) => {
                if let Err(e) = parse_template(s) {
                    self.err(pos, e, "fix the reference syntax");
                    return None;
                }
                Value::str(s.to_string())
            }
            DeValue::Integer(i) => Value::Int(self.int(idx, v, i)?),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Array(a) => Value::List(
                a.iter()
                    .map(|x| self.any_value(idx, x))
                    .collect::<Option<_>>()?,
            ),
            DeValue::Table(t) => Value::Map(
                t.iter()
                    .map(|(k, x)| self.any_value(idx, x).map(|x| (k.get_ref().to_string(), x)))
                    .collect::<Option<_>>()?,
            ),
            other => {
                self.err(
                    pos,
                    format!("{} values are not supported", other.type_str()),
                    "use a string, integer, boolean, array or table",
                );
                return None;
            }
        })
    }

    fn int(
        &mut self,
        idx: &LineIndex,
        v: &Spanned<DeValue<'_>>,
        i: &toml::de::DeInteger<'_>,
    ) -> Option<i64> {
        let digits = i.as_str().replace('_', "");
        let digits = digits
            .trim_start_matches("0x")
            .trim_start_matches("0o")
            .trim_start_matches("0b");
        match i64::from_str_radix(digits, i.radix()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    idx.pos(v.span().start),
                    format!("{} is not a 64-bit integer", i.as_str()),
                    "use a smaller number",
                );
                None
            }
        }
    }

    fn stack_header(&mut self, idx: &LineIndex, t: &DeTable<'_>, pos: Pos) -> StackHeader {
        let mut h = StackHeader {
            name: None,
            region: None,
            tags: IndexMap::new(),
            tag_pos: Vec::new(),
            state: None,
            pos,
        };
        for (k, v) in t.iter() {
            let p = idx.pos(v.span().start);
            match k.get_ref().as_ref() {
                "name" => {
                    if let Some(n) = self.string(idx, v, "name") {
                        if n.is_empty()
                            || !n
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        {
                            self.err(p, format!("stack name \"{n}\" is not valid"), "use lowercase letters, digits and `-` only (it names the state file)");
                        } else {
                            h.name = Some(n);
                        }
                    }
                }
                "region" => {
                    if let Some(r) = self.string(idx, v, "region") {
                        match schema::check_region(&r) {
                            Ok(()) => h.region = Some(r),
                            Err(e) => self.err(
                                p,
                                e,
                                "write it like \"us-east-1\" or \"eu-central-2\" (lowercase, with its number)",
                            ),
                        }
                    }
                }
                "tags" => (h.tags, h.tag_pos) = self.tags(idx, v),
                "state" => {
                    if let Some(s) = self.string(idx, v, "state") {
                        match crate::state::StateLocation::parse(&s) {
                            Ok(crate::state::StateLocation::S3 { .. }) => h.state = Some(s),
                            Ok(crate::state::StateLocation::Local(_)) => self.err(
                                p,
                                format!("state \"{s}\" is not an S3 location"),
                                "write state = \"s3://bucket/prefix\"; local state lives in --state-dir",
                            ),
                            Err(e) => self.err(p, e, "write state = \"s3://bucket/prefix\""),
                        }
                    }
                }
                other => {
                    let help = match suggest(other, ["name", "region", "tags", "state"]) {
                        Some(s) => {
                            format!(
                                "did you mean `{s}`? [stack] takes name, region, tags and state"
                            )
                        }
                        None => "[stack] takes name, region, tags and state".into(),
                    };
                    self.err(
                        idx.pos(k.span().start),
                        format!("unknown key `{other}` in [stack]"),
                        help,
                    )
                }
            }
        }
        h
    }

    /// Reads a tags table, refusing what AWS would refuse on create; returns the
    /// tags and where each is written.
    fn tags(
        &mut self,
        idx: &LineIndex,
        v: &Spanned<DeValue<'_>>,
    ) -> (IndexMap<String, String>, Vec<Pos>) {
        let mut out = IndexMap::new();
        let mut pos = Vec::new();
        let Some(t) = self.table(idx, v, "tags") else {
            return (out, pos);
        };
        for (k, tv) in t.iter() {
            let key = k.get_ref().to_string();
            let kpos = idx.pos(k.span().start);
            // AWS reserves `aws:` in any case (`AWS:Name` is refused too).
            if key.starts_with("reconcile:") || key.to_ascii_lowercase().starts_with("aws:") {
                self.err(
                    kpos,
                    format!("tag key `{key}` is reserved"),
                    "`reconcile:` and `aws:` tags are set by reconcile and AWS; choose another key",
                );
                continue;
            }
            let len = key.chars().count();
            if len == 0 || len > MAX_TAG_KEY {
                self.err(
                    kpos,
                    format!(
                        "tag key `{key}` is {len} characters long; AWS allows 1 to {MAX_TAG_KEY}"
                    ),
                    format!("use a key of 1 to {MAX_TAG_KEY} characters"),
                );
                continue;
            }
            if let Some(s) = self.string(idx, tv, &format!("tags.{key}")) {
                let vlen = s.chars().count();
                if vlen > MAX_TAG_VALUE {
                    self.err(
                        idx.pos(tv.span().start),
                        format!("the value of tag `{key}` is {vlen} characters long; AWS allows at most {MAX_TAG_VALUE}"),
                        format!("shorten it to {MAX_TAG_VALUE} characters or fewer"),
                    );
                    continue;
                }
                out.insert(key, s);
                pos.push(kpos);
            }
        }
        (out, pos)
    }

    /// Every taggable resource carries the stack's tags merged with its own,
    /// plus reconcile's two: more than AWS's 50 fails its create half-way
    /// through an apply. Reported at the first tag over the limit.
    fn check_tag_counts(&mut self, header: &StackHeader, resources: &IndexMap<String, Resource>) {
        let stack_n = header.tags.len();
        if stack_n > MAX_USER_TAGS {
            self.err(
                header.tag_pos[MAX_USER_TAGS].clone(),
                format!("[stack] declares {stack_n} tags; with reconcile's own two (reconcile:stack, reconcile:address) every resource would carry {}, and AWS allows 50", stack_n + 2),
                format!("keep at most {MAX_USER_TAGS} stack tags"),
            );
            return;
        }
        for r in resources.values() {
            let taggable = self.catalog.schema(&r.kind).is_some_and(|s| s.taggable);
            let Some(own_pos) = self.own_tag_pos.get(&r.address) else {
                continue;
            };
            if !taggable {
                continue;
            }
            let added: Vec<&Pos> = r
                .tags
                .keys()
                .zip(own_pos)
                .filter(|(k, _)| !header.tags.contains_key(*k))
                .map(|(_, p)| p)
                .collect();
            let total = stack_n + added.len();
            if total > MAX_USER_TAGS {
                self.diags.push(Diagnostic::at(
                    added[MAX_USER_TAGS - stack_n].clone(),
                    format!(
                        "`{}` would carry {} tags ({stack_n} from [stack], {} of its own, and reconcile:stack and reconcile:address); AWS allows 50",
                        r.address,
                        total + 2,
                        added.len()
                    ),
                    format!(
                        "remove {} of its tags or of the stack's",
                        total - MAX_USER_TAGS
                    ),
                ));
            }
        }
    }

    fn resource(
        &mut self,
        idx: &LineIndex,
        schema: &'static Schema,
        address: &str,
        name: &str,
        t: &DeTable<'_>,
        pos: Pos,
    ) -> Resource {
        let mut r = Resource {
            address: address.to_string(),
            kind: schema.kind.to_string(),
            name: name.to_string(),
            fields: Fields::new(),
            depends_on: Vec::new(),
            protect: false,
            ignore_changes: Vec::new(),
            tags: IndexMap::new(),
            pos: pos.clone(),
            field_pos: IndexMap::new(),
            refs: Vec::new(),
        };
        let mut own_tags = IndexMap::new();
        for (k, v) in t.iter() {
            let key = k.get_ref().to_string();
            let kpos = idx.pos(k.span().start);
            r.field_pos.insert(key.clone(), kpos.clone());
            match key.as_str() {
                "depends_on" => {
                    if let DeValue::Array(a) = v.get_ref() {
                        for x in a.iter() {
                            if let Some(s) = self.string(idx, x, "depends_on") {
                                r.depends_on.push(s);
                            }
                        }
                    } else {
                        self.err(
                            idx.pos(v.span().start),
                            "`depends_on` must be a list of addresses",
                            "write it like depends_on = [\"vpc.main\"]",
                        );
                    }
                }
                "protect" => match v.get_ref() {
                    DeValue::Boolean(b) => r.protect = *b,
                    other => self.err(
                        idx.pos(v.span().start),
                        format!(
                            "`protect` must be true or false, found {}",
                            other.type_str()
                        ),
                        "write protect = true",
                    ),
                },
                "ignore_changes" => {
                    if let DeValue::Array(a) = v.get_ref() {
                        for x in a.iter() {
                            if let Some(s) = self.string(idx, x, "ignore_changes") {
                                if schema.field(&s).is_none() && !(s == "tags" && schema.taggable) {
                                    let help =
                                        match suggest(&s, schema.fields.iter().map(|f| f.name)) {
                                            Some(g) => format!("did you mean `{g}`?"),
                                            None => format!(
                                                "name fields of `{}` listed in docs/resources.md",
                                                schema.kind
                                            ),
                                        };
                                    self.err(
                                        idx.pos(x.span().start),
                                        format!(
                                            "`{address}`: ignore_changes names unknown field `{s}`"
                                        ),
                                        help,
                                    );
                                } else {
                                    r.ignore_changes.push(s);
                                }
                            }
                        }
                    } else {
                        self.err(
                            idx.pos(v.span().start),
                            "`ignore_changes` must be a list of field names",
                            "write it like ignore_changes = [\"tags\"]",
                        );
                    }
                }
                "tags" if schema.taggable => {
                    let (tags, pos) = self.tags(idx, v);
                    own_tags = tags;
                    self.own_tag_pos.insert(address.to_string(), pos);
                }
                _ => match schema.field(&key) {
                    Some(field) => {
                        if let Some(val) =
                            self.field_typed(idx, address, field, &key, v, &mut r.refs)
                        {
                            r.fields.insert(key, val);
                        }
                    }
                    None => {
                        let names = schema
                            .fields
                            .iter()
                            .map(|f| f.name)
                            .chain(schema::META_KEYS.iter().copied());
                        let help = match suggest(&key, names) {
                            Some(s) => format!("did you mean `{s}`? The fields of `{}` are listed in docs/resources.md", schema.kind),
                            None => format!("remove it; the fields of `{}` are listed in docs/resources.md", schema.kind),
                        };
                        self.err(kpos, format!("`{address}`: unknown field `{key}`"), help);
                    }
                },
            }
        }
        for f in schema.fields {
            // A declared but invalid value was reported already; it is not missing.
            if r.fields.contains_key(f.name) || r.field_pos.contains_key(f.name) {
                continue;
            }
            if f.required {
                self.err(
                    pos.clone(),
                    format!("`{address}`: missing required field `{}`", f.name),
                    format!("add `{} = ...` ({}): {}", f.name, f.ty.describe(), f.doc),
                );
            } else if let Some(d) = f.default {
                r.fields.insert(f.name.to_string(), d.value());
            }
        }
        r.tags = own_tags;
        r
    }

    /// A field's declared value, typed and within the field's range.
    fn field_typed(
        &mut self,
        idx: &LineIndex,
        address: &str,
        field: &schema::Field,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        refs: &mut Vec<(Reference, Pos)>,
    ) -> Option<Value> {
        let val = self.typed(idx, address, &field.ty, key, v, refs)?;
        if let (Some((lo, hi)), Some(n)) = (field.range, val.as_float()) {
            if n < lo as f64 || n > hi as f64 {
                self.err(
                    idx.pos(v.span().start),
                    format!("`{address}`.{key} is {val}; AWS takes {lo} to {hi}"),
                    format!("set `{key}` between {lo} and {hi}"),
                );
                return None;
            }
        }
        Some(val)
    }

    /// Checks a declared value against its type and converts it. Strings holding a
    /// reference are checked once resolved, at plan time.
    fn typed(
        &mut self,
        idx: &LineIndex,
        address: &str,
        ty: &Ty,
        key: &str,
        v: &Spanned<DeValue<'_>>,
        refs: &mut Vec<(Reference, Pos)>,
    ) -> Option<Value> {
        let pos = idx.pos(v.span().start);
        if let DeValue::String(s) = v.get_ref() {
            match parse_template(s) {
                Err(e) => {
                    self.err(
                        pos,
                        format!("`{address}`.{key}: {e}"),
                        "fix the reference syntax",
                    );
                    return None;
                }
                Ok(parts) => {
                    let mut has_ref = false;
                    for p in parts.iter() {
                        if let TemplatePart::Ref(rf) = p {
                            refs.push((rf.clone(), pos.clone()));
                            has_ref = true;
                        }
                    }
                    let whole = matches!(parts.as_slice(), [TemplatePart::Ref(_)]);
                    if has_ref
                        && (whole
                            || matches!(
                                ty,
                                Ty::Str | Ty::Cidr | Ty::Az | Ty::Pattern(_) | Ty::Enum(_)
                            ))
                    {
                        return Some(Value::str(s.to_string()));
                    }
                }
            }
        }
        let wrong = |this: &mut Self, found: &str| {
            this.err(
                pos.clone(),
                format!("`{address}`.{key} must be {}, found {found}", ty.describe()),
                format!("change `{key}` to {}", ty.describe()),
            );
            None
        };
        match (ty, v.get_ref()) {
            (Ty::Str, DeValue::String(s)) => Some(Value::str(s.to_string())),
            (Ty::Bool, DeValue::Boolean(b)) => Some(Value::Bool(*b)),
            (Ty::Int, DeValue::Integer(i)) => self.int(idx, v, i).map(Value::Int),
            (Ty::Float, DeValue::Integer(i)) => self.int(idx, v, i).map(|n| Value::Float(n as f64)),
            (Ty::Float, DeValue::Float(x)) => match x
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
            {
                Some(x) => Some(Value::Float(x)),
                None => wrong(self, "a number that is not finite"),
            },
            (Ty::Cidr, DeValue::String(s)) => match schema::check_cidr(s) {
                Ok(()) => Some(Value::str(s.to_string())),
                Err(e) => {
                    self.err(
                        pos,
                        format!("`{address}`.{key}: {e}"),
                        "give a valid IPv4 CIDR block",
                    );
                    None
                }
            },
            (Ty::Az, DeValue::String(s)) => match schema::check_az(s) {
                Ok(()) => Some(Value::str(s.to_string())),
                Err(e) => {
                    self.err(
                        pos,
                        format!("`{address}`.{key}: {e}"),
                        "give an availability zone of the stack's region",
                    );
                    None
                }
            },
            (Ty::Enum(opts), DeValue::String(s)) => {
                if opts.contains(&s.as_ref()) {
                    Some(Value::str(s.to_string()))
                } else {
                    self.err(
                        pos,
                        format!("`{address}`.{key}: \"{s}\" is not allowed"),
                        format!("use one of: {}", opts.join(", ")),
                    );
                    None
                }
            }
            (Ty::Path, DeValue::String(s)) => match local_path(idx.file(), s) {
                Ok(p) => Some(Value::str(p)),
                Err(e) => {
                    self.err(
                        pos,
                        format!("`{address}`.{key}: {e}"),
                        "write a path relative to this TOML file",
                    );
                    None
                }
            },
            (Ty::Pattern(check), DeValue::String(s)) => match check(s) {
                Ok(()) => Some(Value::str(s.to_string())),
                Err(e) => {
                    self.err(pos, format!("`{address}`.{key}: {e}"), "change the value");
                    None
                }
            },
            (Ty::List(inner), DeValue::Array(a)) => {
                let mut out = Vec::new();
                let mut ok = true;
                for x in a.iter() {
                    match self.typed(idx, address, inner, key, x, refs) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Value::List(out))
            }
            (Ty::Map(inner), DeValue::Table(t)) => {
                let mut out = IndexMap::new();
                let mut ok = true;
                for (k, x) in t.iter() {
                    match self.typed(
                        idx,
                        address,
                        inner,
                        &format!("{key}.{}", k.get_ref()),
                        x,
                        refs,
                    ) {
                        Some(v) => {
                            out.insert(k.get_ref().to_string(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Value::Map(out))
            }
            (Ty::Object(fields), DeValue::Table(t)) => {
                let mut out = IndexMap::new();
                let mut ok = true;
                for (k, x) in t.iter() {
                    let kname = k.get_ref().to_string();
                    match fields.iter().find(|f| f.name == kname) {
                        Some(f) => match self.field_typed(
                            idx,
                            address,
                            f,
                            &format!("{key}.{kname}"),
                            x,
                            refs,
                        ) {
                            Some(v) => {
                                out.insert(kname, v);
                            }
                            None => ok = false,
                        },
                        None => {
                            let help = match suggest(&kname, fields.iter().map(|f| f.name)) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!(
                                    "allowed: {}",
                                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                                ),
                            };
                            self.err(
                                idx.pos(k.span().start),
                                format!("`{address}`.{key}: unknown field `{kname}`"),
                                help,
                            );
                            ok = false;
                        }
                    }
                }
                for f in fields.iter() {
                    // A declared but invalid value was reported already; it is not missing.
                    if out.contains_key(f.name) || t.iter().any(|(k, _)| k.get_ref() == f.name) {
                        continue;
                    }
                    if f.required {
                        self.err(
                            pos.clone(),
                            format!("`{address}`.{key}: missing required field `{}`", f.name),
                            format!("add `{} = ...` ({})", f.name, f.ty.describe()),
                        );
                        ok = false;
                    } else if let Some(d) = f.default {
                        out.insert(f.name.to_string(), d.value());
                    }
                }
                ok.then_some(Value::Map(out))
            }
            (_, other) => wrong(self, other.type_str()),
        }
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Replaces `${input.X}` by its value; resource references and escapes stay as written.
fn substitute_inputs(v: &Value, inputs: &IndexMap<String, String>) -> Value {
    match v {
        Value::Str(s) => {
            let Ok(parts) = parse_template(s) else {
                return v.clone();
            };
            if !parts
                .iter()
                .any(|p| matches!(p, TemplatePart::Ref(Reference::Input(_))))
            {
                return v.clone();
            }
            let mut out = String::new();
            for p in parts {
                match p {
                    TemplatePart::Text(t) => out.push_str(&t.replace("${", "$${")),
                    TemplatePart::Ref(Reference::Input(n)) => out.push_str(
                        &inputs
                            .get(&n)
                            .cloned()
                            .unwrap_or_default()
                            .replace("${", "$${"),
                    ),
                    TemplatePart::Ref(r) => out.push_str(&r.to_string()),
                }
            }
            Value::Str(out)
        }
        Value::List(l) => Value::List(l.iter().map(|x| substitute_inputs(x, inputs)).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute_inputs(x, inputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::schema::Field;
    use super::*;

    static NET: Schema = Schema {
        kind: "net",
        doc: "",
        fields: &[
            Field::new("size", Ty::Int, ""),
            Field::new("days", Ty::Int, "").range(1, 35),
            Field::new(
                "check",
                Ty::Object(&[Field::new("interval", Ty::Int, "").range(5, 300).required()]),
                "",
            ),
        ],
        attributes: &[("id", "")],
        taggable: true,
    };

    struct OneKind;

    impl Schemas for OneKind {
        fn kinds(&self) -> Vec<&'static str> {
            vec!["net"]
        }
        fn schema(&self, kind: &str) -> Option<&'static Schema> {
            (kind == "net").then_some(&NET)
        }
    }

    fn problems(text: &str, region: Option<&str>) -> Vec<String> {
        let texts = vec![(PathBuf::from("s.toml"), text.to_string())];
        let (_, diags) =
            Loader::new(&OneKind).run(Path::new("s.toml"), &texts, &InputValues::default(), region);
        diags.iter().map(|d| d.to_string()).collect()
    }

    fn tag_lines(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix}{i} = \"v\"\n")).collect()
    }

    const HEAD: &str = "[stack]\nname = \"s\"\nregion = \"us-east-1\"\n";

    #[test]
    fn integers_outside_their_range_are_refused_where_written() {
        let text = format!("{HEAD}[net.a]\ndays = 36\ncheck = {{ interval = 2 }}\n");
        let bad = problems(&text, None);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("s.toml:5:8: `net.a`.days is 36; AWS takes 1 to 35"),
            "{bad:?}"
        );
        assert!(
            bad[1].contains("`net.a`.check.interval is 2; AWS takes 5 to 300"),
            "{bad:?}"
        );
        let ok = format!("{HEAD}[net.a]\ndays = 35\ncheck = {{ interval = 300 }}\n");
        assert!(problems(&ok, None).is_empty());
    }

    #[test]
    fn region_names_are_checked_in_the_file_and_on_the_command_line() {
        let bad = problems("[stack]\nname = \"s\"\nregion = \"US-EAST-1\"\n", None);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains("s.toml:3:10: \"US-EAST-1\" is not an AWS region name"));
        let bad = problems(HEAD, Some("us-east"));
        assert!(bad[0].contains("--region \"us-east\" is not an AWS region name"));
        assert!(problems(HEAD, Some("eu-central-2")).is_empty());
    }

    #[test]
    fn tag_keys_and_values_within_aws_limits() {
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        let text = format!(
            "{HEAD}[net.a]\ntags = {{ {long_key} = \"x\", ok = \"{long_value}\", \"AWS:x\" = \"y\", \"\" = \"z\", fine = \"{}\" }}\n",
            "v".repeat(256)
        );
        let p = problems(&text, None);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("s.toml:5:10: tag key"), "{p:?}");
        assert!(p[0].contains("is 129 characters long; AWS allows 1 to 128"));
        assert!(p[1].contains("the value of tag `ok` is 257 characters long"));
        assert!(p[2].contains("tag key `AWS:x` is reserved"));
        assert!(p[3].contains("tag key `` is 0 characters long"));
    }

    #[test]
    fn at_most_48_user_tags_per_resource_counting_the_stacks() {
        // 40 stack tags and 8 own: 50 with reconcile's two, AWS's limit.
        let text = format!(
            "{HEAD}[stack.tags]\n{}\n[net.a]\n[net.a.tags]\n{}s0 = \"override, not a new tag\"\n",
            tag_lines("s", 40),
            tag_lines("own", 8)
        );
        assert!(problems(&text, None).is_empty());

        let text = format!(
            "{HEAD}[stack.tags]\n{}\n[net.a]\n[net.a.tags]\n{}",
            tag_lines("s", 40),
            tag_lines("own", 9)
        );
        let p = problems(&text, None);
        assert_eq!(p.len(), 1, "{p:?}");
        // The ninth own tag, `own8`, is the one over the limit.
        assert!(
            p[0].contains(
                "s.toml:56:1: `net.a` would carry 51 tags (40 from [stack], 9 of its own"
            ),
            "{p:?}"
        );

        let text = format!("{HEAD}[stack.tags]\n{}\n[net.a]\n", tag_lines("s", 49));
        let p = problems(&text, None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("s.toml:53:1: [stack] declares 49 tags"),
            "{p:?}"
        );
    }
}
