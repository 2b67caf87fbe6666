//! A deterministic generator of synthetic plugin reports for the merge benchmarks.
//!
//! It is a Rust port of `tools/gen_corpus.py`: the reports have the same *shape* (topologies,
//! node-ID patterns, latest entries, sets, parents, metrics, templates, IDs shared between
//! reports, Go-style ASCII escaping on odd reports), but not the same bytes. It has its own
//! PRNG (SplitMix64) so the same `(reports, nodes, seed)` always gives the same bodies.
//!
//! Not here: anything about decoding or merging; comparing with Scope's Go code (that uses the
//! Python corpus and `tests/fixtures/vectors`). Key order differs from the script (objects are
//! written with sorted keys), which a decoder must not care about (spec §4.2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value, json};

const NS: i64 = 1_000_000_000;
/// 2026-11-22T01:00:00Z, as in the script.
const BASE_NS: i64 = 1_795_395_600 * NS;
/// One report per probe publish interval.
const REPORT_STEP_NS: i64 = 3 * NS;
/// One metric sample per spy tick.
const SAMPLE_STEP_NS: i64 = NS;
/// Samples by which a shared node's metric window moves per report.
const SAMPLE_SHIFT: usize = 3;

const SHARED: f64 = 0.3;
const LATEST: usize = 8;
const METRIC_COUNT: usize = 3;
const SAMPLES: usize = 15;

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "metric", "node", "probe", "report", "scope", "weave", "plugin", "latency",
    "socket", "buffer", "merge", "window", "sample", "cluster", "region", "zone",
];
/// Snippets that need JSON escapes or are not ASCII (astral ones need surrogate pairs).
const TRICKY: &[&str] = &[
    "say \"hello\"",
    "C:\\Program Files\\Scope",
    "^\\d+\\.\\d+$",
    "tab\there",
    "line1\nline2",
    "<b>bold</b> & more",
    "it's",
    "{\"k\":\"v\"}",
    "back\\slash\\",
    "caf\u{e9} cr\u{e8}me",
    "Gr\u{f6}\u{df}e",
    "\u{65e5}\u{672c}\u{8a9e}\u{30c6}\u{30ad}\u{30b9}\u{30c8}",
    "\u{395}\u{3bb}\u{3bb}\u{3b7}\u{3bd}\u{3b9}\u{3ba}\u{3ac}",
    "rocket \u{1f680} launch",
    "\u{2713} ok \u{2717} fail",
    "\u{20ac} 12,50",
    "bell\x07\x01",
    "sep\u{2028}line",
    "\u{440}\u{443}\u{441}\u{441}\u{43a}\u{438}\u{439}",
    "\u{d55c}\u{ad6d}\u{c5b4} \u{1f600}",
];
const IMAGES: &[&str] = &[
    "docker.io/library/nginx:1.25.3",
    "docker.io/library/postgres:15.5",
    "docker.io/library/redis:7.2",
    "quay.io/prometheus/node-exporter:v1.7.0",
    "registry.k8s.io/pause:3.9",
    "weaveworks/scope:1.13.2",
    "ghcr.io/example/api-server:2.4.1",
    "docker.io/grafana/grafana:10.2.2",
    "registry.k8s.io/kube-proxy:v1.28.4",
    "docker.io/bitnami/kafka:3.6",
];
const COMMANDS: &[&str] = &[
    "nginx -g \"daemon off;\"",
    "/bin/sh -c 'exec \"$@\"' --",
    "postgres -c config_file=/etc/pg.conf",
    "/usr/bin/node_exporter --path.rootfs=/host",
    "redis-server --appendonly yes",
];
const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "monitoring",
    "weave",
    "payments",
    "ingress-nginx",
];
const PROCESS_NAMES: &[&str] = &[
    "nginx",
    "postgres",
    "python3",
    "dockerd",
    "containerd",
    "kubelet",
    "prometheus",
    "node_exporter",
    "redis-server",
    "scope-probe",
    "haproxy",
];
const WORKDIRS: &[&str] = &[
    "/var/lib/postgresql/15/main",
    "/srv/www",
    "/root",
    "/home/ubuntu/app",
    "C:\\Users\\svc\\work",
];
const ENV_KEYS: &[&str] = &[
    "HOME", "LANG", "PATH", "PWD", "SHELL", "TERM", "TZ", "USER", "LC_ALL",
];
const USERS: &[&str] = &[
    "www-data",
    "postgres",
    "nobody",
    "ubuntu",
    "daemon",
    "prometheus",
];
const POD_STATES: &[&str] = &["Running", "Pending", "Succeeded", "Running", "Running"];
const CPU_MODELS: &[&str] = &[
    "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
    "AMD EPYC 7R13 Processor",
    "ARM Neoverse-N1 (Graviton2)",
];

/// The four topologies the corpus fills, in the order of the node split (spec §2.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Topo {
    Host,
    Container,
    Process,
    Pod,
}

/// Share of the nodes per topology; this order settles rounding ties.
const SPLIT: [(Topo, f64); 4] = [
    (Topo::Host, 0.05),
    (Topo::Container, 0.30),
    (Topo::Process, 0.45),
    (Topo::Pod, 0.20),
];

#[derive(Clone, Copy)]
enum Kind {
    Percent,
    Bytes,
    Rate,
}

impl Topo {
    fn wire(self) -> &'static str {
        match self {
            Topo::Host => "Host",
            Topo::Container => "Container",
            Topo::Process => "Process",
            Topo::Pod => "Pod",
        }
    }

    /// Internal name, shape, label and plural (spec §2.2).
    fn defaults(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Topo::Host => ("host", "circle", "host", "hosts"),
            Topo::Container => ("container", "hexagon", "container", "containers"),
            Topo::Process => ("process", "square", "process", "processes"),
            Topo::Pod => ("pod", "heptagon", "pod", "pods"),
        }
    }

    /// The two metrics every node of the topology has.
    fn metrics(self) -> [(&'static str, Kind); 2] {
        match self {
            Topo::Host => [
                ("host_cpu_usage_percent", Kind::Percent),
                ("host_mem_usage_bytes", Kind::Bytes),
            ],
            Topo::Container => [
                ("docker_cpu_total_usage", Kind::Percent),
                ("docker_memory_usage", Kind::Bytes),
            ],
            Topo::Process => [
                ("process_cpu_usage_percent", Kind::Percent),
                ("process_memory_usage_bytes", Kind::Bytes),
            ],
            Topo::Pod => [
                ("pod_cpu_usage_percent", Kind::Percent),
                ("pod_memory_usage_bytes", Kind::Bytes),
            ],
        }
    }

    /// Metadata templates: (id, label, dataType or "sets").
    fn metadata(self) -> [(&'static str, &'static str, &'static str); 7] {
        match self {
            Topo::Host => [
                ("host_name", "Hostname", ""),
                ("os", "OS", ""),
                ("kernel_version", "Kernel version", ""),
                ("uptime", "Uptime", "duration"),
                ("cpu_model", "CPU model", ""),
                ("local_networks", "Local networks", "sets"),
                ("host_labels", "Labels", "sets"),
            ],
            Topo::Container => [
                ("docker_container_name", "Name", ""),
                ("docker_image_name", "Image", ""),
                ("docker_container_command", "Command", ""),
                ("docker_container_created", "Created", "datetime"),
                ("docker_container_state_human", "State", ""),
                ("docker_container_ips", "IPs", "sets"),
                ("docker_container_ports", "Ports", "sets"),
            ],
            Topo::Process => [
                ("pid", "PID", "number"),
                ("name", "Name", ""),
                ("cmdline", "Command", ""),
                ("ppid", "Parent PID", "number"),
                ("user", "User", ""),
                ("process_env_keys", "Environment", "sets"),
                ("process_open_files", "Open files", "sets"),
            ],
            Topo::Pod => [
                ("kubernetes_name", "Name", ""),
                ("kubernetes_namespace", "Namespace", ""),
                ("kubernetes_created", "Created", "datetime"),
                ("kubernetes_ip", "IP", "ip"),
                ("kubernetes_state", "State", ""),
                ("kubernetes_labels", "Labels", "sets"),
                ("kubernetes_conditions", "Conditions", "sets"),
            ],
        }
    }
}

/// SplitMix64: tiny, fast and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); n > 0. The modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [lo, hi], both inclusive.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn choice<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `k` distinct elements of `items`, in random order.
    fn sample<T: Clone>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut all = items.to_vec();
        self.shuffle(&mut all);
        all.truncate(k);
        all
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

/// Nanoseconds since the epoch as RFC 3339 in UTC, fraction trimmed as Go writes it.
fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(NS);
    let frac = ns.rem_euclid(NS);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Round some timestamps down to microseconds, as Python plugins write them.
fn stamp(rng: &mut Rng, ns: i64) -> i64 {
    if rng.random() < 0.3 {
        ns - ns % 1000
    } else {
        ns
    }
}

/// Free text of lo..=hi characters; about a third holds a snippet from TRICKY.
fn text(rng: &mut Rng, lo: i64, hi: i64) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if rng.random() < 0.35 {
        parts.push(*rng.choice(TRICKY));
    }
    let target = rng.int(lo, hi) as usize;
    let mut len = parts.iter().map(|p| p.chars().count()).sum::<usize>();
    while len + parts.len().saturating_sub(1) < target {
        let word = *rng.choice(WORDS);
        len += word.len();
        parts.push(word);
    }
    rng.shuffle(&mut parts);
    parts.join(" ").chars().take(target).collect()
}

fn uuid4(rng: &mut Rng) -> String {
    let h = rng.hex(32);
    format!(
        "{}-{}-4{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..]
    )
}

/// FNV-1a of the string's UTF-8 bytes.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

/// Largest-remainder split of total over SPLIT; ties go to the earlier share.
fn split_counts(total: usize) -> HashMap<Topo, usize> {
    let exact: Vec<f64> = SPLIT
        .iter()
        .map(|(_, share)| total as f64 * share)
        .collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| *x as usize).collect();
    let mut order: Vec<usize> = (0..SPLIT.len()).collect();
    // Stable sort: equal remainders keep the earlier share first.
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - counts[a] as f64, exact[b] - counts[b] as f64);
        rb.total_cmp(&ra)
    });
    let missing = total - counts.iter().sum::<usize>();
    for &i in order.iter().take(missing) {
        counts[i] += 1;
    }
    SPLIT
        .iter()
        .zip(counts)
        .map(|((t, _), c)| (*t, c))
        .collect()
}

/// The attributes of one node that stay the same in every report.
enum Attrs {
    Host {
        name: String,
        probe: String,
        mem: u64,
        uptime: i64,
        kernel: String,
        nets: Vec<String>,
        labels: Vec<String>,
    },
    Pod {
        name: String,
        ns: String,
        host: String,
        ip: String,
        created: String,
        labels: Vec<String>,
        conditions: Vec<String>,
    },
    Container {
        name: String,
        image: String,
        host: String,
        pod: Option<String>,
        command: String,
        created: String,
        ips: Vec<String>,
        ports: Vec<String>,
        mem: u64,
    },
    Process {
        pid: u64,
        host: String,
        name: String,
        container: Option<String>,
        ppid: i64,
        user: String,
        cmdline: String,
        cwd: String,
        env: Vec<String>,
        files: Vec<String>,
        mem: u64,
    },
}

/// One node: its topology, its ID and its stable attributes.
struct Entity {
    topo: Topo,
    id: String,
    attrs: Attrs,
}

impl Entity {
    fn host(&self) -> &str {
        match &self.attrs {
            Attrs::Host { name, .. } => name,
            Attrs::Pod { host, .. }
            | Attrs::Container { host, .. }
            | Attrs::Process { host, .. } => host,
        }
    }

    fn mem(&self) -> u64 {
        match self.attrs {
            Attrs::Host { mem, .. } | Attrs::Container { mem, .. } | Attrs::Process { mem, .. } => {
                mem
            }
            Attrs::Pod { .. } => 1 << 30,
        }
    }
}

/// New entities for the per-topology counts: the shared ones when k is 0, otherwise the ones
/// of report k only. `base`: existing entities they may name as parents.
fn make_entities(
    rng: &mut Rng,
    counts: &HashMap<Topo, usize>,
    k: usize,
    base: &[Entity],
) -> Vec<Entity> {
    let mut ents: Vec<Entity> = Vec::new();
    let mut host_names: Vec<String> = base
        .iter()
        .filter(|e| e.topo == Topo::Host)
        .map(|e| e.host().to_owned())
        .collect();
    for i in 0..counts[&Topo::Host] {
        let name = if k == 0 {
            if rng.random() < 0.5 {
                format!("host-{i}")
            } else {
                format!("ip-10-0-0-{i}.ec2.internal")
            }
        } else if rng.random() < 0.5 {
            format!("node-{k:03}-{i}")
        } else {
            format!("ip-10-{}-{}-{i}.ec2.internal", 1 + k / 250, k % 250)
        };
        let nets: BTreeSet<String> = [
            "127.0.0.1/8".to_owned(),
            "172.17.0.1/16".to_owned(),
            format!("10.{}.{}.0/24", rng.int(0, 255), rng.int(0, 255)),
        ]
        .into();
        let labels = vec![
            format!("role={}", rng.choice(&["worker", "edge", "db"])),
            format!("zone=eu-west-1{}", rng.choice(&["a", "b", "c"])),
            format!("gpu={}", rng.choice(&["true", "false"])),
            "arch=amd64".to_owned(),
            format!("tier={}", rng.int(1, 3)),
            format!("rack=r{:02}", rng.int(1, 40)),
            "os=linux".to_owned(),
            format!("team={}", rng.choice(WORDS)),
        ];
        let kernel = format!(
            "{}-{}-amd64 #1 SMP PREEMPT_DYNAMIC",
            rng.choice(&["6.1.0", "5.15.0", "6.8.0"]),
            rng.int(1, 40)
        );
        host_names.push(name.clone());
        ents.push(Entity {
            topo: Topo::Host,
            id: format!("{name};<host>"),
            attrs: Attrs::Host {
                name,
                probe: rng.hex(16),
                mem: *rng.choice(&[8u64, 16, 32, 64]) << 30,
                uptime: rng.int(10_000, 9_000_000),
                kernel,
                nets: nets.into_iter().collect(),
                labels,
            },
        });
    }
    // Without any host node, parents still need host names.
    if host_names.is_empty() {
        host_names.push(format!("phantom-{k}"));
    }

    // (pod id, host) of the pods containers may belong to.
    let mut pods: Vec<(String, String)> = base
        .iter()
        .filter(|e| e.topo == Topo::Pod)
        .map(|e| (e.id.clone(), e.host().to_owned()))
        .collect();
    for _ in 0..counts[&Topo::Pod] {
        let app = rng.choice(PROCESS_NAMES).replace('_', "-");
        let labels: BTreeSet<String> = [
            format!("app={app}"),
            format!("pod-template-hash={}", rng.hex(9)),
            format!("env={}", rng.choice(&["prod", "staging", "dev"])),
        ]
        .into();
        let id = format!("{};<pod>", uuid4(rng));
        let name = format!("{app}-{}-{}", rng.hex(9), rng.hex(5));
        let ns = rng.choice(NAMESPACES).to_string();
        let host = rng.choice(&host_names).clone();
        let ip = format!("10.32.{}.{}", rng.int(0, 255), rng.int(1, 254));
        let created = rfc3339(BASE_NS - rng.int(1, 1_000_000) * NS);
        pods.push((id.clone(), host.clone()));
        let conditions = [
            "ContainersReady",
            "DisruptionTarget",
            "Initialized",
            "PodReadyToStartContainers",
            "PodScheduled",
            "Ready",
        ];
        ents.push(Entity {
            topo: Topo::Pod,
            id,
            attrs: Attrs::Pod {
                name,
                ns,
                host,
                ip,
                created,
                labels: labels.into_iter().collect(),
                conditions: conditions.iter().map(|c| c.to_string()).collect(),
            },
        });
    }

    // (container id, host) of the containers processes may run in.
    let mut containers: Vec<(String, String)> = base
        .iter()
        .filter(|e| e.topo == Topo::Container)
        .map(|e| (e.id.clone(), e.host().to_owned()))
        .collect();
    for _ in 0..counts[&Topo::Container] {
        let pod = if !pods.is_empty() && rng.random() < 0.5 {
            Some(rng.choice(&pods).clone())
        } else {
            None
        };
        let image = rng.choice(IMAGES).to_string();
        let short = image
            .rsplit('/')
            .next()
            .unwrap_or(&image)
            .split(':')
            .next()
            .unwrap_or("");
        let name = format!("{short}-{}", rng.hex(6));
        let ips: BTreeSet<String> = (0..rng.int(1, 2))
            .map(|_| format!("10.32.{}.{}", rng.int(0, 255), rng.int(1, 254)))
            .collect();
        let id = format!("{};<container>", rng.hex(64));
        let host = match &pod {
            Some((_, host)) => host.clone(),
            None => rng.choice(&host_names).clone(),
        };
        containers.push((id.clone(), host.clone()));
        ents.push(Entity {
            topo: Topo::Container,
            id,
            attrs: Attrs::Container {
                name,
                image,
                host,
                pod: pod.map(|(id, _)| id),
                command: rng.choice(COMMANDS).to_string(),
                created: rfc3339(BASE_NS - rng.int(1, 1_000_000) * NS),
                ips: ips.into_iter().collect(),
                ports: [80, 443, 5432, 6379, 8080, 9090]
                    .iter()
                    .map(|p| format!("{p}/tcp"))
                    .collect(),
                mem: *rng.choice(&[256u64, 512, 1024, 4096]) << 20,
            },
        });
    }

    // Shared processes get PIDs below 100000, report k's own ones a block of their own above,
    // so process IDs never collide between reports.
    let n_proc = counts[&Topo::Process];
    let (lo, hi) = if k == 0 {
        (10_000u64, 100_000u64)
    } else {
        let block = 20_000.max(4 * n_proc) as u64;
        (100_000 + (k as u64 - 1) * block, 100_000 + k as u64 * block)
    };
    let mut pids = HashSet::new();
    while pids.len() < n_proc {
        let pid = lo + rng.below(hi - lo);
        if !pids.insert(pid) {
            continue;
        }
        let container = if !containers.is_empty() && rng.random() < 0.6 {
            Some(rng.choice(&containers).clone())
        } else {
            None
        };
        let host = match &container {
            Some((_, host)) => host.clone(),
            None => rng.choice(&host_names).clone(),
        };
        let name = rng.choice(PROCESS_NAMES).to_string();
        let prefix = rng.choice(&["/usr/sbin/", "/usr/bin/", "/opt/app/bin/"]);
        let files = vec![
            format!("/etc/{name}.conf"),
            format!("/var/log/{name}.log"),
            "/dev/null".to_owned(),
            "/proc/self/fd".to_owned(),
            format!("socket:[{}]", rng.int(10_000, 1_000_000)),
            format!("/tmp/.{name}.lock"),
            format!("pipe:[{}]", rng.int(10_000, 1_000_000)),
            "/usr/lib/x86_64-linux-gnu/libc.so.6".to_owned(),
        ];
        let cmdline: String = format!("{prefix}{name} {}", text(rng, 1, 30))
            .chars()
            .take(60)
            .collect();
        let mut env = rng.sample(ENV_KEYS, 4);
        env.sort_unstable();
        ents.push(Entity {
            topo: Topo::Process,
            id: format!("{host};{pid}"),
            attrs: Attrs::Process {
                pid,
                host,
                name,
                container: container.map(|(id, _)| id),
                ppid: rng.int(10_000, 99_999),
                user: rng.choice(USERS).to_string(),
                cmdline,
                cwd: rng.choice(WORKDIRS).to_string(),
                env: env.iter().map(|e| e.to_string()).collect(),
                files,
                mem: *rng.choice(&[64u64, 128, 512, 2048]) << 20,
            },
        });
    }
    ents
}

/// The node's latest values in report k, in order of importance (the last two optional).
fn latest_values(rng: &mut Rng, ent: &Entity, k: usize) -> Vec<(&'static str, String)> {
    match &ent.attrs {
        Attrs::Host {
            name,
            probe,
            uptime,
            kernel,
            ..
        } => {
            let loads = (rng.random() * 4.0, rng.random() * 4.0, rng.random() * 4.0);
            vec![
                ("host_name", name.clone()),
                ("os", "linux".to_owned()),
                ("kernel_version", kernel.clone()),
                ("uptime", (uptime + 3 * (k as i64 - 1)).to_string()),
                ("host_scope_version", "1.13.2-plugin-host".to_owned()),
                ("control_probe_id", probe.clone()),
                (
                    "load_summary",
                    format!("{:.2} {:.2} {:.2}", loads.0, loads.1, loads.2),
                ),
                ("cpu_model", rng.choice(CPU_MODELS).to_string()),
            ]
        }
        Attrs::Container {
            name,
            image,
            host,
            command,
            created,
            ..
        } => vec![
            ("docker_container_name", name.clone()),
            ("docker_image_name", image.clone()),
            ("docker_container_command", command.clone()),
            ("docker_container_created", created.clone()),
            (
                "docker_container_state_human",
                format!("Up {} minutes", 60 + 3 * k as i64 + rng.int(0, 5)),
            ),
            ("host_node_id", format!("{host};<host>")),
            (
                "docker_container_hostname",
                format!("{}.svc.local", name.chars().take(12).collect::<String>()),
            ),
            (
                "docker_container_restart_policy",
                rng.choice(&["unless-stopped", "always", "on-failure:3"])
                    .to_string(),
            ),
        ],
        Attrs::Process {
            pid,
            host,
            name,
            ppid,
            user,
            cmdline,
            cwd,
            ..
        } => vec![
            ("pid", pid.to_string()),
            ("name", name.clone()),
            ("cmdline", cmdline.clone()),
            ("ppid", ppid.to_string()),
            ("user", user.clone()),
            ("host_node_id", format!("{host};<host>")),
            ("cwd", cwd.clone()),
            ("process_state_note", text(rng, 5, 40)),
        ],
        Attrs::Pod {
            name,
            ns,
            host,
            ip,
            created,
            ..
        } => vec![
            ("kubernetes_name", name.clone()),
            ("kubernetes_namespace", ns.clone()),
            ("kubernetes_created", created.clone()),
            ("kubernetes_ip", ip.clone()),
            ("kubernetes_state", rng.choice(POD_STATES).to_string()),
            ("host_node_id", format!("{host};<host>")),
            ("kubernetes_node_name", host.clone()),
            (
                "kubernetes_qos_class",
                rng.choice(&["BestEffort", "Burstable", "Guaranteed"])
                    .to_string(),
            ),
        ],
    }
}

/// The node's two sets: the first is the same in every report, the second is 3 to 5 elements
/// of a pool, so that it differs between reports.
fn set_values(rng: &mut Rng, ent: &Entity) -> Value {
    let (stable_key, stable, varying_key, pool) = match &ent.attrs {
        Attrs::Host { nets, labels, .. } => ("local_networks", nets, "host_labels", labels),
        Attrs::Container { ips, ports, .. } => {
            ("docker_container_ips", ips, "docker_container_ports", ports)
        }
        Attrs::Process { env, files, .. } => ("process_env_keys", env, "process_open_files", files),
        Attrs::Pod {
            labels, conditions, ..
        } => (
            "kubernetes_labels",
            labels,
            "kubernetes_conditions",
            conditions,
        ),
    };
    let n = rng.int(3, pool.len().min(5) as i64) as usize;
    let varying: BTreeSet<String> = rng.sample(pool, n).into_iter().collect();
    json!({ stable_key: stable, varying_key: varying })
}

fn parents(ent: &Entity) -> Value {
    let host = vec![format!("{};<host>", ent.host())];
    match &ent.attrs {
        Attrs::Host { .. } => json!({ "host": [ent.id] }),
        Attrs::Container { image, pod, .. } => {
            let mut out =
                json!({ "host": host, "container_image": [format!("{image};<container_image>")] });
            if let Some(pod) = pod {
                out["pod"] = json!([pod]);
            }
            out
        }
        Attrs::Process { container, .. } => {
            let mut out = json!({ "host": host });
            if let Some(container) = container {
                out["container"] = json!([container]);
            }
            out
        }
        Attrs::Pod { ns, .. } => {
            json!({ "host": host, "namespace": [format!("{ns};<namespace>")] })
        }
    }
}

fn metric_value(rng: &mut Rng, kind: Kind, ent: &Entity) -> f64 {
    match kind {
        Kind::Percent => {
            let value = rng.random() * 100.0;
            if rng.random() < 0.3 {
                (value * 10.0).round() / 10.0
            } else {
                value
            }
        }
        Kind::Bytes => (rng.below(ent.mem() / 4096) * 4096) as f64,
        Kind::Rate => (rng.random() * 1000.0 * 1000.0).round() / 1000.0,
    }
}

fn metric_bounds(kind: Kind, ent: &Entity, values: &[f64]) -> (f64, f64) {
    match kind {
        Kind::Percent => (0.0, 100.0),
        Kind::Bytes => (0.0, ent.mem() as f64),
        Kind::Rate => (
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ),
    }
}

/// Templates for the topology's latest keys and sets, plus one for this plugin's note.
fn metadata_templates(topo: Topo, key: &str) -> Value {
    let mut out = Map::new();
    for (i, (ident, label, kind)) in topo.metadata().into_iter().enumerate() {
        let mut tmpl = json!({ "id": ident, "label": label, "priority": (i + 1) as f64 });
        if kind == "sets" {
            tmpl["from"] = json!("sets");
        } else {
            tmpl["from"] = json!("latest");
            if !kind.is_empty() {
                tmpl["dataType"] = json!(kind);
            }
        }
        if ident == "cmdline" || ident == "docker_container_command" {
            tmpl["truncate"] = json!(40);
        }
        out.insert(ident.to_owned(), tmpl);
    }
    let note = format!("{key}_note");
    out.insert(
        note.clone(),
        json!({ "id": note, "label": format!("Note ({key})"), "priority": 30.5, "from": "latest" }),
    );
    Value::Object(out)
}

fn metric_templates(topo: Topo, key: &str) -> Value {
    let mut out = Map::new();
    for (i, (name, kind)) in topo.metrics().into_iter().take(METRIC_COUNT).enumerate() {
        let percent = matches!(kind, Kind::Percent);
        out.insert(
            name.to_owned(),
            json!({
                "id": name,
                "label": if percent { "CPU" } else { "Memory" },
                "format": if percent { "percent" } else { "filesize" },
                "priority": (i + 1) as f64,
            }),
        );
    }
    for i in 0..METRIC_COUNT.saturating_sub(2) {
        let name = format!("{key}_rate{}", i + 1);
        out.insert(
            name.clone(),
            json!({ "id": name, "label": format!("Rate {} ({key})", i + 1), "group": key, "priority": 12.0 + i as f64 }),
        );
    }
    Value::Object(out)
}

/// The entities of one corpus (shared ones made once) and the reports built from them.
struct Corpus {
    seed: u64,
    reports: usize,
    width: usize,
    counts: HashMap<Topo, usize>,
    shared_counts: HashMap<Topo, usize>,
    shared: Vec<Entity>,
    /// Metric values of the shared nodes by global sample number, so that reports whose
    /// windows overlap carry identical samples.
    /// Keyed by node ID, one series per topology metric (`Topo::metrics` order).
    series: HashMap<String, Vec<Vec<f64>>>,
}

impl Corpus {
    fn new(reports: usize, nodes: usize, seed: u64) -> Corpus {
        let counts = split_counts(nodes);
        let shared_counts: HashMap<Topo, usize> = counts
            .iter()
            .map(|(t, c)| (*t, (*c as f64 * SHARED + 0.5) as usize))
            .collect();
        let mut rng = Rng::new(seed, 0);
        let shared = make_entities(&mut rng, &shared_counts, 0, &[]);
        let span = SAMPLE_SHIFT * reports.saturating_sub(1) + SAMPLES;
        let mut series = HashMap::new();
        for ent in &shared {
            let per_metric = ent
                .topo
                .metrics()
                .into_iter()
                .take(METRIC_COUNT)
                .map(|(_, kind)| {
                    (0..span)
                        .map(|_| metric_value(&mut rng, kind, ent))
                        .collect()
                })
                .collect();
            series.insert(ent.id.clone(), per_metric);
        }
        Corpus {
            seed,
            reports,
            width: reports.to_string().len().max(3),
            counts,
            shared_counts,
            shared,
            series,
        }
    }

    /// Plugin report k (1-based).
    fn report(&self, k: usize) -> Value {
        let mut rng = Rng::new(self.seed, k as u64);
        let own_counts: HashMap<Topo, usize> = self
            .counts
            .iter()
            .map(|(t, c)| (*t, c - self.shared_counts[t]))
            .collect();
        let own = make_entities(&mut rng, &own_counts, k, &self.shared);
        let plugin_id = format!("gen-{k:0w$}", w = self.width);
        // Prefix of this plugin's own latest keys and metrics.
        let key = format!("gen_{k:0w$}", w = self.width);
        let t_report = BASE_NS + (k as i64 - 1) * REPORT_STEP_NS;

        let mut nodes: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for ent in self.shared.iter().chain(&own) {
            let node = self.node(&mut rng, ent, k, &key, t_report);
            nodes
                .entry(ent.topo.wire())
                .or_default()
                .insert(ent.id.clone(), node);
        }
        let mut rpt = json!({
            "TS": rfc3339(t_report + rng.below(NS as u64) as i64),
            "Window": REPORT_STEP_NS,
            "Plugins": [{
                "id": plugin_id,
                "label": format!("Generated {plugin_id}"),
                "description": format!("synthetic reporter {k} of {} (benches/corpus, seed {})", self.reports, self.seed),
                "interfaces": ["reporter"],
                "api_version": "1",
            }],
        });
        for (topo, _) in SPLIT {
            let (_, shape, label, plural) = topo.defaults();
            rpt[topo.wire()] = json!({
                "shape": shape,
                "label": label,
                "label_plural": plural,
                "nodes": nodes.remove(topo.wire()).unwrap_or_default(),
                "metadata_templates": metadata_templates(topo, &key),
                "metric_templates": metric_templates(topo, &key),
            });
        }
        rpt
    }

    fn node(&self, rng: &mut Rng, ent: &Entity, k: usize, key: &str, t_report: i64) -> Value {
        // All of this report's timestamps lie within 1.001 s after t_report, and reports are
        // 3 s apart, so a shared node's timestamps never tie between reports.
        let node_ns = t_report + rng.below(NS as u64) as i64;
        let values = latest_values(rng, ent, k);
        let fixed = LATEST.saturating_sub(2);
        let mut latest = Map::new();
        for (i, (name, value)) in values.into_iter().enumerate().take(LATEST) {
            if i < fixed || rng.random() < 0.5 {
                let ts = rfc3339(stamp(rng, node_ns));
                latest.insert(name.to_owned(), json!({ "timestamp": ts, "value": value }));
            }
        }
        let note_ns = node_ns + rng.below(1_000_000) as i64;
        let note_ns = stamp(rng, note_ns);
        latest.insert(
            format!("{key}_note"),
            json!({ "timestamp": rfc3339(note_ns), "value": text(rng, 5, 60) }),
        );

        // Report k covers global samples [SHIFT*(k-1), SHIFT*(k-1) + SAMPLES) of each metric.
        let h = stable_hash(&ent.id);
        let mut phase = (h % NS as u64) as i64;
        if h.is_multiple_of(3) {
            phase -= phase % 1000;
        }
        let first = SAMPLE_SHIFT * (k - 1);
        let own_metrics = (0..METRIC_COUNT.saturating_sub(2))
            .map(|i| (format!("{key}_rate{}", i + 1), Kind::Rate));
        let all = ent
            .topo
            .metrics()
            .into_iter()
            .map(|(n, kind)| (n.to_owned(), kind))
            .chain(own_metrics);
        let mut metrics = Map::new();
        for (index, (name, kind)) in all.take(METRIC_COUNT).enumerate() {
            let series = self.series.get(&ent.id).and_then(|s| s.get(index));
            let mut values = Vec::with_capacity(SAMPLES);
            let mut samples = Vec::with_capacity(SAMPLES);
            for j in first..first + SAMPLES {
                let value = match series {
                    Some(series) => series[j],
                    None => metric_value(rng, kind, ent),
                };
                let date = rfc3339(BASE_NS + j as i64 * SAMPLE_STEP_NS + phase);
                values.push(value);
                samples.push(json!({ "date": date, "value": value }));
            }
            let (low, high) = metric_bounds(kind, ent, &values);
            metrics.insert(name, json!({ "samples": samples, "min": low, "max": high }));
        }
        json!({
            "id": ent.id,
            "topology": ent.topo.defaults().0,
            "latest": latest,
            "sets": set_values(rng, ent),
            "parents": parents(ent),
            "metrics": metrics,
        })
    }
}

/// JSON text of report k: Go-style ASCII when k is odd, raw UTF-8 when k is even.
fn encode(rpt: &Value, k: usize) -> Vec<u8> {
    // unwrap: a Value with string keys always serializes.
    let raw = serde_json::to_string(rpt).expect("Value serializes");
    if k.is_multiple_of(2) {
        return raw.into_bytes();
    }
    // Non-ASCII and '<', '>', '&' can only occur inside JSON strings, so escaping them
    // everywhere is safe.
    let mut out = String::with_capacity(raw.len() + raw.len() / 16);
    let mut units = [0u16; 2];
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if c.is_ascii() => out.push(c),
            c => {
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.into_bytes()
}

/// `reports` plugin reports of about `nodes` nodes each (spec §2–§4), as `GET /report` bodies.
/// `nodes = 230` gives about 1 MB per report, `nodes = 7` about 30 kB. The same arguments
/// always give the same bytes.
pub fn generate(reports: usize, nodes: usize, seed: u64) -> Vec<Vec<u8>> {
    let corpus = Corpus::new(reports, nodes, seed);
    (1..=reports)
        .map(|k| encode(&corpus.report(k), k))
        .collect()
}
