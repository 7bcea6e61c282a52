//! The stage DAG (petgraph): topological order, cycles, ancestor and descendant sets.

use crate::spec::{Pipeline, SpecIssue};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// Nodes are stage positions in `Pipeline::stages`; an edge runs from a need to its user.
#[derive(Debug)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
    /// Stage positions in a deterministic topological order.
    pub order: Vec<usize>,
}

impl Dag {
    pub fn build(p: &Pipeline) -> Result<Dag, crate::spec::SpecError> {
        let mut graph = DiGraph::with_capacity(p.stages.len(), p.stages.len() * 2);
        for i in 0..p.stages.len() {
            graph.add_node(i);
        }
        for (i, s) in p.stages.iter().enumerate() {
            for n in &s.needs {
                let j = p.position(n).expect("needs were resolved at load");
                graph.add_edge(NodeIndex::new(j), NodeIndex::new(i), ());
            }
        }
        if let Some(cycle) = find_cycle(&graph) {
            // Edges run from a need to its user; say it the way the file does, with `needs`.
            let mut names: Vec<&str> = cycle
                .iter()
                .rev()
                .map(|&i| p.stages[i].name.as_str())
                .collect();
            names.rotate_right(1);
            let first = &p.stages[cycle[0]];
            return Err(p.error(vec![
                SpecIssue::new(
                    format!(
                        "dependency cycle: {} needs {}",
                        names.join(" needs "),
                        names[0]
                    ),
                    first.pos,
                )
                .help("a stage cannot need, directly or indirectly, a stage that needs it"),
            ]));
        }
        let order = kahn_order(&graph);
        Ok(Dag { graph, order })
    }

    pub fn parents(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|n| n.index())
    }

    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(|n| n.index())
    }

    /// The given stages and everything they need, transitively.
    pub fn with_ancestors(&self, roots: &[usize]) -> HashSet<usize> {
        let rev = Reversed(&self.graph);
        let mut seen = HashSet::new();
        for &r in roots {
            let mut dfs = Dfs::new(rev, NodeIndex::new(r));
            while let Some(n) = dfs.next(rev) {
                seen.insert(n.index());
            }
        }
        seen
    }

    /// Everything downstream of `i` (not `i` itself).
    pub fn descendants(&self, i: usize) -> HashSet<usize> {
        let mut dfs = Dfs::new(&self.graph, NodeIndex::new(i));
        let mut seen = HashSet::new();
        while let Some(n) = dfs.next(&self.graph) {
            if n.index() != i {
                seen.insert(n.index());
            }
        }
        seen
    }
}

/// Topological order that prefers lower stage positions, so file order is kept where possible.
fn kahn_order(g: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indeg: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BTreeSet<usize> = (0..indeg.len()).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(indeg.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for c in g.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            indeg[c.index()] -= 1;
            if indeg[c.index()] == 0 {
                ready.insert(c.index());
            }
        }
    }
    order
}

/// One cycle as a list of stage positions, if the graph has any.
fn find_cycle(g: &DiGraph<usize, ()>) -> Option<Vec<usize>> {
    let scc = petgraph::algo::tarjan_scc(g)
        .into_iter()
        .find(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))?;
    let members: HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min()?;
    // Breadth-first search inside the component for the shortest way back to `start`.
    let mut prev = std::collections::HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for m in g.neighbors_directed(n, Direction::Outgoing) {
            if !members.contains(&m) {
                continue;
            }
            if m == start {
                let mut path = vec![n.index()];
                let mut cur = n;
                while cur != start {
                    cur = prev[&cur];
                    path.push(cur.index());
                }
                path.reverse();
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cycle_is_named() {
        let text = "stages:\n  a: {kind: command, command: 'true', needs: [c]}\n  b: {kind: command, command: 'true', needs: [a]}\n  c: {kind: command, command: 'true', needs: [b]}\n";
        let p = crate::spec::parse(
            Path::new("/x.yaml"),
            text.into(),
            &crate::spec::Registry::core(),
        )
        .unwrap();
        let e = Dag::build(&p).unwrap_err();
        assert!(
            e.to_string()
                .contains("dependency cycle: a needs c needs b needs a"),
            "{e}"
        );
    }

    #[test]
    fn order_and_ancestors() {
        let text = "stages:\n  c: {kind: command, command: 'true', needs: [b]}\n  b: {kind: command, command: 'true', needs: [a]}\n  a: {kind: command, command: 'true'}\n  d: {kind: command, command: 'true'}\n";
        let p = crate::spec::parse(
            Path::new("/x.yaml"),
            text.into(),
            &crate::spec::Registry::core(),
        )
        .unwrap();
        let d = Dag::build(&p).unwrap();
        let names: Vec<&str> = d.order.iter().map(|&i| p.stages[i].name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let anc = d.with_ancestors(&[p.position("b").unwrap()]);
        assert_eq!(anc.len(), 2);
        assert_eq!(d.descendants(p.position("a").unwrap()).len(), 2);
    }
}
