//! Gradient-boosted trees with XGBoost's exact-greedy semantics, for the reference attack.
//!
//! What XGBoost's `XGBClassifier()` does with its defaults and `tree_method="exact"`
//! (`updater_colmaker.cc`, `param.h`), restated:
//! - objective `binary:logistic`: g = p - y, h = max(p (1 - p), 1e-16), computed in f32 from f32
//!   margins (XGBoost's `GradientPair` and predictions are f32; node sums are f64); margins start
//!   at 0 (`base_score` 0.5, XGBoost 1.x's default, the version the reference ran; XGBoost >= 2
//!   estimates the intercept instead);
//! - gain of a split = G_L^2 / (H_L + lambda) + G_R^2 / (H_R + lambda) - G^2 / (H + lambda), taken
//!   when it exceeds 1e-6; both children need a hessian sum >= `min_child_weight`;
//! - every boundary between two *different* sorted feature values is a candidate, however close
//!   (the `gbdt` crate skips gaps below 1e-5, which hides most splits on sorted-softmax features);
//!   the threshold is their midpoint in f32, or the larger value where the midpoint rounds to the
//!   smaller one (adjacent floats), and a sample goes left when `x < threshold`;
//! - each term G^2 / (H + lambda) is computed in f32 from the f64 sums (numerator and denominator
//!   rounded, then divided), the two children's terms summed in f32 and the node's own term
//!   subtracted in f32, as XGBoost >= 1.7 (`CalcGainGivenWeight`, `CalcSplitGain`,
//!   `root_gain`); an f64 gain picks another split among near-equal candidates often enough to
//!   move a near-chance attack's accuracy by half a point;
//! - dense columns are enumerated from the largest value down (colmaker's backward search): on
//!   equal gains the first found, i.e. the largest threshold, stays; across features the lower
//!   index wins;
//! - leaf value = eta * f32(-G / (H + lambda)) in f32, 0 where H < `min_child_weight`; depth 6,
//!   eta 0.3, lambda 1, 100 rounds;
//! - probabilities are XGBoost's f32 sigmoid (`common::Sigmoid(float)`), for gradients and
//!   predictions; `predict` calls a sample positive when its probability is > 0.5.

/// Learner settings; [`Default`] is XGBoost's.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct XgbParams {
    pub rounds: usize,
    pub max_depth: usize,
    pub eta: f64,
    pub lambda: f64,
    pub min_child_weight: f64,
}

impl Default for XgbParams {
    fn default() -> Self {
        XgbParams {
            rounds: 100,
            max_depth: 6,
            eta: 0.3,
            lambda: 1.0,
            min_child_weight: 1.0,
        }
    }
}

/// Split gains at or below this are not taken (XGBoost's `kRtEps`).
const RT_EPS: f64 = 1e-6;

#[derive(Debug, Clone)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f32,
        left: usize,
        right: usize,
    },
}

/// A fitted ensemble.
#[derive(Debug, Clone)]
pub struct Booster {
    base_margin: f64,
    trees: Vec<Vec<Node>>,
}

#[derive(Clone, Copy, Default)]
struct Stats {
    g: f64,
    h: f64,
}

impl Stats {
    fn add(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
    }
    /// G^2 / (H + lambda) as XGBoost >= 1.7 computes it (`split_evaluator.h`,
    /// `CalcGainGivenWeight`: `Divide(float, float)`): numerator and denominator are rounded to
    /// f32 from the f64 sums and divided in f32. Near chance, where gains are small differences
    /// of large terms, the rounding decides between close candidates.
    fn score(&self, lambda: f64) -> f32 {
        if self.h <= 0.0 {
            return 0.0;
        }
        (self.g * self.g) as f32 / (self.h + lambda) as f32
    }
}

#[derive(Clone, Copy)]
struct Best {
    gain: f32,
    feature: usize,
    threshold: f32,
}

/// XGBoost's `common::Sigmoid(float)` (`common/math.h`), used for gradients and predictions.
fn sigmoid(x: f32) -> f32 {
    let x = (-x).min(88.7);
    1.0 / (x.exp() + 1.0 + 1e-16)
}

impl Booster {
    /// Fits on `rows` (all of the same width, finite) with 0/1 `labels`.
    pub fn fit(
        rows: &[Vec<f32>],
        labels: &[bool],
        p: &XgbParams,
    ) -> Result<Booster, crate::MlError> {
        let n = rows.len();
        if n == 0 || n != labels.len() {
            return Err(crate::MlError::Metric(format!(
                "boosting needs as many labels as rows ({n} rows, {} labels)",
                labels.len()
            )));
        }
        let width = rows[0].len();
        if rows.iter().any(|r| r.len() != width) {
            return Err(crate::MlError::Metric("rows of different widths".into()));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(crate::MlError::Metric("non-finite feature value".into()));
        }
        let y: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
        let base_margin = 0.0;
        // Column-major values and, per feature, the samples in ascending order (stable).
        let cols: Vec<Vec<f32>> = (0..width)
            .map(|f| rows.iter().map(|r| r[f]).collect())
            .collect();
        let sorted: Vec<Vec<u32>> = cols
            .iter()
            .map(|c| {
                let mut idx: Vec<u32> = (0..n as u32).collect();
                idx.sort_by(|&a, &b| c[a as usize].total_cmp(&c[b as usize]));
                idx
            })
            .collect();
        let mut margin = vec![base_margin as f32; n];
        let mut trees = Vec::with_capacity(p.rounds);
        let (mut g, mut h) = (vec![0.0; n], vec![0.0; n]);
        for _ in 0..p.rounds {
            for i in 0..n {
                let pr = sigmoid(margin[i]);
                g[i] = f64::from(pr - y[i] as f32);
                h[i] = f64::from((pr * (1.0 - pr)).max(1e-16));
            }
            let (tree, pos) = grow(&cols, &sorted, &g, &h, p);
            for i in 0..n {
                if let Node::Leaf(v) = tree[pos[i]] {
                    margin[i] += v as f32;
                }
            }
            trees.push(tree);
        }
        Ok(Booster { base_margin, trees })
    }

    /// The raw margin (log-odds) of one row, accumulated in f32 as XGBoost predicts.
    pub fn margin(&self, row: &[f32]) -> f64 {
        let mut m = self.base_margin as f32;
        for t in &self.trees {
            let mut k = 0;
            loop {
                match t[k] {
                    Node::Leaf(v) => {
                        m += v as f32;
                        break;
                    }
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        k = if row[feature] < threshold {
                            left
                        } else {
                            right
                        }
                    }
                }
            }
        }
        f64::from(m)
    }

    /// The probability of the positive class.
    pub fn predict_proba(&self, row: &[f32]) -> f64 {
        f64::from(sigmoid(self.margin(row) as f32))
    }

    /// The predicted class, as `XGBClassifier.predict` (probability > 0.5).
    pub fn predict(&self, row: &[f32]) -> bool {
        self.predict_proba(row) > 0.5
    }

    pub fn trees(&self) -> usize {
        self.trees.len()
    }
}

/// Grows one tree level by level; returns it and each sample's final node.
fn grow(
    cols: &[Vec<f32>],
    sorted: &[Vec<u32>],
    g: &[f64],
    h: &[f64],
    p: &XgbParams,
) -> (Vec<Node>, Vec<usize>) {
    let n = g.len();
    let mut pos = vec![0usize; n];
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut frontier = vec![0usize];
    for depth in 0..=p.max_depth {
        // Node totals from the samples routed there.
        let mut slot = vec![usize::MAX; nodes.len()];
        for (s, &k) in frontier.iter().enumerate() {
            slot[k] = s;
        }
        let mut total = vec![Stats::default(); frontier.len()];
        for i in 0..n {
            let s = slot[pos[i]];
            if s != usize::MAX {
                total[s].add(g[i], h[i]);
            }
        }
        let mut best: Vec<Option<Best>> = vec![None; frontier.len()];
        let root: Vec<f32> = total.iter().map(|t| t.score(p.lambda)).collect();
        if depth < p.max_depth {
            for (f, order) in sorted.iter().enumerate() {
                let col = &cols[f];
                // From the largest value down: `right` holds the samples above the candidate.
                let mut right = vec![Stats::default(); frontier.len()];
                let mut last = vec![0f32; frontier.len()];
                for &i in order.iter().rev() {
                    let i = i as usize;
                    let s = slot[pos[i]];
                    if s == usize::MAX {
                        continue;
                    }
                    let v = col[i];
                    let r = &mut right[s];
                    if r.h != 0.0 && v != last[s] && r.h >= p.min_child_weight {
                        let l = Stats {
                            g: total[s].g - r.g,
                            h: total[s].h - r.h,
                        };
                        if l.h >= p.min_child_weight {
                            // f32 throughout, as `CalcSplitGain` - `root_gain`.
                            let gain = (l.score(p.lambda) + r.score(p.lambda)) - root[s];
                            if best[s].is_none_or(|b| gain > b.gain) {
                                // Here v < last: the midpoint may round to v itself.
                                let mid = (v + last[s]) * 0.5;
                                best[s] = Some(Best {
                                    gain,
                                    feature: f,
                                    threshold: if mid == v { last[s] } else { mid },
                                });
                            }
                        }
                    }
                    r.add(g[i], h[i]);
                    last[s] = v;
                }
            }
        }
        let mut next = Vec::new();
        for (s, &k) in frontier.iter().enumerate() {
            match best[s] {
                Some(b) if f64::from(b.gain) > RT_EPS => {
                    let (l, r) = (nodes.len(), nodes.len() + 1);
                    nodes.push(Node::Leaf(0.0));
                    nodes.push(Node::Leaf(0.0));
                    nodes[k] = Node::Split {
                        feature: b.feature,
                        threshold: b.threshold,
                        left: l,
                        right: r,
                    };
                    next.push(l);
                    next.push(r);
                }
                _ => {
                    let t = total[s];
                    let w = if t.h < p.min_child_weight || t.h <= 0.0 {
                        0.0
                    } else {
                        (-t.g / (t.h + p.lambda)) as f32
                    };
                    nodes[k] = Node::Leaf(f64::from(w * p.eta as f32));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        // Route the samples of split nodes by the threshold, as prediction will.
        for i in 0..n {
            if let Node::Split {
                feature,
                threshold,
                left,
                right,
            } = nodes[pos[i]]
            {
                pos[i] = if cols[feature][i] < threshold {
                    left
                } else {
                    right
                };
            }
        }
        frontier = next;
    }
    (nodes, pos)
}

/// Reads an attack set as `evaluate` exports it (`mia_fit.csv`, `mia_eval.csv`: a header, then
/// rows of label (0/1) and features), as f32 like XGBoost's DMatrix.
pub fn read_attack_csv(
    path: &std::path::Path,
) -> Result<(Vec<Vec<f32>>, Vec<bool>), crate::MlError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        crate::MlError::Stage(camu_core::stage::StageError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
    })?;
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut cells = line.split(',').map(|c| c.trim().parse::<f32>());
        let bad =
            || crate::MlError::Metric(format!("{}:{}: expected numbers", path.display(), n + 1));
        let label = cells.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let row = cells.collect::<Result<Vec<f32>, _>>().map_err(|_| bad())?;
        labels.push(label != 0.0);
        rows.push(row);
    }
    Ok((rows, labels))
}

/// Fits the learner with its defaults on `fit` and returns its accuracy on `eval`: the number
/// `scripts/mia-crosscheck.py` compares with XGBoost's.
pub fn attack_accuracy(
    fit: &std::path::Path,
    eval: &std::path::Path,
) -> Result<f64, crate::MlError> {
    let (x, y) = read_attack_csv(fit)?;
    let (ex, ey) = read_attack_csv(eval)?;
    let b = Booster::fit(&x, &y, &XgbParams::default())?;
    let right = ex
        .iter()
        .zip(&ey)
        .filter(|(r, l)| b.predict(r) == **l)
        .count();
    Ok(right as f64 / ey.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(rows: &[Vec<f32>], labels: &[bool], rounds: usize) -> Booster {
        let p = XgbParams {
            rounds,
            ..Default::default()
        };
        Booster::fit(rows, labels, &p).unwrap()
    }

    #[test]
    fn one_round_matches_hand_computed_xgboost_tree() {
        // Balanced labels: base margin 0, p = 0.5, g = 0.5 - y, h = 0.25 everywhere.
        let rows: Vec<Vec<f32>> = [1.0f32, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
            .iter()
            .map(|&v| vec![v])
            .collect();
        let labels = [false, false, false, false, true, true, true, true];
        let b = fit(&rows, &labels, 1);
        // The best split is at 2.5: left G = 4 * 0.5 = 2, H = 1, leaf = -0.3 * 2 / 2 = -0.3.
        // (Leaf values are f32, as XGBoost stores them.)
        assert!(
            (b.margin(&[2.0]) + 0.3).abs() < 1e-6,
            "{}",
            b.margin(&[2.0])
        );
        assert!((b.margin(&[3.0]) - 0.3).abs() < 1e-6);
        // Children of 2 samples have H = 0.5 < min_child_weight 1: no deeper split.
        assert!((b.margin(&[1.0]) - b.margin(&[2.0])).abs() < 1e-12);
    }

    #[test]
    fn splits_values_closer_than_1e_5() {
        // Every gap between neighbouring values is about 1e-7 (the old learner skipped gaps below
        // 1e-5, so it found no split at all); members are the lower half.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200 {
            rows.push(vec![0.9f32 + i as f32 * 1e-7]);
            labels.push(i < 100);
        }
        let b = fit(&rows, &labels, 100);
        let acc = rows
            .iter()
            .zip(&labels)
            .filter(|(r, l)| b.predict(r) == **l)
            .count() as f64
            / rows.len() as f64;
        assert_eq!(acc, 1.0, "training accuracy");
    }

    #[test]
    fn uninformative_features_give_chance_on_unseen_data() {
        // Labels independent of the features: held-out accuracy near 0.5.
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..4000 {
            rows.push(vec![next() as f32, next() as f32]);
            labels.push(next() < 0.5);
        }
        let b = fit(&rows[..2000], &labels[..2000], 100);
        let acc = (2000..4000)
            .filter(|&i| b.predict(&rows[i]) == labels[i])
            .count() as f64
            / 2000.0;
        assert!((acc - 0.5).abs() < 0.05, "held-out accuracy {acc}");
    }

    #[test]
    fn adjacent_floats_split_where_the_gain_was_scored() {
        // Two adjacent f32 values: their midpoint rounds to one of them, and the threshold must
        // still put the smaller left and the larger right.
        let a = 0.999_999_9f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let rows: Vec<Vec<f32>> = [a, a, a, a, b, b, b, b].iter().map(|&v| vec![v]).collect();
        let labels = [false, false, false, false, true, true, true, true];
        let m = fit(&rows, &labels, 1);
        assert!(m.margin(&[a]) < 0.0 && m.margin(&[b]) > 0.0);
    }

    #[test]
    fn min_child_weight_blocks_tiny_children() {
        // 4 samples with h = 0.25 each: no child can reach H >= 1 except the root.
        let rows: Vec<Vec<f32>> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|&v| vec![v]).collect();
        let p = XgbParams {
            rounds: 1,
            min_child_weight: 1.0,
            ..Default::default()
        };
        let b = Booster::fit(&rows, &[false, true, false, true], &p).unwrap();
        // Only split with both sides >= 2 samples is 2.5, gain 0 for (0,1)|(0,1): a single leaf.
        assert!((b.margin(&[1.0]) - b.margin(&[4.0])).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        let p = XgbParams::default();
        assert!(Booster::fit(&[], &[], &p).is_err());
        assert!(Booster::fit(&[vec![f32::NAN]], &[true], &p).is_err());
        assert!(Booster::fit(&[vec![1.0], vec![1.0, 2.0]], &[true, false], &p).is_err());
    }
}
