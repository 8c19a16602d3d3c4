//! The report of `totofs diff`: the artifact sets compared, the causes of each changed product
//! (when both traces are there), and its text and `--json` forms. The text shows every name with
//! [`one_line`].

use crate::investigate::cause::{Cause, CauseKind, Unexplained};
use crate::investigate::causes::Analysis;
use crate::investigate::describe::describe;
use crate::metadata::Artifacts;
use crate::trace::Trace;
use crate::metadata::Link;
use crate::text::one_line;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Added, removed and changed artifact names between two artifact sets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Names present in both sets with equal hashes.
    pub unchanged: usize,
}

impl SetDiff {
    pub fn between(a: &Artifacts, b: &Artifacts) -> Self {
        let mut d = SetDiff::default();
        for (p, h) in a {
            match b.get(p) {
                None => d.removed.push(p.clone()),
                Some(hb) if hb != h => d.changed.push(p.clone()),
                Some(_) => d.unchanged += 1,
            }
        }
        d.added = b.keys().filter(|p| !a.contains_key(*p)).cloned().collect();
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    pub fn to_value(&self) -> Value {
        json!({"added": self.added, "removed": self.removed, "changed": self.changed})
    }
}

/// Everything `totofs diff` reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffReport {
    pub materials: SetDiff,
    pub products: SetDiff,
    pub causes: Vec<Cause>,
    pub unexplained: Vec<Unexplained>,
    /// Whether both traces were available (causes are only computed then).
    pub traced: bool,
}

impl DiffReport {
    /// Compare two links; with both traces, explain each changed product.
    pub fn new(link_a: &Link, trace_a: Option<&Trace>, link_b: &Link, trace_b: Option<&Trace>) -> Self {
        let mut r = DiffReport {
            materials: SetDiff::between(&link_a.materials, &link_b.materials),
            products: SetDiff::between(&link_a.products, &link_b.products),
            ..Default::default()
        };
        if let (Some(ta), Some(tb)) = (trace_a, trace_b) {
            r.traced = true;
            let mut an = Analysis::new(link_a, ta, link_b, tb);
            for p in &r.products.changed {
                match an.explain(p) {
                    Ok(c) => r.causes.extend(c),
                    Err(u) => r.unexplained.push(u),
                }
            }
        }
        r
    }

    /// The products are identical (same names, same hashes).
    pub fn products_identical(&self) -> bool {
        self.products.is_empty()
    }

    /// The `--json` form.
    pub fn to_value(&self) -> Value {
        json!({
            "materials": self.materials.to_value(),
            "products": self.products.to_value(),
            "causes": self.causes.iter().map(Cause::to_value).collect::<Vec<_>>(),
            "unexplained": self.unexplained.iter().map(|u| json!({"artifact": u.artifact, "reason": u.reason})).collect::<Vec<_>>(),
            "traced": self.traced,
        })
    }

    /// Human-readable report.
    pub fn render(&self, name_a: &str, name_b: &str) -> String {
        let mut out = String::new();
        let section = |out: &mut String, what: &str, d: &SetDiff| {
            if d.is_empty() {
                out.push_str(&format!("{what}: identical ({})\n", d.unchanged));
                return;
            }
            out.push_str(&format!(
                "{what}: {} changed, {} added, {} removed, {} identical\n",
                d.changed.len(),
                d.added.len(),
                d.removed.len(),
                d.unchanged
            ));
            for (mark, list) in [("~", &d.changed), ("+", &d.added), ("-", &d.removed)] {
                for p in list {
                    out.push_str(&format!("  {mark} {}\n", one_line(p)));
                }
            }
        };
        out.push_str(&format!("A: {}\nB: {}\n", one_line(name_a), one_line(name_b)));
        section(&mut out, "materials", &self.materials);
        section(&mut out, "products", &self.products);
        if !self.traced {
            if !self.products.changed.is_empty() {
                out.push_str("causes: not analysed (a trace is missing beside one of the links)\n");
            }
            return out;
        }
        let mut by_artifact: BTreeMap<&str, Vec<&Cause>> = BTreeMap::new();
        for c in &self.causes {
            by_artifact.entry(&c.artifact).or_default().push(c);
        }
        if !by_artifact.is_empty() || !self.unexplained.is_empty() {
            out.push_str("causes:\n");
        }
        for (artifact, causes) in by_artifact {
            out.push_str(&format!("  {} differs because\n", one_line(artifact)));
            for c in causes {
                out.push_str(&format!("    - {}\n", describe(c)));
            }
        }
        for u in &self.unexplained {
            out.push_str(&format!("  {} differs: not explained ({})\n", one_line(&u.artifact), one_line(&u.reason)));
        }
        let summary = self.summary();
        if !summary.is_empty() {
            out.push_str("summary:\n");
            for (kind, program, artifacts) in summary {
                let shown: Vec<&str> = artifacts.iter().take(6).map(String::as_str).collect();
                let more = artifacts.len().saturating_sub(shown.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let n = artifacts.len();
                let plural = if n == 1 { "" } else { "s" };
                out.push_str(&format!(
                    "  {}: {} ({n} product{plural}: {}{more})\n",
                    kind.as_str(),
                    one_line(program),
                    one_line(shown.join(", "))
                ));
            }
        }
        out
    }

    /// Root causes grouped by kind and program (argv[0]'s file name; "(material)" for a changed
    /// material no process wrote), with the products each group explains.
    pub fn summary(&self) -> Vec<(CauseKind, String, Vec<String>)> {
        let mut groups: BTreeMap<(CauseKind, String), BTreeSet<String>> = BTreeMap::new();
        for c in &self.causes {
            let program = match &c.process {
                Some(p) => {
                    let a0 = p.argv.first().map(String::as_str).unwrap_or("");
                    a0.rsplit('/').next().unwrap_or(a0).to_string()
                }
                None => "(material)".to_string(),
            };
            groups.entry((c.kind, program)).or_default().insert(c.artifact.clone());
        }
        groups.into_iter().map(|((k, p), a)| (k, p, a.into_iter().collect())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::investigate::cause::temporary_names;
    use crate::investigate::causes::MAX_DEPTH;
    use crate::metadata::HashDict;
    use crate::trace::{FileOp, ProcessStart, TraceBuilder};
    use sha2::{Digest, Sha256};

    /// A control build (build A again at A's path) decides what the analysis leaves open.
    impl DiffReport {
        /// Refine with a control comparison of build A against a build at A's path (same invocation):
        /// a `changed-invocation` whose process also changed its output there, with identical inputs
        /// and invocation, is really a `nondeterministic-process`.
        fn refine_with_control(&mut self, control: &DiffReport) {
            for c in self.causes.iter_mut().filter(|c| c.kind == CauseKind::ChangedInvocation) {
                let nondet = control.causes.iter().any(|k| {
                    k.kind == CauseKind::NondeterministicProcess && k.artifact == c.artifact && k.process == c.process
                });
                if nondet {
                    c.kind = CauseKind::NondeterministicProcess;
                }
            }
        }
    }

    fn h(content: &str) -> HashDict {
        [("sha256".to_string(), hex::encode(Sha256::digest(content.as_bytes())))].into()
    }

    /// One process of a hand-made build: argv, cwd, files read, files written.
    struct P<'a>(&'a str, &'a str, &'a [&'a str], &'a [&'a str]);

    /// A hand-made build: processes (the first is the parent of all others), the step's
    /// materials and the final content of every file written (`None`: deleted, content unknown).
    fn build(procs: &[P], materials: &[(&str, &str)], written: &[(&str, Option<&str>)]) -> (Link, Trace) {
        let parents: Vec<Option<usize>> = (0..procs.len()).map(|i| (i > 0).then_some(0)).collect();
        build_tree(procs, &parents, materials, written)
    }

    /// `build` with each process's parent given (an index into `procs`, earlier than it).
    fn build_tree(
        procs: &[P],
        parents: &[Option<usize>],
        materials: &[(&str, &str)],
        written: &[(&str, Option<&str>)],
    ) -> (Link, Trace) {
        let mut link = Link { name: "build".into(), ..Default::default() };
        for (p, c) in materials {
            link.materials.insert(p.to_string(), h(c));
            link.products.insert(p.to_string(), h(c));
        }
        let mut b = TraceBuilder::new("build");
        let mut ids = Vec::new();
        for (i, P(argv, cwd, reads, writes)) in procs.iter().enumerate() {
            let id = b.process(ProcessStart {
                pid: 100 + i as u32,
                parent: parents[i].map(|p| ids[p]),
                argv: argv.split(' ').map(str::to_string).collect(),
                cwd: cwd.to_string(),
                comm: String::new(),
            });
            ids.push(id);
            for r in *reads {
                b.file_op(id, r, FileOp::Read);
            }
            for w in *writes {
                b.file_op(id, w, FileOp::Written);
            }
        }
        for (p, c) in written {
            match c {
                Some(c) => {
                    link.products.insert(p.to_string(), h(c));
                }
                None => {
                    link.products.remove(*p);
                }
            }
        }
        let mut trace = b.finish(&link);
        for (p, c) in written {
            if let (Some(c), Some(rec)) = (c, trace.files.get_mut(*p)) {
                rec.after = Some(h(c));
            }
        }
        (link, trace)
    }

    /// cc1 -> as -> ar, plus a second object and a tarball made by gzip.
    fn zlib(cwd: &str, adler_s: &str, a_c: &str, tgz: &str) -> (Link, Trace) {
        build(
            &[
                P("make -j2", cwd, &["Makefile"], &[]),
                P("cc1 adler32.c -o adler32.s", cwd, &["adler32.c", "zlib.h"], &["adler32.s"]),
                P("as -o adler32.o adler32.s", "/src", &["adler32.s"], &["adler32.o"]),
                P("cc1 crc32.c -o crc32.s", "/src", &["crc32.c", "zlib.h"], &["crc32.s"]),
                P("as -o crc32.o crc32.s", "/src", &["crc32.s"], &["crc32.o"]),
                P("ar rcs libz.a adler32.o crc32.o", "/src", &["adler32.o", "crc32.o"], &["libz.a"]),
                P("gzip -9", "/src", &["README"], &["demo.tar.gz"]),
            ],
            &[("Makefile", "all:"), ("adler32.c", a_c), ("crc32.c", "crc"), ("zlib.h", "h"), ("README", "r")],
            &[
                ("adler32.s", Some(adler_s)),
                ("adler32.o", Some(&format!("obj({adler_s})"))),
                ("crc32.s", Some("crc.s")),
                ("crc32.o", Some("crc.o")),
                ("libz.a", Some(&format!("ar({adler_s})"))),
                ("demo.tar.gz", Some(tgz)),
            ],
        )
    }

    fn causes_of<'a>(r: &'a DiffReport, artifact: &str) -> Vec<&'a Cause> {
        r.causes.iter().filter(|c| c.artifact == artifact).collect()
    }

    #[test]
    fn changed_invocation_three_processes_deep() {
        let (la, ta) = zlib("/tmp/a/build", "comp_dir=/tmp/a/build", "adler", "tgz");
        let (lb, tb) = zlib("/tmp/b/x/build", "comp_dir=/tmp/b/x/build", "adler", "tgz");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert!(r.materials.is_empty());
        assert_eq!(r.products.changed, ["adler32.o", "adler32.s", "libz.a"]);
        let c = causes_of(&r, "libz.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cc1");
        assert_eq!(c[0].process.as_ref().unwrap().cwd, "/tmp/a/build");
        assert_eq!(c[0].process_b.as_ref().unwrap().cwd, "/tmp/b/x/build");
        assert_eq!(c[0].via, ["libz.a", "adler32.o", "adler32.s"]);
        assert_eq!(c[0].inputs, ["adler32.c", "zlib.h"]);
        assert_eq!(c[0].parent.as_ref().unwrap().argv, ["make", "-j2"]);
        let text = r.render("a", "b");
        assert!(text.contains("libz.a differs because"), "{text}");
        assert!(text.contains("summary:\n  changed-invocation: cc1 (3 products: adler32.o, adler32.s, libz.a)\n"), "{text}");
        assert!(text.contains("cwd /tmp/a/build -> /tmp/b/x/build"), "{text}");
        assert!(text.contains("(via adler32.o <- adler32.s)"), "{text}");
        let json = r.to_value();
        assert_eq!(json["causes"][0]["kind"], "changed-invocation");
        assert!(json["causes"][0]["process"]["argv"].is_array());
    }

    #[test]
    fn changed_material_is_the_root_cause() {
        let (la, ta) = zlib("/src", "s1", "adler v1", "tgz");
        let (lb, tb) = zlib("/src", "s2", "adler v2", "tgz");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.materials.changed, ["adler32.c"]);
        let c = causes_of(&r, "libz.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInput);
        assert_eq!(c[0].inputs, ["adler32.c"]);
        assert_eq!(c[0].process.as_ref().unwrap().argv[1], "adler32.c");
        assert_eq!(c[0].via, ["libz.a", "adler32.o", "adler32.s"]);
    }

    #[test]
    fn identical_inputs_and_invocation_is_nondeterminism() {
        let (la, ta) = zlib("/src", "s", "adler", "gzip header 1700000000");
        let (lb, tb) = zlib("/src", "s", "adler", "gzip header 1700000042");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["demo.tar.gz"]);
        let c = causes_of(&r, "demo.tar.gz");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv, ["gzip", "-9"]);
        assert_eq!(c[0].inputs, ["README"]);
        assert!(r.render("a", "b").contains("nondeterministic-process: `gzip -9`"));
    }

    #[test]
    fn two_causes_in_one_diff_and_the_control_build_separates_them() {
        // Build path varied (cc1 embeds it) and time passed (gzip stores it).
        let (la, ta) = zlib("/tmp/a", "dir=/tmp/a", "adler", "t1");
        let (lb, tb) = zlib("/tmp/b", "dir=/tmp/b", "adler", "t2");
        let mut r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let kinds: BTreeSet<_> = r.causes.iter().map(|c| (c.artifact.as_str(), c.kind)).collect();
        assert!(kinds.contains(&("libz.a", CauseKind::ChangedInvocation)));
        // gzip's cwd is /src in both: identical invocation, so it is already non-deterministic.
        assert!(kinds.contains(&("demo.tar.gz", CauseKind::NondeterministicProcess)));

        // Now gzip also runs in the varied build path: the pair alone calls it a changed
        // invocation; a control build at A's path shows it differs anyway.
        let mut ta2 = ta.clone();
        let mut tb2 = tb.clone();
        ta2.processes[6].cwd = "/tmp/a".into();
        tb2.processes[6].cwd = "/tmp/b".into();
        r = DiffReport::new(&la, Some(&ta2), &lb, Some(&tb2));
        assert_eq!(causes_of(&r, "demo.tar.gz")[0].kind, CauseKind::ChangedInvocation);
        let (lc, tc) = zlib("/tmp/a", "dir=/tmp/a", "adler", "t3");
        let mut tc2 = tc.clone();
        tc2.processes[6].cwd = "/tmp/a".into();
        let control = DiffReport::new(&la, Some(&ta2), &lc, Some(&tc2));
        assert_eq!(control.products.changed, ["demo.tar.gz"]);
        r.refine_with_control(&control);
        assert_eq!(causes_of(&r, "demo.tar.gz")[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(causes_of(&r, "libz.a")[0].kind, CauseKind::ChangedInvocation);
    }

    #[test]
    fn renames_and_random_temporary_names_are_followed() {
        // gen writes a temp file that mv renames into place; cc reads a temp file with a random
        // name written by cpp (deleted before the end, hashed by the recorder).
        let mk = |tmp: &str, stamp: &str| {
            build(
                &[
                    P("sh build.sh", "/src", &["build.sh"], &[]),
                    P("gen --stamp", "/src", &["in.txt"], &["out.tmp"]),
                    P("mv out.tmp out.txt", "/src", &[], &["out.txt"]),
                    P(&format!("cpp x.c -o {tmp}"), "/src", &["x.c"], &[tmp]),
                    P(&format!("cc {tmp} -o x.o"), "/src", &[tmp], &["x.o"]),
                ],
                &[("build.sh", "b"), ("in.txt", "i"), ("x.c", "x")],
                &[("out.txt", Some(stamp)), ("x.o", Some("x.o")), (tmp, None)],
            )
        };
        let (la, mut ta) = mk("tmpA.i", "stamp 1");
        let (lb, mut tb) = mk("tmpB.i", "stamp 2");
        for t in [&mut ta, &mut tb] {
            let f = t.files.get_mut("out.txt").unwrap();
            f.ops = vec![FileOp::RenamedFrom("out.tmp".into())];
        }
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["out.txt"]);
        let c = causes_of(&r, "out.txt");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "gen");

        // x.o differs: cc read temp files with different names, paired by the program that
        // wrote them; their content differs, so the cause is upstream in cpp.
        let (la, mut ta) = mk("tmpA.i", "s");
        let (mut lb, mut tb) = mk("tmpB.i", "s");
        ta.files.get_mut("tmpA.i").unwrap().after = Some(h("pre 1"));
        tb.files.get_mut("tmpB.i").unwrap().after = Some(h("pre 2"));
        lb.products.insert("x.o".into(), h("x.o 2"));
        tb.files.get_mut("x.o").unwrap().after = Some(h("x.o 2"));
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "x.o");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation, "cpp's argv names its random output file");
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cpp");
        assert_eq!(c[0].via, ["x.o", "tmpA.i"]);
    }

    #[test]
    fn other_writers_of_a_product_are_named() {
        // configure appends to a log: sh's echo, then date, then tee; date's output differs.
        let mk = |stamp: &str| {
            build(
                &[
                    P("sh ./configure", "/src", &["configure"], &["configure.log"]),
                    P("date", "/src", &[], &["configure.log"]),
                    P("tee -a configure.log", "/src", &[], &["configure.log"]),
                ],
                &[("configure", "c")],
                &[("configure.log", Some(stamp))],
            )
        };
        let (la, ta) = mk("log 1");
        let (lb, tb) = mk("log 2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "configure.log");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "tee");
        let also: Vec<&str> = c[0].also_written_by.iter().map(|i| i.argv[0].as_str()).collect();
        assert_eq!(also, ["sh", "date"]);
        assert!(describe(c[0]).contains("configure.log also written by `sh ./configure`, `date`"), "{}", describe(c[0]));
        assert_eq!(r.to_value()["causes"][0]["also_written_by"][1]["argv"][0], "date");
    }

    #[test]
    fn ranlib_after_ar_is_followed_not_listed_as_another_writer() {
        let mk = |cwd: &str, obj: &str| {
            build(
                &[
                    P("make", cwd, &[], &[]),
                    P("as -o a.o", cwd, &["a.s"], &["a.o"]),
                    P("ar rc lib.a a.o", cwd, &["a.o"], &["lib.a"]),
                    P("ranlib lib.a", cwd, &["lib.a"], &["lib.a"]),
                ],
                &[("a.s", "asm")],
                &[("a.o", Some(obj)), ("lib.a", Some(&format!("ranlib(ar({obj}))")))],
            )
        };
        let (la, mut ta) = mk("/x", "o1");
        let (lb, mut tb) = mk("/y", "o2");
        // ar's archive as ranlib read it.
        for (t, o) in [(&mut ta, "o1"), (&mut tb, "o2")] {
            t.files.get_mut("lib.a").unwrap().after = Some(h(&format!("ranlib(ar({o}))")));
        }
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "lib.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].via, ["lib.a", "lib.a", "a.o"]);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
        assert!(c[0].also_written_by.is_empty());
    }

    /// The demo's build: make -> cc -> {cc1 reads greeting.c, writes a /tmp .s file outside the
    /// tree; as assembles it into greeting.o}, the same for hello.c, then cc -> ld links hello.
    /// `dir` is the checkout, `cc1_arg` an argument cc1 gets (e.g. a debug prefix map), `tmp` the
    /// temporary names, `obj`/`exe` what greeting.o and hello end up holding.
    fn hello(dir: &str, greeting_c: &str, cc1_arg: &str, tmp: [&str; 2], obj: &str, exe: &str) -> (Link, Trace) {
        let src = format!("{dir}/src");
        let cc1_g = format!("cc1 greeting.c -quiet {cc1_arg} -o {}", tmp[0]);
        let as_g = format!("as --64 -o greeting.o {}", tmp[0]);
        let cc1_h = format!("cc1 hello.c -quiet {cc1_arg} -o {}", tmp[1]);
        let as_h = format!("as --64 -o hello.o {}", tmp[1]);
        build_tree(
            &[
                P("make -C src", dir, &["src/Makefile"], &[]),
                P("cc -O2 -c -o greeting.o greeting.c", &src, &[], &[]),
                P(&cc1_g, &src, &["src/greeting.c", "src/greeting.h"], &[]),
                P(&as_g, &src, &[], &["src/greeting.o"]),
                P("cc -O2 -c -o hello.o hello.c", &src, &[], &[]),
                P(&cc1_h, &src, &["src/hello.c", "src/greeting.h"], &[]),
                P(&as_h, &src, &[], &["src/hello.o"]),
                P("cc -o hello hello.o greeting.o", &src, &[], &[]),
                P("ld -o hello hello.o greeting.o", &src, &["src/hello.o", "src/greeting.o"], &["src/hello"]),
            ],
            &[None, Some(0), Some(1), Some(1), Some(0), Some(4), Some(4), Some(0), Some(7)],
            &[("src/Makefile", "all:"), ("src/greeting.c", greeting_c), ("src/greeting.h", "h"), ("src/hello.c", "main")],
            &[("src/greeting.o", Some(obj)), ("src/hello.o", Some("hello.o")), ("src/hello", Some(exe))],
        )
    }

    #[test]
    fn a_changed_source_behind_a_compiler_temporary_is_the_root_cause() {
        // The demo's attack: greeting.c edited, and the build run in another directory.
        let (la, ta) = hello("/a/work", "hello", "-O2", ["/tmp/ccAAAAAA.s", "/tmp/ccCCCCCC.s"], "o1", "x1");
        let (lb, tb) = hello("/a/attack/work", "pwned", "-O2", ["/tmp/ccBBBBBB.s", "/tmp/ccDDDDDD.s"], "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.materials.changed, ["src/greeting.c"]);
        assert_eq!(r.products.changed, ["src/greeting.c", "src/greeting.o", "src/hello"]);
        for (product, via) in [("src/greeting.o", vec!["src/greeting.o"]), ("src/hello", vec!["src/hello", "src/greeting.o"])] {
            let c = causes_of(&r, product);
            assert_eq!(c.len(), 1, "{product}: {c:?}");
            assert_eq!(c[0].kind, CauseKind::ChangedInput, "{product}: {c:?}");
            assert_eq!(c[0].inputs, ["src/greeting.c"]);
            assert_eq!(c[0].process.as_ref().unwrap().argv[..2], ["cc1", "greeting.c"]);
            assert_eq!(c[0].parent.as_ref().unwrap().argv[0], "cc");
            assert_eq!(c[0].through.as_ref().unwrap().argv[0], "as");
            assert_eq!(c[0].via, via);
        }
        let text = r.render("a", "b");
        assert!(!text.contains("changed-invocation"), "{text}");
        assert!(
            text.contains("changed-input: `cc1 greeting.c -quiet -O2 -o /tmp/ccAAAAAA.s` [run by `cc -O2 -c -o greeting.o greeting.c`] read material(s) that differ: src/greeting.c, which reached src/greeting.o through `as --64 -o greeting.o /tmp/ccAAAAAA.s`"),
            "{text}"
        );
        assert!(text.contains("summary:\n  changed-input: (material) (1 product: src/greeting.c)\n  changed-input: cc1 (2 products: src/greeting.o, src/hello)\n"), "{text}");
        assert_eq!(r.to_value()["causes"][1]["through"]["argv"][0], "as");
    }

    #[test]
    fn a_build_path_in_the_compilers_argv_is_the_changed_invocation() {
        let tmp_a = ["/tmp/ccAAAAAA.s", "/tmp/ccCCCCCC.s"];
        let tmp_b = ["/tmp/ccBBBBBB.s", "/tmp/ccDDDDDD.s"];
        // Same sources; cc1 is given the build path, which it writes into the object.
        let (la, ta) = hello("/a/work", "hello", "-fdebug-prefix-map=/a/work=.", tmp_a, "o1", "x1");
        let (lb, tb) = hello("/b/work", "hello", "-fdebug-prefix-map=/b/work=.", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert!(r.materials.is_empty());
        for product in ["src/greeting.o", "src/hello"] {
            let c = causes_of(&r, product);
            assert_eq!(c.len(), 1, "{product}: {c:?}");
            assert_eq!(c[0].kind, CauseKind::ChangedInvocation, "{product}: {c:?}");
            assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cc1", "the argv that differs, not as's cwd");
            assert_eq!(c[0].process_b.as_ref().unwrap().argv[3], "-fdebug-prefix-map=/b/work=.");
            assert_eq!(c[0].inputs, ["src/greeting.c", "src/greeting.h"]);
            assert_eq!(c[0].through.as_ref().unwrap().argv[0], "as");
        }
        let d = describe(causes_of(&r, "src/greeting.o")[0]);
        assert!(d.contains("argv[3] -fdebug-prefix-map=/a/work=. -> -fdebug-prefix-map=/b/work=."), "{d}");
        assert!(d.contains("through `as --64 -o greeting.o /tmp/ccAAAAAA.s`"), "{d}");

        // Only the directory differs: the writer whose cwd changed, as before.
        let (la, ta) = hello("/a/work", "hello", "-O2", tmp_a, "o1", "x1");
        let (lb, tb) = hello("/b/work", "hello", "-O2", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "src/greeting.o");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
        assert!(c[0].through.is_none());

        // Same directory, same everything: the assembler's output differing is non-determinism.
        let (lb, tb) = hello("/a/work", "hello", "-O2", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "src/greeting.o");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
    }

    #[test]
    fn another_job_of_a_sub_make_is_not_a_cause() {
        // sh -> {make -C lib -> {cc -> cc1, as for a.c; cc -> cc1, as for b.c}, make -C doc}:
        // the sub-make is not the step's root. b.c changed, and
        // a.o differs too (cc1 expands __DATE__ into a.s). The sub-make's group read b.c, but
        // b.c went into b.o, not a.o.
        let mk = |b_c: &str, a_o: &str| {
            build_tree(
                &[
                    P("sh build.sh", "/s", &["build.sh"], &[]),
                    P("make -C lib", "/s/lib", &["lib/Makefile"], &[]),
                    P("cc -c a.c", "/s/lib", &[], &[]),
                    P("cc1 a.c -o /tmp/ccAAAAAA.s", "/s/lib", &["lib/a.c"], &[]),
                    P("as -o a.o /tmp/ccAAAAAA.s", "/s/lib", &[], &["lib/a.o"]),
                    P("cc -c b.c", "/s/lib", &[], &[]),
                    P("cc1 b.c -o /tmp/ccBBBBBB.s", "/s/lib", &["lib/b.c"], &[]),
                    P("as -o b.o /tmp/ccBBBBBB.s", "/s/lib", &[], &["lib/b.o"]),
                    P("make -C doc", "/s/doc", &["doc/Makefile"], &[]),
                ],
                &[None, Some(0), Some(1), Some(2), Some(2), Some(1), Some(5), Some(5), Some(0)],
                &[("build.sh", "make -C lib"), ("lib/Makefile", "all:"), ("lib/a.c", "a"), ("lib/b.c", b_c), ("doc/Makefile", "d")],
                &[("lib/a.o", Some(a_o)), ("lib/b.o", Some(&format!("obj({b_c})")))],
            )
        };
        let (la, ta) = mk("b1", "Nov 26");
        let (lb, tb) = mk("b2", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["lib/a.o", "lib/b.c", "lib/b.o"]);
        let a = causes_of(&r, "lib/a.o");
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, CauseKind::NondeterministicProcess, "{a:?}");
        assert_eq!(a[0].process.as_ref().unwrap().argv[0], "as");
        let b = causes_of(&r, "lib/b.o");
        assert_eq!((b[0].kind, b[0].inputs.as_slice()), (CauseKind::ChangedInput, &["lib/b.c".to_string()][..]));
        assert_eq!(b[0].process.as_ref().unwrap().argv[0], "cc1");
    }

    #[test]
    fn another_job_that_wrote_its_own_product_is_not_a_cause() {
        // sh -> make -> {gcc -> cc1, as; cat README > doc.txt}: README changed, and a.o differs
        // too (__DATE__). make runs one compiler, so its group is considered, but cat's input
        // went into doc.txt, visibly, not into a.o.
        let mk = |readme: &str, a_o: &str| {
            build_tree(
                &[
                    P("sh build.sh", "/s", &["build.sh"], &[]),
                    P("make", "/s", &["Makefile"], &[]),
                    P("gcc -c a.c", "/s", &[], &[]),
                    P("cc1 a.c -o /tmp/ccAAAAAA.s", "/s", &["a.c"], &[]),
                    P("as -o a.o /tmp/ccAAAAAA.s", "/s", &[], &["a.o"]),
                    P("cat README", "/s", &["README"], &["doc.txt"]),
                ],
                &[None, Some(0), Some(1), Some(2), Some(2), Some(1)],
                &[("build.sh", "make"), ("Makefile", "all:"), ("a.c", "a"), ("README", readme)],
                &[("a.o", Some(a_o)), ("doc.txt", Some(readme))],
            )
        };
        let (la, ta) = mk("r1", "Nov 26");
        let (lb, tb) = mk("r2", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["README", "a.o", "doc.txt"]);
        let a = causes_of(&r, "a.o");
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, CauseKind::NondeterministicProcess, "{a:?}");
        assert_eq!(a[0].process.as_ref().unwrap().argv[0], "as");
        assert_eq!(causes_of(&r, "doc.txt")[0].inputs, ["README"]);
    }

    #[test]
    fn random_temporary_file_names_are_not_a_changed_invocation() {
        assert!(temporary_names("/tmp/ccAbc123.s", "/tmp/ccXyz789.s"));
        assert!(!temporary_names("/tmp/ccAbc123.s", "/tmp/ccXyz789.o"));
        assert!(!temporary_names("/tmp/a/build/x.c", "/tmp/b/build/x.c"));
        assert!(!temporary_names("/src/ccAbc.s", "/src/ccXyz.s"));
        assert!(!temporary_names("ccAbc.s", "ccXyz.s"));
        // cc1 embeds __DATE__ into a temporary .s that as assembles: inputs and invocation are
        // the same but for the temporary file's name, so as's output differing is non-determinism
        // (the overlay cannot see the temporary file).
        let mk = |tmp: &str, obj: &str| {
            build(
                &[P("gcc -c v.c", "/src", &["v.c"], &[]), P(&format!("as -o v.o {tmp}"), "/src", &[], &["v.o"])],
                &[("v.c", "c")],
                &[("v.o", Some(obj))],
            )
        };
        let (la, ta) = mk("/tmp/ccAAAAAA.s", "Nov 26");
        let (lb, tb) = mk("/tmp/ccBBBBBB.s", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "v.o");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert!(describe(c[0]).contains("with an identical invocation"), "{}", describe(c[0]));
        let (lc, mut tc) = mk("/tmp/ccCCCCCC.s", "Nov 27");
        tc.processes[1].cwd = "/elsewhere".into();
        let r = DiffReport::new(&la, Some(&ta), &lc, Some(&tc));
        let d = describe(causes_of(&r, "v.o")[0]);
        assert!(d.starts_with("changed-invocation") && d.contains("cwd /src -> /elsewhere") && !d.contains("argv["), "{d}");
    }

    #[test]
    fn a_very_deep_chain_does_not_exhaust_the_stack() {
        let n = 3_000;
        let mk = |seed: &str| {
            let owned: Vec<String> = (0..=n).map(|i| format!("f{i}")).collect();
            let names: Vec<&str> = owned.iter().map(String::as_str).collect();
            let argv: Vec<String> = (0..n).map(|i| format!("step{i}")).collect();
            let procs: Vec<P> = (0..n)
                .map(|i| P(&argv[i], "/s", std::slice::from_ref(&names[i]), std::slice::from_ref(&names[i + 1])))
                .collect();
            let contents: Vec<String> = (1..=n).map(|i| format!("{seed}{i}")).collect();
            let written: Vec<(&str, Option<&str>)> =
                (1..=n).map(|i| (names[i], Some(contents[i - 1].as_str()))).collect();
            build(&procs, &[("f0", "src")], &written)
        };
        let (la, ta) = mk("a");
        let (lb, tb) = mk("b");
        let mut an = Analysis::new(&la, &ta, &lb, &tb);
        let c = an.explain(&format!("f{n}")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].via.len(), MAX_DEPTH + 1, "the product and the inputs followed");
    }

    #[test]
    fn set_diff_and_missing_traces() {
        let (la, _) = zlib("/src", "s", "a", "t");
        let (mut lb, _) = zlib("/src", "s", "a", "t2");
        lb.products.remove("README");
        lb.products.insert("NEWS".into(), h("n"));
        let r = DiffReport::new(&la, None, &lb, None);
        assert_eq!(r.products.added, ["NEWS"]);
        assert_eq!(r.products.removed, ["README"]);
        assert_eq!(r.products.changed, ["demo.tar.gz"]);
        assert!(!r.traced && r.causes.is_empty());
        assert!(!r.products_identical());
        let j = r.to_value();
        assert_eq!(j["products"]["added"][0], "NEWS");
        assert_eq!(j["materials"], json!({"added": [], "removed": [], "changed": []}));
        assert!(r.render("a", "b").contains("not analysed"));
        let same = DiffReport::new(&la, None, &la, None);
        assert!(same.products_identical());
    }
}
