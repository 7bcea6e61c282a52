//! Engine benchmarks: planning and a no-op run of a generated 500-stage pipeline, and hashing a
//! 1 GiB file. `cargo bench --bench engine`; figures in BENCHMARKS.md.

use camu_core::engine::{Engine, Options};
use camu_core::executor::LocalExecutor;
use camu_core::progress::Reporter;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// 5 chained stage types x a 100-value matrix = 500 stages.
fn pipeline_text() -> String {
    let ids: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let m = format!("{{i: [{}]}}", ids.join(", "));
    let mut s = String::from("stages:\n");
    let names = ["prep", "train", "unlearn", "evaluate", "summarise"];
    for (k, name) in names.iter().enumerate() {
        s.push_str(&format!(
            "  {name}:\n    kind: command\n    matrix: {m}\n    with: {{step: {k}, lr: 0.001}}\n    command: \"echo {name} ${{i}} > ${{out}}/o.txt\"\n"
        ));
        if k > 0 {
            s.push_str(&format!("    needs: [{}]\n", names[k - 1]));
        }
    }
    s
}

fn options(dir: &Path) -> Options {
    Options {
        cache_dir: dir.join("cache"),
        data_dir: dir.join("data"),
        cpus: 2,
        ..Options::default()
    }
}

fn run_once(pipeline: &Path, dir: &Path, executor: Arc<LocalExecutor>) {
    let p = camu_core::spec::load(pipeline, &camu_lab::kinds::registry()).expect("pipeline loads");
    let mut engine = Engine::new(&p, options(dir)).expect("engine");
    let mut rep = Reporter::quiet();
    engine
        .run(executor, &mut rep, Arc::new(AtomicBool::new(false)))
        .expect("run succeeds");
}

fn bench_engine(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("p500.yaml");
    std::fs::write(&pipeline, pipeline_text()).expect("write pipeline");
    let executor = Arc::new(LocalExecutor {
        program: PathBuf::from(env!("CARGO_BIN_EXE_camu-pipe")),
    });
    // Fill the cache once; the benchmark then measures the no-op path.
    run_once(&pipeline, dir.path(), executor.clone());

    c.bench_function("plan_500_stages", |b| {
        b.iter(|| {
            let p = camu_core::spec::load(&pipeline, &camu_lab::kinds::registry()).expect("loads");
            camu_core::graph::Dag::build(&p).expect("acyclic")
        })
    });
    c.bench_function("noop_run_500_stages", |b| {
        b.iter(|| run_once(&pipeline, dir.path(), executor.clone()))
    });
}

fn bench_hash(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("1gib.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let block: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        for _ in 0..1024 {
            f.write_all(&block).expect("write");
        }
    }
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(1 << 30));
    g.sample_size(10);
    g.bench_function("blake3_mmap_rayon_1gib", |b| {
        b.iter(|| camu_core::cache::hash_file(&path).expect("hash"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // No HTML plots: criterion's plotting backend needs a font that a bare machine may lack.
    config = Criterion::default().without_plots();
    targets = bench_engine, bench_hash
}
criterion_main!(benches);
