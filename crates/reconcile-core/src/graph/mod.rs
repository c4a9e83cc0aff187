//! The dependency graph of a stack: edges from references and `depends_on`, cycle
//! reports, topological order and Graphviz DOT.

use crate::model::{Diagnostic, Stack};
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};

/// Edges point from a dependency to its dependent (`vpc.main -> subnet.a`).
#[derive(Clone)]
pub struct Graph {
    pub g: DiGraph<String, ()>,
    pub index: HashMap<String, NodeIndex>,
}

impl Graph {
    /// Builds the graph of a validated stack; a cycle is reported as a diagnostic
    /// printing the cycle and where its first resource is declared.
    pub fn build(stack: &Stack) -> Result<Graph, Vec<Diagnostic>> {
        let mut g = DiGraph::new();
        let mut index = HashMap::new();
        for addr in stack.resources.keys() {
            index.insert(addr.clone(), g.add_node(addr.clone()));
        }
        for r in stack.resources.values() {
            let to = index[&r.address];
            let deps: BTreeSet<String> = r
                .refs
                .iter()
                .filter_map(|(rf, _)| rf.address())
                .chain(r.depends_on.iter().cloned())
                .collect();
            for d in deps {
                if let Some(&from) = index.get(&d) {
                    g.update_edge(from, to, ());
                }
            }
        }
        let graph = Graph { g, index };
        let mut diags = Vec::new();
        for cycle in graph.cycles() {
            let first = &stack.resources[&cycle[0]];
            let mut shown = cycle.clone();
            shown.push(cycle[0].clone());
            diags.push(Diagnostic::at(
                first.pos.clone(),
                format!("dependency cycle: {}", shown.join(" -> ")),
                "break the cycle: move a security group's rule into a `security_group_rule`, or drop a `depends_on`",
            ));
        }
        if diags.is_empty() {
            Ok(graph)
        } else {
            Err(diags)
        }
    }

    /// One concrete cycle per strongly connected component that has one,
    /// starting from its alphabetically first address.
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.g) {
            let self_loop = scc.len() == 1 && self.g.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min_by_key(|n| &self.g[**n]).unwrap();
            // Follow edges inside the component, breadth-first, back to the start.
            let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut end = None;
            'bfs: while let Some(n) = queue.pop_front() {
                let mut next: Vec<NodeIndex> = self
                    .g
                    .neighbors_directed(n, Direction::Outgoing)
                    .filter(|m| members.contains(m))
                    .collect();
                next.sort_by_key(|m| &self.g[*m]);
                for m in next {
                    if m == start {
                        end = Some(n);
                        break 'bfs;
                    }
                    if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                        e.insert(n);
                        queue.push_back(m);
                    }
                }
            }
            let mut path = vec![];
            let mut cur = end.expect("a strongly connected component has a cycle");
            loop {
                path.push(self.g[cur].clone());
                if cur == start {
                    break;
                }
                cur = prev[&cur];
            }
            path.reverse();
            out.push(path);
        }
        out.sort();
        out
    }

    /// Addresses in dependency order (dependencies first); ties broken by name.
    pub fn order(&self) -> Vec<String> {
        let sorted = toposort(&self.g, None).expect("the graph was checked for cycles");
        // toposort's tie order is arbitrary; make it stable for readable plans.
        let mut level: HashMap<NodeIndex, usize> = HashMap::new();
        for n in &sorted {
            let l = self
                .g
                .neighbors_directed(*n, Direction::Incoming)
                .map(|p| level[&p] + 1)
                .max()
                .unwrap_or(0);
            level.insert(*n, l);
        }
        let mut out: Vec<NodeIndex> = sorted;
        out.sort_by(|a, b| level[a].cmp(&level[b]).then(self.g[*a].cmp(&self.g[*b])));
        out.into_iter().map(|n| self.g[n].clone()).collect()
    }

    /// Direct dependencies of an address.
    pub fn dependencies(&self, addr: &str) -> Vec<String> {
        let Some(&n) = self.index.get(addr) else {
            return vec![];
        };
        let mut v: Vec<String> = self
            .g
            .neighbors_directed(n, Direction::Incoming)
            .map(|m| self.g[m].clone())
            .collect();
        v.sort();
        v
    }

    /// Graphviz DOT, one node per resource, edges from dependency to dependent.
    pub fn dot(&self, stack_name: &str) -> String {
        let mut s =
            format!("digraph \"{stack_name}\" {{\n  rankdir = LR;\n  node [shape = box];\n");
        let mut nodes: Vec<&String> = self.index.keys().collect();
        nodes.sort();
        for n in nodes {
            s.push_str(&format!("  \"{n}\";\n"));
        }
        let mut edges: Vec<(String, String)> = self
            .g
            .edge_indices()
            .map(|e| {
                let (a, b) = self.g.edge_endpoints(e).unwrap();
                (self.g[a].clone(), self.g[b].clone())
            })
            .collect();
        edges.sort();
        for (a, b) in edges {
            s.push_str(&format!("  \"{a}\" -> \"{b}\";\n"));
        }
        s.push_str("}\n");
        s
    }
}
