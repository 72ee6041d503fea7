//! `direct`: the remote device reaches 192.168.0.10 through the router by plain forwarding, no
//! tunnel at all. The ceiling of the lab; there is no tunnel process to charge CPU to.

use super::{measure, BenchLab, Case, CaseId, Plan, RunResult};

/// The direct case.
pub(crate) struct Direct;

impl Case for Direct {
    fn id(&self) -> CaseId {
        CaseId::Direct
    }

    fn describe(&self) -> String {
        "plain IP forwarding wan → router → LAN host, no tunnel (the ceiling)".into()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        measure(plan, &Vec::new, &mut |work| lab.kernel_probe(work, plan.timeout()))
    }
}
