//! A simulated rollout over the real Azure LLM inference trace (`../shared/data/
//! azure-llm-inference-2023`, conversation workload: 19,366 requests over about an hour, read
//! in place). The trace has a timestamp and token counts only, so the rollout watches what it
//! measures: the cost per request at USD 2.50 per million prompt tokens and USD 10 per million
//! generated tokens (the support-chat-assistant example's prices). Each request's targeting key
//! is its row number (the trace is replayed twice, an hour apart, so the three phases have
//! traffic); the flag assigns it by flagd fractional bucketing; requests are sent to
//! the controller one trace minute at a time, as an OTLP exporter would batch them, and the
//! trace's own timestamps are the controller's clock.
//!
//! The plan: 20% → 50% → 100%, 20 minutes each with at least 1,000 treatment requests,
//! advancing automatically; rollback triggers on the cost per request, more than 10% above the
//! control (the phases with a control) and, in the 100% phase where there is none, more than
//! 10% above the pilot baseline (the mean cost over the trace as recorded), α = 0.05. (The
//! first version judged the baseline trigger in every phase; the healthy run paused at the
//! first go/no-go, inconclusive: the trace's first 20 minutes cost 8% more than its hourly
//! mean. Traffic drifts within the hour, which a control absorbs and a fixed baseline does not,
//! hence `phases: [Everyone]` for the baseline trigger — the plan's field for it.)
//!
//! - healthy (the trace as it is): advances through every phase to Completed;
//! - regressed (the agent's answers twice as long — generated tokens × 2 on treated requests —
//!   from the start of phase 2, cost +28%): rolled back within the trigger's detection budget
//!   (10 min);
//! - marginal (× 1.5, cost +14%, near the 10% allowance; the regression first planned): not
//!   proven harmful in the window, not proven harmless: paused at the go/no-go, never advanced;
//! - A/A: 200 healthy rollouts, each under another flag key (an independent assignment): the
//!   share with any rollback is at most α.

use jiff::Timestamp;
use stagegate_rollout::{Arm, Controller, Fields, Rollout, RolloutPlan, Status, Tally, Transition};
use std::path::Path;

/// One request: its time, prompt and generated tokens.
#[derive(Debug, Clone, Copy)]
struct Request {
    at: Timestamp,
    input: f64,
    output: f64,
}

struct Span {
    input: f64,
    output: f64,
}

impl Fields for Span {
    fn number(&self, field: &str) -> Option<f64> {
        match field {
            "gen_ai.usage.input_tokens" => Some(self.input),
            "gen_ai.usage.output_tokens" => Some(self.output),
            _ => None,
        }
    }
    fn is_set(&self, _: &str) -> Option<bool> {
        None
    }
}

fn trace() -> Vec<Request> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv");
    let mut r = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared beside the repository)", path.display()));
    let mut out: Vec<Request> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            // "2023-11-16 18:15:46.6805900", UTC.
            let at: Timestamp = format!("{}Z", rec[0].replace(' ', "T")).parse().unwrap();
            Request {
                at,
                input: rec[1].parse().unwrap(),
                output: rec[2].parse().unwrap(),
            }
        })
        .collect();
    out.sort_by_key(|r| r.at);
    out
}

fn cost(input: f64, output: f64) -> f64 {
    2.5e-6 * input + 1e-5 * output
}

fn plan(flag: &str, baseline: f64) -> RolloutPlan {
    let yaml = format!(
        "flag: {flag}\nalpha: 0.05\nphases:\n  - {{ name: Power users, traffic_pct: 20, min_duration: 20m, min_sample: 1000, advance: auto }}\n  - {{ name: Department, traffic_pct: 50, min_duration: 20m, min_sample: 1000, advance: auto }}\n  - {{ name: Everyone, traffic_pct: 100, min_duration: 20m, min_sample: 1000, advance: auto }}\ntriggers:\n  - id: cost_vs_control\n    metric: {{ kind: mean, of: [{{ field: gen_ai.usage.input_tokens, weight: 0.0000025 }}, {{ field: gen_ai.usage.output_tokens, weight: 0.00001 }}] }}\n    comparator: '>'\n    threshold: 10\n    relative_to: control\n    detection_budget: 10m\n  - id: cost_vs_baseline\n    metric: {{ kind: mean, of: [{{ field: gen_ai.usage.input_tokens, weight: 0.0000025 }}, {{ field: gen_ai.usage.output_tokens, weight: 0.00001 }}] }}\n    comparator: '>'\n    threshold: 10\n    relative_to: baseline\n    baseline: {baseline}\n    detection_budget: 10m\n    phases: [Everyone]\n"
    );
    let p: RolloutPlan = serde_saphyr::from_str(&yaml).unwrap();
    p.validate().unwrap();
    p
}

/// What happened in one replay.
#[derive(Debug)]
struct Outcome {
    /// (trace time, transition) in order.
    log: Vec<(Timestamp, Transition)>,
    status: Status,
    /// When phase 2 began (the regression's onset in the regressed run).
    phase2_at: Option<Timestamp>,
}

/// Replays the trace under `plan`; from phase 2 on, treated requests generate `factor` times
/// the tokens.
fn replay(requests: &[Request], plan: RolloutPlan, factor: f64) -> Outcome {
    let digest = plan.digest();
    let start = requests[0].at;
    let mut seq = 1;
    let mut r = Rollout::start(
        &Transition::Start {
            plan,
            plan_digest: digest,
        },
        start,
        seq,
    )
    .unwrap();
    let mut c = Controller::new(&r);
    let mut log = Vec::new();
    let mut phase2_at = None;
    let minute = |t: Timestamp| (t.as_second() - start.as_second()) / 60;
    let mut i = 0;
    while i < requests.len() {
        let m = minute(requests[i].at);
        let mut tally = Tally::new(&r.plan);
        let pct = r.current().and_then(|p| p.traffic_pct).unwrap_or(0.0);
        let on = (pct * 1000.0).round() as u32;
        let split = [("on".to_owned(), on), ("off".to_owned(), 100_000 - on)];
        while i < requests.len() && minute(requests[i].at) == m {
            let q = requests[i];
            let key = format!("req-{i}");
            let treated = r.status == Status::Running
                && stagegate_flags::bucket::fractional(&r.plan.flag, &key, &split) == Some("on");
            let regressed = treated && phase2_at.is_some();
            let span = Span {
                input: q.input,
                output: if regressed {
                    q.output * factor
                } else {
                    q.output
                },
            };
            tally.add(
                &r.plan,
                if treated {
                    Arm::Treatment
                } else {
                    Arm::Control
                },
                &span,
            );
            i += 1;
        }
        let now = requests[i - 1].at;
        c.add(&r, r.epoch, &tally);
        if let Some(t) = c.decide(&r, now) {
            seq += 1;
            r.apply(&t, now, seq).unwrap();
            if r.phase == Some(1) && phase2_at.is_none() && matches!(t, Transition::Advance { .. })
            {
                phase2_at = Some(now);
            }
            log.push((now, t));
            c.sync(&r);
            if !matches!(r.status, Status::Running) {
                break;
            }
        }
    }
    Outcome {
        log,
        status: r.status.clone(),
        phase2_at,
    }
}

fn describe(start: Timestamp, o: &Outcome) -> String {
    let mut s = String::new();
    for (at, t) in &o.log {
        let min = (at.as_second() - start.as_second()) as f64 / 60.0;
        let judged: Vec<String> = match t {
            Transition::Advance { judgements, .. }
            | Transition::Pause { judgements, .. }
            | Transition::Rollback { judgements, .. } => judgements
                .iter()
                .map(|j| {
                    format!(
                        "{} {:?} n={}+{} θ̂={:.6} cs={:?}",
                        j.trigger,
                        j.verdict,
                        j.n_treatment,
                        j.n_control,
                        j.estimate.unwrap_or(f64::NAN),
                        j.sequence
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        s.push_str(&format!(
            "  {min:6.1} min  {:<8} {}\n",
            t.action(),
            judged.join("; ")
        ));
    }
    s
}

#[test]
fn a_rollout_over_the_azure_trace_advances_when_healthy_rolls_back_a_regression_and_keeps_its_alpha()
 {
    let hour = trace();
    assert_eq!(hour.len(), 19_366);
    // The pilot's baseline: the mean cost per request of the trace as recorded.
    let baseline = hour.iter().map(|q| cost(q.input, q.output)).sum::<f64>() / hour.len() as f64;
    // Three 20-minute phases need more than the trace's 58 minutes: the hour is replayed twice,
    // the second time one hour later (new requests, new targeting keys).
    let requests: Vec<Request> = hour
        .iter()
        .copied()
        .chain(hour.iter().map(|q| Request {
            at: q.at + jiff::SignedDuration::from_hours(1),
            ..*q
        }))
        .collect();
    let start = requests[0].at;
    println!("baseline cost per request: USD {baseline:.6}");

    let healthy = replay(
        &requests,
        plan("support-chat-assistant-enabled", baseline),
        1.0,
    );
    println!("healthy:\n{}", describe(start, &healthy));
    assert_eq!(healthy.status, Status::Completed, "{healthy:?}");
    let actions: Vec<&str> = healthy.log.iter().map(|(_, t)| t.action()).collect();
    assert_eq!(actions, ["advance", "advance", "advance"]);

    // Answers twice as long (generated tokens × 2 on treated requests) from phase 2: cost per
    // request +28%, against a 10% allowance: rolled back within the 10-minute budget.
    let regressed = replay(
        &requests,
        plan("support-chat-assistant-enabled", baseline),
        2.0,
    );
    println!(
        "regressed (generated tokens × 2 from phase 2):\n{}",
        describe(start, &regressed)
    );
    let onset = regressed.phase2_at.expect("phase 2 began");
    let (at, rollback) = regressed
        .log
        .iter()
        .find(|(_, t)| matches!(t, Transition::Rollback { .. }))
        .expect("the regression is rolled back");
    let delay = (at.as_second() - onset.as_second()) as f64 / 60.0;
    println!("detected {delay:.1} min after the onset (budget 10 min)");
    assert!(delay <= 10.0, "{delay} min");
    let Transition::Rollback { to_phase, .. } = rollback else {
        unreachable!()
    };
    assert_eq!(*to_phase, Some(0), "back to the previous phase");

    // Answers half as long again (× 1.5): cost +14%, close to the 10% allowance. Not proven
    // harmful within the window, but not proven harmless either: the go/no-go pauses, the
    // rollout never reaches 100%.
    let marginal = replay(
        &requests,
        plan("support-chat-assistant-enabled", baseline),
        1.5,
    );
    println!(
        "marginal (generated tokens × 1.5 from phase 2):\n{}",
        describe(start, &marginal)
    );
    assert!(
        matches!(marginal.status, Status::Paused { .. } | Status::Running),
        "{:?}",
        marginal.status
    );
    let advances = marginal
        .log
        .iter()
        .filter(|(_, t)| matches!(t, Transition::Advance { .. }))
        .count();
    assert_eq!(advances, 1, "only the healthy first phase advanced");

    // A/A: 200 healthy rollouts under independent assignments.
    let runs = 200;
    let mut alarms = 0;
    let mut completed = 0;
    for k in 0..runs {
        let o = replay(
            &requests,
            plan(&format!("support-chat-assistant-enabled/aa-{k}"), baseline),
            1.0,
        );
        if o.log
            .iter()
            .any(|(_, t)| matches!(t, Transition::Rollback { .. }))
        {
            alarms += 1;
        }
        if o.status == Status::Completed {
            completed += 1;
        }
    }
    let rate = f64::from(alarms) / f64::from(runs);
    println!(
        "A/A over {runs} healthy rollouts: false-alarm rate {rate:.3} (α = 0.05); completed {completed}"
    );
    assert!(rate <= 0.05, "false-alarm rate {rate}");
}
